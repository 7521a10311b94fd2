//! Command-line definitions. The man page and shell completions are generated from these.
//!
//! Each command's arguments are one struct (`InitArgs`, `CaArgs`, …), handed whole to the
//! command's function (`store::init`, `certificates::ca`, …). A command's help text is the doc
//! comment on its `Command` variant (it overrides the struct's).

use std::path::PathBuf;

use clap::builder::{PossibleValue, StringValueParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use vpnca::{KeyAlgorithm, RevocationReason};

/// vpnca: a certificate authority for VPNs that authenticate users with certificates
/// (AWS Client VPN mutual TLS, OpenVPN). Every private key is encrypted at rest.
///
/// Exit codes: 0 ok, 1 a check found a problem (status, verify), 2 error (nothing was
/// changed), 3 an AWS call failed.
#[derive(Debug, Parser)]
#[command(
    name = "vpnca",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The PKI store directory.
    #[arg(
        long,
        global = true,
        help_heading = "Global options",
        env = "VPNCA_PKI",
        default_value = "./pki",
        value_name = "DIR"
    )]
    pub pki: PathBuf,
    /// Print machine-readable JSON (one document, or JSON lines for lists and logs).
    #[arg(long, global = true, help_heading = "Global options")]
    pub json: bool,
    /// Read the store passphrase from FILE (first line). Otherwise $VPNCA_PASSPHRASE, else a
    /// prompt on the terminal.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help_heading = "Global options"
    )]
    pub passphrase_file: Option<PathBuf>,
    /// A second checkpoint FILE outside the store folder, written and checked like
    /// <pki>/vpnca.checkpoint: catches the whole folder put back. Once used, it is required.
    #[arg(
        long,
        global = true,
        env = "VPNCA_CHECKPOINT",
        value_name = "FILE",
        help_heading = "Global options"
    )]
    pub checkpoint: Option<PathBuf>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options that choose a key and a validity.
#[derive(Debug, Args, Clone)]
pub struct KeyOpts {
    /// Key algorithm: rsa2048 (default; the only one AWS Client VPN accepts), rsa3072, rsa4096,
    /// p256, p384, ed25519.
    #[arg(
        long,
        value_name = "ALGO",
        value_parser = Keywords::algorithms(),
        hide_possible_values = true
    )]
    pub algo: Option<String>,
    /// Validity in days (default: the template's; 825 for servers and clients).
    #[arg(long, value_name = "N", conflicts_with = "ttl")]
    pub days: Option<u32>,
    /// Short validity: a number with unit m, h or d (e.g. 8h) for temporary access.
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
    /// The certificate template, i.e. profile (pki-templates/TEMPLATE.toml, or
    /// <pki>/templates/TEMPLATE.toml; see docs/profiles.md).
    // `--profile` was its name before: a hidden alias keeps old scripts working; on AWS
    // commands `--profile` is the AWS profile.
    #[arg(
        long,
        value_name = "TEMPLATE",
        alias = "profile",
        value_parser = Keywords::templates(),
        hide_possible_values = true
    )]
    pub template: Option<String>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new store (directory mode 0700) protected by a passphrase.
    #[command(visible_alias = "init-pki")]
    Init(InitArgs),
    /// Create the CA: a self-signed root, or a sub-CA signed by your corporate root.
    #[command(visible_alias = "build-ca")]
    Ca(CaArgs),
    /// Issue a server certificate (CN and DNS SAN = NAME, EKU serverAuth).
    #[command(visible_alias = "build-server-full")]
    Server(ServerArgs),
    /// Issue a client (user) certificate (CN = NAME, EKU clientAuth).
    #[command(visible_alias = "build-client-full")]
    Client(ClientArgs),
    /// Sign a certificate signing request (the request's extensions are ignored).
    ///
    /// `vpnca sign-req FILE.csr --type client` or easy-rsa's `vpnca sign-req client NAME`
    /// (reads <pki>/reqs/NAME.req).
    #[command(name = "sign-req")]
    SignReq(SignReqArgs),
    /// Revoke certificates and rewrite the CRL at once.
    ///
    /// `revoke NAME` revokes every unrevoked, unexpired certificate with that name (also ones
    /// superseded by a renewal); `--serial HEX` revokes exactly one.
    Revoke(RevokeArgs),
    /// Issue a new certificate for NAME (new key by default); the old one becomes superseded.
    Renew(RenewArgs),
    /// Write a new CRL to <pki>/crl.pem (and --out FILE).
    #[command(visible_alias = "gen-crl")]
    Crl(CrlArgs),
    /// List certificates.
    List(ListArgs),
    /// Show one certificate.
    #[command(visible_alias = "show-cert")]
    Show(ShowArgs),
    /// Export a certificate, its CA chain and (with --key) its private key to a directory.
    Export(ExportArgs),
    /// Write a user's OpenVPN profile (.ovpn) with their certificate and key inline.
    ///
    /// From an AWS Client VPN endpoint's downloaded configuration (--config), or complete for a
    /// plain OpenVPN server (--remote). The file is created new with mode 0600.
    #[command(group(clap::ArgGroup::new("base").required(true).args(["config", "remote"])))]
    Profile(ProfileArgs),
    /// Report what needs attention: CA and CRL expiry, certificates expiring soon (exit 1 if any).
    Status(StatusArgs),
    /// Move an easy-rsa PKI into this (new, CA-less) store: the CA, every certificate with its
    /// serial, dates and status, the keys, the revocations; vpnca's first CRL continues the old
    /// one. The easy-rsa folder is only read.
    #[command(name = "import-easyrsa")]
    ImportEasyrsa(ImportEasyrsaArgs),
    /// AWS Certificate Manager: import the server certificate (and re-import it, into the same
    /// ARN, after a renewal).
    #[cfg(feature = "aws")]
    #[command(subcommand)]
    Acm(AcmCommand),
    /// AWS Client VPN: push the CRL to endpoints, write users' profiles from an endpoint.
    #[cfg(feature = "aws")]
    #[command(name = "clientvpn")]
    #[command(subcommand)]
    ClientVpn(ClientVpnCommand),
    /// Certificate profiles: list them, print one, adopt `<pki>/templates/NAME.toml` into the
    /// store (checked, hashed, audited), or go back to the built-in one.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Print the audit log; or, with --syslog SOCKET, also send every new audit entry to
    /// syslog from now on.
    Log(LogArgs),
    /// Check the whole store: record MACs, keys, signatures, audit chain (exit 1 on problems).
    Verify(VerifyArgs),
    /// Change the store passphrase (new one from $VPNCA_NEW_PASSPHRASE, --new-passphrase-file, or a prompt).
    Passwd(PasswdArgs),
    /// Init + CA + server + clients + CRL in one non-interactive command.
    Quickstart(QuickstartArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one page per command into a directory.
    Man(ManArgs),
}

/// The arguments of `vpnca init` (src/cli/store.rs).
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Argon2id memory cost in MiB (default 64, minimum 8).
    #[arg(long, value_name = "MIB")]
    pub kdf_memory_mib: Option<u32>,
    /// Argon2id passes (default 3).
    #[arg(long, value_name = "N")]
    pub kdf_time: Option<u32>,
    /// Accept a passphrase that vpnca's estimate calls weak (a common password, or under 40
    /// bits; docs/commands-store.md#weak-passphrases).
    #[arg(long)]
    pub allow_weak_passphrase: bool,
    /// Ignored easy-rsa argument (e.g. `soft`).
    #[arg(hide = true)]
    pub extra: Vec<String>,
}

/// The arguments of `vpnca ca` (src/cli/certificates.rs).
#[derive(Debug, Args)]
pub struct CaArgs {
    /// The CA's common name.
    #[arg(long, value_name = "NAME")]
    pub cn: Option<String>,
    /// Key algorithm (default rsa2048).
    #[arg(
        long,
        value_name = "ALGO",
        value_parser = Keywords::algorithms(),
        hide_possible_values = true
    )]
    pub algo: Option<String>,
    /// Validity in days (default 3650).
    #[arg(long, value_name = "N")]
    pub days: Option<u32>,
    /// Make a subordinate CA: write a CSR for the parent CA to sign (needs --csr-out).
    #[arg(long, requires = "csr_out", conflicts_with = "import_cert")]
    pub sub_ca: bool,
    /// Where to write the sub-CA's certificate signing request (a new file; `-`: standard
    /// output).
    #[arg(long, value_name = "FILE", requires = "sub_ca")]
    pub csr_out: Option<PathBuf>,
    /// Complete a sub-CA with the certificate the parent CA signed.
    #[arg(long, value_name = "FILE", requires = "chain")]
    pub import_cert: Option<PathBuf>,
    /// The parent chain (issuer up to the root), PEM.
    #[arg(long, value_name = "FILE", requires = "import_cert")]
    pub chain: Option<PathBuf>,
    /// Make the root CA (with --sub-ca: the sub-CA's request) on this existing AWS KMS key
    /// (key ARN, key id or alias/NAME) instead of a key in the store: usage SIGN_VERIFY, spec
    /// RSA_2048 (RSA_3072, RSA_4096, ECC_NIST_P256, ECC_NIST_P384 work with OpenVPN only).
    /// Every certificate and CRL of the CA is then signed with KMS Sign, in the key's region
    /// (docs/aws.md#ca-key-in-kms).
    #[cfg(feature = "aws")]
    #[arg(long, value_name = "KEY", conflicts_with_all = ["algo", "import_cert"])]
    pub kms_key: Option<String>,
    /// Make the root CA (with --sub-ca: the sub-CA's request) on a new AWS KMS key that vpnca
    /// creates (CreateKey, SIGN_VERIFY, key spec from --algo: RSA_2048 by default), with the
    /// key policy it prints (and puts in the --json output as `key_policy`): the account's
    /// root may administer the key, the caller (STS GetCallerIdentity) may Sign, GetPublicKey
    /// and DescribeKey (docs/aws.md#ca-key-in-kms).
    #[cfg(feature = "aws")]
    #[arg(long, conflicts_with_all = ["kms_key", "import_cert"])]
    pub kms_create: bool,
    /// With --kms-create: also name the new key with this alias (alias/NAME).
    #[cfg(feature = "aws")]
    #[arg(long, value_name = "alias/NAME", requires = "kms_create")]
    pub kms_alias: Option<String>,
    /// Move the store's own CA key into this AWS KMS key (ARN, key id or alias/NAME), keeping
    /// the CA certificate: a key created with Origin EXTERNAL, usage SIGN_VERIFY and the CA
    /// key's spec, pending import. The key is wrapped in memory and imported; once KMS signs
    /// with it, the store deletes its copy (docs/aws.md#moving-an-existing-ca-key-into-kms).
    #[cfg(feature = "aws")]
    #[arg(
        long,
        value_name = "KEY",
        conflicts_with_all = ["cn", "algo", "days", "sub_ca", "import_cert", "kms_key", "kms_create"]
    )]
    pub move_to_kms: Option<String>,
    /// Sign from now on with this other AWS KMS key (ARN, key id or alias/NAME, in --region),
    /// which holds the CA's key material: a multi-Region replica of the CA's key, while its
    /// own region is out of reach, and back again. Its public key must be the CA
    /// certificate's (docs/aws.md#disaster-recovery-one-region).
    #[cfg(feature = "aws")]
    #[arg(
        long,
        value_name = "KEY",
        conflicts_with_all = ["cn", "algo", "days", "sub_ca", "csr_out", "import_cert", "chain", "kms_key", "kms_create", "move_to_kms"]
    )]
    pub kms_switch: Option<String>,
    #[cfg(feature = "aws")]
    #[command(flatten)]
    pub aws: AwsOpts,
    /// easy-rsa's `nopass` (accepted and ignored: keys are always encrypted).
    #[arg(hide = true)]
    pub nopass: Option<String>,
}

/// The arguments of `vpnca server` (src/cli/certificates.rs).
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server's DNS name.
    pub name: String,
    /// Extra subject alternative name: DNS:name or IP:address (repeatable).
    #[arg(long, value_name = "TYPE:VALUE")]
    pub san: Vec<String>,
    #[command(flatten)]
    pub key: KeyOpts,
    /// easy-rsa's `nopass` (accepted and ignored).
    #[arg(hide = true)]
    pub nopass: Option<String>,
}

/// The arguments of `vpnca client` (src/cli/certificates.rs; `--batch`: src/cli/batch.rs).
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The user's name.
    #[arg(required_unless_present = "batch", conflicts_with = "batch")]
    pub name: Option<String>,
    /// Issue one certificate per line of FILE (`-` = standard input): CSV with a header
    /// (name required; email, days, san optional) or JSON lines with the same fields.
    /// Every line is checked before anything is issued.
    #[arg(long, value_name = "FILE")]
    pub batch: Option<PathBuf>,
    #[command(flatten)]
    pub batch_opts: BatchOpts,
    /// The user's e-mail address, added as an rfc822Name SAN.
    #[arg(long, value_name = "ADDRESS")]
    pub email: Option<String>,
    /// Extra subject alternative name (email:address) (repeatable).
    #[arg(long, value_name = "TYPE:VALUE")]
    pub san: Vec<String>,
    #[command(flatten)]
    pub key: KeyOpts,
    /// easy-rsa's `nopass` (accepted and ignored).
    #[arg(hide = true)]
    pub nopass: Option<String>,
}

/// The arguments of `vpnca sign-req` (src/cli/certificates.rs; `--batch`: src/cli/batch.rs).
#[derive(Debug, Args)]
pub struct SignReqArgs {
    /// FILE, or TYPE NAME (easy-rsa form).
    #[arg(required_unless_present = "batch", num_args = 1..=2, value_name = "FILE | TYPE NAME")]
    pub args: Vec<String>,
    /// Sign every request (*.csr, *.req, *.pem, *.der) in DIR; each certificate is named by
    /// its request's CN. Needs --type.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["args", "name"])]
    pub batch: Option<PathBuf>,
    /// With --batch: sign the valid requests even if some are bad (they are reported).
    #[arg(long, requires = "batch")]
    pub skip_invalid: bool,
    /// With --batch: signing threads (default: every core; with the CA key in KMS, two per
    /// core, at most 16).
    #[arg(long, value_name = "N", requires = "batch")]
    pub jobs: Option<usize>,
    /// client or server.
    #[arg(
        long = "type",
        value_name = "TYPE",
        value_parser = Keywords::new(["client", "server"]),
        hide_possible_values = true
    )]
    pub kind: Option<String>,
    /// The certificate's name (default: the request's CN).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Extra SAN (repeatable).
    #[arg(long, value_name = "TYPE:VALUE")]
    pub san: Vec<String>,
    /// Validity in days.
    #[arg(long, value_name = "N")]
    pub days: Option<u32>,
    /// The certificate template (profile; see `client --template`).
    #[arg(
        long,
        value_name = "TEMPLATE",
        alias = "profile",
        value_parser = Keywords::templates(),
        hide_possible_values = true
    )]
    pub template: Option<String>,
}

/// The arguments of `vpnca revoke` (src/cli/revocation.rs; `--batch`: src/cli/batch.rs).
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The certificate name.
    #[arg(required_unless_present_any = ["serial", "batch"], conflicts_with_all = ["serial", "batch"])]
    pub name: Option<String>,
    /// Revoke every line of FILE (`-` = standard input): CSV with a header (name or serial;
    /// reason optional) or JSON lines. One CRL is written at the end.
    #[arg(long, value_name = "FILE", conflicts_with = "serial")]
    pub batch: Option<PathBuf>,
    /// With --batch: the input's format (default: detected).
    #[arg(long, value_name = "csv|jsonl", requires = "batch")]
    pub format: Option<String>,
    /// With --batch: an unknown name or serial is an error and nothing is revoked (default:
    /// reported and skipped).
    #[arg(long, requires = "batch")]
    pub strict: bool,
    /// With --batch: read our column OURS (name, serial, reason) from the file's column
    /// THEIRS, e.g. name=login (repeatable).
    #[arg(long, value_name = "OURS=THEIRS", requires = "batch")]
    pub column: Vec<String>,
    /// easy-rsa form: the reason as a second argument.
    #[arg(hide = true, value_parser = Keywords::reasons())]
    pub reason_arg: Option<String>,
    /// Revoke by serial number (hex).
    #[arg(long, value_name = "HEX")]
    pub serial: Option<String>,
    /// easy-rsa's `revoke-renewed NAME` (src/cli/easyrsa_compat): only NAME's superseded
    /// certificates, not its current one.
    #[arg(long, hide = true, requires = "name")]
    pub renewed_only: bool,
    /// keyCompromise, superseded, cessationOfOperation, affiliationChanged, caCompromise,
    /// certificateHold, unspecified (default).
    #[arg(
        long,
        value_name = "REASON",
        value_parser = Keywords::reasons(),
        hide_possible_values = true
    )]
    pub reason: Option<String>,
}

/// The arguments of `vpnca renew` (src/cli/certificates.rs).
#[derive(Debug, Args)]
pub struct RenewArgs {
    /// The certificate name.
    pub name: String,
    /// Validity in days (default: the template's).
    #[arg(long, value_name = "N", conflicts_with = "ttl")]
    pub days: Option<u32>,
    /// Short validity (e.g. 8h).
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
    /// Keep the old key pair.
    #[arg(long)]
    pub reuse_key: bool,
    /// Key algorithm for the new key (default: the old key's).
    #[arg(
        long,
        value_name = "ALGO",
        value_parser = Keywords::algorithms(),
        hide_possible_values = true
    )]
    pub algo: Option<String>,
    /// Revoke the old certificate (reason superseded) and rewrite the CRL.
    #[arg(long)]
    pub revoke_old: bool,
    /// easy-rsa's `nopass` (accepted and ignored).
    #[arg(hide = true)]
    pub nopass: Option<String>,
}

/// The arguments of `vpnca crl` (src/cli/revocation.rs).
#[derive(Debug, Args)]
pub struct CrlArgs {
    /// Days until nextUpdate (default 3650; kept for the CRLs that `revoke` writes).
    #[arg(long, value_name = "N")]
    pub days: Option<u32>,
    /// Also write the CRL to FILE (a regular file is replaced; `-`: standard output).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Leave out revoked certificates that have expired anyway (kept as the store's
    /// policy for the CRLs that `revoke` writes).
    #[arg(long, conflicts_with = "keep_expired")]
    pub omit_expired: bool,
    /// List expired revoked certificates again (the default; undoes --omit-expired).
    #[arg(long)]
    pub keep_expired: bool,
}

/// The arguments of `vpnca list` (src/cli/certificates.rs).
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only certificates with this status: valid, superseded, revoked, expired.
    #[arg(
        long,
        value_name = "STATUS",
        value_parser = Keywords::new(["valid", "superseded", "revoked", "expired"]),
        hide_possible_values = true
    )]
    pub status: Option<String>,
    /// Only this kind: ca, server, client.
    #[arg(
        long,
        value_name = "KIND",
        value_parser = Keywords::new(["ca", "server", "client"]),
        hide_possible_values = true
    )]
    pub kind: Option<String>,
    /// Only valid certificates that expire within DAYS.
    #[arg(long, value_name = "DAYS")]
    pub expiring_within: Option<u32>,
}

/// The arguments of `vpnca show` (src/cli/certificates.rs).
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The certificate name.
    #[arg(required_unless_present = "serial", conflicts_with = "serial")]
    pub name: Option<String>,
    /// Select by serial number (hex).
    #[arg(long, value_name = "HEX")]
    pub serial: Option<String>,
    /// Also print the certificate in PEM.
    #[arg(long)]
    pub pem: bool,
}

/// The arguments of `vpnca export` (src/cli/certificates.rs).
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The certificate name (`ca` for the CA: its key is exported only encrypted).
    #[arg(required_unless_present = "serial", conflicts_with = "serial")]
    pub name: Option<String>,
    /// Select by serial number (hex).
    #[arg(long, value_name = "HEX")]
    pub serial: Option<String>,
    /// The output directory (created 0700 if missing). Files are never overwritten.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// pem: NAME.crt + ca.crt (+ NAME.key with --key); pem-encrypted: the same with an
    /// encrypted NAME.key; p12: one NAME.p12 (certificate, key and chain; AES-256-CBC,
    /// PBKDF2-HMAC-SHA-256, SHA-256 MAC), mode 0600.
    #[arg(long, value_enum, ignore_case = true, default_value_t = ExportFormat::Pem)]
    pub format: ExportFormat,
    /// Also write NAME.key: unencrypted PKCS#8 PEM, mode 0600 (what ACM import needs).
    #[arg(long)]
    pub key: bool,
    /// The passphrase for the encrypted key or the PKCS#12 file (first line of FILE). Without
    /// it: a prompt on a terminal, else a generated passphrase printed once.
    #[arg(long, value_name = "FILE", visible_alias = "p12-passphrase-file")]
    pub key_passphrase_file: Option<PathBuf>,
    /// Replace public files in DIR (NAME.crt, ca.crt) that differ; identical ones are kept
    /// without it. Key files (NAME.key, NAME.p12) are never replaced.
    #[arg(long)]
    pub force: bool,
}

/// The arguments of `vpnca profile` (src/cli/delivery.rs; `--batch`: src/cli/batch.rs).
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// The user (a client certificate in the store).
    #[arg(required_unless_present = "batch", conflicts_with = "batch")]
    pub name: Option<String>,
    /// One profile per user listed in FILE (CSV with a `name` column, or JSON lines), written
    /// to --out DIR as NAME.ovpn.
    #[arg(long, value_name = "FILE", requires = "out")]
    pub batch: Option<PathBuf>,
    /// With --batch: read our column OURS from the file's column THEIRS, e.g. name=login
    /// (repeatable).
    #[arg(long, value_name = "OURS=THEIRS", requires = "batch")]
    pub column: Vec<String>,
    /// The client configuration downloaded from the Client VPN endpoint (console, or `aws
    /// ec2 export-client-vpn-client-configuration`). Kept as it is; <cert> and <key> added.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A plain OpenVPN server: HOST[:PORT] (port 1194 by default; [IPv6]:PORT).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub remote: Option<String>,
    /// Transport for --remote: udp (default) or tcp.
    #[arg(
        long,
        value_name = "udp|tcp",
        requires = "remote",
        conflicts_with = "config"
    )]
    pub proto: Option<String>,
    /// With --remote: accept only a server certificate with this CN (verify-x509-name).
    #[arg(
        long,
        value_name = "NAME",
        requires = "remote",
        conflicts_with = "config"
    )]
    pub server_name: Option<String>,
    /// With --config: replace `remote-random-hostname` by an explicit random label on the
    /// endpoint's DNS name (for clients that lack the directive).
    #[arg(long, requires = "config", conflicts_with = "remote")]
    pub random_hostname_prefix: bool,
    /// With --config: let the directive (or inline block) NAME of the configuration into the
    /// profiles although it is not on vpnca's allow-list (repeatable; see
    /// docs/commands-delivery.md#allowed-directives).
    #[arg(
        long,
        value_name = "NAME",
        requires = "config",
        conflicts_with = "remote"
    )]
    pub allow_directive: Vec<String>,
    /// With --config: accept a <ca> block that holds certificates besides this PKI's CA chain
    /// (a warning instead of an error).
    #[arg(long, requires = "config", conflicts_with = "remote")]
    pub allow_foreign_ca: bool,
    /// Encrypt the key inside the profile with the passphrase in FILE (the VPN client asks
    /// for it at connect time).
    #[arg(long, value_name = "FILE")]
    pub key_passphrase_file: Option<PathBuf>,
    /// The profile to write (default: ./NAME.ovpn); with --batch, the directory. Never
    /// overwritten.
    #[arg(long, value_name = "FILE|DIR")]
    pub out: Option<PathBuf>,
}

/// The arguments of `vpnca status` (src/cli/store.rs).
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Warn about anything expiring within N days.
    #[arg(long, value_name = "N", default_value_t = 30)]
    pub warn_days: u32,
    /// Also ask AWS: each recorded ACM certificate's expiry and serial, and whether each
    /// Client VPN endpoint holds the store's latest CRL (otherwise status stays offline).
    #[cfg(feature = "aws")]
    #[arg(long)]
    pub aws: bool,
    #[cfg(feature = "aws")]
    #[command(flatten)]
    pub aws_opts: AwsOpts,
}

/// The arguments of `vpnca import-easyrsa` (src/cli/easyrsa.rs).
#[derive(Debug, Args)]
pub struct ImportEasyrsaArgs {
    /// The easy-rsa `pki/` folder, or the folder holding it.
    pub path: PathBuf,
    /// The passphrase of easy-rsa's private/ca.key (first line of FILE).
    #[arg(long, value_name = "FILE")]
    pub easyrsa_passphrase_file: Option<PathBuf>,
    /// Show what would be imported and every problem found; import nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// The arguments of `vpnca verify` (src/cli/store.rs).
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Accept a database put back from an older copy (a restore from backup): revoke again
    /// what the newer crl.pem revokes, continue the CRL numbers above it, write a new CRL and
    /// move the checkpoint. Refused while verify finds any other problem.
    #[arg(long)]
    pub accept_restore: bool,
    /// Check the store against a state head noted earlier outside it (`SEQ:ROOT`, as
    /// `verify` prints it): a database older than that head, or another history at its
    /// sequence number, is a problem.
    #[arg(long, value_name = "SEQ:ROOT")]
    pub head: Option<String>,
    /// Check without the passphrase, against FILE, the CA certificate (PEM or DER) you hold:
    /// the state head signed by the store's state-signing key, that key certified by this CA,
    /// and every record, CRL and setting against the head. For read-only auditors and cron.
    #[arg(long, value_name = "FILE", conflicts_with = "accept_restore")]
    pub ca_cert: Option<PathBuf>,
}

/// The arguments of `vpnca log` (src/cli/store.rs).
#[derive(Debug, Args)]
pub struct LogArgs {
    /// From now on, also send each new audit entry (with its sequence number and MAC) to the
    /// syslog socket SOCKET right after its commit (usually /dev/log, read by journald or
    /// rsyslog): a store setting, audited; needs the passphrase. A copy of the log's tail then
    /// exists outside the store.
    #[arg(long, value_name = "SOCKET", conflicts_with = "no_syslog")]
    pub syslog: Option<PathBuf>,
    /// Stop sending audit entries to syslog (audited; needs the passphrase).
    #[arg(long)]
    pub no_syslog: bool,
}

/// The arguments of `vpnca passwd` (src/cli/store.rs).
#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Read the new passphrase from FILE.
    #[arg(long, value_name = "FILE")]
    pub new_passphrase_file: Option<PathBuf>,
    /// New Argon2id memory cost in MiB.
    #[arg(long, value_name = "MIB")]
    pub kdf_memory_mib: Option<u32>,
    /// New Argon2id passes.
    #[arg(long, value_name = "N")]
    pub kdf_time: Option<u32>,
    /// Accept a new passphrase that vpnca's estimate calls weak (a common password, or under
    /// 40 bits; docs/commands-store.md#weak-passphrases).
    #[arg(long)]
    pub allow_weak_passphrase: bool,
    /// Also draw a new data key: every private key re-encrypted, every MAC and the state redone,
    /// in one transaction, so that an old copy of the header or of the data key no longer opens
    /// or vouches for this store (when an admin leaves; docs/commands-store.md#passwd---rekey).
    #[arg(long)]
    pub rekey: bool,
}

/// The arguments of `vpnca quickstart` (src/cli/store.rs).
#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// The VPN server's DNS name.
    #[arg(long, value_name = "NAME")]
    pub server: String,
    /// A user to issue a certificate for (repeatable).
    #[arg(long, value_name = "NAME")]
    pub client: Vec<String>,
    /// The CA's common name.
    #[arg(long, value_name = "NAME")]
    pub cn: Option<String>,
    /// Argon2id memory cost in MiB (default 64).
    #[arg(long, value_name = "MIB")]
    pub kdf_memory_mib: Option<u32>,
    /// Argon2id passes (default 3).
    #[arg(long, value_name = "N")]
    pub kdf_time: Option<u32>,
    /// For a new store: accept a passphrase that vpnca's estimate calls weak (a common
    /// password, or under 40 bits; docs/commands-store.md#weak-passphrases).
    #[arg(long)]
    pub allow_weak_passphrase: bool,
}

/// The arguments of `vpnca completions` (src/cli/reference.rs).
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(ignore_case = true)]
    pub shell: clap_complete::Shell,
}

/// The arguments of `vpnca man` (src/cli/reference.rs).
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write vpnca.1 and one page per command (vpnca-init.1, vpnca-acm-import.1, …) into DIR
    /// (created if missing; existing pages are replaced) instead of printing vpnca.1.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// A keyword the library parses itself (in any case, with its own error message): the values
/// are here for shell completion only, and any string passes on to the library.
#[derive(Debug, Clone)]
pub struct Keywords(Vec<&'static str>);

impl Keywords {
    fn new(values: impl IntoIterator<Item = &'static str>) -> Self {
        Keywords(values.into_iter().collect())
    }

    fn algorithms() -> Self {
        Keywords::new(KeyAlgorithm::ALL.map(KeyAlgorithm::name))
    }

    /// The profiles a certificate can be issued with (a CA profile is refused; only built-in
    /// names can be overridden in <pki>/templates).
    fn templates() -> Self {
        Keywords::new(["server", "client", "server-client"])
    }

    /// Every profile name (`vpnca template`).
    fn profiles() -> Self {
        Keywords::new(vpnca::profile::BUILTIN.map(|(n, _)| n))
    }

    fn reasons() -> Self {
        Keywords::new(RevocationReason::ALL.map(RevocationReason::as_str))
    }
}

impl TypedValueParser for Keywords {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(self.0.iter().map(|v| PossibleValue::new(*v))))
    }
}

/// The file format of `vpnca export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// PEM certificate and chain, and with --key a plain PKCS#8 key.
    Pem,
    /// PEM certificate and chain and an encrypted PKCS#8 key (PBES2).
    PemEncrypted,
    /// One PKCS#12 file.
    P12,
}

/// Options of `client --batch`.
#[derive(Debug, Args)]
pub struct BatchOpts {
    /// The input's format (default: detected from the content).
    #[arg(long, value_name = "csv|jsonl", requires = "batch")]
    pub format: Option<String>,
    /// Read our column OURS from the file's column THEIRS, e.g. name=login (repeatable).
    /// Columns vpnca does not read are ignored and listed once.
    #[arg(long, value_name = "OURS=THEIRS", requires = "batch")]
    pub column: Vec<String>,
    /// Issue the valid lines even if some are bad (they are reported as invalid).
    #[arg(long, requires = "batch")]
    pub skip_invalid: bool,
    /// Key generation threads (default: every core; with the CA key in KMS, two per core, at
    /// most 16).
    #[arg(long, value_name = "N", requires = "batch")]
    pub jobs: Option<usize>,
    /// Re-issue names that already have a valid certificate (default: report `exists`).
    #[arg(long, requires = "batch")]
    pub renew: bool,
    /// Write each user's NAME.crt, NAME.key (unencrypted, 0600) and ca.crt into DIR.
    #[arg(long, value_name = "DIR", requires = "batch")]
    pub out: Option<PathBuf>,
    /// With --out: also write NAME.ovpn from this Client VPN endpoint configuration.
    #[arg(long, value_name = "FILE", requires = "out")]
    pub ovpn_config: Option<PathBuf>,
    /// With --ovpn-config: let the directive (or inline block) NAME of the configuration into
    /// the profiles although it is not on vpnca's allow-list (repeatable; see
    /// docs/commands-delivery.md#allowed-directives).
    #[arg(long, value_name = "NAME", requires = "ovpn_config")]
    pub allow_directive: Vec<String>,
    /// With --ovpn-config: accept a <ca> block that holds certificates besides this PKI's CA
    /// chain (a warning instead of an error).
    #[arg(long, requires = "ovpn_config")]
    pub allow_foreign_ca: bool,
}

/// Where and as whom to call AWS (otherwise the standard AWS environment, config and
/// credentials files apply).
#[cfg(feature = "aws")]
#[derive(Debug, Args, Clone)]
pub struct AwsOpts {
    /// The AWS profile of ~/.aws/config and ~/.aws/credentials (default: $AWS_PROFILE).
    #[arg(
        long = "profile",
        visible_alias = "aws-profile",
        value_name = "NAME",
        help_heading = "AWS options"
    )]
    pub aws_profile: Option<String>,
    /// The AWS region (default: $AWS_REGION, else the profile's).
    #[arg(long, value_name = "REGION", help_heading = "AWS options")]
    pub region: Option<String>,
    /// Send ACM and EC2 calls to URL (an emulator or a VPC endpoint). Per service:
    /// $AWS_ENDPOINT_URL_ACM, $AWS_ENDPOINT_URL_EC2.
    #[arg(long, value_name = "URL", help_heading = "AWS options")]
    pub endpoint_url: Option<String>,
}

/// `vpnca template …` (src/cli/templates.rs, docs/commands-templates.md).
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Each profile: built-in or adopted, and whether `<pki>/templates` holds a file for it
    /// that is not adopted.
    List,
    /// Print the profile NAME in effect, as TOML (a start for `<pki>/templates/NAME.toml`).
    Show {
        /// The profile.
        #[arg(value_name = "NAME", value_parser = Keywords::profiles())]
        name: String,
    },
    /// Check `<pki>/templates/NAME.toml` (or --file) and make it the store's profile NAME:
    /// its text becomes part of the store's authenticated state, with an audit entry.
    Adopt {
        /// The profile.
        #[arg(value_name = "NAME", value_parser = Keywords::profiles())]
        name: String,
        /// Read the profile from FILE instead of `<pki>/templates/NAME.toml`.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Go back to the built-in profile NAME (audited).
    Reset {
        /// The profile.
        #[arg(value_name = "NAME", value_parser = Keywords::profiles())]
        name: String,
    },
}

/// `vpnca acm …`
#[cfg(feature = "aws")]
#[derive(Debug, Subcommand)]
pub enum AcmCommand {
    /// Import a certificate, its key (decrypted in memory only) and the CA chain into ACM.
    /// Re-imports into the ARN recorded for NAME, so the endpoint keeps working after
    /// `vpnca renew`. Every rule real ACM and Client VPN enforce is checked first.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["server", "client"])))]
    Import {
        /// The server certificate NAME (the endpoint's server certificate ARN).
        #[arg(long, value_name = "NAME")]
        server: Option<String>,
        /// A client certificate NAME, when the clients' CA differs from the server's (the
        /// endpoint's client root chain ARN).
        #[arg(long, value_name = "NAME")]
        client: Option<String>,
        /// Re-import into this ARN (default: the one recorded for NAME in this region).
        #[arg(long, value_name = "ARN", conflicts_with = "new")]
        arn: Option<String>,
        /// Import as a new ACM certificate even if an ARN is recorded.
        #[arg(long)]
        new: bool,
        /// A tag KEY=VALUE (repeatable), added to vpnca:managed-by, vpnca:cn and vpnca:serial.
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
        /// Import a key type that Client VPN cannot use (anything but RSA 1024/2048).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        aws: AwsOpts,
    },
    /// List the ACM certificates this store imported, and the endpoints it pushed CRLs to
    /// (offline).
    List,
}

/// `vpnca clientvpn …`
#[cfg(feature = "aws")]
#[derive(Debug, Subcommand)]
pub enum ClientVpnCommand {
    /// Upload the store's CRL to Client VPN endpoints, then read it back and compare. A new
    /// CRL is made first when a revocation is newer or it expires within 30 days. Each upload
    /// resets the endpoint's current connections.
    PushCrl {
        /// The endpoint (cvpn-endpoint-…); repeatable.
        #[arg(
            long,
            value_name = "ID",
            required_unless_present = "all",
            conflicts_with = "all"
        )]
        endpoint: Vec<String>,
        /// Every endpoint of the region whose server certificate or client root chain this
        /// store imported.
        #[arg(long)]
        all: bool,
        /// Show what would be sent, and where; send nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        aws: AwsOpts,
    },
    /// Write a user's profile from the endpoint's client configuration, with the user's
    /// certificate and key inline (mode 0600, never overwritten).
    Profile {
        /// The user (a client certificate in the store).
        name: String,
        /// The endpoint (cvpn-endpoint-…).
        #[arg(long, value_name = "ID")]
        endpoint: String,
        /// The profile to write (default: ./NAME.ovpn).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Replace `remote-random-hostname` by an explicit random label (for clients that
        /// lack the directive).
        #[arg(long)]
        random_hostname_prefix: bool,
        /// Let the directive (or inline block) NAME of the endpoint's configuration into the
        /// profile although it is not on vpnca's allow-list (repeatable; see
        /// docs/commands-delivery.md#allowed-directives).
        #[arg(long, value_name = "NAME")]
        allow_directive: Vec<String>,
        /// Accept a <ca> block in the endpoint's configuration that holds certificates
        /// besides this PKI's CA chain (a warning instead of an error).
        #[arg(long)]
        allow_foreign_ca: bool,
        /// Encrypt the key inside the profile with the passphrase in FILE.
        #[arg(long, value_name = "FILE")]
        key_passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        aws: AwsOpts,
    },
}
