//! Promises docs/security.md makes, each driven through the real binary and read back with
//! an independent tool or the store's own files: the header's KDF parameters, the audit log's
//! order, adopted templates, the passphrase floor of exported keys, store permissions, the
//! PKCS#12 iteration counts, no prompt without a terminal, and what key writes audit.
//! (The AWS promises are in tests/aws.rs, in its section "Promises of docs/security.md".)

mod common;

use common::{
    Env, PASS, adopt_template, assert_key_matches_cert, expect_code, mode, openssl_ok, path_str,
    plant_template, s, sqlite, sqlite_query,
};
use serde_json::Value;
use std::process::Stdio;

/// docs/security.md, "What is authenticated": the header's KDF parameters are bound to the
/// wrapped data key, so a header edited down to a cheaper Argon2id cost (16 MiB and 2 passes
/// to 8 MiB and 1 pass, both values vpnca accepts) does not unlock: exit 2, "wrong
/// passphrase", and the store unchanged.
///
/// Fails when (seen with a planted fault): `Header::unwrap` derives the key-encryption key
/// with at least the init cost (`m_kib.max(16384)`, `t.max(2)`) and `wrap_aad` leaves out
/// `m_kib` and `t` (the downgraded header unlocked, `client carol` exit 0).
#[test]
fn a_header_with_downgraded_kdf_parameters_does_not_unlock() {
    let e = Env::new();
    e.ok(&["init", "--kdf-memory-mib", "16", "--kdf-time", "2"]);
    e.ok(&["ca", "--cn", "Test VPN CA"]);
    let header: Value =
        serde_json::from_str(&sqlite_query(&e, "SELECT v FROM meta WHERE k = 'header'"))
            .expect("the header is JSON");
    assert_eq!(
        (&header["kdf"]["m_kib"], &header["kdf"]["t"]),
        (&Value::from(16384), &Value::from(2)),
        "the setup: {header}"
    );
    let mut down = header.clone();
    down["kdf"]["m_kib"] = 8192.into();
    down["kdf"]["t"] = 1.into();
    sqlite(
        &e,
        &format!(
            "UPDATE meta SET v = '{}' WHERE k = 'header'",
            down.to_string().replace('\'', "''")
        ),
    );
    let before = e.snapshot();
    for args in [&["client", "carol"][..], &["crl"], &["verify"]] {
        let err = e.fails(args, 2);
        assert!(err.contains("wrong passphrase"), "{args:?}: {err}");
        assert_eq!(e.snapshot(), before, "{args:?}: the store changed");
    }
}

/// Swaps the sequence numbers of audit entries `a` and `b` with SQL.
fn swap_audit_entries(e: &Env, a: i64, b: i64) {
    sqlite(
        e,
        &format!(
            "UPDATE audit SET seq = -1 WHERE seq = {a};
             UPDATE audit SET seq = {a} WHERE seq = {b};
             UPDATE audit SET seq = {b} WHERE seq = -1;"
        ),
    );
}

/// docs/security.md, "What is authenticated": the audit log's HMAC chain detects reordered
/// entries. Two entries in the middle swapped by SQL: `verify` exits 1 naming the audit log,
/// and `log` without the passphrase refuses (exit 2). The last two swapped: `verify` exits 1
/// and a writing command refuses with exit 2. The store is unchanged each time.
///
/// Fails when (seen with a planted fault): not seen failing on one code fault: with the audit
/// MAC covering neither `seq` nor the previous entry's MAC, the log's hash chain and the
/// checkpoint still caught both swaps.
#[test]
fn reordered_audit_entries_are_found_and_refused() {
    for middle in [true, false] {
        let e = Env::with_ca();
        for name in ["alice", "bob", "carol"] {
            e.ok(&["client", name]);
        }
        let last: i64 = sqlite_query(&e, "SELECT max(seq) FROM audit")
            .parse()
            .expect("seq");
        assert!(last >= 5, "the setup: {last} entries");
        let (a, b) = if middle { (2, 3) } else { (last - 1, last) };
        swap_audit_entries(&e, a, b);
        let before = e.snapshot();
        let v = e.run(&["verify"]);
        assert_eq!(v.status.code(), Some(1), "{a}<->{b}: {}", s(&v.stdout));
        assert!(
            s(&v.stdout).contains("audit"),
            "{a}<->{b}: {}",
            s(&v.stdout)
        );
        assert_eq!(e.snapshot(), before, "{a}<->{b}: verify changed the store");
        if middle {
            let mut c = e.cmd(&["log"]);
            c.env_remove("VPNCA_PASSPHRASE");
            let err = expect_code(&["log"], c.output().expect("run"), 2);
            assert!(err.contains("audit"), "{a}<->{b}: {err}");
        } else {
            let err = e.fails(&["client", "dave"], 2);
            assert!(err.contains("audit"), "{a}<->{b}: {err}");
        }
        assert_eq!(e.snapshot(), before, "{a}<->{b}: the store changed");
    }
}

/// The built-in profile NAME's text (`vpnca template show NAME`).
fn builtin_text(e: &Env, name: &str) -> String {
    e.ok(&["template", "show", name])
}

/// docs/security.md, "Templates": an adopted `templates/client.toml` changed afterwards stops
/// issuing with that profile (exit 2, naming the file, nothing issued), `status` reports it
/// (exit 1, `differs`) and so does `template list`; the file put back as adopted issues again.
///
/// Fails when (seen with a planted fault): the `differs` arm of `Store::pki_profile`
/// disabled (carol was issued, exit 0).
#[test]
fn a_changed_adopted_template_stops_issuing_and_is_reported() {
    let e = Env::with_ca();
    let adopted = builtin_text(&e, "client").replace("days = 825", "days = 90");
    assert!(adopted.contains("days = 90"), "the setup: {adopted}");
    adopt_template(&e, "client", &adopted);
    plant_template(&e, "client", &adopted.replace("days = 90", "days = 30"));
    let before = e.snapshot();
    let err = e.fails(&["client", "carol"], 2);
    assert!(
        err.contains("templates/client.toml")
            && err.contains("differs from the adopted client profile"),
        "{err}"
    );
    assert_eq!(e.snapshot(), before, "the store changed");
    let st = e.run(&["--json", "status"]);
    assert_eq!(st.status.code(), Some(1), "status: {}", s(&st.stdout));
    assert!(
        s(&st.stdout).contains("differs") && s(&st.stdout).contains("client.toml"),
        "status: {}",
        s(&st.stdout)
    );
    let list = e.json_lines(&["template", "list"]);
    let client = list.iter().find(|l| l["name"] == "client").expect("client");
    assert_eq!(client["file_status"], "differs", "{client}");
    plant_template(&e, "client", &adopted);
    e.ok(&["client", "carol"]);
}

/// docs/security.md, "Templates" and the threat model: a profile never grants more than its
/// name allows: `server` and `server-client` with `ca = true`, and `root-ca` with `ca = false`,
/// are refused by `template adopt` (exit 2, the reason named), nothing adopted.
///
/// Fails when (seen with a planted fault): `Profile::check_kind`'s two `ca` rules disabled
/// (the server profile with CA:TRUE was adopted, exit 0).
#[test]
fn adopt_refuses_a_profile_granting_more_than_its_name() {
    let e = Env::with_ca();
    let ca_usage = r#"key_usage = ["digitalSignature", "keyCertSign", "cRLSign"]"#;
    let leaf_usage = r#"key_usage = ["digitalSignature"]"#;
    for (name, from, to, why) in [
        (
            "server",
            "ca = false",
            "ca = true",
            "the server profile must have ca = false",
        ),
        (
            "server-client",
            "ca = false",
            "ca = true",
            "the server-client profile must have ca = false",
        ),
        (
            "root-ca",
            "ca = true",
            "ca = false",
            "the root-ca profile must have ca = true",
        ),
    ] {
        let text = builtin_text(&e, name);
        assert!(text.contains(from), "{name}: {text}");
        // Key usage fit for what `ca` says (else another rule refuses it first).
        let usage = if to == "ca = true" {
            ca_usage
        } else {
            leaf_usage
        };
        let text: String = text
            .lines()
            .map(|l| if l.starts_with("key_usage") { usage } else { l })
            .collect::<Vec<_>>()
            .join("\n");
        plant_template(&e, name, &text.replace(from, to));
        let before = e.snapshot();
        let err = e.fails(&["template", "adopt", name], 2);
        assert!(
            err.contains("bad certificate profile") && err.contains(why),
            "{name}: {err}"
        );
        assert_eq!(e.snapshot(), before, "{name}: the store changed");
        std::fs::remove_file(e.pki.join(format!("templates/{name}.toml"))).expect("rm");
        let list = e.json_lines(&["template", "list"]);
        let row = list.iter().find(|l| l["name"] == name).expect(name);
        assert_eq!(row["in_effect"], "built-in", "{name}: {row}");
    }
}

/// docs/security.md, "Output paths": a passphrase for an exported key must have at least 8
/// characters. 7 are refused (exit 2, the count named, no file written); 8 are accepted and
/// openssl opens the key with them.
///
/// Fails when (seen with a planted fault): `MIN_PASSPHRASE_CHARS` is 7 (the 7-character
/// export succeeded).
#[test]
fn an_export_passphrase_needs_eight_characters() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    std::fs::write(e.path("seven"), "abcdefg\n").expect("write");
    std::fs::write(e.path("eight"), "abcdefgh\n").expect("write");
    let out7 = e.path("out7");
    let before = e.snapshot();
    let err = e.fails(
        &[
            "export",
            "alice",
            "--out",
            path_str(&out7),
            "--key-passphrase-file",
            "seven",
        ],
        2,
    );
    assert!(
        err.contains("it has 7 characters; at least 8 are required"),
        "{err}"
    );
    assert!(
        !out7.join("alice.key").exists(),
        "a key was written with a 7-character passphrase"
    );
    assert_eq!(e.snapshot(), before, "the store changed");
    let out8 = e.path("out8");
    e.ok(&[
        "export",
        "alice",
        "--out",
        path_str(&out8),
        "--key-passphrase-file",
        "eight",
    ]);
    let key = std::fs::read_to_string(out8.join("alice.key")).expect("alice.key");
    assert!(
        key.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{key}"
    );
    assert_key_matches_cert(
        e.dir.path(),
        "out8/alice.key",
        "out8/alice.crt",
        Some("eight"),
    );
}

/// docs/security.md, "Store permissions": `init` makes a new store directory 0700 and
/// `vpnca.db` 0600, under a umask that would leave both readable by everyone.
///
/// Fails when (seen with a planted fault): `Store::init` creating and setting the folder
/// 0755 (mode 0755 seen).
#[test]
fn init_makes_the_store_private() {
    let e = Env::new();
    let mut c = std::process::Command::new("sh");
    c.arg("-c")
        .arg("umask 022; exec \"$@\"")
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_vpnca"))
        .args(["--pki", path_str(&e.pki), "init"])
        .args(["--kdf-memory-mib", "8", "--kdf-time", "1"])
        .env("VPNCA_PASSPHRASE", PASS)
        .env_remove("VPNCA_PKI")
        .env_remove("VPNCA_CHECKPOINT");
    expect_code(&["init"], c.output().expect("run"), 0);
    assert_eq!(mode(&e.pki), 0o700, "the store directory");
    assert_eq!(mode(&e.pki.join("vpnca.db")), 0o600, "vpnca.db");
}

/// The PBKDF2 iteration counts openssl reports for the file `file` in `dir`: every
/// `Iteration N` of `openssl pkcs12 -info -noout` (the MAC, the certificate bag, the key bag).
fn p12_info(dir: &std::path::Path, file: &str, passfile: &str) -> String {
    let pass = format!("file:{passfile}");
    let o = common::openssl(
        &["pkcs12", "-info", "-noout", "-in", file, "-passin", &pass],
        dir,
    );
    assert!(o.status.success(), "openssl pkcs12: {}", s(&o.stderr));
    format!("{}{}", s(&o.stdout), s(&o.stderr))
}

/// docs/security.md, "Keys that leave the store": the `.p12` key bag is PBES2 (PBKDF2 with
/// HMAC-SHA-256, 100,000 iterations, AES-256-CBC) and its MAC HMAC-SHA-256 with 100,000
/// iterations; a `pem-encrypted` key is PBES2 with 600,000 iterations. Read by openssl
/// (`pkcs12 -info`, `asn1parse`).
///
/// Fails when (seen with a planted fault): the PKCS#12 MAC iteration count is 2,048 (openssl
/// printed `Iteration 2048`).
#[test]
fn exported_keys_use_the_documented_pbkdf2_costs() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    std::fs::write(e.path("pass"), "correct horse battery\n").expect("write");
    e.ok(&[
        "export",
        "alice",
        "--out",
        "p12",
        "--format",
        "p12",
        "--key-passphrase-file",
        "pass",
    ]);
    let info = p12_info(e.dir.path(), "p12/alice.p12", "pass");
    let mac = info
        .lines()
        .find(|l| l.starts_with("MAC:"))
        .unwrap_or_else(|| panic!("no MAC line: {info}"));
    assert!(
        mac.contains("sha256") && mac.contains("Iteration 100000"),
        "{mac}"
    );
    let bag = info
        .lines()
        .find(|l| l.starts_with("Shrouded Keybag:"))
        .unwrap_or_else(|| panic!("no key bag: {info}"));
    assert!(
        bag.contains("PBES2")
            && bag.contains("AES-256-CBC")
            && bag.contains("Iteration 100000")
            && bag.contains("hmacWithSHA256"),
        "{bag}"
    );
    e.ok(&[
        "export",
        "alice",
        "--out",
        "pem",
        "--format",
        "pem-encrypted",
        "--key-passphrase-file",
        "pass",
    ]);
    let asn1 = openssl_ok(&["asn1parse", "-in", "pem/alice.key"], e.dir.path());
    assert!(
        asn1.contains("PBES2") && asn1.contains("aes-256-cbc") && asn1.contains("hmacWithSHA256"),
        "{asn1}"
    );
    // The iteration count: the INTEGER right after the PBKDF2 salt, in hex.
    assert!(
        asn1.contains("INTEGER           :0927C0"),
        "600,000 is 0x0927C0: {asn1}"
    );
}

/// docs/security.md, "Passphrase input": vpnca never prompts when standard input is not a
/// terminal. A writing command with no passphrase source and standard input closed exits 2
/// naming what is missing, and the store is unchanged.
///
/// Fails when (seen with a planted fault): the terminal check before prompting removed (the
/// command failed with "reading the passphrase: No such device or address").
#[test]
fn no_passphrase_source_and_no_terminal_fails_at_once() {
    let e = Env::with_ca();
    let before = e.snapshot();
    let mut c = e.cmd(&["client", "carol"]);
    c.env_remove("VPNCA_PASSPHRASE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let err = expect_code(&["client", "carol"], c.output().expect("run"), 2);
    assert!(
        err.contains("no terminal to prompt on") && err.contains("VPNCA_PASSPHRASE"),
        "{err}"
    );
    assert_eq!(e.snapshot(), before, "the store changed");
}

/// docs/security.md, "Keys that leave the store" and "Batch output files": `export` audit
/// entries record the key form (`plain`, `encrypted`, `pkcs12`) and the OS user; a batch's
/// files are audited as `export` entries with `"by": "batch"`. Read from `vpnca log --json`.
///
/// Fails when (seen with a planted fault): the export entry's `key` is written as
/// `KeyExport::None` (`"none"` in every entry).
#[test]
fn key_writes_audit_the_key_form_the_user_and_the_batch() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    std::fs::write(e.path("pass"), "correct horse battery\n").expect("write");
    let export = |out: &str, extra: &[&str]| {
        let mut a = vec!["export", "alice", "--out", out];
        a.extend_from_slice(extra);
        let mut c = e.cmd(&a);
        c.env("USER", "auditor").env("LOGNAME", "auditor");
        common::expect_ok(&a, c.output().expect("run"));
    };
    export("plain", &["--key"]);
    export("enc", &["--key-passphrase-file", "pass"]);
    export("p12", &["--format", "p12", "--key-passphrase-file", "pass"]);
    std::fs::write(e.path("users.csv"), "name\nbob\n").expect("write");
    e.ok(&["client", "--batch", "users.csv", "--out", "batch"]);
    let log = e.json_lines(&["log"]);
    let exports: Vec<&Value> = log.iter().filter(|l| l["action"] == "export").collect();
    let forms: Vec<String> = exports
        .iter()
        .map(|l| format!("{} {}", l["name"], l["detail"]))
        .collect();
    assert_eq!(exports.len(), 4, "{forms:#?}");
    for (entry, key) in exports.iter().zip(["plain", "encrypted", "pkcs12"]) {
        let d = &entry["detail"];
        assert_eq!(d["key"], key, "{entry}");
        assert!(
            entry["user"]
                .as_str()
                .is_some_and(|u| u.contains("auditor")),
            "{entry}"
        );
    }
    let batch = exports[3];
    assert_eq!(batch["name"], "bob", "{batch}");
    assert_eq!(batch["detail"]["by"], "batch", "{batch}");
    assert_eq!(batch["detail"]["key"], "plain", "{batch}");
}
