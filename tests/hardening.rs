//! Process hardening: no core dumps, no secrets in output or files.
mod common;
use common::*;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};

/// The vpnca process is not dumpable (prctl PR_SET_DUMPABLE 0): the kernel then makes its
/// /proc/PID files owned by root instead of the process's user, which is what this observes on
/// a running vpnca process, for /proc/PID/status and /proc/PID/environ (the one holding
/// `VPNCA_PASSPHRASE`). /proc/PID/status also says which user the process runs as: as root,
/// the binary runs as `nobody` (setpriv) so that the two cases differ, and the `Uid:` line
/// proves the switch happened.
///
/// Fails when: the `set_dumpable_behavior(NotDumpable)` call in src/main.rs was commented out
/// (seen: /proc/PID/status owned by 65534).
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
    let proc_dir = format!("/proc/{}", child.id());
    let owner = |f: &str| {
        std::fs::metadata(format!("{proc_dir}/{f}"))
            .ok()
            .map(|m| m.uid())
    };
    // Wait until the process runs vpnca (not setpriv any more) and has called prctl.
    let mut seen = None;
    for _ in 0..200 {
        let exe = std::fs::read_link(format!("{proc_dir}/exe")).ok();
        if exe.as_deref() == Some(bin.as_path()) {
            std::thread::sleep(std::time::Duration::from_millis(100));
            let status = std::fs::read_to_string(format!("{proc_dir}/status")).ok();
            seen = Some((owner("status"), owner("environ"), status));
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"name\n");
    }
    let _ = child.wait();
    let (status_owner, environ_owner, status) = seen.expect("vpnca never ran");
    let status = status.expect("/proc/PID/status of the running vpnca");
    let uid: Vec<&str> = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .expect("a Uid: line")
        .split_whitespace()
        .collect();
    let expected_uid = if root {
        "65534".to_string()
    } else {
        std::fs::metadata("/proc/self")
            .map(|m| m.uid().to_string())
            .expect("own uid")
    };
    assert_eq!(
        uid[0], expected_uid,
        "vpnca does not run as the user the test meant:\n{status}"
    );
    assert_eq!(
        status_owner,
        Some(0),
        "/proc/PID/status of a dumpable process is owned by its user; vpnca must not be dumpable"
    );
    assert_eq!(
        environ_owner,
        Some(0),
        "/proc/PID/environ of a dumpable process is owned by its user; vpnca must not be dumpable"
    );
}

fn rustix_uid_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A full run (quickstart, issue, revoke, CRL, renew, export, profile, list, show, log, status,
/// verify) never prints a secret, and no file outside the explicit key exports (`export --key`,
/// `profile`) contains one. The secrets searched, in every stdout, every stderr and every file
/// under the test's directory (the store included):
/// - the store passphrase;
/// - every private key the store holds (the CA's, the server's, the clients', the revoked and
///   the superseded ones), each decrypted here from `vpnca.db` as docs/store-format.md
///   describes, so none is missed: its PKCS#8 DER, and each secret component (RSA private
///   exponent, primes and CRT values; EC or Ed25519 private key) as raw bytes, hex (lower,
///   upper, colon-separated) and base64 at each of the 3 byte alignments (so a PEM body of any
///   key format is caught, with line breaks ignored);
/// - the data key and the keys derived from it (key-encryption key, encryption key, MAC key),
///   in the same forms.
///
/// The explicit exports are the positive control: the same search finds carol's key in
/// `keys/carol.key` and dave's in `dave.ovpn`.
///
/// Fails when: the `keys` export directory was not excluded from the scan (seen: "key material
/// of carol ... appears in .../keys/carol.key"), and when the test wrote the data key's base64
/// into `pki/notes.txt` (seen: "the data key ... appears in .../pki/notes.txt").
#[test]
fn no_secret_in_any_output_or_file() {
    let e = Env::new();
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut run = |args: &[&str]| {
        let o = e.run(args);
        assert!(o.status.success(), "{args:?}: {}", s(&o.stderr));
        outputs.push((format!("stdout of {args:?}"), o.stdout));
        outputs.push((format!("stderr of {args:?}"), o.stderr));
    };
    run(&[
        "quickstart",
        "--server",
        "vpn.example.com",
        "--client",
        "dave",
        "--kdf-memory-mib",
        "8",
        "--kdf-time",
        "1",
    ]);
    run(&["client", "alice", "--email", "alice@example.com"]);
    run(&["client", "bob", "--algo", "p256"]);
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
    // The explicit key exports: their output is searched, their files are the control.
    run(&["export", "carol", "--out", "keys", "--key"]);
    run(&[
        "profile",
        "dave",
        "--remote",
        "vpn.example.com",
        "--out",
        "dave.ovpn",
    ]);
    let explicit = [e.path("keys"), e.path("dave.ovpn")];

    let store = StoreSecrets::read(&e);
    let names: Vec<&str> = store.keys.iter().map(|k| k.name.as_str()).collect();
    // Every certificate with a key: CA, server, dave, alice (old and renewed), bob, carol.
    assert_eq!(
        store.keys.len(),
        7,
        "keys decrypted from the store: {names:?}"
    );
    for want in ["vpn.example.com", "dave", "alice", "bob", "carol"] {
        assert!(names.contains(&want), "no key of {want} in {names:?}");
    }

    let mut secrets: Vec<(String, Vec<Vec<u8>>)> =
        vec![("the passphrase".to_string(), vec![PASS.as_bytes().to_vec()])];
    for (what, k) in &store.derived {
        secrets.push((format!("the {what}"), forms(&[k.to_vec()])));
    }
    for k in &store.keys {
        let mut parts = vec![k.der.clone()];
        parts.extend(k.components.iter().cloned());
        secrets.push((
            format!("key material of {} (serial {})", k.name, k.serial),
            forms(&parts),
        ));
    }

    let mut haystacks = outputs;
    for (p, bytes) in walk(e.dir.path()) {
        if !explicit.iter().any(|x| p.starts_with(x)) {
            haystacks.push((p.display().to_string(), bytes));
        }
    }
    assert!(
        haystacks.iter().any(|(p, _)| p.ends_with("vpnca.db")),
        "the store was not scanned"
    );
    for (where_, hay) in &haystacks {
        let flat: Vec<u8> = hay
            .iter()
            .copied()
            .filter(|b| *b != b'\n' && *b != b'\r')
            .collect();
        for (what, needles) in &secrets {
            assert!(
                !needles
                    .iter()
                    .any(|n| contains(hay, n) || contains(&flat, n)),
                "{what} appears in {where_}"
            );
        }
    }

    // Positive control: the search does find a key where one is meant to be.
    for (file, name) in [
        (e.path("keys/carol.key"), "carol"),
        (e.path("dave.ovpn"), "dave"),
    ] {
        let hay = std::fs::read(&file).expect("explicit export");
        let flat: Vec<u8> = hay
            .iter()
            .copied()
            .filter(|b| *b != b'\n' && *b != b'\r')
            .collect();
        let (_, needles) = secrets
            .iter()
            .find(|(w, _)| w.starts_with(&format!("key material of {name} ")))
            .expect("the key is among the secrets");
        assert!(
            needles.iter().any(|n| contains(&flat, n)),
            "the search does not find {name}'s key in {}",
            file.display()
        );
    }
}

/// One private key of the store, decrypted.
struct StoredKey {
    name: String,
    serial: String,
    /// PKCS#8 DER.
    der: Vec<u8>,
    /// The secret components, as openssl prints them (leading zero bytes removed).
    components: Vec<Vec<u8>>,
}

/// The secrets of a store, recovered with the passphrase as docs/store-format.md describes
/// (independently of vpnca's code): Argon2id key-encryption key, AES-256-GCM-wrapped data key,
/// HMAC-SHA-256 sub-keys, AES-256-GCM key blobs.
struct StoreSecrets {
    derived: Vec<(&'static str, [u8; 32])>,
    keys: Vec<StoredKey>,
}

impl StoreSecrets {
    fn read(e: &Env) -> StoreSecrets {
        use aws_lc_rs::{digest, hmac};
        let conn = rusqlite::Connection::open_with_flags(
            e.pki.join("vpnca.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open vpnca.db");
        let header: String = conn
            .query_row("SELECT v FROM meta WHERE k = 'header'", [], |r| r.get(0))
            .expect("header");
        let h: serde_json::Value = serde_json::from_str(&header).expect("header JSON");
        assert_eq!(h["kdf_algorithm"], "argon2id");
        assert_eq!(h["aead"], "aes-256-gcm");
        let num = |k: &str| u32::try_from(h["kdf"][k].as_u64().expect("kdf")).expect("u32");
        let (m, t, p) = (num("m_kib"), num("t"), num("p"));
        let salt_hex = h["salt"].as_str().expect("salt");
        let mut kek = [0u8; 32];
        argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(m, t, p, Some(32)).expect("argon2 params"),
        )
        .hash_password_into(PASS.as_bytes(), &unhex(salt_hex), &mut kek)
        .expect("argon2");
        // Bound to format 2 (docs/store-format.md): every header vpnca writes now.
        let aad = format!("vpnca/wrap/v2|format>=2|argon2id|{m}|{t}|{p}|{salt_hex}");
        let dk = gcm_open(
            &kek,
            aad.as_bytes(),
            &unhex(h["wrapped_key"].as_str().expect("wrapped_key")),
        );
        let dk: [u8; 32] = dk.try_into().expect("a 32-byte data key");
        let sub = |label: &[u8]| -> [u8; 32] {
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &dk), label);
            tag.as_ref().try_into().expect("32 bytes")
        };
        let enc = sub(b"vpnca/v1/encryption-key");
        let derived = vec![
            ("data key", dk),
            ("key-encryption key", kek),
            ("encryption key", enc),
            ("MAC key", sub(b"vpnca/v1/mac-key")),
        ];

        let mut st = conn
            .prepare("SELECT name, serial, cert_der, key_blob FROM certs WHERE key_blob IS NOT NULL ORDER BY id")
            .expect("select keys");
        let rows: Vec<(String, String, Vec<u8>, Vec<u8>)> = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .expect("keys")
            .map(|r| r.expect("row"))
            .collect();
        let tmp = tempfile::tempdir().expect("tempdir");
        let keys = rows
            .into_iter()
            .map(|(name, serial, cert, blob)| {
                let cert_hash = hex(digest::digest(&digest::SHA256, &cert).as_ref());
                let aad = format!("vpnca/key/v1|{serial}|{cert_hash}");
                let der = gcm_open(&enc, aad.as_bytes(), &blob);
                // The decrypted key is the certificate's: same public key, says openssl.
                let (kf, cf) = (tmp.path().join("k.der"), tmp.path().join("c.der"));
                std::fs::write(&kf, &der).expect("write");
                std::fs::write(&cf, &cert).expect("write");
                let (kf, cf) = (kf.to_str().expect("utf-8"), cf.to_str().expect("utf-8"));
                let from_key = openssl_ok(
                    &["pkey", "-inform", "DER", "-in", kf, "-pubout"],
                    tmp.path(),
                );
                let from_cert = openssl_ok(
                    &["x509", "-inform", "DER", "-in", cf, "-noout", "-pubkey"],
                    tmp.path(),
                );
                assert_eq!(
                    from_key, from_cert,
                    "{name}: the decrypted key is not the certificate's"
                );
                let text = openssl_ok(
                    &["pkey", "-inform", "DER", "-in", kf, "-noout", "-text"],
                    tmp.path(),
                );
                let components = secret_components(&text);
                assert!(
                    !components.is_empty(),
                    "{name}: no private component in:\n{text}"
                );
                StoredKey {
                    name,
                    serial,
                    der,
                    components,
                }
            })
            .collect();
        StoreSecrets { derived, keys }
    }
}

fn gcm_open(key: &[u8; 32], aad: &[u8], blob: &[u8]) -> Vec<u8> {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("key"));
    let nonce = Nonce::try_assume_unique_for_key(&blob[..12]).expect("nonce");
    let mut buf = blob[12..].to_vec();
    let n = k
        .open_in_place(nonce, Aad::from(aad), &mut buf)
        .expect("AES-256-GCM open (docs/store-format.md)")
        .len();
    buf.truncate(n);
    buf
}

/// The private parts of `openssl pkey -text`: RSA privateExponent, prime1, prime2,
/// exponent1, exponent2, coefficient; EC and Ed25519 `priv`.
fn secret_components(text: &str) -> Vec<Vec<u8>> {
    const SECRET: [&str; 7] = [
        "privateExponent:",
        "prime1:",
        "prime2:",
        "exponent1:",
        "exponent2:",
        "coefficient:",
        "priv:",
    ];
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        if !SECRET.contains(&l.trim()) {
            continue;
        }
        let mut bytes = Vec::new();
        while let Some(next) = lines.peek() {
            let hexline = next.trim().trim_end_matches(':');
            if !next.starts_with(' ') || hexline.is_empty() {
                break;
            }
            let Some(b) = hexline
                .split(':')
                .map(|x| u8::from_str_radix(x, 16).ok())
                .collect::<Option<Vec<u8>>>()
            else {
                break;
            };
            bytes.extend(b);
            lines.next();
        }
        let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        out.push(bytes[first..].to_vec());
    }
    out
}

/// A secret in the forms it could leak in: raw, hex (lower, upper, colon-separated), and
/// base64 at each byte alignment (only the characters that do not depend on the neighbours).
fn forms(parts: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for p in parts {
        out.push(p.clone());
        let h = hex(p);
        out.push(h.to_ascii_uppercase().into_bytes());
        let colons: Vec<String> = p.iter().map(|b| format!("{b:02x}")).collect();
        out.push(colons.join(":").into_bytes());
        out.push(h.into_bytes());
        for skip in 0..3 {
            let rest = &p[skip.min(p.len())..];
            let whole = rest.len() / 3 * 3;
            if whole >= 12 {
                out.push(base64(&rest[..whole]).into_bytes());
            }
        }
    }
    out
}

fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(b.len() / 3 * 4);
    for c in b.chunks_exact(3) {
        let n = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
        for shift in [18, 12, 6, 0] {
            s.push(char::from(A[((n >> shift) & 63) as usize]));
        }
    }
    s
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Every file under `dir` with its bytes.
fn walk(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else if let Ok(b) = std::fs::read(&p) {
                out.push((p, b));
            }
        }
    }
    out
}

/// Issue 17, "audit beyond the store": with `log --syslog SOCKET` (a store setting, audited)
/// every write sends its new audit entries — sequence number and MAC included — to the syslog
/// socket right after its commit, so a tail cut from the store's log still exists elsewhere.
/// The test listens on the socket itself: each entry arrives once, in order, as JSON equal to
/// the row (`sqlite3` reads the MAC). Switching it off by an edit of the file is refused like
/// any edited setting; a socket that stops answering turns into a warning naming the entries
/// not sent (the change itself is committed); `--no-syslog` stops it (audited).
///
/// Fails when: `Store::forward_audit` is not called after the commit (seen: nothing arrived),
/// and when the setting is not an item of the state (the SQL edit switched it off silently).
#[test]
fn audit_entries_go_to_a_syslog_socket_and_the_setting_is_authenticated() {
    use std::os::unix::net::UnixDatagram;
    let e = Env::with_ca();
    let path = e.path("log.sock");
    let sock = UnixDatagram::bind(&path).expect("bind");
    sock.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    let recv = || -> serde_json::Value {
        let mut buf = vec![0u8; 65536];
        let n = sock.recv(&mut buf).expect("a syslog message");
        let msg = String::from_utf8(buf[..n].to_vec()).expect("utf-8");
        assert!(msg.starts_with("<86>vpnca["), "{msg}");
        let json = &msg[msg.find("]: ").expect("tag") + 3..];
        serde_json::from_str(json).unwrap_or_else(|_| serde_json::json!({ "text": json }))
    };
    let sock_s = path_str(&path).to_string();
    e.ok(&["log", "--syslog", &sock_s]);
    assert!(
        recv()["text"]
            .as_str()
            .is_some_and(|t| t.contains("syslog copy of the audit log")),
        "the test message"
    );
    let row = |seq: i64, field: &str| {
        sqlite_query(&e, &format!("SELECT {field} FROM audit WHERE seq = {seq}"))
    };
    let check = |v: &serde_json::Value, action: &str, name: &str| {
        let seq = v["seq"].as_i64().expect("seq");
        assert_eq!(v["action"], action, "{v}");
        assert_eq!(v["name"], name, "{v}");
        assert_eq!(row(seq, "action"), action);
        assert_eq!(
            v["mac"].as_str().expect("mac"),
            row(seq, "lower(hex(mac))"),
            "{v}"
        );
        seq
    };
    let first = check(&recv(), "syslog", "");
    e.ok(&["client", "alice"]);
    assert_eq!(check(&recv(), "issue", "alice"), first + 1);
    e.ok(&["revoke", "alice"]);
    let revoke = recv();
    let seq = check(&revoke, "revoke", "alice");
    assert_eq!(check(&recv(), "crl", ""), seq + 1);

    // Switched off by an edit of the file: refused as an edited setting.
    let saved = std::fs::read(e.pki.join("vpnca.db")).expect("db");
    sqlite(&e, "DELETE FROM meta WHERE k = 'syslog_socket'");
    let err = e.fails(&["client", "bob"], 2);
    assert!(err.contains("the setting syslog_socket"), "{err}");
    std::fs::write(e.pki.join("vpnca.db"), &saved).expect("restore");

    // The socket gone: the change is committed, a warning names what was not sent.
    drop(sock);
    std::fs::remove_file(&path).expect("rm socket");
    let o = e.run(&["client", "carol"]);
    assert_eq!(o.status.code(), Some(0), "{}", s(&o.stderr));
    assert!(
        s(&o.stderr).contains("were committed but not sent to the syslog socket"),
        "{}",
        s(&o.stderr)
    );
    e.ok(&["log", "--no-syslog"]);
    let o = e.run(&["client", "dave"]);
    assert!(!s(&o.stderr).contains("syslog"), "{}", s(&o.stderr));
    e.ok(&["verify"]);
}
