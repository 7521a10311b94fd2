//! The real easy-rsa (Debian's 3.1 at /usr/share/easy-rsa/easyrsa), to build the PKI folders
//! that vpnca must recognise, import and never overwrite.

use std::path::Path;
use std::process::{Command, Stdio};

use super::s;

/// Debian's easy-rsa.
pub const EASYRSA: &str = "/usr/share/easy-rsa/easyrsa";

/// `easyrsa ARGS` on the PKI folder `pki` in batch mode, with EC keys (fast) and no vars file;
/// panics unless it succeeds (and if easy-rsa is missing: tests never skip silently).
pub fn easyrsa(pki: &Path, args: &[&str]) {
    assert!(
        Path::new(EASYRSA).is_file(),
        "easy-rsa is required by this test (apt-get install easy-rsa): {EASYRSA} is missing"
    );
    let mut c = Command::new(EASYRSA);
    if args.first() == Some(&"build-ca") {
        // Elsewhere easy-rsa refuses an external commonName.
        c.env("EASYRSA_REQ_CN", "Old VPN CA");
    }
    let o = c
        .args(args)
        .env("EASYRSA_BATCH", "1")
        .env("EASYRSA_PKI", pki)
        .env("EASYRSA_ALGO", "ec")
        .env("EASYRSA_CURVE", "prime256v1")
        .env_remove("EASYRSA_REQ_CN")
        .env_remove("EASYRSA_VARS_FILE")
        .current_dir(pki.parent().expect("the PKI folder has a parent"))
        .stdin(Stdio::null())
        .output()
        .expect("run easyrsa");
    assert!(
        o.status.success(),
        "easyrsa {args:?} failed:\n{}{}",
        s(&o.stdout),
        s(&o.stderr)
    );
}

/// A complete easy-rsa PKI at `pki`: `init-pki`, a CA "Old VPN CA" without passphrase, a
/// server `server`, the `clients`, the `revoked` ones of them revoked, and `gen-crl`.
pub fn easyrsa_pki(pki: &Path, clients: &[&str], revoked: &[&str]) {
    easyrsa(pki, &["init-pki"]);
    easyrsa(pki, &["build-ca", "nopass"]);
    easyrsa(pki, &["build-server-full", "server", "nopass"]);
    for c in clients {
        easyrsa(pki, &["build-client-full", c, "nopass"]);
    }
    for r in revoked {
        easyrsa(pki, &["revoke", r]);
    }
    easyrsa(pki, &["gen-crl"]);
}
