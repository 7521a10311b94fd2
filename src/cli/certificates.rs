//! Certificate commands (docs/commands-certificates.md): `ca`, `server`, `client`, `sign-req`,
//! `renew`, `list`, `show`, `export`. The `--batch` forms of `client` and `sign-req` are in
//! batch.rs; the arguments are defined in args.rs.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use vpnca::fsutil::{InputLimit, Output, check_output, read_bounded};
use vpnca::{
    CertKind, CertRecord, Csr, IssueRequest, KeyAlgorithm, KeyExport, ListFilter, RenewOptions,
    San, Serial, Store, Validity,
};

use super::args::{
    CaArgs, Cli, ClientArgs, ExportArgs, ExportFormat, ListArgs, RenewArgs, ServerArgs, ShowArgs,
    SignReqArgs,
};
use super::batch;
use super::options::{
    PublicOut, algorithm, issue_request, public_out, sans, validity, warn_client_vpn,
};
use super::output::{
    Out, UNVERIFIED, crl_json, human_record, print_issued, printable, record_json, sh,
    stdout_failed, terminal, warn,
};
use super::passphrase::{export_passphrase, note_nopass, open_unlocked, read_new_secret_file};
use super::revocation::{add_deferred, after_crl, print_upload_steps};

/// `vpnca ca`: a root CA, a sub-CA's request (`--sub-ca`), or the sub-CA's signed certificate
/// (`--import-cert`).
pub(super) fn ca(cli: &Cli, out: &Out, args: &CaArgs) -> Result<u8> {
    let CaArgs {
        cn,
        algo,
        days,
        sub_ca,
        csr_out,
        import_cert,
        chain,
        nopass,
        #[cfg(feature = "aws")]
        kms_key,
        #[cfg(feature = "aws")]
        kms_create,
        #[cfg(feature = "aws")]
        kms_alias,
        #[cfg(feature = "aws")]
        move_to_kms,
        #[cfg(feature = "aws")]
        kms_switch,
        #[cfg(feature = "aws")]
        aws,
    } = args;
    note_nopass(nopass)?;
    #[cfg(feature = "aws")]
    if kms_key.is_none()
        && !kms_create
        && move_to_kms.is_none()
        && kms_switch.is_none()
        && import_cert.is_none()
        && (aws.aws_profile.is_some() || aws.region.is_some() || aws.endpoint_url.is_some())
    {
        bail!(
            "--profile, --region and --endpoint-url of `vpnca ca` go with --kms-key, --kms-create, --move-to-kms, --kms-switch or --import-cert"
        );
    }
    #[cfg(feature = "aws")]
    if let Some(key) = move_to_kms {
        let store = open_unlocked(cli)?;
        return ca_move_to_kms(&store, out, key, aws);
    }
    #[cfg(feature = "aws")]
    if let Some(key) = kms_switch {
        let store = open_unlocked(cli)?;
        return ca_kms_switch(&store, out, key, aws);
    }
    // Checked before the request (and its key) is recorded: a bad --csr-out changes nothing.
    let dest = csr_out
        .as_deref()
        .map(|f| public_out(f, "--csr-out", out.json, Output::New))
        .transpose()?;
    let store = open_unlocked(cli)?;
    let cn = cn.clone().unwrap_or_else(|| "vpnca CA".to_string());
    let validity = days.map(Validity::Days).unwrap_or(Validity::Default);
    #[cfg(feature = "aws")]
    let kms = CaKms {
        key: kms_key.as_deref(),
        create: *kms_create,
        alias: kms_alias.as_deref(),
        algo: algo.as_deref(),
        aws,
    };
    if let (Some(cert), Some(chain)) = (import_cert, chain) {
        // A sub-CA on a KMS key is checked against the key, with these options' client.
        #[cfg(feature = "aws")]
        if aws.aws_profile.is_some() || aws.region.is_some() || aws.endpoint_url.is_some() {
            let client = vpnca::aws::kms::Kms::connect(&kms_options(aws))?;
            store.use_kms(std::sync::Arc::new(client));
        }
        let cert_data = read_bounded(cert, &InputLimit::CERTIFICATE)?;
        let chain_data = read_bounded(chain, &InputLimit::CERTIFICATE)?;
        let rec = store.import_sub_ca_cert(
            &cert_data,
            &cert.display().to_string(),
            &chain_data,
            &chain.display().to_string(),
        )?;
        let warnings = ca_warnings(&store, &rec);
        #[cfg_attr(not(feature = "aws"), allow(unused_mut))]
        let mut doc = record_json(&rec);
        #[cfg(feature = "aws")]
        if let (Some(r), Value::Object(m)) = (store.ca_key_in_kms()?, &mut doc) {
            m.insert("kms_key".into(), kms_key_json(&r));
        }
        out.changed(&store, with_warnings(doc, &warnings), || {
            outln!(
                "Sub-CA {} imported (serial {}); its chain is in {}",
                printable(&rec.name),
                rec.serial,
                store.ca_path().display()
            );
        });
    } else if *sub_ca {
        let dest = dest.ok_or_else(|| anyhow!("--sub-ca needs --csr-out FILE"))?;
        let mut doc = json!({"name": cn});
        #[cfg(feature = "aws")]
        let csr = match kms.key_for(|| store.check_sub_ca(&cn))? {
            Some((client, key, policy)) => {
                let (csr, reference) = store
                    .create_sub_ca_request_kms(&cn, &client, &key)
                    .with_context(|| kms.created_note(&key, "--sub-ca --csr-out FILE "))?;
                doc["kms_key"] = kms_key_json(&reference);
                if let Some(p) = policy {
                    doc["key_policy"] = p;
                }
                csr
            }
            None => store.create_sub_ca_request(&cn, algorithm(algo)?)?,
        };
        #[cfg(not(feature = "aws"))]
        let csr = store.create_sub_ca_request(&cn, algorithm(algo)?)?;
        let next = "Have your parent CA sign it, then: vpnca ca --import-cert signed.crt --chain parent-chain.pem";
        let path = match dest {
            PublicOut::Stdout => {
                // Standard output carries the request alone, for a pipe.
                outp!("{csr}");
                errln!("Wrote the sub-CA request to standard output.");
                errln!("{next}");
                return Ok(0);
            }
            PublicOut::File(path) => path,
        };
        vpnca::fsutil::create_output(path, csr.as_bytes(), 0o644).with_context(|| {
            format!(
                "the sub-CA request is recorded in the store, but writing it failed (run `vpnca ca --sub-ca --csr-out {}` again with a path that can be written: it replaces the unfinished request)",
                path.display()
            )
        })?;
        doc["csr"] = json!(path);
        out.changed(&store, doc, || {
            outln!("Wrote the sub-CA request to {}.", path.display());
            outln!("{next}");
        });
    } else {
        #[cfg(feature = "aws")]
        if let Some((client, key, policy)) = kms.key_for(|| store.check_root_ca(&cn, validity))? {
            return ca_on_kms(&store, out, &cn, client, &key, validity, policy)
                .with_context(|| kms.created_note(&key, ""));
        }
        let rec = store.create_root_ca(&cn, algorithm(algo)?, validity)?;
        let warnings = ca_warnings(&store, &rec);
        out.changed(&store, with_warnings(record_json(&rec), &warnings), || {
            outln!(
                "Created root CA {} (serial {}), valid until {}",
                sh(&rec.name),
                rec.serial,
                vpnca::fmt_time(rec.not_after)
            );
            outln!("CA certificate: {}", store.ca_path().display());
        });
    }
    Ok(0)
}

/// The KMS options of `vpnca ca` for a new CA (root or sub-CA): an existing key
/// (`--kms-key`) or one to create (`--kms-create`, `--kms-alias`, `--algo`).
#[cfg(feature = "aws")]
struct CaKms<'a> {
    key: Option<&'a str>,
    create: bool,
    alias: Option<&'a str>,
    algo: Option<&'a str>,
    aws: &'a super::args::AwsOpts,
}

#[cfg(feature = "aws")]
impl CaKms<'_> {
    /// The KMS client and key the new CA is made on, and with `--kms-create` the key policy
    /// of the key it created now (printed to standard error, as JSON for the output
    /// document); `None` for a CA whose key the store makes. `check` runs before a key is
    /// created: a refused CA leaves no key behind.
    fn key_for(
        &self,
        check: impl FnOnce() -> vpnca::Result<()>,
    ) -> Result<Option<(vpnca::aws::kms::Kms, String, Option<Value>)>> {
        if let Some(key) = self.key {
            let client = vpnca::aws::kms::Kms::connect(&kms_options(self.aws))?;
            return Ok(Some((client, key.to_owned(), None)));
        }
        if !self.create {
            return Ok(None);
        }
        let spec = vpnca::aws::kms::KeySpec::for_algorithm(algorithm(&self.algo.map(str::to_owned))?)
            .ok_or_else(|| anyhow!("--kms-create: KMS keys for a vpnca CA are rsa2048, rsa3072, rsa4096, p256 or p384, not {}", self.algo.unwrap_or("")))?;
        check()?;
        let client = vpnca::aws::kms::Kms::connect(&kms_options(self.aws))?;
        let (key, policy) = client.create_ca_key(spec, self.alias)?;
        errln!(
            "Created KMS key {} ({}) with this key policy:",
            printable(&key.arn),
            key.key_spec
        );
        for line in policy.lines() {
            errln!("{line}");
        }
        if let Some(a) = self.alias {
            errln!("Alias {} names it.", printable(a));
        }
        let policy: Value = serde_json::from_str(&policy).unwrap_or(Value::String(policy));
        Ok(Some((client, key.arn, Some(policy))))
    }

    /// The note added to an error on the KMS key `key` (`args`: the command's other
    /// options): after `--kms-create` made it, how to finish on it.
    fn created_note(&self, key: &str, args: &str) -> String {
        if self.create {
            format!(
                "the KMS key {key} was created; once the problem is fixed, make the CA on it with `vpnca ca {args}--kms-key {key}` (or schedule its deletion)"
            )
        } else {
            format!("the CA was not made on KMS key {key}")
        }
    }
}

/// The KMS key of a CA as the JSON output shows it.
#[cfg(feature = "aws")]
fn kms_key_json(r: &vpnca::ca_key::KmsKeyRef) -> Value {
    json!({"arn": r.arn, "region": r.region, "key_spec": r.key_spec,
        "signing_algorithm": r.signing_algorithm})
}

/// A KMS key as the messages name it: `ARN (SPEC, REGION)`.
#[cfg(feature = "aws")]
fn kms_key_text(r: &vpnca::ca_key::KmsKeyRef) -> String {
    format!("{} ({}, {})", printable(&r.arn), r.key_spec, r.region)
}

/// The CA record as `--json` prints it, with `members` added.
#[cfg(feature = "aws")]
fn ca_json_with<const N: usize>(ca: &CertRecord, members: [(&str, Value); N]) -> Value {
    let mut doc = record_json(ca);
    if let Value::Object(m) = &mut doc {
        for (k, v) in members {
            m.insert(k.into(), v);
        }
    }
    doc
}

/// `vpnca ca --kms-key KEY` / `--kms-create`: the root CA on a KMS key
/// (docs/aws.md#ca-key-in-kms); `policy`: the key policy of a key `--kms-create` made.
#[cfg(feature = "aws")]
fn ca_on_kms(
    store: &Store,
    out: &Out,
    cn: &str,
    kms: vpnca::aws::kms::Kms,
    key: &str,
    validity: Validity,
    policy: Option<Value>,
) -> Result<u8> {
    let rec = store.create_root_ca_kms(cn, kms, key, validity)?;
    let reference = store
        .ca_key_in_kms()?
        .ok_or_else(|| anyhow!("the new CA's KMS key reference is missing"))?;
    if let Some(spec) = vpnca::aws::kms::KeySpec::from_kms(&reference.key_spec) {
        super::options::warn_client_vpn(spec.key_algorithm());
    }
    let warnings = ca_warnings(store, &rec);
    let mut doc = record_json(&rec);
    if let Value::Object(m) = &mut doc {
        m.insert("kms_key".into(), kms_key_json(&reference));
        if let Some(p) = policy {
            m.insert("key_policy".into(), p);
        }
    }
    out.doc(&with_warnings(doc, &warnings), || {
        outln!(
            "Created root CA {} (serial {}) on KMS key {}, valid until {}",
            sh(&rec.name),
            rec.serial,
            kms_key_text(&reference),
            vpnca::fmt_time(rec.not_after)
        );
        outln!("Its certificates and CRLs are signed with KMS Sign; the store keeps no CA key.");
        outln!("CA certificate: {}", store.ca_path().display());
    });
    Ok(0)
}

/// `vpnca ca --move-to-kms KEY`: the store's CA key moves into KMS, the CA certificate stays
/// (docs/aws.md#moving-an-existing-ca-key-into-kms).
#[cfg(feature = "aws")]
fn ca_move_to_kms(store: &Store, out: &Out, key: &str, aws: &super::args::AwsOpts) -> Result<u8> {
    let kms = vpnca::aws::kms::Kms::connect(&kms_options(aws))?;
    let moved = store.move_ca_key_to_kms(kms, key)?;
    if let Some(e) = &moved.compact_error {
        warn(&format!(
            "the key is moved, but the store file could not be rewritten ({e}): its unused space may still hold the encrypted CA key; run `sqlite3 {} VACUUM` when no vpnca runs",
            store.dir().join("vpnca.db").display()
        ));
    }
    let reference = moved.reference;
    let ca = store.ca()?;
    let mut kms_key = kms_key_json(&reference);
    kms_key["origin"] = json!("EXTERNAL");
    let doc = ca_json_with(&ca, [("kms_key", kms_key), ("moved", Value::Bool(true))]);
    out.changed(store, doc, || {
        outln!(
            "Moved the key of CA {} (serial {}) into KMS key {}; the CA certificate is unchanged.",
            sh(&ca.name),
            ca.serial,
            kms_key_text(&reference)
        );
        outln!("The store no longer holds the CA key: certificates and CRLs are signed with KMS Sign.");
        outln!(
            "This key was made outside KMS: copies of the store from before the move (backups) still hold it, encrypted under the store passphrase."
        );
    });
    Ok(0)
}

/// `vpnca ca --kms-switch KEY`: the KMS CA signs with another key holding its key material
/// (docs/aws.md#disaster-recovery-one-region).
#[cfg(feature = "aws")]
fn ca_kms_switch(store: &Store, out: &Out, key: &str, aws: &super::args::AwsOpts) -> Result<u8> {
    let kms = vpnca::aws::kms::Kms::connect(&kms_options(aws))?;
    let switched = store.switch_ca_kms_key(kms, key)?;
    let (before, reference) = (switched.previous, switched.reference);
    let ca = store.ca()?;
    let doc = ca_json_with(
        &ca,
        [
            ("kms_key", kms_key_json(&reference)),
            (
                "previous_kms_key",
                json!({"arn": before.arn, "region": before.region}),
            ),
        ],
    );
    out.changed(store, doc, || {
        outln!(
            "CA {} (serial {}) now signs with KMS key {}; the CA certificate is unchanged.",
            sh(&ca.name),
            ca.serial,
            kms_key_text(&reference)
        );
        outln!(
            "It signed with {} ({}) before: `vpnca ca --kms-switch {} --region {}` switches back.",
            printable(&before.arn),
            before.region,
            printable(&before.arn),
            before.region
        );
    });
    Ok(0)
}

/// The AWS options of `vpnca ca` for a KMS client.
#[cfg(feature = "aws")]
fn kms_options(aws: &super::args::AwsOpts) -> vpnca::aws::AwsOptions {
    vpnca::aws::AwsOptions {
        profile: aws.aws_profile.clone(),
        region: aws.region.clone(),
        endpoint_url: aws.endpoint_url.clone(),
    }
}

/// What a new CA's validity means for what it signs ([`Store::ca_warnings`]), printed as
/// warnings. A failure to work it out is itself only a warning: the CA is made.
fn ca_warnings(store: &Store, ca: &CertRecord) -> Vec<String> {
    let warnings = store.ca_warnings(ca).unwrap_or_else(|e| {
        vec![format!(
            "could not compare the CA's validity with the certificates' ({e})"
        )]
    });
    for w in &warnings {
        warn(w);
    }
    warnings
}

/// Warns when a certificate just made ends with the CA, earlier than asked
/// ([`Store::cut_to_ca`]); returns the warning.
fn cut_to_ca(store: &Store, rec: &CertRecord) -> Vec<String> {
    let warnings: Vec<String> = store.cut_to_ca(rec).ok().flatten().into_iter().collect();
    for w in &warnings {
        warn(w);
    }
    warnings
}

/// `v` with a `warnings` array when there are any (the JSON shapes stay as they were
/// otherwise).
fn with_warnings(mut v: Value, warnings: &[String]) -> Value {
    if let (false, Value::Object(m)) = (warnings.is_empty(), &mut v) {
        m.insert("warnings".into(), json!(warnings));
    }
    v
}

/// `vpnca server NAME`.
pub(super) fn server(cli: &Cli, out: &Out, args: &ServerArgs) -> Result<u8> {
    let ServerArgs {
        name,
        san,
        key,
        nopass,
    } = args;
    note_nopass(nopass)?;
    let req = issue_request(name, CertKind::Server, sans(san)?, key)?;
    issue(cli, out, &req)
}

/// `vpnca client NAME`; with `--batch`, batch::client.
pub(super) fn client(cli: &Cli, out: &Out, args: &ClientArgs) -> Result<u8> {
    let ClientArgs {
        name,
        batch: batch_file,
        batch_opts,
        email,
        san,
        key,
        nopass,
    } = args;
    note_nopass(nopass)?;
    let mut list = sans(san)?;
    if let Some(e) = email {
        list.push(San::parse(&format!("email:{e}"))?);
    }
    if let Some(f) = batch_file {
        let template = IssueRequest {
            name: String::new(),
            kind: CertKind::Client,
            profile: key.template.clone(),
            algorithm: algorithm(&key.algo)?,
            validity: validity(key.days, &key.ttl)?,
            sans: list,
        };
        return batch::client(|| open_unlocked(cli), out, f, batch_opts, template);
    }
    let name = name
        .as_deref()
        .ok_or_else(|| anyhow!("give a NAME or --batch FILE"))?;
    let req = issue_request(name, CertKind::Client, list, key)?;
    issue(cli, out, &req)
}

/// Issues one certificate (`server`, `client`) and prints it.
fn issue(cli: &Cli, out: &Out, req: &IssueRequest) -> Result<u8> {
    let store = open_unlocked(cli)?;
    let rec = store.issue(req)?;
    print_issued(out, &store, &rec);
    cut_to_ca(&store, &rec);
    Ok(0)
}

/// `vpnca sign-req FILE --type TYPE` or `sign-req TYPE NAME`; with `--batch DIR`,
/// batch::sign_req.
pub(super) fn sign_req(cli: &Cli, out: &Out, args: &SignReqArgs) -> Result<u8> {
    let SignReqArgs {
        args,
        batch: batch_dir,
        skip_invalid,
        jobs,
        kind,
        name,
        san,
        days,
        template: profile,
    } = args;
    if let Some(dir) = batch_dir {
        let kind = match kind.as_deref() {
            Some(k) => sign_req_kind(k)?,
            None => bail!("--batch needs --type client|server"),
        };
        let template = IssueRequest {
            name: String::new(),
            kind,
            profile: profile.clone(),
            algorithm: KeyAlgorithm::default(),
            validity: validity(*days, &None)?,
            sans: sans(san)?,
        };
        return batch::sign_req(
            || open_unlocked(cli),
            out,
            dir,
            template,
            *skip_invalid,
            *jobs,
        );
    }
    let (path, kind, name) = match args.as_slice() {
        [file] => {
            let k = kind
                .as_deref()
                .ok_or_else(|| anyhow!("--type client|server is required"))?;
            (PathBuf::from(file), k.to_string(), name.clone())
        }
        [ty, req_name] => (
            cli.pki.join("reqs").join(format!("{req_name}.req")),
            ty.clone(),
            Some(name.clone().unwrap_or(req_name.clone())),
        ),
        _ => bail!("expected FILE or TYPE NAME"),
    };
    let kind = sign_req_kind(&kind)?;
    let data = read_bounded(&path, &InputLimit::CSR)?;
    let csr = Csr::parse(&data, &path.display().to_string())?;
    if let Some(alg) = csr.algorithm {
        warn_client_vpn(alg);
    }
    let sans = sans(san)?;
    let store = open_unlocked(cli)?;
    let rec = store.sign_request(
        &csr,
        kind,
        name.as_deref(),
        profile.as_deref(),
        days.map(Validity::Days).unwrap_or(Validity::Default),
        sans,
    )?;
    print_issued(out, &store, &rec);
    cut_to_ca(&store, &rec);
    Ok(0)
}

/// `sign-req --type`: client or server, in any case like every keyword vpnca reads.
fn sign_req_kind(k: &str) -> Result<CertKind> {
    if k.eq_ignore_ascii_case("client") {
        Ok(CertKind::Client)
    } else if k.eq_ignore_ascii_case("server") {
        Ok(CertKind::Server)
    } else {
        bail!("invalid --type {k:?}: expected client or server")
    }
}

/// `vpnca renew NAME`.
pub(super) fn renew(cli: &Cli, out: &Out, args: &RenewArgs) -> Result<u8> {
    let RenewArgs {
        name,
        days,
        ttl,
        reuse_key,
        algo,
        revoke_old,
        nopass,
    } = args;
    note_nopass(nopass)?;
    let opts = RenewOptions {
        validity: Some(validity(*days, ttl)?),
        reuse_key: *reuse_key,
        algorithm: match algo {
            Some(_) => Some(algorithm(algo)?),
            None => None,
        },
        revoke_old: *revoke_old,
    };
    let store = open_unlocked(cli)?;
    let r = store.renew(name, &opts)?;
    let warnings = cut_to_ca(&store, &r.new);
    let mut v = json!({"old": record_json(&r.old), "new": record_json(&r.new), "crl": r.crl.as_ref().map(|c| crl_json(c, &store.crl_path()))});
    add_deferred(&mut v, r.deferred.as_ref());
    let v = with_warnings(v, &warnings);
    out.changed(&store, v, || {
        outln!(
            "Renewed {}: new serial {} valid until {}",
            name,
            r.new.serial,
            vpnca::fmt_time(r.new.not_after)
        );
        outln!(
            "Old serial {} is now {}",
            r.old.serial,
            r.old.status(vpnca::store_now()).as_str()
        );
        if let Some(c) = &r.crl {
            outln!(
                "Wrote CRL #{} ({} entries) to {}",
                c.number,
                c.entries,
                store.crl_path().display()
            );
            print_upload_steps(&store);
        }
        #[cfg(feature = "aws")]
        print_reimport(&store, &r.new);
    });
    // The new certificate is issued either way; 3 when the old one's CRL was deferred.
    Ok(after_crl(&store, r.crl.as_ref(), r.deferred.as_ref()).unwrap_or(0))
}

/// After `renew`: ACM still holds the old certificate in every ARN the store imported this
/// name into; `acm import` puts the new one into the same ARN (the endpoints need no change).
/// A record that cannot be read is a warning: the renewal is done.
#[cfg(feature = "aws")]
fn print_reimport(store: &Store, new: &CertRecord) {
    let imports = match store.acm_imports() {
        Ok(i) => i,
        Err(e) => {
            warn(&format!("cannot read the store's ACM records ({e})"));
            return;
        }
    };
    for i in imports.iter().filter(|i| i.name == new.name) {
        outln!(
            "ACM still holds the old certificate (serial {}) in {}: re-import into the same ARN with `vpnca acm import --{} {} --region {}`",
            i.serial,
            printable(&i.arn),
            i.role.as_str(),
            sh(&i.name),
            sh(&i.region)
        );
    }
}

/// `vpnca list`: one line (or JSON line) per certificate.
pub(super) fn list(cli: &Cli, out: &Out, args: &ListArgs) -> Result<u8> {
    let ListArgs {
        status,
        kind,
        expiring_within,
    } = args;
    let store = Store::open(&cli.pki)?;
    // Every record is shown: the whole state is checked first against the signed head (a
    // store without a state-signing key yet is shown as it is; `status` says so).
    if store.check_public_state()?.is_none() && store.reads_unverified()? {
        warn(UNVERIFIED);
    }
    let filter = ListFilter {
        status: status.as_deref().map(str::parse).transpose()?,
        kind: kind.as_deref().map(str::parse).transpose()?,
        expiring_within_days: *expiring_within,
    };
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let written = store.list(&filter)?.iter().try_for_each(|r| {
        // Escaped like everything else written (output::terminal); the JSON stays the same.
        if out.json {
            w.write_all(terminal(format_args!("{}\n", record_json(r))).as_bytes())
        } else {
            w.write_all(terminal(format_args!("{}\n", human_record(r))).as_bytes())
        }
    });
    if let Err(e) = written.and_then(|()| w.flush()) {
        stdout_failed(e);
    }
    Ok(0)
}

/// `vpnca show NAME` or `show --serial HEX`.
pub(super) fn show(cli: &Cli, out: &Out, args: &ShowArgs) -> Result<u8> {
    let ShowArgs { name, serial, pem } = args;
    let store = Store::open(&cli.pki)?;
    // Checks the database against the checkpoint, and says when it cannot check more.
    if store.reads_unverified()? {
        warn(UNVERIFIED);
    }
    let r = select(&store, name, serial)?;
    let details = vpnca::x509::describe(&r.der)?;
    let mut v = record_json(&r);
    if let Value::Object(m) = &mut v {
        m.insert("subject".into(), json!(details.subject));
        m.insert("issuer".into(), json!(details.issuer));
        m.insert("sans".into(), json!(details.sans));
        m.insert("key_algorithm".into(), json!(details.key_algorithm));
        m.insert("fingerprint_sha256".into(), json!(r.fingerprint_sha256()));
        m.insert("pem".into(), json!(r.pem()));
    }
    out.doc(&v, || {
        outln!("name:        {}", printable(&r.name));
        outln!("kind:        {}", r.kind.as_str());
        outln!("status:      {}", r.status(vpnca::store_now()).as_str());
        outln!("serial:      {}", r.serial);
        outln!("subject:     {}", printable(&details.subject));
        outln!("issuer:      {}", printable(&details.issuer));
        let sans: Vec<_> = details.sans.iter().map(|s| printable(s)).collect();
        outln!("SANs:        {}", sans.join(", "));
        outln!("key:         {}", printable(&details.key_algorithm));
        outln!("not before:  {}", vpnca::fmt_time(r.not_before));
        outln!("not after:   {}", vpnca::fmt_time(r.not_after));
        if let (Some(t), Some(reason)) = (r.revoked_at, r.reason) {
            outln!("revoked:     {} ({})", vpnca::fmt_time(t), reason.as_str());
        }
        if let Some(s) = &r.superseded_by {
            outln!("superseded by serial {s}");
        }
        outln!("SHA-256:     {}", r.fingerprint_sha256());
        outln!(
            "key stored:  {}",
            if r.has_key {
                "yes (encrypted)"
            } else {
                "no (signed from a CSR)"
            }
        );
        if *pem {
            outp!("{}", r.pem());
        }
    });
    Ok(0)
}

/// `vpnca export NAME --out DIR`.
pub(super) fn export(cli: &Cli, out: &Out, args: &ExportArgs) -> Result<u8> {
    let ExportArgs {
        name,
        serial,
        out: dir,
        format,
        key,
        key_passphrase_file,
        force,
    } = args;
    check_output(dir, Output::Dir)?;
    let store = open_unlocked(cli)?;
    let r = select(&store, name, serial)?;
    let mut generated = None;
    let key_export = match (format, key, key_passphrase_file) {
        (ExportFormat::Pem, _, Some(f)) => KeyExport::Encrypted(read_new_secret_file(f)?),
        (ExportFormat::Pem, true, None) => KeyExport::Plain,
        (ExportFormat::Pem, false, None) => KeyExport::None,
        (ExportFormat::PemEncrypted | ExportFormat::P12, _, f) => {
            let (p, was_generated) = export_passphrase(f)?;
            if was_generated {
                generated = Some(p.clone());
            }
            if *format == ExportFormat::P12 {
                KeyExport::Pkcs12(p)
            } else {
                KeyExport::Encrypted(p)
            }
        }
    };
    let opts = vpnca::export::ExportOptions { force: *force };
    let rep = store.export_with(&r, dir, &key_export, &opts)?;
    let mut v = serde_json::to_value(&rep)?;
    if let (Some(p), Value::Object(m)) = (&generated, &mut v) {
        m.insert("passphrase".into(), json!(p.expose_str()));
    }
    out.changed(&store, v, || {
        for f in &rep.files {
            let how = if rep.replaced.contains(f) { "replaced" } else { "wrote" };
            outln!("{how} {}", f.display());
        }
        for f in &rep.unchanged {
            outln!("unchanged {} (identical)", f.display());
        }
        if let Some(p) = &generated {
            outln!("passphrase (shown once, not stored): {}", p.expose_str());
        }
        if rep.key == "plain" {
            errln!("note: {}.key is an UNENCRYPTED private key (mode 0600): import it where needed, then delete it", printable(&rep.name));
        }
    });
    Ok(0)
}

/// The certificate NAME or `--serial HEX` selects: NAME's current one (`ca`: the CA, unless a
/// certificate is named `ca`).
fn select(store: &Store, name: &Option<String>, serial: &Option<String>) -> Result<CertRecord> {
    match (name, serial) {
        (_, Some(s)) => Ok(store.by_serial(&s.parse::<Serial>()?)?),
        (Some(n), None) if n == "ca" && store.by_name("ca")?.is_empty() => Ok(store.ca()?),
        (Some(n), None) => Ok(store.current(n)?),
        (None, None) => bail!("give a NAME or --serial HEX"),
    }
}
