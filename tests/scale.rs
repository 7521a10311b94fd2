//! Per-operation cost must not grow with the store (easy-rsa's index.txt broke at ~76k lines).
//! Timing is measured by `examples/scale.rs` (docs/performance.md); this test pins the cause
//! deterministically: every lookup on the issue / revoke / show / CRL paths finds its rows
//! through an index (or the rowid), never by scanning the certificates table. Regression: the
//! CA lookup once scanned the whole table.
mod common;
use common::*;

/// The plans come from the store itself ([`vpnca::Store::hot_query_plans`]): the SQL the
/// store runs, not a copy of it.
///
/// Fails when: the `certs_kind` index is dropped from the store's schema (seen: the `ca`
/// plan became `SCAN certs`), and when the store's `WHERE_NAME` was changed to
/// `name || '' = ?1 AND kind != 'ca'`, which defeats the `certs_name` index (seen: the
/// `by_name` plan became `SCAN certs`); when the checkpoint guard's look for a `rekey` entry
/// reads the whole audit log (`seq <= ?` alone, as before 2026-12-04: `SEARCH audit USING
/// INTEGER PRIMARY KEY (rowid<?)`, every entry).
#[test]
fn hot_lookups_use_indexes() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    e.ok(&["revoke", "alice"]);
    let store = vpnca::Store::open(&e.pki).expect("open the store");
    let plans = store.hot_query_plans().expect("query plans");
    let names: Vec<&str> = plans.iter().map(|(n, _)| *n).collect();
    for want in [
        "by_serial",
        "by_name",
        "live",
        "ca",
        "revoked_set",
        "has_ca",
        "scan:valid_names",
        "scan:non_ascii_names",
        "audit:last_of",
    ] {
        assert!(names.contains(&want), "no plan for {want}: {names:?}");
    }
    for (name, plan) in plans.iter().filter(|(n, _)| n.starts_with("scan:")) {
        // The name scans (look-alikes, old spellings) read the covering index, no table row.
        assert!(
            plan.contains("SCAN certs USING COVERING INDEX certs_name"),
            "{name} reads table rows: {plan}"
        );
    }
    for (name, plan) in plans.iter().filter(|(n, _)| n.starts_with("audit:")) {
        // The audit log grows by an entry per certificate: what every command reads of it is a
        // range of its primary key (the tail since the checkpoint), never the whole log.
        assert!(
            plan.starts_with("SEARCH audit USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
            "{name} scans the audit log: {plan}"
        );
    }
    for (name, plan) in plans
        .iter()
        .filter(|(n, _)| !n.starts_with("scan:") && !n.starts_with("audit:"))
    {
        // One plan line per table access; those on `certs` must all be a SEARCH (an index or
        // rowid lookup). `SCAN certs`, even `USING INDEX`, reads every row.
        let on_certs: Vec<&str> = plan
            .split(" | ")
            .filter(|l| l.split_whitespace().any(|w| w == "certs"))
            .collect();
        assert!(!on_certs.is_empty(), "{name}: no access to certs in {plan}");
        for l in on_certs {
            assert!(
                l.starts_with("SEARCH ")
                    && (l.contains(" USING INDEX ")
                        || l.contains(" USING COVERING INDEX ")
                        || l.contains(" USING INTEGER PRIMARY KEY ")),
                "{name} scans the certificates table: {plan}"
            );
        }
    }
}
