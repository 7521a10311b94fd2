//! Smoke test: the quickstart flow, checked with openssl.
mod common;
use common::*;

#[test]
fn quickstart_makes_a_pki_openssl_accepts() {
    let e = Env::new();
    e.ok(&[
        "quickstart",
        "--server",
        "vpn.example.com",
        "--client",
        "alice",
        "--kdf-memory-mib",
        "8",
        "--kdf-time",
        "1",
    ]);
    let pki = e.pki.to_str().expect("utf8");
    let out = openssl_ok(
        &[
            "verify",
            "-CAfile",
            &format!("{pki}/ca.crt"),
            "-crl_check",
            "-CRLfile",
            &format!("{pki}/crl.pem"),
            &format!("{pki}/issued/alice.crt"),
        ],
        e.dir.path(),
    );
    assert!(out.contains(": OK"), "{out}");
}
