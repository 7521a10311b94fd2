//! Scale check: per-operation latency of issue, show and revoke as the store grows to
//! 100,000 certificates. A measurement, not a test: `cargo run --release --example scale [N]`.
//!
//! The store is filled with P-256 client certificates in batches (one transaction each), so the
//! filling is fast; the timed single operations use the normal one-transaction-per-command path
//! with RSA-2048 keys generated *before* the timer starts, so only the store's cost is timed.

use std::time::Instant;

use vpnca::{
    CertKind, IssueRequest, KdfParams, KeyAlgorithm, Passphrase, RevocationReason, Store, Target,
    Validity,
};

fn main() -> vpnca::Result<()> {
    let target: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("vpnca-scale-{}", std::process::id()));
    let pass = Passphrase::new("scale-test-passphrase".into());
    let store = Store::init(
        &dir,
        &pass,
        KdfParams {
            m_kib: 8 * 1024,
            t: 1,
            p: 1,
        },
    )?;
    store.create_root_ca("Scale CA", KeyAlgorithm::P256, Validity::Default)?;
    println!(
        "{:>8} {:>12} {:>12} {:>12} {:>12}",
        "certs", "issue ms", "show ms", "revoke ms", "fill/s"
    );
    let mut filled = 1usize;
    let mut probe = 0usize;
    for checkpoint in [1_000usize, 10_000, 50_000, 100_000]
        .into_iter()
        .filter(|&c| c <= target)
    {
        let t = Instant::now();
        let start = filled;
        while filled < checkpoint {
            let n = (checkpoint - filled).min(5_000);
            let reqs: Vec<IssueRequest> = (filled..filled + n)
                .map(|i| IssueRequest {
                    algorithm: KeyAlgorithm::P256,
                    ..IssueRequest::new(format!("user{i}"), CertKind::Client)
                })
                .collect();
            store.issue_batch(&reqs)?;
            filled += n;
        }
        let fill_rate = (filled - start) as f64 / t.elapsed().as_secs_f64();
        // Median of 5 single operations at this size.
        let (mut issue, mut show, mut revoke) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..5 {
            probe += 1;
            let name = format!("probe{probe}");
            let req = IssueRequest {
                algorithm: KeyAlgorithm::P256,
                ..IssueRequest::new(name.clone(), CertKind::Client)
            };
            let t = Instant::now();
            store.issue(&req)?;
            issue.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            store.current(&name)?;
            show.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            store.revoke(&Target::Name(name), RevocationReason::CessationOfOperation)?;
            revoke.push(t.elapsed().as_secs_f64() * 1e3);
            filled += 1;
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        println!(
            "{:>8} {:>12.2} {:>12.3} {:>12.2} {:>12.0}",
            filled,
            med(&mut issue),
            med(&mut show),
            med(&mut revoke),
            fill_rate
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
