//! The independent-tool checks of tests/common can fail: each is run here on a planted fault
//! and must reject it. (`openssl crl -CAfile` prints `verify failure` and still exits 0, which
//! is how a CRL "check" that never read the verdict went unnoticed.)
mod common;
use common::*;

use std::panic::{AssertUnwindSafe, catch_unwind};

/// `f` panics (the check rejected its input).
fn rejects(what: &str, f: impl FnOnce()) {
    assert!(
        catch_unwind(AssertUnwindSafe(f)).is_err(),
        "{what}: the check accepted a planted fault"
    );
}

#[test]
fn crl_verified_text_rejects_a_flipped_signature_and_a_foreign_ca() {
    let e = Env::with_ca();
    e.ok(&["crl"]);
    let dir = e.dir.path();
    // The genuine CRL passes.
    let text = crl_verified_text(dir, "pki/crl.pem", "pki/ca.crt");
    assert!(text.contains("Certificate Revocation List"), "{text}");

    // A foreign CA: same CRL, wrong issuer certificate.
    let foreign = fixture("foreign-ca.crt");
    let foreign = foreign.to_str().expect("utf-8 path");
    rejects("a foreign CA", || {
        crl_verified_text(dir, "pki/crl.pem", foreign);
    });

    // One bit of the signature flipped (the last byte of the DER is the signature's).
    openssl_ok(
        &[
            "crl",
            "-in",
            "pki/crl.pem",
            "-outform",
            "DER",
            "-out",
            "crl.der",
        ],
        dir,
    );
    let mut der = std::fs::read(e.path("crl.der")).expect("crl.der");
    *der.last_mut().expect("a non-empty CRL") ^= 1;
    std::fs::write(e.path("bad.der"), &der).expect("write");
    openssl_ok(
        &["crl", "-inform", "DER", "-in", "bad.der", "-out", "bad.pem"],
        dir,
    );
    rejects("a flipped signature bit", || {
        crl_verified_text(dir, "bad.pem", "pki/ca.crt");
    });
    rejects("crl_by_openssl on a CRL that does not verify", || {
        std::fs::copy(e.path("bad.pem"), e.pki.join("crl.pem")).expect("plant");
        crl_by_openssl(&e);
    });
}
