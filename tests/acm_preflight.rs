//! `aws::preflight::check` against inputs made by an independent tool: every certificate,
//! key and chain here comes from the `openssl` CLI (a root CA, an intermediate, leaves), so
//! the rules are exercised on what users really paste, not on vpnca's own output. Each case
//! asserts the exact rules reported, so a rule firing wrongly fails too.

use std::path::Path;
use std::process::Command;

use time::{Duration, OffsetDateTime};
use vpnca::aws::preflight::{ImportBundle, ImportRole, Violation, check};
use zeroize::Zeroizing;

const CA: &str = "basicConstraints=critical,CA:true\nkeyUsage=critical,keyCertSign,cRLSign\n";
const SERVER: &str = "subjectAltName=DNS:vpn.example.com\nextendedKeyUsage=serverAuth\n";
const VPN: &str = "/CN=vpn.example.com";

/// Runs openssl in `dir`, asserts success, returns stdout.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "openssl {args:?} failed: {err}");
    String::from_utf8(out.stdout).expect("openssl output is UTF-8")
}

/// A root CA, an intermediate signed by it and the server leaf vpn.example.com (PKCS#8
/// keys), as files `<name>.pem` / `<name>.key` in a tempdir and as PEM texts.
struct Pki {
    dir: tempfile::TempDir,
    root: String,
    int: String,
    leaf: String,
    key: String,
}

impl Pki {
    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.path().join(file)).expect("read openssl output")
    }

    /// Generates `<name>.key` with genpkey; `alg` is "rsa:<bits>", "ec:<curve>" or "ED25519".
    fn genkey(&self, name: &str, alg: &str) -> String {
        let file = format!("{name}.key");
        let (algorithm, opt) = match alg.split_once(':') {
            Some(("rsa", bits)) => ("RSA", Some(format!("rsa_keygen_bits:{bits}"))),
            Some(("ec", curve)) => ("EC", Some(format!("ec_paramgen_curve:{curve}"))),
            _ => (alg, None),
        };
        let mut args = vec!["genpkey", "-algorithm", algorithm, "-out", &file];
        if let Some(opt) = &opt {
            args.extend(["-pkeyopt", opt]);
        }
        openssl(self.path(), &args);
        self.read(&file)
    }

    /// Issues `<name>.pem` for a new key; no `issuer` self-signs. Returns (cert, key).
    fn issue(
        &self,
        name: &str,
        issuer: Option<&str>,
        alg: &str,
        subj: &str,
        ext: &str,
        days: u32,
    ) -> (String, String) {
        let key = self.genkey(name, alg);
        let [k, csr, pem, extf] = ["key", "csr", "pem", "ext"].map(|x| format!("{name}.{x}"));
        std::fs::write(self.path().join(&extf), ext).expect("write extfile");
        openssl(
            self.path(),
            &["req", "-new", "-key", &k, "-subj", subj, "-out", &csr],
        );
        let days = days.to_string();
        let mut args = vec![
            "x509", "-req", "-sha256", "-in", &csr, "-out", &pem, "-days", &days, "-extfile", &extf,
        ];
        let [ca, ca_key] = ["pem", "key"].map(|x| format!("{}.{x}", issuer.unwrap_or_default()));
        match issuer {
            Some(_) => args.extend(["-CA", &ca, "-CAkey", &ca_key, "-CAcreateserial"]),
            None => args.extend(["-signkey", &k]),
        }
        openssl(self.path(), &args);
        (self.read(&pem), key)
    }

    fn chain(&self) -> String {
        format!("{}{}", self.int, self.root)
    }

    /// A leaf signed by the intermediate for a year, with the proper chain.
    fn bundle(&self, name: &str, alg: &str, subj: &str, ext: &str) -> ImportBundle {
        let (cert, key) = self.issue(name, Some("int"), alg, subj, ext, 365);
        bundle(&cert, &key, &self.chain())
    }

    /// The good bundle with one field replaced.
    fn with(&self, cert: Option<&str>, key: Option<&str>, chain: Option<&str>) -> ImportBundle {
        let chain = chain.map_or_else(|| self.chain(), str::to_owned);
        bundle(cert.unwrap_or(&self.leaf), key.unwrap_or(&self.key), &chain)
    }
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = Pki {
        dir,
        root: String::new(),
        int: String::new(),
        leaf: String::new(),
        key: String::new(),
    };
    p.root = p
        .issue("root", None, "rsa:2048", "/CN=Test Root CA", CA, 3650)
        .0;
    let int_ext = CA.replace("CA:true", "CA:true,pathlen:0");
    p.int = p
        .issue(
            "int",
            Some("root"),
            "rsa:2048",
            "/CN=Test Intermediate CA",
            &int_ext,
            3650,
        )
        .0;
    (p.leaf, p.key) = p.issue("leaf", Some("int"), "rsa:2048", VPN, SERVER, 365);
    p
}

fn bundle(certificate: &str, key: &str, chain: &str) -> ImportBundle {
    ImportBundle {
        certificate: certificate.to_owned(),
        private_key: Zeroizing::new(key.to_owned()),
        chain: chain.to_owned(),
    }
}

/// Checks `b` and asserts exactly the rules `want` (repeats counted) are reported.
#[track_caller]
fn expect_at(
    b: &ImportBundle,
    role: ImportRole,
    now: OffsetDateTime,
    want: &[&str],
) -> Vec<Violation> {
    let found = check(b, role, now);
    let mut rules: Vec<&str> = found.iter().map(|v| v.rule).collect();
    rules.sort_unstable();
    let mut want = want.to_vec();
    want.sort_unstable();
    assert_eq!(rules, want, "{found:#?}");
    found
}

/// [`expect_at`] for a server certificate, now.
#[track_caller]
fn expect(b: &ImportBundle, want: &[&str]) -> Vec<Violation> {
    expect_at(b, ImportRole::Server, OffsetDateTime::now_utc(), want)
}

/// Asserts one violation's message contains every part.
#[track_caller]
fn says(found: &[Violation], parts: &[&str]) {
    let hit = found
        .iter()
        .any(|v| parts.iter().all(|p| v.message.contains(p)));
    assert!(hit, "no message with {parts:?}: {found:#?}");
}

#[test]
fn good_bundles_pass() {
    let p = pki();
    expect(&p.with(None, None, None), &[]);
    let ext = "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n";
    let client = p.bundle("client", "rsa:2048", "/CN=clientvpn.example.com", ext);
    expect_at(&client, ImportRole::Client, OffsetDateTime::now_utc(), &[]);
}

#[test]
fn private_key_rules() {
    let p = pki();
    let other = p.genkey("other", "rsa:2048");
    let found = expect(&p.with(None, Some(&other), None), &["key-matches"]);
    says(&found, &["does not belong"]);

    let enc_args = [
        "pkcs8",
        "-topk8",
        "-v2",
        "aes-256-cbc",
        "-passout",
        "pass:x",
        "-in",
        "leaf.key",
    ];
    let enc = openssl(p.path(), &enc_args);
    assert!(
        enc.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{enc}"
    );
    expect(&p.with(None, Some(&enc), None), &["key-unencrypted"]);

    let trad = openssl(p.path(), &["pkey", "-traditional", "-in", "leaf.key"]);
    assert!(
        trad.starts_with("-----BEGIN RSA PRIVATE KEY-----"),
        "{trad}"
    );
    let found = expect(&p.with(None, Some(&trad), None), &["key-matches"]);
    says(&found, &["\"RSA PRIVATE KEY\"", "PKCS#8"]);
}

#[test]
fn key_algorithm_client_vpn_takes_only_rsa_1024_2048() {
    let p = pki();
    let cases = [
        ("ec:P-256", "ECDSA 256"),
        ("ec:P-384", "ECDSA 384"),
        ("ED25519", "Ed25519"),
        ("rsa:3072", "RSA 3072"),
        ("rsa:4096", "RSA 4096"),
        // Last: x509-parser sizes a P-521 point as 528 bits (66 bytes); the message should
        // name the curve's 521.
        ("ec:P-521", "ECDSA 521"),
    ];
    for (alg, what) in cases {
        let found = expect(
            &p.bundle(&alg.replace(':', ""), alg, VPN, SERVER),
            &["key-algorithm"],
        );
        assert!(found[0].overridable, "{found:#?}");
        says(&found, &[what]);
    }
}

/// key-algorithm names RSA 1024 as acceptable to Client VPN, so such a leaf must pass (and
/// be matched against its key) rather than be refused as an unreadable key.
#[test]
fn rsa_1024_leaf_passes() {
    let p = pki();
    let b = p.bundle("rsa1024", "rsa:1024", VPN, SERVER);
    expect(&b, &[]);
    let other = p.genkey("other1024", "rsa:1024");
    expect(&bundle(&b.certificate, &other, &b.chain), &["key-matches"]);
}

#[test]
fn key_pem_over_5120_bytes() {
    let p = pki();
    let b = p.bundle("rsa8192", "rsa:8192", VPN, SERVER);
    let len = b.private_key.len();
    assert!(len > 5120, "{len}");
    let found = expect(&b, &["key-algorithm", "key-size"]);
    says(&found, &[&len.to_string(), "5120"]);
    assert!(
        found
            .iter()
            .all(|v| v.overridable == (v.rule == "key-algorithm"))
    );
}

#[test]
fn certificate_field_holds_one_certificate() {
    let p = pki();
    let csr = p.read("leaf.csr");
    let two = format!("{}{}", p.leaf, p.int);
    for (cert, hint) in [
        (two.as_str(), "holds 2"),
        ("", "none"),
        (&csr, "CERTIFICATE REQUEST"),
    ] {
        let found = expect(&p.with(Some(cert), None, None), &["one-certificate"]);
        says(&found, &[hint]);
    }
}

#[test]
fn chain_rules() {
    let p = pki();
    let with_leaf = format!("{}{}{}", p.leaf, p.int, p.root);
    let reversed = format!("{}{}", p.root, p.int);
    let cases = [
        (with_leaf.as_str(), "chain-without-leaf", "itself"),
        (
            &reversed,
            "chain-order",
            "chain certificate 1 (Test Root CA) did not sign the certificate",
        ),
        (&p.root, "chain-order", "did not sign"),
        (&p.int, "chain-order", "self-signed root"),
        ("", "chain-order", "empty"),
    ];
    for (chain, rule, hint) in cases {
        let found = expect(&p.with(None, None, Some(chain)), &[rule]);
        says(&found, &[hint]);
    }
}

#[test]
fn validity_at_the_given_time() {
    let p = pki();
    let (cert, key) = p.issue("short", Some("int"), "rsa:2048", VPN, SERVER, 1);
    let short = bundle(&cert, &key, &p.chain());
    // An intermediate valid 5 days above a leaf valid 30: at +10 days only the CA expired.
    let int_ext = CA.replace("CA:true", "CA:true,pathlen:0");
    p.issue(
        "int5",
        Some("root"),
        "rsa:2048",
        "/CN=Short CA",
        &int_ext,
        5,
    );
    let (cert, key) = p.issue("leaf30", Some("int5"), "rsa:2048", VPN, SERVER, 30);
    let short_ca = bundle(&cert, &key, &format!("{}{}", p.read("int5.pem"), p.root));

    // Taken after openssl set every notBefore (to its own "now").
    let now = OffsetDateTime::now_utc();
    let at = |b: &ImportBundle, days: i64, want: &[&str]| {
        expect_at(b, ImportRole::Server, now + Duration::days(days), want)
    };
    at(&short, 0, &[]);
    says(
        &at(&short, 10, &["valid-now"]),
        &["the certificate has expired"],
    );
    // All three were made just now: a day ago none was valid yet, and each is named.
    let found = at(&short, -1, &["valid-now"; 3]);
    for who in [
        "the certificate",
        "chain certificate 1",
        "chain certificate 2",
    ] {
        says(&found, &[who, "is not valid yet"]);
    }
    at(&short_ca, 0, &[]);
    says(
        &at(&short_ca, 10, &["valid-now"]),
        &["chain certificate 1 has expired"],
    );
}

#[test]
fn domain_names() {
    let p = pki();
    let eku = "extendedKeyUsage=serverAuth\n";
    let cases = [
        (
            "/CN=vpn.example.com",
            eku.to_owned(),
            ImportRole::Server,
            "no DNS name",
        ),
        (
            "/CN=vpn",
            format!("{eku}subjectAltName=DNS:vpn\n"),
            ImportRole::Server,
            "(vpn)",
        ),
        (
            "/CN=10.0.0.1",
            format!("{eku}subjectAltName=IP:10.0.0.1\n"),
            ImportRole::Server,
            "no DNS name",
        ),
        (
            "/CN=alice",
            "extendedKeyUsage=clientAuth\n".to_owned(),
            ImportRole::Client,
            "CN alice is not one",
        ),
    ];
    for (i, (subj, ext, role, hint)) in cases.into_iter().enumerate() {
        let b = p.bundle(&format!("dn{i}"), "rsa:2048", subj, &ext);
        says(
            &expect_at(&b, role, OffsetDateTime::now_utc(), &["domain-name"]),
            &[hint],
        );
    }
}

#[test]
fn clean_pem() {
    let p = pki();
    let crlf = |s: &str| s.replace('\n', "\r\n");
    let all = bundle(&crlf(&p.leaf), &crlf(&p.key), &crlf(&p.chain()));
    let found = expect(&all, &["clean-pem"; 3]);
    for field in ["certificate PEM", "private key PEM", "chain PEM"] {
        says(&found, &[field, "CR"]);
    }
    says(
        &expect(&p.with(None, Some(&crlf(&p.key)), None), &["clean-pem"]),
        &["private key PEM", "CR"],
    );

    let spaced = p.leaf.replacen('\n', " \n", 2);
    says(
        &expect(&p.with(Some(&spaced), None, None), &["clean-pem"]),
        &["certificate PEM", "trailing"],
    );

    // The intermediate's base64 re-wrapped at 76 columns (MIME style).
    openssl(
        p.path(),
        &[
            "x509", "-in", "int.pem", "-outform", "DER", "-out", "int.der",
        ],
    );
    let b64 = openssl(p.path(), &["base64", "-A", "-in", "int.der"]);
    let lines: Vec<String> = b64
        .trim()
        .as_bytes()
        .chunks(76)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let wide = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n{}",
        lines.join("\n"),
        p.root
    );
    says(
        &expect(&p.with(None, None, Some(&wide)), &["clean-pem"]),
        &["chain PEM", "76 columns"],
    );

    // openssl's text dumps around the PEM (-text_pub keeps the key field under 5120 bytes).
    let text = |args: &[&str]| openssl(p.path(), args);
    let cert = text(&["x509", "-in", "leaf.pem", "-text"]);
    let key = text(&["pkey", "-in", "leaf.key", "-text_pub"]);
    let chain =
        text(&["x509", "-in", "int.pem", "-text"]) + &text(&["x509", "-in", "root.pem", "-text"]);
    for (field, b) in [
        ("certificate PEM", p.with(Some(&cert), None, None)),
        ("private key PEM", p.with(None, Some(&key), None)),
        ("chain PEM", p.with(None, None, Some(&chain))),
    ] {
        says(
            &expect(&b, &["clean-pem"]),
            &[field, "outside the PEM blocks"],
        );
    }
}

#[test]
fn garbage_never_panics() {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut noise = |n: usize| -> String {
        let bytes: Vec<u8> = (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let block = |label: &str, body: &str| {
        format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
    };
    let b64ish: String = noise(400)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let inputs = [
        String::new(),
        noise(64),
        noise(3000),
        "-----BEGIN CERTIFICATE-----\n".to_owned(),
        block("CERTIFICATE", "!!!! not base64 ????"),
        block("CERTIFICATE", "MAA="),
        block("CERTIFICATE", &b64ish),
        block("PRIVATE KEY", "MAMCAQA="),
        block("PRIVATE KEY", &b64ish),
    ];
    for cert in &inputs {
        for key in &inputs {
            for chain in &inputs {
                for role in [ImportRole::Server, ImportRole::Client] {
                    let found = check(&bundle(cert, key, chain), role, OffsetDateTime::now_utc());
                    assert!(!found.is_empty(), "accepted: {cert:?} {key:?} {chain:?}");
                }
            }
        }
    }
}
