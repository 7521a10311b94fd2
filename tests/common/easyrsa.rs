//! The real easy-rsa, to build the PKI folders that vpnca must recognise, import and never
//! overwrite: Debian's 3.1 at /usr/share/easy-rsa/easyrsa, or upstream 3.2.6 vendored in
//! tests/data/easy-rsa-3.2.6 (GPL-2.0 test data, run by tests only).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::s;

/// Debian's easy-rsa.
pub const EASYRSA: &str = "/usr/share/easy-rsa/easyrsa";

/// Which easy-rsa builds a test's PKI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Debian's 3.1.0 ([`EASYRSA`]): SAN `DNS:<name>` on server certificates, no `crlnumber`.
    Debian31,
    /// Upstream 3.2.6 (tests/data/easy-rsa-3.2.6): no SAN on server certificates by default,
    /// `--nopass` as a global option, `inline/` and `crl.der`.
    Upstream326,
}

impl Version {
    /// The `easyrsa` script; panics if it is missing (tests never skip silently).
    pub fn script(self) -> PathBuf {
        let p = match self {
            Version::Debian31 => PathBuf::from(EASYRSA),
            Version::Upstream326 => super::fixture("easy-rsa-3.2.6/easyrsa"),
        };
        assert!(
            p.is_file(),
            "easy-rsa is required by this test (apt-get install easy-rsa, or the vendored \
             tests/data/easy-rsa-3.2.6): {} is missing",
            p.display()
        );
        p
    }

    /// The arguments that make `build-*-full NAME` leave the key unencrypted.
    pub fn nopass_full(self, command: &str, name: &str) -> Vec<String> {
        match self {
            Version::Debian31 => vec![command.into(), name.into(), "nopass".into()],
            Version::Upstream326 => vec!["--nopass".into(), command.into(), name.into()],
        }
    }

    /// The arguments of `renew NAME`. 3.1.0 makes a new key (unencrypted with `nopass`) and
    /// moves the old certificate, key and request to `renewed/{issued,private,reqs}/`; 3.2.6
    /// re-signs the old request, so old and new certificate share `private/NAME.key`, and moves
    /// only the old certificate to `renewed/issued/` (it warns about `nopass`).
    pub fn renew(self, name: &str) -> Vec<String> {
        match self {
            Version::Debian31 => vec!["renew".into(), name.into(), "nopass".into()],
            Version::Upstream326 => vec!["renew".into(), name.into()],
        }
    }
}

/// `easyrsa ARGS` on the PKI folder `pki` in batch mode, with EC keys (fast) and no vars file;
/// panics unless it succeeds (and if easy-rsa is missing: tests never skip silently).
pub fn easyrsa(pki: &Path, args: &[&str]) {
    easyrsa_version(Version::Debian31, pki, args)
}

/// [`easyrsa`] with the easy-rsa of `version`.
pub fn easyrsa_version(version: Version, pki: &Path, args: &[&str]) {
    let mut c = Command::new(version.script());
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

/// One command line of a provisioning script: the arguments after the program name.
pub type ScriptLine<'a> = &'a [&'a str];

/// Runs `program` once per line of `script` in `dir` (the script's working folder, where
/// `./pki` and `./vars` are), with `env` added and the caller's easy-rsa and vpnca settings
/// removed; returns each line's output. Used to run the same script through the real
/// easy-rsa and through vpnca (tests/easyrsa_script.rs).
pub fn run_script(
    program: &Path,
    dir: &Path,
    env: &[(&str, &str)],
    script: &[ScriptLine<'_>],
) -> Vec<std::process::Output> {
    script
        .iter()
        .map(|args| {
            let mut c = Command::new(program);
            for (k, _) in std::env::vars_os() {
                if k.to_str()
                    .is_some_and(|k| k.starts_with("EASYRSA") || k.starts_with("VPNCA_"))
                {
                    c.env_remove(k);
                }
            }
            c.args(*args)
                .envs(env.iter().copied())
                .current_dir(dir)
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("run {} {args:?}: {e}", program.display()))
        })
        .collect()
}
