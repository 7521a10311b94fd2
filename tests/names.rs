//! Unicode names (issue 14, bug 3): `client "José"` (NFC) and `client $'Jose\u0301'` (NFD, as a
//! macOS CSV gives it) were two live certificates that look identical, and `revoke "José"`
//! left one valid. Names are now kept in NFC at every entry point, names that look alike are
//! refused, lookups say "did you mean …", and a store that already holds such pairs (made by
//! an older vpnca: tests/data/legacy-names) has them reported and revoked together, never
//! renamed.
mod common;
use common::*;

/// José, composed (U+00E9): what most keyboards type.
const NFC: &str = "Jos\u{e9}";
/// José, decomposed (e + U+0301): what a macOS file name or CSV export gives.
const NFD: &str = "Jose\u{301}";

/// The subject of a certificate file as openssl prints it in UTF-8, and its raw bytes.
fn openssl_subject(e: &Env, cert: &str) -> Vec<u8> {
    openssl(
        &[
            "x509",
            "-in",
            cert,
            "-noout",
            "-subject",
            "-nameopt",
            "utf8,sep_comma_plus",
        ],
        e.dir.path(),
    )
    .stdout
}

/// The revoked serials of `pki/crl.pem`, read by openssl after it verified the CRL's signature.
fn crl_serials(e: &Env) -> Vec<String> {
    crl_by_openssl(e).1.into_keys().collect()
}

/// Both spellings are one name: the NFD one is recorded (and its certificate's CN written) in
/// NFC, the other spelling is then a duplicate (exit 2, store unchanged), and a revocation by
/// either spelling revokes it (the CRL, read by openssl, lists it).
///
/// Fails when: `options::issue_request` or `Store::prepare_subject` records the name as typed
/// (the second `client` then issues a second certificate), or `Store::by_name` compares
/// spellings byte for byte (the NFD `revoke` then finds nothing).
#[test]
fn both_spellings_are_one_name_in_nfc() {
    let e = Env::with_ca();
    let out = e.ok(&["client", NFD]);
    assert!(
        out.contains(&format!("Issued client certificate {NFC} (serial")),
        "{out}"
    );
    let listed = e.json_lines(&["list"]);
    let names: Vec<&str> = listed.iter().map(|r| str_field(r, "name")).collect();
    assert!(names.contains(&NFC) && !names.contains(&NFD), "{names:?}");
    // openssl reads the CN in NFC: "Jos" then U+00E9 as UTF-8 (C3 A9), no combining accent.
    e.ok(&["export", NFC, "--out", "out"]);
    let subject = openssl_subject(&e, &format!("out/{NFC}.crt"));
    let cn = "CN=Jos\u{e9}".as_bytes();
    assert!(
        subject.windows(cn.len()).any(|w| w == cn)
            && !subject.windows(2).any(|w| w == [0xCC, 0x81]),
        "openssl: {}",
        s(&subject)
    );

    let before = e.snapshot();
    let err = e.fails(&["client", NFC], 2);
    assert!(
        err.contains(&format!("a valid certificate named {NFC} exists already")),
        "{err}"
    );
    assert!(
        e.snapshot() == before,
        "a refused duplicate changed the store"
    );

    let serial = norm_serial(str_field(&e.json(&["show", NFC]), "serial"));
    e.ok(&["revoke", NFD]);
    assert_eq!(
        crl_serials(&e),
        [serial],
        "the CRL must list José's certificate"
    );
    let shown = e.json(&["show", NFD]);
    assert_eq!(str_field(&shown, "status"), "revoked");
}

/// A batch line in NFD is the NFC user of the store (`exists`) or of an earlier line (the name
/// appears twice); a CSR whose CN is NFD is signed under the NFC name.
///
/// Fails when: `batch::parse_csv`'s `normalize_name` goes back to `validate_name`, or
/// `Store::sign_request` keeps the CSR's CN as it is.
#[test]
fn batches_and_requests_are_normalized_too() {
    let e = Env::with_ca();
    e.ok(&["client", NFC]);
    std::fs::write(e.path("users.csv"), format!("name\n{NFD}\nalice\n")).expect("csv");
    let lines = e.json_lines(&["client", "--batch", "users.csv"]);
    let st: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| l.get("status").is_some())
        .map(|l| (str_field(l, "name"), str_field(l, "status")))
        .collect();
    assert_eq!(st, [(NFC, "exists"), ("alice", "issued")], "{lines:?}");

    std::fs::write(e.path("twice.csv"), "name\nRen\u{e9}e\nRene\u{301}e\n").expect("csv");
    let before = e.snapshot();
    let err = e.fails(&["client", "--batch", "twice.csv"], 2);
    assert!(
        err.contains("line 3") && err.contains("appears twice"),
        "{err}"
    );
    assert!(e.snapshot() == before, "a refused batch changed the store");

    let nfd_cn = "Zoe\u{308}";
    openssl_req(
        e.dir.path(),
        RSA_2048,
        nfd_cn,
        "zoe.key",
        "zoe.csr",
        &["-utf8"],
    );
    let out = e.ok(&["sign-req", "zoe.csr", "--type", "client"]);
    assert!(out.contains("Zo\u{eb}"), "{out}");
    let names: Vec<String> = e
        .json_lines(&["list"])
        .iter()
        .map(|r| str_field(r, "name").to_string())
        .collect();
    assert!(names.contains(&"Zo\u{eb}".to_string()), "{names:?}");
}

/// A name that looks like the name of a valid certificate is refused (exit 2, store
/// unchanged): other case, digit for letter, Cyrillic or fullwidth letters. Invisible
/// characters are refused as such. A revoked name does not block a look-alike.
///
/// Fails when: `Store::check_look_alikes` is not called by `Store::issue` (every look-alike
/// is then issued), or `look_alike_key` drops its lower-casing (`Bob` passes).
#[test]
fn look_alike_names_are_refused() {
    let e = Env::with_ca();
    e.ok(&["client", "bob"]);
    let before = e.snapshot();
    for alike in ["Bob", "BOB", "b0b", "b\u{43e}b", "\u{ff42}\u{ff4f}\u{ff42}"] {
        let err = e.fails(&["client", alike], 2);
        assert!(
            err.contains(&format!("refusing the name {}", shell_word(alike)))
                && err.contains("it looks like bob, which has a valid certificate"),
            "{alike:?}: {err}"
        );
    }
    let err = e.fails(&["client", "bo\u{200b}b"], 2);
    assert!(
        err.contains("U+200B, an invisible formatting character"),
        "{err}"
    );
    // A server name and a signed request are issued names too.
    let err = e.fails(&["server", "BOB"], 2);
    assert!(err.contains("it looks like bob"), "{err}");
    openssl_req(e.dir.path(), RSA_2048, "Bob", "b.key", "b.csr", &[]);
    let err = e.fails(&["sign-req", "b.csr", "--type", "client"], 2);
    assert!(err.contains("it looks like bob"), "{err}");
    assert!(
        e.snapshot() == before,
        "a refused look-alike changed the store"
    );

    // Two look-alikes in one batch: the later line is invalid, nothing is issued.
    std::fs::write(e.path("pair.csv"), "name\ncarol\nCarol\n").expect("csv");
    let err = e.fails(&["client", "--batch", "pair.csv"], 2);
    assert!(
        err.contains("invalid name Carol: it looks like carol, earlier in this batch"),
        "{err}"
    );
    assert!(e.snapshot() == before, "a refused batch changed the store");

    e.ok(&["revoke", "bob"]);
    e.ok(&["client", "Bob"]);
}

/// `vpnca revoke`, `show`, `renew` and `export` of a name that is not there suggest the names
/// that were probably meant; exit 2, nothing changed.
///
/// Fails when: `Store::no_such_name` is replaced by a plain `NotFound` at any of the four.
#[test]
fn near_misses_say_did_you_mean() {
    let e = Env::with_ca();
    e.ok(&["client", "alice"]);
    e.ok(&["client", "Bob.Smith"]);
    let before = e.snapshot();
    for args in [
        &["revoke", "alcie"][..],
        &["show", "alcie"][..],
        &["renew", "alcie"][..],
        &["export", "alcie", "--out", "d"][..],
    ] {
        let err = e.fails(args, 2);
        assert!(
            err.contains("no certificate named alcie; did you mean alice?"),
            "{args:?}: {err}"
        );
    }
    let err = e.fails(&["revoke", "bob.smith"], 2);
    assert!(err.contains("did you mean Bob.Smith?"), "{err}");
    let err = e.fails(&["show", "zed"], 2);
    assert!(
        err.contains("no certificate named zed") && !err.contains("did you mean"),
        "{err}"
    );
    assert!(e.snapshot() == before, "a failed lookup changed the store");
}

/// A store made by vpnca before names were normalized (tests/data/legacy-names: José in NFC
/// and in NFD, bob and Bob, all valid): `status` names both pairs (exit 1), `verify` warns
/// (exit 0: no integrity problem), nothing is renamed, and `revoke José` revokes both
/// spellings — openssl reads both serials in the new CRL.
///
/// Fails when: `check::look_alike_pairs` is not called by `status` or `verify`, or
/// `Store::spellings` ignores the stored NFD name (one José then stays valid).
#[test]
fn a_legacy_store_reports_its_pairs_and_revokes_both_spellings() {
    let e = Env::new();
    copy_dir(&fixture("legacy-names/pki"), &e.pki);
    let listed = e.json_lines(&["list"]);
    let serial_of = |name: &str| {
        let r = listed
            .iter()
            .find(|r| str_field(r, "name") == name)
            .unwrap_or_else(|| panic!("{name:?} in {listed:?}"));
        norm_serial(str_field(r, "serial"))
    };
    let (nfc_serial, nfd_serial) = (serial_of(NFC), serial_of(NFD));

    let o = e.run(&["--json", "status"]);
    assert_eq!(o.status.code(), Some(1), "{}", s(&o.stderr));
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let alike: Vec<&str> = rep["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["problem"] == "look-alike")
        .map(|f| str_field(f, "message"))
        .collect();
    assert_eq!(alike.len(), 2, "{alike:?}");
    assert!(
        alike.iter().any(|m| m.contains("Bob and bob look alike")),
        "{alike:?}"
    );
    assert!(
        alike
            .iter()
            .any(|m| m.contains("two Unicode spellings (with U+0301 and with U+00E9)")),
        "{alike:?}"
    );

    // The first `verify` upgrades the store to format 2 (tests/authenticated_state.rs); after
    // that, verify changes nothing: no name is renamed.
    e.ok(&["verify"]);
    let before = e.snapshot();
    let out = e.ok(&["verify"]);
    assert!(
        out.contains("WARNING: Bob and bob look alike") && out.contains("OK: the store is intact"),
        "{out}"
    );
    assert!(e.snapshot() == before, "verify changed the legacy store");

    e.ok(&["revoke", NFC]);
    let mut revoked = crl_serials(&e);
    revoked.sort();
    let mut expected = vec![nfc_serial, nfd_serial];
    expected.sort();
    assert_eq!(
        revoked, expected,
        "both spellings of José must be in the CRL"
    );
    let names: Vec<String> = e
        .json_lines(&["list"])
        .iter()
        .map(|r| str_field(r, "name").to_string())
        .collect();
    assert!(
        names.contains(&NFD.to_string()),
        "the NFD record was renamed: {names:?}"
    );
}

/// `name` as vpnca prints it: quoted for the shell where needed.
fn shell_word(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_alphanumeric() || "._-@".contains(c))
    {
        name.to_string()
    } else {
        format!("'{name}'")
    }
}

/// An easy-rsa PKI whose CNs are José in NFC and in NFD (made by openssl, which keeps the
/// bytes as given), bob and Bob: `import-easyrsa` records José once, in NFC (the older
/// certificate superseded, both revoked by one `revoke`), keeps bob and Bob apart, and says
/// both in its notes; `status` then names the bob/Bob pair.
///
/// Fails when: `easyrsa::plan` records the CN as it is (José is then two names and one
/// `revoke` leaves the other valid), or drops the look-alike notes.
#[test]
fn an_easyrsa_import_normalizes_and_reports_names() {
    let e = Env::init();
    let pki = common::oldpki::openssl_pki(
        e.dir.path(),
        &[(NFD, &[]), (NFC, &[]), ("bob", &[]), ("Bob", &[])],
        &[],
    );
    let out = e.json(&["import-easyrsa", path_str(&pki)]);
    let notes: Vec<&str> = out["notes"]
        .as_array()
        .unwrap_or_else(|| panic!("notes in {out}"))
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("are one name in two Unicode spellings") && n.contains("U+0301")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.contains("Bob and bob look alike")),
        "{notes:?}"
    );
    let listed = e.json_lines(&["list"]);
    let names: Vec<&str> = listed.iter().map(|r| str_field(r, "name")).collect();
    assert_eq!(
        names.iter().filter(|n| **n == NFC).count(),
        2,
        "José's two certificates under one NFC name: {names:?}"
    );
    assert!(!names.contains(&NFD), "{names:?}");
    let serials: Vec<String> = listed
        .iter()
        .filter(|r| str_field(r, "name") == NFC)
        .map(|r| norm_serial(str_field(r, "serial")))
        .collect();
    e.ok(&["revoke", NFC]);
    let mut revoked = crl_serials(&e);
    revoked.sort();
    let mut want = serials.clone();
    want.sort();
    assert_eq!(
        revoked, want,
        "one revoke must revoke both certificates of José"
    );
    let o = e.run(&["--json", "status"]);
    let rep: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(
        rep["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["problem"] == "look-alike"),
        "{rep}"
    );
}
