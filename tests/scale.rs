//! Per-operation cost must not grow with the store (easy-rsa's index.txt broke at ~76k lines).
//! Timing is measured by `examples/scale.rs` (docs/performance.md); this test pins the cause
//! deterministically: every lookup on the issue / revoke / show paths uses an index, never a
//! scan of the certificates table. Regression: the CA lookup once scanned the whole table.
mod common;
use common::*;

#[test]
fn hot_lookups_use_indexes() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    let conn = rusqlite::Connection::open(e.pki.join("vpnca.db")).expect("open db");
    let queries = [
        "SELECT * FROM certs WHERE kind = 'ca' ORDER BY id",
        "SELECT * FROM certs WHERE name = 'alice' AND kind != 'ca' AND state = 'valid' AND not_after > 0 ORDER BY id",
        "SELECT * FROM certs WHERE serial = '0A' ORDER BY id",
        "SELECT * FROM certs WHERE state = 'revoked' ORDER BY id",
        "SELECT * FROM certs WHERE name = 'alice' AND kind != 'ca' ORDER BY id",
        "SELECT COUNT(*) FROM certs WHERE kind = 'ca'",
    ];
    for q in queries {
        let mut st = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {q}"))
            .expect("explain");
        let plan: Vec<String> = st
            .query_map([], |r| r.get::<_, String>(3))
            .expect("plan")
            .map(|r| r.expect("row"))
            .collect();
        let plan = plan.join(" | ");
        assert!(
            !plan.contains("SCAN certs")
                || plan.contains("USING INDEX")
                || plan.contains("COVERING INDEX"),
            "{q}: {plan}"
        );
        assert!(plan.contains("INDEX"), "{q} does not use an index: {plan}");
    }
}
