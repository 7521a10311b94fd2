//! A PKI made by the `openssl` CLI the way easy-rsa keeps one, with certificates that expired
//! long ago: vpnca cannot back-date, so expired certificates reach a store only by
//! `import-easyrsa`.

use std::path::Path;

use super::{EC_P256, openssl_ok, openssl_req};

/// A PKI made by `openssl ca` the way easy-rsa keeps one (ca.crt, private/ca.key, index.txt,
/// certs_by_serial/), with `expired_revoked` (revoked, expired in 2020), `expired_valid`
/// (never revoked, expired in 2020) and `current` (valid, 825 days). Returns its `pki` path.
pub fn openssl_pki_with_expired(dir: &Path) -> std::path::PathBuf {
    let expired: &[&str] = &[
        "-startdate",
        "20200101000000Z",
        "-enddate",
        "20200201000000Z",
    ];
    openssl_pki(
        dir,
        &[
            ("expired_revoked", expired),
            ("expired_valid", expired),
            ("current", &[]),
        ],
        &["expired_revoked"],
    )
}

/// A PKI made by `openssl ca` the way easy-rsa keeps one, with a client certificate per `(CN,
/// extra openssl ca options)` (CNs in UTF-8, kept as given: NFD stays NFD) and the named ones
/// revoked (keyCompromise). Keys stay outside the PKI (`old/CN.key`). Returns its `pki` path.
pub fn openssl_pki(dir: &Path, certs: &[(&str, &[&str])], revoked: &[&str]) -> std::path::PathBuf {
    let pki = dir.join("old/pki");
    for d in ["private", "certs_by_serial"] {
        std::fs::create_dir_all(pki.join(d)).expect("mkdir");
    }
    std::fs::write(pki.join("index.txt"), "").expect("index.txt");
    std::fs::write(pki.join("serial"), "1000\n").expect("serial");
    let cnf = dir.join("old/openssl.cnf");
    std::fs::write(
        &cnf,
        "[ ca ]\ndefault_ca = oldca\n\
         [ oldca ]\ndir = ./pki\ndatabase = $dir/index.txt\nnew_certs_dir = $dir/certs_by_serial\n\
         certificate = $dir/ca.crt\nprivate_key = $dir/private/ca.key\nserial = $dir/serial\n\
         default_md = sha256\npolicy = pol\nunique_subject = no\nx509_extensions = client_ext\n\
         default_days = 825\n\
         [ pol ]\ncommonName = supplied\n\
         [ client_ext ]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n\
         extendedKeyUsage = clientAuth\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n\
         [ req ]\ndistinguished_name = dn\nstring_mask = utf8only\nutf8 = yes\n[ dn ]\n\
         [ ca_ext ]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier = hash\n",
    )
    .expect("openssl.cnf");
    let old = dir.join("old");
    let run = |args: &[&str]| {
        openssl_ok(args, &old);
    };
    run(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        "pki/private/ca.key",
    ]);
    run(&[
        "req",
        "-config",
        "openssl.cnf",
        "-x509",
        "-new",
        "-key",
        "pki/private/ca.key",
        "-subj",
        "/CN=Old VPN CA",
        "-days",
        "3650",
        "-extensions",
        "ca_ext",
        "-out",
        "pki/ca.crt",
    ]);
    for (cn, dates) in certs.iter().copied() {
        let csr = format!("{cn}.csr");
        let config = ["-config", "openssl.cnf"];
        openssl_req(&old, EC_P256, cn, &format!("{cn}.key"), &csr, &config);
        let mut args = vec![
            "ca",
            "-config",
            "openssl.cnf",
            "-batch",
            "-notext",
            "-utf8",
            "-in",
        ];
        let crt = format!("{cn}.crt");
        args.push(&csr);
        args.extend_from_slice(dates);
        args.extend(["-out", &crt]);
        run(&args);
    }
    for cn in revoked {
        let crt = format!("{cn}.crt");
        run(&[
            "ca",
            "-config",
            "openssl.cnf",
            "-revoke",
            &crt,
            "-crl_reason",
            "keyCompromise",
        ]);
    }
    pki
}
