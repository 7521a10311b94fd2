//! Data safety, one regression test per reported bug: vpnca never adopts a folder it did not
//! create as its store (an easy-rsa PKI above all), never imports an easy-rsa PKI from the
//! store itself (or a folder holding it), and never writes to, through or over a directory, a
//! device, a FIFO, a socket or a symbolic link named as an output path. Every refusal comes
//! before anything changes: exit 2, the store byte for byte as it was, the target as it was
//! (a device still the same device, a FIFO still a FIFO, a link still pointing where it did).
//!
//! The device nodes are made with `mknod` in a temporary folder (the real /dev is never
//! touched), which needs root, as in CI. Without root the tests that make one **fail**, unless
//! `VPNCA_SKIP_MOUNT_TESTS=1` says that skipping is intended ([`common::root::skip_or_fail`]).
mod common;
use common::easyrsa::{easyrsa, easyrsa_pki};
use common::*;

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// What is at a path, and how a test leaves things there
// ---------------------------------------------------------------------------------------------

/// What is at a path, in enough detail to tell that nothing touched it: the inode (a
/// replacement is a new one), a file's bytes, a directory's names and files' bytes, a link's
/// target, a device's number.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Missing,
    File {
        ino: u64,
        mode: u32,
        bytes: Vec<u8>,
    },
    Dir {
        ino: u64,
        mode: u32,
        entries: BTreeMap<String, Vec<u8>>,
    },
    Symlink {
        ino: u64,
        to: PathBuf,
    },
    CharDevice {
        ino: u64,
        rdev: u64,
    },
    Fifo {
        ino: u64,
    },
    Socket {
        ino: u64,
    },
}

fn seen(p: &Path) -> Seen {
    let Ok(m) = std::fs::symlink_metadata(p) else {
        return Seen::Missing;
    };
    let (t, ino, mode) = (m.file_type(), m.ino(), m.permissions().mode());
    if t.is_symlink() {
        Seen::Symlink {
            ino,
            to: std::fs::read_link(p).expect("readlink"),
        }
    } else if t.is_file() {
        Seen::File {
            ino,
            mode,
            bytes: std::fs::read(p).expect("read"),
        }
    } else if t.is_dir() {
        let entries = std::fs::read_dir(p)
            .expect("read_dir")
            .flatten()
            .map(|e| {
                let bytes = if e.file_type().is_ok_and(|t| t.is_file()) {
                    std::fs::read(e.path()).expect("read")
                } else {
                    Vec::new()
                };
                (e.file_name().to_string_lossy().into_owned(), bytes)
            })
            .collect();
        Seen::Dir { ino, mode, entries }
    } else if t.is_char_device() {
        Seen::CharDevice {
            ino,
            rdev: m.rdev(),
        }
    } else if t.is_fifo() {
        Seen::Fifo { ino }
    } else if t.is_socket() {
        Seen::Socket { ino }
    } else {
        panic!("{}: an unexpected kind of file", p.display())
    }
}

/// Whether this process may make device nodes; if not, the test fails unless
/// `VPNCA_SKIP_MOUNT_TESTS=1` (then the device cases are left out, and the skip recorded).
fn can_mknod(dir: &Path) -> bool {
    let probe = dir.join("mknod-probe");
    let o = Command::new("mknod")
        .arg(&probe)
        .args(["c", "1", "3"])
        .output();
    match o {
        Ok(o) if o.status.success() => {
            std::fs::remove_file(&probe).expect("rm probe");
            true
        }
        Ok(o) => {
            common::root::skip_or_fail(
                "tests/data_safety.rs",
                &format!(
                    "this test makes a device node with mknod (needs root): {}",
                    s(&o.stderr).trim()
                ),
            );
            false
        }
        Err(err) => {
            common::root::skip_or_fail(
                "tests/data_safety.rs",
                &format!("no `mknod` command: {err}"),
            );
            false
        }
    }
}

/// What a command is given as its output path, and what must be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bad {
    /// A directory (holding a file) where a file is expected.
    Dir,
    /// A regular file where a directory, or a new file, is expected.
    File,
    /// A character device (1:3, the null device's number, made in the test folder).
    CharDevice,
    /// A FIFO.
    Fifo,
    /// A Unix socket.
    Socket,
    /// A symbolic link to a regular file (a directory for directory outputs): never written
    /// through, never replaced.
    Symlink,
    /// A path whose directory does not exist.
    MissingParent,
    /// A path below a regular file.
    ParentIsFile,
}

const FILE_KINDS: &[Bad] = &[
    Bad::Dir,
    Bad::CharDevice,
    Bad::Fifo,
    Bad::Socket,
    Bad::Symlink,
    Bad::MissingParent,
    Bad::ParentIsFile,
];
const DIR_KINDS: &[Bad] = &[
    Bad::File,
    Bad::CharDevice,
    Bad::Fifo,
    Bad::Socket,
    Bad::Symlink,
    Bad::ParentIsFile,
];

impl Bad {
    /// What the error must say about it.
    fn said(self, dir_output: bool) -> &'static str {
        match self {
            Bad::Dir => "it is a directory",
            Bad::File if dir_output => "it is a file, not a directory",
            Bad::File => "exists already",
            Bad::CharDevice => "a character device",
            Bad::Fifo => "a FIFO",
            Bad::Socket => "a socket",
            Bad::Symlink => "a symbolic link",
            Bad::MissingParent => "does not exist",
            Bad::ParentIsFile => "not a directory",
        }
    }

    /// Makes it under `<tmp>/targets/`: returns the path to give and every path to watch.
    fn plant(self, e: &Env, tag: &str, dir_output: bool) -> (PathBuf, Vec<PathBuf>) {
        let base = e.path("targets");
        std::fs::create_dir_all(&base).expect("mkdir targets");
        let p = base.join(format!("{tag}-{self:?}"));
        let mut watch = vec![p.clone()];
        match self {
            Bad::Dir => {
                std::fs::create_dir(&p).expect("mkdir");
                std::fs::write(p.join("keep"), "keep me\n").expect("write");
            }
            Bad::File => std::fs::write(&p, "a file of the user's\n").expect("write"),
            Bad::CharDevice => {
                let o = Command::new("mknod")
                    .arg(&p)
                    .args(["c", "1", "3"])
                    .output()
                    .expect("run mknod");
                assert!(o.status.success(), "mknod: {}", s(&o.stderr));
            }
            Bad::Fifo => {
                let o = Command::new("mkfifo").arg(&p).output().expect("mkfifo");
                assert!(o.status.success(), "mkfifo: {}", s(&o.stderr));
            }
            Bad::Socket => {
                // The listener is dropped; the socket file stays.
                std::os::unix::net::UnixListener::bind(&p).expect("bind a socket");
            }
            Bad::Symlink => {
                let victim = base.join(format!("{tag}-victim"));
                if dir_output {
                    std::fs::create_dir(&victim).expect("mkdir victim");
                    std::fs::write(victim.join("keep"), "keep me\n").expect("write");
                } else {
                    std::fs::write(&victim, "the file the link points to\n").expect("write");
                }
                std::os::unix::fs::symlink(&victim, &p).expect("symlink");
                watch.push(victim);
            }
            Bad::MissingParent => {
                watch = vec![p.clone()];
                return (p.join("sub/out"), watch);
            }
            Bad::ParentIsFile => {
                std::fs::write(&p, "a file, not a folder\n").expect("write");
                return (p.join("out"), watch);
            }
        }
        (p, watch)
    }
}

/// Runs `vpnca ARGS` (with or without the store passphrase) and waits at most 60 s: a FIFO
/// opened by mistake would block forever.
fn run_limited(e: &Env, args: &[&str], with_passphrase: bool) -> Output {
    let mut c = e.cmd(args);
    if !with_passphrase {
        c.env_remove("VPNCA_PASSPHRASE");
    }
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vpnca");
    let t0 = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if t0.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let o = child.wait_with_output().expect("wait");
            panic!(
                "vpnca {args:?} hung (killed after 60 s):\n{}{}",
                s(&o.stdout),
                s(&o.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("wait")
}

/// `vpnca ARGS` must exit 2 with a message naming `target` and saying `said`, and leave the
/// store and every path in `watch` exactly as they were. Returns the message.
fn refused_unchanged(
    e: &Env,
    args: &[&str],
    target: &Path,
    watch: &[PathBuf],
    said: &str,
    with_passphrase: bool,
) -> String {
    let store = e.snapshot();
    let before: Vec<Seen> = watch.iter().map(|p| seen(p)).collect();
    let err = expect_code(args, run_limited(e, args, with_passphrase), 2);
    let shown = target.display().to_string();
    assert!(
        err.contains(&shown) && err.contains(said),
        "vpnca {args:?}: the message must name {shown} and say {said:?}:\n{err}"
    );
    assert_eq!(e.snapshot(), store, "vpnca {args:?} changed the store");
    for (p, b) in watch.iter().zip(&before) {
        assert_eq!(&seen(p), b, "vpnca {args:?} changed {}", p.display());
    }
    err
}

/// Gives every bad target of `kinds` to the command `args(TARGET)`: each is refused, exit 2,
/// nothing changed. Then once more for the first kind without the store passphrase: the path
/// is checked before the passphrase is even asked for, so also before any change.
fn refuses_every_bad_target(
    e: &Env,
    tag: &str,
    kinds: &[Bad],
    dir_output: bool,
    args: impl Fn(&str) -> Vec<String>,
) {
    let devices = can_mknod(e.dir.path());
    for &kind in kinds {
        if kind == Bad::CharDevice && !devices {
            continue;
        }
        let (target, watch) = kind.plant(e, tag, dir_output);
        let a = args(target.to_str().expect("utf-8"));
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        refused_unchanged(e, &a, &target, &watch, kind.said(dir_output), true);
    }
    let (target, watch) = kinds[0].plant(e, &format!("{tag}-nopass"), dir_output);
    let a = args(target.to_str().expect("utf-8"));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    refused_unchanged(e, &a, &target, &watch, kinds[0].said(dir_output), false);
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Gives the command `args(DIR)` a new folder DIR (`<tmp>/handover`) holding a FIFO named
/// `name`, where the command would write a file of that name: it is refused, naming the FIFO
/// as a FIFO, with the store, the folder and the FIFO unchanged.
fn refuses_a_fifo_in_the_out_dir(e: &Env, name: &str, args: impl Fn(&str) -> Vec<String>) {
    let dir = e.path("handover");
    std::fs::create_dir(&dir).expect("mkdir");
    let fifo = dir.join(name);
    let o = Command::new("mkfifo").arg(&fifo).output().expect("mkfifo");
    assert!(o.status.success(), "mkfifo: {}", s(&o.stderr));
    let a = args(dir.to_str().expect("utf-8"));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let watch = [dir.clone(), fifo.clone()];
    refused_unchanged(e, &a, &fifo, &watch, "a FIFO", true);
}

/// A store with a CA and the client alice.
fn with_alice() -> Env {
    let e = Env::with_ca();
    e.ok(&["client", "alice", "--algo", "p256"]);
    e
}

// ---------------------------------------------------------------------------------------------
// 1. init never adopts a folder it did not create; import-easyrsa never reads the store
// ---------------------------------------------------------------------------------------------

/// In an easy-rsa folder, `vpnca init; vpnca ca` overwrote easy-rsa's `pki/ca.crt` (and
/// `import-easyrsa pki` then rewrote its crl.pem and issued/). Now `init` and `quickstart`
/// refuse the easy-rsa PKI (a complete one made by the real easy-rsa, and a new one right after
/// `init-pki`) with exit 2, say what it is and how to import it, and leave every byte and the
/// folder's mode as they were; `ca` finds no store. The suggested commands then work, and the
/// import only reads the easy-rsa folder.
///
/// Fails when: `Store::check_new_dir` accepts any folder (the store is created in the easy-rsa
/// PKI); `easyrsa::recognize` finds nothing (the message is the generic "not empty" one).
#[test]
fn init_refuses_an_easy_rsa_pki_and_says_how_to_import_it() {
    let e = Env::new();
    easyrsa_pki(&e.pki, &["alice", "bob"], &["bob"]);
    let mode = std::fs::metadata(&e.pki)
        .expect("stat")
        .permissions()
        .mode();
    let before = e.snapshot();
    assert!(before.contains_key(&e.pki.join("ca.crt")), "{before:?}");
    let pki = e.pki.to_str().expect("utf-8");

    for args in [
        &["init", "--kdf-memory-mib", "8", "--kdf-time", "1"][..],
        &[
            "quickstart",
            "--server",
            "vpn.example.com",
            "--kdf-memory-mib",
            "8",
        ],
    ] {
        let err = e.fails(args, 2);
        for want in [
            pki,
            "easy-rsa PKI",
            "index.txt",
            "private/ca.key",
            "issued/",
            "serial",
            &format!("vpnca --pki NEWDIR init && vpnca --pki NEWDIR import-easyrsa {pki}"),
        ] {
            assert!(err.contains(want), "{args:?}: no {want:?} in:\n{err}");
        }
        assert_eq!(e.snapshot(), before, "{args:?} changed the easy-rsa PKI");
    }
    let err = e.fails(&["ca", "--cn", "New CA"], 2);
    assert!(err.contains("no vpnca store"), "{err}");
    assert_eq!(e.snapshot(), before, "ca changed the easy-rsa PKI");
    let after = std::fs::metadata(&e.pki)
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(after, mode, "the easy-rsa folder's mode changed");

    // The way the message shows.
    let new = Env::new();
    new.ok(&["init", "--kdf-memory-mib", "8", "--kdf-time", "1"]);
    new.ok(&["import-easyrsa", pki]);
    assert_eq!(
        new.json(&["show", "alice"])["status"],
        "valid",
        "the import worked"
    );
    assert_eq!(
        e.snapshot(),
        before,
        "the import wrote into the easy-rsa PKI"
    );

    // A new easy-rsa PKI (init-pki, no CA yet) is one too.
    let fresh = Env::new();
    easyrsa(&fresh.pki, &["init-pki"]);
    let before = fresh.snapshot();
    let err = fresh.fails(&["init", "--kdf-memory-mib", "8", "--kdf-time", "1"], 2);
    assert!(
        err.contains("easy-rsa PKI") && err.contains("openssl-easyrsa.cnf"),
        "{err}"
    );
    assert_eq!(fresh.snapshot(), before);
}

/// `init` refuses a folder holding anything it did not create (a dot-file is enough), and a
/// path that is a file, with exit 2 and nothing written. An empty existing folder is taken and
/// set to mode 0700 (docs/commands-store.md); so is one holding only what an interrupted `init`
/// leaves (`.vpnca.db.init-…`).
///
/// Fails when: `Store::check_new_dir` accepts a non-empty folder (a store is made beside the
/// user's files); it does not skip `.vpnca.db.init-…` (the interrupted folder is refused).
#[test]
fn init_takes_only_a_new_or_empty_folder() {
    let init = ["init", "--kdf-memory-mib", "8", "--kdf-time", "1"];
    let e = Env::new();
    std::fs::create_dir(&e.pki).expect("mkdir");
    std::fs::write(e.pki.join(".notes"), "mine\n").expect("write");
    let before = seen(&e.pki);
    let err = e.fails(&init, 2);
    assert!(
        err.contains("is not empty") && err.contains(".notes"),
        "{err}"
    );
    assert_eq!(seen(&e.pki), before);
    let err = e.fails(&["quickstart", "--server", "vpn.example.com"], 2);
    assert!(err.contains("is not empty"), "{err}");
    assert_eq!(seen(&e.pki), before);

    let f = Env::new();
    std::fs::write(&f.pki, "a file\n").expect("write");
    let err = f.fails(&init, 2);
    assert!(err.contains("not a directory"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&f.pki).expect("read"),
        "a file\n",
        "the file was changed"
    );

    let g = Env::new();
    std::fs::create_dir(&g.pki).expect("mkdir");
    std::fs::set_permissions(&g.pki, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    g.ok(&init);
    let mode = std::fs::metadata(&g.pki)
        .expect("stat")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "an existing empty folder is made 0700");
    g.ok(&["verify"]);

    let h = Env::new();
    std::fs::create_dir(&h.pki).expect("mkdir");
    std::fs::write(h.pki.join(".vpnca.db.init-0123456789ab"), "").expect("write");
    h.ok(&init);
    h.ok(&["verify"]);
}

/// `vpnca init; vpnca import-easyrsa pki` imported the store into itself and then advised
/// deleting it. Now `import-easyrsa` (also `--dry-run`) refuses a source that is the store
/// (also through a symbolic link), lies inside it, or holds it: exit 2, naming both, with the
/// store and the source byte for byte as they were.
///
/// Fails when: `easyrsa::check_apart` accepts every source (the dry runs pass, the import
/// reads the store); it compares the paths as given, not canonicalized (the link passes).
#[test]
fn import_easyrsa_refuses_a_source_that_is_in_or_around_the_store() {
    let old = tempfile::tempdir().expect("tempdir");
    let er = old.path().join("pki");
    easyrsa_pki(&er, &["alice"], &[]);
    let copy = |to: &Path| {
        let o = Command::new("cp")
            .arg("-a")
            .arg(er.join("."))
            .arg(to)
            .output()
            .expect("cp");
        assert!(o.status.success(), "cp: {}", s(&o.stderr));
    };
    let init = ["init", "--kdf-memory-mib", "8", "--kdf-time", "1"];

    // The store holds the easy-rsa files (moved in after init): the source is the store.
    let same = Env::init();
    copy(&same.pki);
    std::os::unix::fs::symlink(&same.pki, same.path("link")).expect("symlink");
    // The store is inside the easy-rsa folder.
    let inside = Env::new();
    copy(&inside.path("er"));
    let inside = Env {
        pki: inside.path("er/store"),
        ..inside
    };
    inside.ok(&init);
    // The easy-rsa folder is inside the store.
    let around = Env::init();
    std::fs::create_dir(around.pki.join("old")).expect("mkdir");
    copy(&around.pki.join("old"));

    let cases = [
        (&same, same.pki.clone(), " is the vpnca store"),
        (&same, same.path("link"), " is the vpnca store"),
        (&inside, inside.path("er"), " holds the vpnca store"),
        (
            &around,
            around.pki.join("old"),
            " is inside the vpnca store",
        ),
    ];
    for (e, src, relation) in cases {
        let src_s = src.to_str().expect("utf-8");
        for dry in [true, false] {
            let mut args = vec!["import-easyrsa", src_s];
            if dry {
                args.push("--dry-run");
            }
            let store = e.snapshot();
            let source = snapshot_of(&src);
            let err = e.fails(&args, 2);
            assert!(
                err.contains(src_s)
                    && err.contains(relation)
                    && err.contains(e.pki.to_str().expect("utf-8")),
                "{args:?}: {err}"
            );
            assert_eq!(e.snapshot(), store, "{args:?} changed the store");
            assert_eq!(snapshot_of(&src), source, "{args:?} changed the source");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Output paths: never a directory, device, FIFO, socket or symbolic link; checked first
// ---------------------------------------------------------------------------------------------

/// `crl --out adir` committed CRL #N and rewrote crl.pem, then failed with exit 2; `crl --out`
/// on a device node, a FIFO or a symbolic link replaced it with a regular file. Now every such
/// target (and a missing or non-directory parent) is refused before the CRL is made; a regular
/// file is still replaced.
///
/// Fails when: the `public_out` check in src/cli/revocation.rs is left out (the CRL is
/// committed, and the device, FIFO and link are replaced by files).
#[test]
fn crl_out_refuses_every_target_but_a_regular_file() {
    let e = Env::with_ca();
    refuses_every_bad_target(&e, "crl", FILE_KINDS, false, |t| {
        strings(&["crl", "--out", t])
    });
    let ok = e.path("crl-copy.pem");
    std::fs::write(&ok, "old\n").expect("write");
    e.ok(&["crl", "--out", ok.to_str().expect("utf-8")]);
    assert_eq!(
        std::fs::read(&ok).expect("read"),
        std::fs::read(e.pki.join("crl.pem")).expect("read")
    );
}

/// `crl --out -` writes the CRL, and only the CRL, to standard output (the same bytes as
/// pki/crl.pem, verified by openssl); the report goes to standard error. With `--json`, which
/// prints its report on standard output too, it is refused before the CRL is made.
///
/// Fails when: `-` is taken as a file name (a file `-` appears, stdout holds the report);
/// `public_out` does not refuse `-` with `--json` (exit 0, JSON and PEM mixed).
#[test]
fn crl_out_dash_writes_the_crl_to_standard_output() {
    let e = with_alice();
    e.ok(&["revoke", "alice"]);
    let before = e.snapshot();
    let err = e.fails(&["--json", "crl", "--out", "-"], 2);
    assert!(err.contains("--json"), "{err}");
    assert_eq!(e.snapshot(), before, "a refused --out - changed the store");

    let o = e.run(&["crl", "--out", "-"]);
    let out = expect_ok(&["crl", "--out", "-"], o.clone());
    assert_eq!(
        out.as_bytes(),
        std::fs::read(e.pki.join("crl.pem")).expect("read"),
        "stdout is the CRL"
    );
    assert!(s(&o.stderr).contains("standard output"), "{}", s(&o.stderr));
    assert!(!e.path("-").exists(), "a file named - was written");
    std::fs::write(e.path("stdout.pem"), &out).expect("write");
    let text = crl_verified_text(e.dir.path(), "stdout.pem", "pki/ca.crt");
    assert!(text.contains("Serial Number"), "{text}");
}

/// `ca --sub-ca --csr-out FILE` recorded the pending request (its key) and then failed on a
/// path that could not be written. Now every bad FILE (an existing file too: it is never
/// overwritten) is refused before the request is recorded. `--csr-out -` prints the request
/// alone on standard output (openssl verifies its signature).
///
/// Fails when: the `public_out` check in src/cli/certificates.rs `ca` is left out (the pending
/// request is recorded before the write fails).
#[test]
fn ca_csr_out_refuses_every_target_but_a_new_file() {
    let e = Env::init();
    let mut kinds = FILE_KINDS.to_vec();
    kinds.push(Bad::File);
    refuses_every_bad_target(&e, "csr", &kinds, false, |t| {
        strings(&["ca", "--sub-ca", "--csr-out", t, "--cn", "Sub CA"])
    });
    let csr = e.ok(&["ca", "--sub-ca", "--csr-out", "-", "--cn", "Sub CA"]);
    assert!(
        csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----")
            && csr
                .trim_end()
                .ends_with("-----END CERTIFICATE REQUEST-----"),
        "{csr}"
    );
    std::fs::write(e.path("sub.csr"), &csr).expect("write");
    let o = openssl(
        &["req", "-in", "sub.csr", "-verify", "-noout"],
        e.dir.path(),
    );
    assert!(
        o.status.success() && s(&o.stderr).contains("verify OK"),
        "{}",
        s(&o.stderr)
    );
}

/// `export NAME --out DIR`: DIR must be a directory or nothing yet (then it is created); a
/// file, device, FIFO, socket, a symbolic link (even to a directory: never written through) or
/// a file above it is refused before anything is decrypted. A FIFO in a good DIR where a file
/// will go is named as a FIFO.
///
/// Fails when: the `check_output` of DIR in src/cli/certificates.rs `export` is left out (a
/// file at DIR is named only as the parent of DIR/alice.crt; seen by hand: the key is written
/// through a link DIR into the directory it points to); `write_new_files` (src/export.rs)
/// checks only whether something exists ("exists already" for the FIFO).
#[test]
fn export_out_refuses_every_target_but_a_directory() {
    let e = with_alice();
    refuses_every_bad_target(&e, "export", DIR_KINDS, true, |t| {
        strings(&["export", "alice", "--out", t, "--key"])
    });
    refuses_a_fifo_in_the_out_dir(&e, "alice.crt", |d| {
        strings(&["export", "alice", "--out", d, "--key"])
    });
}

/// `profile NAME --out FILE`: FILE is created new (missing directories above it are created,
/// as documented), so anything at FILE, and a file above it, is refused before the key is
/// decrypted.
///
/// Fails when: the `check_output` in src/cli/delivery.rs is left out (without the passphrase
/// the command stops at the passphrase, not at the path: the check came after it).
#[test]
fn profile_out_refuses_every_target_but_a_new_file() {
    let e = with_alice();
    let mut kinds = vec![Bad::File];
    kinds.extend(FILE_KINDS.iter().filter(|k| **k != Bad::MissingParent));
    refuses_every_bad_target(&e, "profile", &kinds, false, |t| {
        strings(&[
            "profile",
            "alice",
            "--remote",
            "vpn.example.com",
            "--out",
            t,
        ])
    });
    e.ok(&[
        "profile",
        "alice",
        "--remote",
        "vpn.example.com",
        "--out",
        "new/dirs/alice.ovpn",
    ]);
    assert!(e.path("new/dirs/alice.ovpn").is_file());
}

/// `profile --batch FILE --out DIR`: DIR is refused as for `export` before any profile is
/// written.
///
/// Fails when: the `check_output` of DIR in src/cli/delivery.rs is left out (every row fails
/// on its own, nothing on standard error names DIR; seen by hand: profiles go through a link
/// DIR into the directory it points to).
#[test]
fn profile_batch_out_refuses_every_target_but_a_directory() {
    let e = with_alice();
    std::fs::write(e.path("users.csv"), "name\nalice\n").expect("write");
    refuses_every_bad_target(&e, "profiles", DIR_KINDS, true, |t| {
        strings(&[
            "profile",
            "--batch",
            "users.csv",
            "--remote",
            "vpn.example.com",
            "--out",
            t,
        ])
    });
}

/// `client --batch FILE --out DIR`: DIR is refused as for `export` before anything is issued,
/// and so is a `ca.crt` in DIR that is no regular file (a FIFO there made the batch hang
/// reading it).
///
/// Fails when: the checks in src/cli/batch.rs `client` are left out (a file at DIR gives only
/// `creating directory …: File exists`; seen by hand: users' keys go through a link DIR into
/// the directory it points to, and the batch blocks on the FIFO).
#[test]
fn client_batch_out_refuses_every_target_but_a_directory() {
    let e = Env::with_ca();
    std::fs::write(e.path("users.csv"), "name\nbob\n").expect("write");
    refuses_every_bad_target(&e, "batch", DIR_KINDS, true, |t| {
        strings(&[
            "client",
            "--batch",
            "users.csv",
            "--algo",
            "p256",
            "--out",
            t,
        ])
    });
    refuses_a_fifo_in_the_out_dir(&e, "ca.crt", |d| {
        strings(&["client", "--batch", "users.csv", "--out", d])
    });
}

/// `clientvpn profile NAME --out FILE`: refused as for `profile`, before AWS is asked (the
/// endpoint URL here answers nothing).
///
/// Fails when: the `check_output` in src/cli/aws.rs is left out (the command goes on to AWS and
/// stops there, at the missing credentials, with a message that does not name the path).
#[cfg(feature = "aws")]
#[test]
fn clientvpn_profile_out_refuses_every_target_but_a_new_file() {
    let e = with_alice();
    let mut kinds = vec![Bad::File];
    kinds.extend(FILE_KINDS.iter().filter(|k| **k != Bad::MissingParent));
    refuses_every_bad_target(&e, "cvpn", &kinds, false, |t| {
        strings(&[
            "clientvpn",
            "profile",
            "alice",
            "--endpoint",
            "cvpn-endpoint-0123456789abcdef0",
            "--region",
            "eu-west-1",
            "--endpoint-url",
            "http://127.0.0.1:9",
            "--out",
            t,
        ])
    });
}
