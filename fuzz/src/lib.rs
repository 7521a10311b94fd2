//! What each fuzz target does with its input, one function per target in `fuzz_targets/`.
//!
//! tests/fuzz_regressions.rs includes this file, so the normal test suite makes exactly the
//! fuzzers' calls on the seeds and on every saved crash. Each function returns whether the
//! input was accepted (the test checks that each target's seeds reach the success path); a
//! panic is a bug in vpnca.
//!
//! `ovpn` and `store_open` keep a directory per process in `$TMPDIR` (removed by
//! [`remove_temp_dir`]); call each from one thread at a time.

use std::path::PathBuf;
use std::sync::LazyLock;

use vpnca::batch::{self, BatchFormat};
use vpnca::ovpn::{self, ClientConfig, ProfileBase, ProfileContext, Proto};
use vpnca::{
    CertKind, IssueRequest, KdfParams, KeyAlgorithm, Passphrase, RevocationReason, Store, Validity,
};

/// The passphrase of the encrypted seeds (easy-rsa keys, stores): fuzz/generate-seeds.sh.
pub const PASSPHRASE: &str = "vpnca-fuzz-passphrase";

static PASS: LazyLock<Passphrase> = LazyLock::new(|| Passphrase::new(PASSPHRASE.into()));

/// The cheapest Argon2id cost the library accepts, which the seed stores use.
const CHEAP_KDF: KdfParams = KdfParams {
    m_kib: 8 * 1024,
    t: 1,
    p: 1,
};

/// `csr`: a certificate signing request, as `vpnca sign-req FILE` reads it (PEM
/// `CERTIFICATE REQUEST` / `NEW CERTIFICATE REQUEST`, or DER; self-signature checked).
pub fn csr(data: &[u8]) -> bool {
    vpnca::Csr::parse(data, "fuzz").is_ok()
}

/// `batch`: a batch file, as `vpnca client --batch` and `vpnca revoke --batch` read it, then
/// every row checked. The first byte picks the call: bits 0–1 the `--format` (0 or 3:
/// detected, 1 `csv`, 2 `jsonl`), bit 2 the revoke columns instead of the issue ones. The
/// rest is the file.
pub fn batch(data: &[u8]) -> bool {
    let Some((&selector, file)) = data.split_first() else {
        return false;
    };
    let format = match selector & 0b11 {
        1 => Some(BatchFormat::Csv),
        2 => Some(BatchFormat::Jsonl),
        _ => None,
    };
    // The columns of src/cli/batch.rs.
    if selector & 0b100 == 0 {
        let Ok(records) =
            batch::read_records(file, format, "fuzz", batch::ISSUE_COLUMNS, &["name"])
        else {
            return false;
        };
        let template = IssueRequest::new(String::new(), CertKind::Client);
        let (rows, errors) = batch::parse_issue_rows(&records, &template);
        !rows.is_empty() && errors.is_empty()
    } else {
        let Ok(records) = batch::read_records(
            file,
            format,
            "fuzz",
            batch::REVOKE_COLUMNS,
            &["name", "serial"],
        ) else {
            return false;
        };
        let (rows, errors) = batch::parse_revoke_rows(&records, RevocationReason::Unspecified);
        !rows.is_empty() && errors.is_empty()
    }
}

/// `easyrsa_index`: an easy-rsa `index.txt` (OpenSSL's CA database), as `vpnca import-easyrsa`
/// reads it. Only with `--cfg fuzzing` (the library's entry point exists only there).
#[cfg(fuzzing)]
pub fn easyrsa_index(data: &[u8]) -> bool {
    let (lines, problems) = vpnca::easyrsa::fuzzing::index(data);
    lines > 0 && problems == 0
}

/// `easyrsa_key`: an easy-rsa private key file, as `vpnca import-easyrsa` reads it: PKCS#8
/// (plain or PBES2-encrypted) or traditional OpenSSL PEM (plain, or `Proc-Type: 4,ENCRYPTED`
/// with DES-EDE3-CBC / AES-*-CBC `DEK-Info`). The first byte picks the passphrase: odd gives
/// [`PASSPHRASE`] (so decryption of the seeds succeeds), even none. The rest is the file.
/// Only with `--cfg fuzzing`.
#[cfg(fuzzing)]
pub fn easyrsa_key(data: &[u8]) -> bool {
    let Some((&selector, file)) = data.split_first() else {
        return false;
    };
    let pass = (selector & 1 == 1).then_some(&*PASS);
    vpnca::easyrsa::fuzzing::key(file, pass).is_some()
}

/// `profile`: a certificate profile template (TOML), as `vpnca` reads `profiles/NAME.toml`.
pub fn profile(data: &[u8]) -> bool {
    std::str::from_utf8(data).is_ok_and(|text| vpnca::Profile::parse(text, "fuzz").is_ok())
}

/// A certificate and key to put into profiles: `compose` only copies their lines.
const CERT_PEM: &str = "-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n";
const KEY_PEM: &str = "-----BEGIN KEY-----\nMA==\n-----END KEY-----\n";

/// How many input lines `ovpn` gives to `parse_remote`.
const REMOTE_LINES: usize = 32;

fn temp_dir(target: &str) -> PathBuf {
    std::env::temp_dir().join(format!("vpnca-fuzz-{target}-{}", std::process::id()))
}

/// The CA chain of a store made once per process.
static PROFILE_CONTEXT: LazyLock<ProfileContext> = LazyLock::new(|| {
    let dir = temp_dir("ovpn");
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::init(&dir, &PASS, CHEAP_KDF).expect("fuzz setup: init a store");
    store
        .create_root_ca("Fuzz CA", KeyAlgorithm::P256, Validity::Default)
        .expect("fuzz setup: create a CA");
    ProfileContext::new(&store).expect("fuzz setup: read the CA chain")
});

/// `ovpn`: an OpenVPN client configuration, as `vpnca profile NAME --config FILE` reads it
/// (the file an AWS Client VPN endpoint exports), and `--remote HOST[:PORT]`. A configuration
/// that parses is made into a profile as the command does (its `<ca>` block read, credentials
/// replaced, `--random-hostname-prefix` applied). The first lines of the input also go to
/// `parse_remote` (a `remote HOST PORT` line as `HOST:PORT`), and an accepted remote into a
/// plain (`--remote`) profile.
pub fn ovpn(data: &[u8]) -> bool {
    let mut accepted = false;
    if let Ok(config) = ClientConfig::parse(data, "fuzz") {
        let _ = config.ca_certificates();
        let base = ProfileBase::Endpoint {
            config,
            random_hostname_prefix: true,
        };
        accepted = PROFILE_CONTEXT.compose(&base, CERT_PEM, KEY_PEM).is_ok();
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return accepted;
    };
    for line in text.lines().take(REMOTE_LINES) {
        let line = line.trim();
        let arg = match line.split_whitespace().collect::<Vec<_>>()[..] {
            ["remote", host, port, ..] => format!("{host}:{port}"),
            _ => line.to_owned(),
        };
        if let Ok((host, port)) = ovpn::parse_remote(&arg) {
            let base = ProfileBase::Plain {
                server_name: Some(host.clone()),
                host,
                port,
                proto: Proto::Udp,
            };
            let _ = PROFILE_CONTEXT.compose(&base, CERT_PEM, KEY_PEM);
        }
    }
    accepted
}

/// `store_open`: a store database file (`vpnca.db`) in an otherwise empty store directory,
/// opened as every command opens it, then read as the commands that work locked read it
/// (`list`, `status`, `show`, `log`). When the header names the cheapest Argon2id cost (as
/// the seeds do), it is also unlocked with [`PASSPHRASE`] and verified; a costlier header is
/// not unlocked, so that one input cannot take seconds or gigabytes (the library accepts up
/// to 4 GiB and 100 passes).
pub fn store_open(data: &[u8]) -> bool {
    let dir = temp_dir("store_open");
    // Nothing from the previous input: SQLite's journals, the mirrors `verify` repaired.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("issued")).expect("fuzz: create the store directory");
    std::fs::write(dir.join(vpnca::store::DB_FILE), data).expect("fuzz: write the store file");

    let Ok(mut store) = Store::open(&dir) else {
        return false;
    };
    let _ = store.count();
    let _ = store.has_ca();
    let _ = store.ca_chain_pem();
    let _ = store.list(&Default::default());
    let _ = store.by_name("alice");
    let _ = store.current("alice");
    let _ = store.live("alice");
    let _ = store.audit_log();
    let _ = store.audit_log_checked();
    let _ = store.latest_crl();
    let _ = store.last_revocation();
    let _ = store.status(30);
    let cheap = store
        .kdf_params()
        .is_ok_and(|k| k.m_kib <= CHEAP_KDF.m_kib && k.t <= CHEAP_KDF.t && k.p <= CHEAP_KDF.p);
    if !(cheap && store.unlock(&PASS).is_ok()) {
        return false;
    }
    let Ok(rep) = store.verify() else {
        return false;
    };
    if rep.problems.is_empty() {
        return true;
    }
    // The input is the database alone, so a store that had a checkpoint comes without it, which
    // `verify` reports as a rollback. Accept it as `verify --accept-restore` does (only into an
    // otherwise intact store): that is a write, so it also runs the one-time upgrades an older
    // seed needs (format 1, the audit hash chain, the look-alike index) on fuzzed bytes.
    if rep.rollback.is_empty() || rep.problems.len() != rep.rollback.len() {
        return false;
    }
    if !matches!(store.accept_restore(), Ok(Some(_))) {
        return false;
    }
    store.verify().is_ok_and(|r| r.problems.is_empty())
}

/// Removes this process's directory of a target (`ovpn`, `store_open`).
pub fn remove_temp_dir(target: &str) {
    let _ = std::fs::remove_dir_all(temp_dir(target));
}
