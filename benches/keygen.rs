//! In-process micro-benchmark of the primitives one `vpnca client NAME` spends its time in:
//! RSA-2048 key generation (aws-lc-rs, the same call rcgen makes for vpnca), one RSA-2048
//! PKCS#1 v1.5 SHA-256 signature (what signing a certificate costs), and the Argon2id key
//! derivation that unlocks the store (default 64 MiB / 3 passes / 1 lane, and the lightest
//! accepted setting, 8 MiB / 1 pass).
//!
//! A benchmark, not a test: it asserts nothing about time, it only prints. Single-threaded,
//! except in the `parallel` mode below.
//!
//! Output: one line per measured iteration, `LABEL SECONDS`, then a summary whose lines start
//! with `#`. `scripts/bench.sh` parses the per-iteration lines.
//!
//! Run: `cargo bench --bench keygen` (the `[[bench]]` entry in Cargo.toml; `scripts/bench.sh`
//! builds it so). The first numeric argument, else `$VPNCA_BENCH_N`, else 30, is the number of RSA
//! keys generated. Run with no argument at all (as `cargo test --all-targets` runs it), it is
//! a quick smoke run: 2 keys, so the test suite is not slowed down.
//!
//! With the argument `first-rng` it instead times only the first random-number request of a
//! fresh process (aws-lc seeds its generator then: a per-process cost every vpnca command that
//! generates a key or signs pays once) and prints `aws_lc_first_rng SECONDS`; run it in a loop.
//!
//! With the argument `parallel KEYS [THREADS]` it instead measures throughput on all cores, the
//! limit for `vpnca client --batch`: THREADS worker threads (default: every core, as
//! `std::thread::available_parallelism` reports it, which is what vpnca's batch engine uses)
//! share KEYS RSA-2048 key generations, then 10 × KEYS RSA-2048 signatures (the limit for
//! batches that do not generate RSA keys: P-256 users and CSRs, signed by an RSA CA). Each
//! thread first generates one untimed key (its RNG is seeded then); the clock runs from a
//! barrier that releases all threads at once until the last one finishes. It prints
//! `par_rsa2048_keygen THREADS COUNT SECONDS` and `par_rsa2048_sign THREADS COUNT SECONDS`
//! (wall clock for all COUNT operations), then `#` summary lines with the rates.

use std::hint::black_box;
use std::sync::Barrier;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::RSA_PKCS1_SHA256;

fn iterations() -> usize {
    if std::env::args().len() <= 1 && std::env::var_os("VPNCA_BENCH_N").is_none() {
        return 2; // no argument: `cargo test --all-targets` (cargo bench passes --bench)
    }
    std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .or_else(|| {
            std::env::var("VPNCA_BENCH_N")
                .ok()
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(30)
        .max(1)
}

/// Times `f` `n` times, printing one `LABEL SECONDS` line per run; returns the seconds.
fn measure(label: &str, n: usize, mut f: impl FnMut()) -> Vec<f64> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f();
        let s = t.elapsed().as_secs_f64();
        println!("{label} {s:.6}");
        out.push(s);
    }
    out
}

fn summary(label: &str, v: &[f64]) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let mean = s.iter().sum::<f64>() / n as f64;
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    let var = s.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n.max(2) - 1) as f64;
    println!(
        "# {label:<22} n={n:<4} median={:8.2} ms  mean={:8.2} ms  sd={:8.2} ms  min={:8.2} ms  max={:8.2} ms",
        median * 1e3,
        mean * 1e3,
        var.sqrt() * 1e3,
        s[0] * 1e3,
        s[n - 1] * 1e3,
    );
}

fn argon2id(m_kib: u32, t: u32) -> impl FnMut() {
    let params = match argon2::Params::new(m_kib, t, 1, Some(32)) {
        Ok(p) => p,
        Err(e) => panic!("argon2 parameters: {e}"),
    };
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    move || {
        let mut out = [0u8; 32];
        if let Err(e) = argon.hash_password_into(
            black_box(b"benchmark passphrase"),
            black_box(b"0123456789abcdef"),
            &mut out,
        ) {
            panic!("argon2: {e}");
        }
        black_box(out);
    }
}

/// Runs `count` operations `op` shared by `threads` threads (each first runs `warm` once,
/// untimed); returns the wall-clock seconds from the common start until the last one is done.
fn parallel(threads: usize, count: usize, warm: impl Fn() + Sync, op: impl Fn() + Sync) -> f64 {
    let next = AtomicUsize::new(0);
    let start = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (next, start, warm, op) = (&next, &start, &warm, &op);
            scope.spawn(move || {
                warm();
                start.wait();
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    op();
                }
            });
        }
        start.wait();
        let t = Instant::now();
        // Leaving the scope joins every thread.
        t
    })
    .elapsed()
    .as_secs_f64()
}

/// `keygen parallel KEYS [THREADS]`: throughput on all cores (see the file's documentation).
fn main_parallel(args: &[String]) {
    let mut nums = args.iter().filter_map(|a| a.parse::<usize>().ok());
    let keys = nums.next().unwrap_or(100).max(1);
    let threads = nums
        .next()
        .filter(|&t| t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let gen_key = || match KeyPair::generate(KeySize::Rsa2048) {
        Ok(k) => k,
        Err(e) => panic!("RSA-2048 key generation failed: {e}"),
    };
    let s = parallel(
        threads,
        keys,
        || {
            black_box(gen_key());
        },
        || {
            black_box(gen_key());
        },
    );
    println!("par_rsa2048_keygen {threads} {keys} {s:.6}");
    let signer = gen_key();
    let sigs = keys * 10;
    let sign = || {
        let rng = SystemRandom::new();
        let tbs = [0x5au8; 800];
        let mut sig = vec![0u8; signer.public_modulus_len()];
        if signer
            .sign(&RSA_PKCS1_SHA256, &rng, black_box(&tbs), &mut sig)
            .is_err()
        {
            panic!("RSA signing failed");
        }
        black_box(&sig);
    };
    let t = parallel(threads, sigs, sign, sign);
    println!("par_rsa2048_sign {threads} {sigs} {t:.6}");
    println!(
        "# par_rsa2048_keygen     threads={threads} keys={keys} wall={s:.3} s  {:.1} keys/s",
        keys as f64 / s
    );
    println!(
        "# par_rsa2048_sign       threads={threads} signatures={sigs} wall={t:.3} s  {:.0} signatures/s",
        sigs as f64 / t
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("parallel") {
        main_parallel(&args[1..]);
        return;
    }
    if std::env::args().any(|a| a == "first-rng") {
        let t = Instant::now();
        let mut b = [0u8; 32];
        if aws_lc_rs::rand::fill(&mut b).is_err() {
            panic!("random number generator failed");
        }
        let s = t.elapsed().as_secs_f64();
        black_box(b);
        println!("aws_lc_first_rng {s:.6}");
        return;
    }
    let n = iterations();
    let rng = SystemRandom::new();

    // One untimed key first: loads and initialises the library.
    let warm = match KeyPair::generate(KeySize::Rsa2048) {
        Ok(k) => k,
        Err(e) => panic!("RSA-2048 key generation failed: {e}"),
    };

    let keygen = measure("rsa2048_keygen", n, || {
        black_box(KeyPair::generate(KeySize::Rsa2048).is_ok());
    });

    // A certificate's to-be-signed part is about 600-900 bytes.
    let tbs = [0x5au8; 800];
    let mut sig = vec![0u8; warm.public_modulus_len()];
    let sign = measure("rsa2048_sign", n * 4, || {
        if warm
            .sign(&RSA_PKCS1_SHA256, &rng, black_box(&tbs), &mut sig)
            .is_err()
        {
            panic!("RSA signing failed");
        }
        black_box(&sig);
    });

    let kdf_default = measure("argon2id_64m_t3", n.clamp(1, 10), argon2id(64 * 1024, 3));
    let kdf_light = measure("argon2id_8m_t1", n.clamp(1, 10), argon2id(8 * 1024, 1));

    summary("rsa2048_keygen", &keygen);
    summary("rsa2048_sign", &sign);
    summary("argon2id_64m_t3", &kdf_default);
    summary("argon2id_8m_t1", &kdf_light);
}
