//! Process hardening: no core dumps, no secrets in output or files.
mod common;
use common::*;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};

/// The vpnca process is not dumpable (prctl PR_SET_DUMPABLE 0): the kernel then makes its
/// /proc/PID files owned by root instead of the process's user, which is what this observes.
/// As root, the binary runs as `nobody` (setpriv) so that the two cases differ.
#[test]
fn the_process_is_not_dumpable() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let bin = dir.path().join("vpnca");
    std::fs::copy(env!("CARGO_BIN_EXE_vpnca"), &bin).expect("copy binary");
    let root = rustix_uid_is_root();
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    // `client --batch -` reads standard input before anything else: the process waits there.
    let mut child = cmd
        .args(["--pki", "/nonexistent", "client", "--batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("setpriv (util-linux) and the vpnca binary must run");
    let environ = format!("/proc/{}/environ", child.id());
    // Wait until the process runs vpnca (not setpriv any more) and has called prctl.
    let mut owner = None;
    for _ in 0..200 {
        let exe = std::fs::read_link(format!("/proc/{}/exe", child.id())).ok();
        if exe.as_deref() == Some(bin.as_path()) {
            std::thread::sleep(std::time::Duration::from_millis(100));
            owner = std::fs::metadata(&environ).ok().map(|m| m.uid());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"name\n");
    }
    let _ = child.wait();
    assert_eq!(
        owner,
        Some(0),
        "/proc/PID/environ of a dumpable process is owned by its user; vpnca must not be dumpable"
    );
}

fn rustix_uid_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A full run (quickstart, issue, revoke, CRL, export, profile, list, log, status, verify)
/// never prints the store passphrase or any private key, and no file outside an explicit key
/// export contains them (the database holds keys only encrypted).
#[test]
fn no_secret_in_any_output_or_file() {
    let e = Env::init();
    let mut outputs = Vec::new();
    let mut run = |args: &[&str]| {
        let o = e.run(args);
        assert!(o.status.success(), "{args:?}: {}", s(&o.stderr));
        outputs.push(o.stdout);
        outputs.push(o.stderr);
    };
    run(&["ca", "--cn", "Secret Test CA"]);
    run(&["server", "vpn.example.com"]);
    run(&["client", "alice", "--email", "alice@example.com"]);
    run(&["client", "bob"]);
    run(&["--json", "client", "carol"]);
    run(&["revoke", "bob", "--reason", "keyCompromise"]);
    run(&["crl"]);
    run(&["renew", "alice"]);
    run(&["export", "alice", "--out", "pub"]);
    run(&["--json", "list"]);
    run(&["log"]);
    run(&["--json", "log"]);
    run(&["status"]);
    run(&["verify"]);
    run(&["show", "alice", "--pem"]);
    // The keys, written where we can read them (outside the scanned tree).
    let keys_dir = tempfile::tempdir().expect("tempdir");
    let mut key_bodies = Vec::new();
    for name in ["alice", "carol", "vpn.example.com"] {
        let d = keys_dir.path().join(name);
        e.ok(&["export", name, "--out", d.to_str().expect("utf-8"), "--key"]);
        let pem = std::fs::read_to_string(d.join(format!("{name}.key"))).expect("key");
        // Each 64-column base64 line of the key body is a fingerprint of key material.
        key_bodies.extend(
            pem.lines()
                .filter(|l| !l.starts_with("-----") && l.len() == 64)
                .map(str::to_owned),
        );
        let der = openssl_der(&d.join(format!("{name}.key")));
        key_bodies.push(hex(&der[der.len() - 48..]));
        outputs.push(der[der.len() - 48..].to_vec());
    }
    let ders: Vec<Vec<u8>> = outputs.split_off(outputs.len() - 3);
    let mut haystacks: Vec<(String, Vec<u8>)> = outputs
        .into_iter()
        .enumerate()
        .map(|(i, o)| (format!("output #{i}"), o))
        .collect();
    for (p, bytes) in e.snapshot() {
        haystacks.push((p.display().to_string(), bytes));
    }
    for (p, bytes) in walk(&e.path("pub")) {
        haystacks.push((p, bytes));
    }
    for (what, hay) in &haystacks {
        assert!(
            !contains(hay, PASS.as_bytes()),
            "the passphrase appears in {what}"
        );
        for b in &key_bodies {
            assert!(
                !contains(hay, b.as_bytes()),
                "key material appears in {what}"
            );
        }
        for d in &ders {
            assert!(!contains(hay, d), "raw key bytes appear in {what}");
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn openssl_der(key: &std::path::Path) -> Vec<u8> {
    let o = Command::new("openssl")
        .args(["pkey", "-outform", "DER", "-in"])
        .arg(key)
        .output()
        .expect("openssl");
    assert!(o.status.success());
    o.stdout
}

fn walk(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p.display().to_string(), b));
            }
        }
    }
    out
}
