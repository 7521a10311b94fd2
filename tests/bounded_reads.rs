//! Issue 17: every file named as input is bounded before it is read into memory. A huge file
//! (a sparse 2 GiB one), `/dev/zero` or an endless pipe given as a passphrase file, a request,
//! a certificate, a batch, an OpenVPN configuration or a file of an easy-rsa PKI is refused
//! with exit 2, quickly, naming the file and the limit, and the store is unchanged. Every such
//! command runs under `ulimit -v` (1 GiB), so an unbounded read dies instead of passing.
//! Inputs of normal size still work under the same limit.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::easyrsa::easyrsa_pki;
use common::{Env, PASS, expect_code, fixture, s};

/// Address space allowed to every command here (KiB for `ulimit -v`): 1 GiB.
const ULIMIT_V_KIB: u32 = 1 << 20;

/// What "quickly" means for a refusal (generous: CI machines are busy).
const QUICK: Duration = Duration::from_secs(20);

/// `cmd` run by `sh` after `ulimit -v`: the same program, arguments, environment and folder.
fn under_ulimit(cmd: &Command) -> Command {
    let mut w = Command::new("sh");
    w.arg("-c")
        .arg(format!("ulimit -v {ULIMIT_V_KIB} && exec \"$@\""))
        .arg("sh")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => w.env(k, v),
            None => w.env_remove(k),
        };
    }
    if let Some(d) = cmd.get_current_dir() {
        w.current_dir(d);
    }
    w
}

/// `vpnca ARGS` under `ulimit -v`, standard input from `stdin` (else none).
fn run_limited(e: &Env, args: &[&str], stdin: Option<Stdio>) -> (Output, Duration) {
    let mut c = under_ulimit(&e.cmd(args));
    c.stdin(stdin.unwrap_or_else(Stdio::null));
    let start = Instant::now();
    let o = c.output().expect("run vpnca under ulimit");
    (o, start.elapsed())
}

/// Runs `args` under `ulimit -v` and asserts: exit 2, quickly, stderr names every one of
/// `names`, the store unchanged. Returns stderr.
fn refused(e: &Env, args: &[&str], stdin: Option<Stdio>, names: &[&str]) -> String {
    let before = e.snapshot();
    let (o, took) = run_limited(e, args, stdin);
    let err = expect_code(args, o, 2);
    assert!(took < QUICK, "{args:?} took {took:?} to be refused");
    for n in names {
        assert!(err.contains(n), "{args:?}: {n:?} not in:\n{err}");
    }
    assert!(e.snapshot() == before, "{args:?} changed the store");
    err
}

/// Runs `args` under `ulimit -v` and asserts exit 0; returns stdout.
fn works(e: &Env, args: &[&str], stdin: Option<Stdio>) -> String {
    let (o, _) = run_limited(e, args, stdin);
    common::expect_ok(args, o)
}

/// A sparse file of 2 GiB (no disk space used) at `name` in the test folder.
fn huge(e: &Env, name: &str) -> String {
    let p = e.path(name);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d).expect("mkdir");
    }
    let f = std::fs::File::create(&p).expect("create");
    f.set_len(2 << 30).expect("set_len");
    p.to_str().expect("utf-8 path").to_owned()
}

fn write(e: &Env, name: &str, bytes: &[u8]) -> String {
    let p = e.path(name);
    std::fs::write(&p, bytes).expect("write");
    p.to_str().expect("utf-8 path").to_owned()
}

/// A FIFO at `name` fed by a thread: `bytes`, then (with `endless`) zeros until the reader
/// goes away.
fn fifo(e: &Env, name: &str, bytes: Vec<u8>, endless: bool) -> String {
    let p = e.path(name);
    let o = Command::new("mkfifo").arg(&p).output().expect("mkfifo");
    assert!(o.status.success(), "mkfifo: {}", s(&o.stderr));
    let writer: PathBuf = p.clone();
    std::thread::spawn(move || {
        let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&writer) else {
            return;
        };
        if f.write_all(&bytes).is_err() || !endless {
            return;
        }
        let zeros = vec![0u8; 1 << 16];
        while f.write_all(&zeros).is_ok() {}
    });
    p.to_str().expect("utf-8 path").to_owned()
}

fn dev_zero() -> Stdio {
    Stdio::from(std::fs::File::open("/dev/zero").expect("/dev/zero"))
}

#[test]
fn passphrase_files_are_bounded_to_4_kib() {
    let e = Env::with_ca();
    let big = huge(&e, "big.pass");
    let easyrsa = e.path("old");
    std::fs::create_dir(&easyrsa).expect("mkdir");
    let easyrsa = easyrsa.to_str().expect("utf-8");
    // Fails when: read_limited reads without `take` (the 2 GiB read dies under ulimit -v), or
    // a passphrase read bypasses read_bounded_or_pipe.
    for args in [
        vec![
            "--passphrase-file",
            &big,
            "client",
            "alice",
            "--algo",
            "p256",
        ],
        vec!["passwd", "--new-passphrase-file", &big],
        vec![
            "profile",
            "nobody",
            "--remote",
            "vpn.example.com",
            "--key-passphrase-file",
            &big,
        ],
        vec!["import-easyrsa", easyrsa, "--easyrsa-passphrase-file", &big],
    ] {
        refused(
            &e,
            &args,
            None,
            &["the passphrase file", &big, "more than 4 KiB"],
        );
    }

    // An endless pipe is bounded the same way.
    let pipe = fifo(&e, "endless.pass", format!("{PASS}\n").into_bytes(), true);
    // Fails when: read_limited reads without `take` (the pipe never ends).
    refused(
        &e,
        &[
            "--passphrase-file",
            &pipe,
            "client",
            "alice",
            "--algo",
            "p256",
        ],
        None,
        &[&pipe, "more than 4 KiB"],
    );

    // /dev/zero is a device, not a file: refused before it is read.
    // Fails when: read_input lets a character device through (then it is refused by size).
    refused(
        &e,
        &[
            "--passphrase-file",
            "/dev/zero",
            "client",
            "alice",
            "--algo",
            "p256",
        ],
        None,
        &[
            "/dev/zero",
            "a character device, not a regular file or a pipe",
        ],
    );
    // So is a directory.
    refused(
        &e,
        &[
            "--passphrase-file",
            easyrsa,
            "client",
            "alice",
            "--algo",
            "p256",
        ],
        None,
        &["a directory, not a regular file"],
    );
}

#[test]
fn a_passphrase_file_of_exactly_4_kib_works_and_one_byte_more_is_refused() {
    let e = Env::with_ca();
    let mut at_limit = format!("{PASS}\n").into_bytes();
    at_limit.resize(4096, b'#');
    let ok = write(&e, "ok.pass", &at_limit);
    works(
        &e,
        &[
            "--passphrase-file",
            &ok,
            "client",
            "alice",
            "--algo",
            "p256",
        ],
        None,
    );
    at_limit.push(b'#');
    let over = write(&e, "over.pass", &at_limit);
    // Fails when: the read is cut at `max` bytes instead of `max + 1` (a longer file would be
    // silently truncated instead of refused).
    refused(
        &e,
        &[
            "--passphrase-file",
            &over,
            "client",
            "bob",
            "--algo",
            "p256",
        ],
        None,
        &[&over, "more than 4 KiB"],
    );
    // A pipe holding a passphrase works (`--passphrase-file <(pass show vpnca)`).
    let pipe = fifo(&e, "pass.fifo", format!("{PASS}\n").into_bytes(), false);
    // Fails when: read_secret_file refuses FIFOs (uses read_bounded).
    works(
        &e,
        &[
            "--passphrase-file",
            &pipe,
            "client",
            "carol",
            "--algo",
            "p256",
        ],
        None,
    );
}

#[test]
fn requests_and_certificates_are_bounded_to_1_mib() {
    let e = Env::with_ca();
    let big = huge(&e, "big.csr");
    // Fails when: sign-req reads the request with std::fs::read.
    refused(
        &e,
        &["sign-req", &big, "--type", "client"],
        None,
        &["the certificate signing request", &big, "more than 1 MiB"],
    );
    // Fails when: read_bounded accepts a character device.
    refused(
        &e,
        &["sign-req", "/dev/zero", "--type", "client"],
        None,
        &["a character device, not a regular file;"],
    );
    // A folder of requests: the huge one is named, nothing is signed.
    let dir = e.path("reqs");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::copy(fixture("csr/bob-p256.csr"), dir.join("bob.csr")).expect("copy");
    huge(&e, "reqs/huge.csr");
    // Fails when: `sign-req --batch DIR` reads each request with std::fs::read.
    refused(
        &e,
        &[
            "sign-req",
            "--batch",
            dir.to_str().expect("utf-8"),
            "--type",
            "client",
        ],
        None,
        &["huge.csr", "more than 1 MiB"],
    );
    // A request of normal size is signed.
    let bob = fixture("csr/bob-p256.csr");
    works(
        &e,
        &["sign-req", bob.to_str().expect("utf-8"), "--type", "client"],
        None,
    );

    // A sub-CA's certificate and chain.
    let f = Env::init();
    let cert = huge(&f, "sub.crt");
    let chain = write(&f, "chain.pem", b"");
    // Fails when: `ca --import-cert` reads with std::fs::read.
    refused(
        &f,
        &["ca", "--import-cert", &cert, "--chain", &chain],
        None,
        &["the certificate file", &cert, "more than 1 MiB"],
    );
    let chain = huge(&f, "chain.crt");
    let cert = write(&f, "small.crt", b"");
    refused(
        &f,
        &["ca", "--import-cert", &cert, "--chain", &chain],
        None,
        &[&chain, "more than 1 MiB"],
    );
}

#[test]
fn batches_are_bounded_to_64_mib_also_from_stdin_and_pipes() {
    let e = Env::with_ca();
    let big = huge(&e, "big.csv");
    // Fails when: read_input (src/cli/batch.rs) reads the file with std::fs::read.
    refused(
        &e,
        &["client", "--batch", &big, "--algo", "p256"],
        None,
        &["the batch file", &big, "more than 64 MiB"],
    );
    // Fails when: `--batch -` reads standard input with read_to_end.
    refused(
        &e,
        &["client", "--batch", "-", "--algo", "p256"],
        Some(dev_zero()),
        &["<stdin>", "more than 64 MiB"],
    );
    let pipe = fifo(&e, "endless.csv", b"name\nalice\n".to_vec(), true);
    // Fails when: a FIFO is read without `take`.
    refused(
        &e,
        &["revoke", "--batch", &pipe],
        None,
        &[&pipe, "more than 64 MiB"],
    );
    // Fails when: read_bounded_or_pipe lets a character device through.
    refused(
        &e,
        &["client", "--batch", "/dev/zero", "--algo", "p256"],
        None,
        &["a character device, not a regular file or a pipe"],
    );

    // Normal batches work from a file, a pipe and standard input.
    let csv = write(&e, "users.csv", b"name\nalice\n");
    works(&e, &["client", "--batch", &csv, "--algo", "p256"], None);
    let pipe = fifo(&e, "users.fifo", b"name\nbob\n".to_vec(), false);
    // Fails when: batch files are read with read_bounded (FIFOs refused: `<(cmd)` breaks).
    works(&e, &["client", "--batch", &pipe, "--algo", "p256"], None);
    let stdin = write(&e, "stdin.csv", b"name\ncarol\n");
    let stdin = Stdio::from(std::fs::File::open(stdin).expect("open"));
    works(
        &e,
        &["client", "--batch", "-", "--algo", "p256"],
        Some(stdin),
    );
    let listed = e.ok(&["list"]);
    for n in ["alice", "bob", "carol"] {
        assert!(listed.contains(n), "{n} not issued:\n{listed}");
    }
}

/// A small client configuration whose `<ca>` is the store's CA.
fn config(e: &Env) -> Vec<u8> {
    let ca = std::fs::read_to_string(e.pki.join("ca.crt")).expect("ca.crt");
    format!("client\ndev tun\nproto udp\nremote vpn.example.com 443\n<ca>\n{ca}</ca>\n")
        .into_bytes()
}

#[test]
fn openvpn_configurations_are_bounded_to_1_mib() {
    let e = Env::with_ca();
    e.ok(&["client", "alice", "--algo", "p256"]);
    let big = huge(&e, "big.ovpn");
    // Fails when: `profile --config` reads with std::fs::read.
    refused(
        &e,
        &["profile", "alice", "--config", &big],
        None,
        &["the OpenVPN configuration", &big, "more than 1 MiB"],
    );
    refused(
        &e,
        &["profile", "alice", "--config", "/dev/zero"],
        None,
        &["a character device, not a regular file;"],
    );
    let csv = write(&e, "users.csv", b"name\nbob\n");
    let out = e.path("out");
    // Fails when: `--ovpn-config` (batch) reads with std::fs::read.
    refused(
        &e,
        &[
            "client",
            "--batch",
            &csv,
            "--algo",
            "p256",
            "--ovpn-config",
            &big,
            "--out",
            out.to_str().expect("utf-8"),
        ],
        None,
        &["the OpenVPN configuration", &big, "more than 1 MiB"],
    );
    // A configuration of normal size works.
    let ok = write(&e, "endpoint.ovpn", &config(&e));
    works(&e, &["profile", "alice", "--config", &ok], None);
    assert!(e.path("alice.ovpn").is_file(), "no profile written");
}

#[test]
fn easyrsa_files_are_bounded() {
    let e = Env::init();
    let old = e.path("old/pki");
    let old_s = old.to_str().expect("utf-8");
    // index.txt (64 MiB), ca.crt and ca.key (1 MiB), crl.pem (16 MiB): each a problem.
    let cases: [(&str, &str); 4] = [
        ("index.txt", "more than 64 MiB"),
        ("ca.crt", "more than 1 MiB"),
        ("private/ca.key", "more than 1 MiB"),
        ("crl.pem", "more than 16 MiB"),
    ];
    std::fs::create_dir_all(&old).expect("mkdir");
    std::fs::write(old.join("index.txt"), b"").expect("index.txt");
    for (file, limit) in cases {
        huge(&e, &format!("old/pki/{file}"));
        // Fails when: plan() reads that file with std::fs::read.
        let err = refused(&e, &["import-easyrsa", old_s], None, &[limit]);
        assert!(
            err.lines()
                .any(|l| l.starts_with(&format!("problem: {file}: ")) && l.contains(limit)),
            "{file}: no problem line naming {limit}:\n{err}"
        );
        std::fs::remove_file(old.join(file)).expect("rm");
        std::fs::write(old.join("index.txt"), b"").expect("index.txt");
    }

    // A real easy-rsa PKI of normal size is imported under the same memory limit.
    let f = Env::init();
    let real = f.path("real/pki");
    std::fs::create_dir_all(real.parent().expect("parent")).expect("mkdir");
    easyrsa_pki(&real, &["alice"], &[]);
    works(&f, &["import-easyrsa", real.to_str().expect("utf-8")], None);
    let listed = f.ok(&["list"]);
    assert!(listed.contains("alice"), "alice not imported:\n{listed}");
}

/// An easy-rsa vars file (src/cli/easyrsa_compat/vars.rs) is bounded to 256 KiB: a huge one
/// and /dev/zero are refused before anything runs; easy-rsa's own vars.example is read.
// Fails when: vars::read uses std::fs::read (seen: killed under the ulimit instead of exit 2).
#[test]
fn easyrsa_vars_files_are_bounded_to_256_kib() {
    let e = Env::with_ca();
    let big = huge(&e, "vars-huge");
    for (vars, names) in [
        (big.as_str(), &["vars file", "256 KiB"][..]),
        ("/dev/zero", &["vars file", "/dev/zero"]),
    ] {
        let arg = format!("--vars={vars}");
        refused(
            &e,
            &[&arg, "build-client-full", "alice", "nopass"],
            None,
            names,
        );
    }
    let example = fixture("easy-rsa-3.2.6/vars.example");
    let arg = format!("--vars={}", example.to_str().expect("utf-8"));
    works(&e, &[&arg, "build-client-full", "alice", "nopass"], None);
}

/// The limits are what docs/security.md says.
#[test]
fn the_limits_are_documented() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/security.md"))
            .expect("docs/security.md");
    let section = doc
        .split("\n### Files read as input\n")
        .nth(1)
        .expect("docs/security.md has no \"### Files read as input\"");
    // Fails when: a limit is missing from that section.
    for l in ["4 KiB", "1 MiB", "64 MiB", "16 MiB", "256 KiB"] {
        assert!(section.contains(l), "docs/security.md does not name {l}");
    }
}
