//! The command reference generated from the definitions in args.rs (habit 11): `completions`
//! and `man`. The man pages add what clap does not know: ENVIRONMENT, EXIT STATUS and
//! EXAMPLES sections.

use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::args::{Cli, CompletionsArgs, ManArgs};

/// `vpnca completions SHELL`.
pub(super) fn completions(args: &CompletionsArgs) -> Result<u8> {
    let CompletionsArgs { shell } = args;
    let mut buf = Vec::new();
    // The easy-rsa verbs that are not command names or aliases: translated before clap
    // parses (src/cli/easyrsa_compat), offered here so that scripts complete too.
    let mut cmd = Cli::command();
    for (verb, about) in super::easyrsa_compat::VERBS {
        cmd = cmd.subcommand(clap::Command::new(*verb).about(*about));
    }
    clap_complete::generate(*shell, &mut cmd, "vpnca", &mut buf);
    outp!("{}", String::from_utf8_lossy(&buf));
    Ok(0)
}

/// `vpnca man`: the main page (roff) on standard output; `vpnca man --out DIR`: it and one
/// page per command and subcommand (vpnca-init.1, vpnca-acm-import.1, …), the pages the main
/// page's COMMANDS section refers to.
pub(super) fn man(args: &ManArgs) -> Result<u8> {
    let ManArgs { out } = args;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    // Propagates the global options to every command and names the pages (vpnca-init, …).
    cmd.build();
    let Some(dir) = out else {
        outp!("{}", String::from_utf8_lossy(&page(&cmd)?));
        return Ok(0);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for file in write_pages(&cmd, dir)? {
        outln!("{}", file.display());
    }
    Ok(0)
}

/// Writes the page of `cmd` and of each of its commands, depth first; returns the files.
fn write_pages(cmd: &clap::Command, dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    let name = cmd.get_display_name().unwrap_or_else(|| cmd.get_name());
    let file = dir.join(format!("{name}.1"));
    std::fs::write(&file, page(cmd)?).with_context(|| format!("writing {}", file.display()))?;
    files.push(file);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        files.extend(write_pages(sub, dir)?);
    }
    Ok(files)
}

/// One page: clap's sections, then EXIT STATUS, ENVIRONMENT, (VERSION,) EXAMPLES, SEE ALSO.
fn page(cmd: &clap::Command) -> Result<Vec<u8>> {
    let name = cmd
        .get_display_name()
        .unwrap_or_else(|| cmd.get_name())
        .to_owned();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut buf = Vec::new();
    // clap's sections in clap_mangen's order, ours where man-pages(7) puts them.
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut buf)?;
    }
    if cmd.get_subcommands().any(|c| !c.is_hide_set()) {
        man.render_subcommands_section(&mut buf)?;
    }
    let aws = name.starts_with("vpnca-acm") || name.starts_with("vpnca-clientvpn");
    let mut roff = String::from(EXIT_STATUS);
    roff.push_str(
        ".SH ENVIRONMENT\n\
         .TP\n\\fBVPNCA_PKI\\fR\nThe store directory when \\fB\\-\\-pki\\fR is not given \
         (default: ./pki).\n\
         .TP\n\\fBVPNCA_PASSPHRASE\\fR\nThe store passphrase when \\fB\\-\\-passphrase\\-file\\fR \
         is not given (read once, then removed from the environment); else a prompt on the \
         terminal.\n",
    );
    if name == "vpnca" || name == "vpnca-passwd" {
        roff.push_str(
            ".TP\n\\fBVPNCA_NEW_PASSPHRASE\\fR\nThe new passphrase of \\fBvpnca passwd\\fR when \
             \\fB\\-\\-new\\-passphrase\\-file\\fR is not given.\n",
        );
    }
    if name == "vpnca" || aws || name == "vpnca-status" {
        roff.push_str(
            ".TP\n\\fBAWS_PROFILE\\fR, \\fBAWS_REGION\\fR, \\fBAWS_ENDPOINT_URL_ACM\\fR, \
             \\fBAWS_ENDPOINT_URL_EC2\\fR\nWhere and as whom AWS is called, unless \
             \\fB\\-\\-profile\\fR, \\fB\\-\\-region\\fR or \\fB\\-\\-endpoint\\-url\\fR say \
             otherwise; the other standard AWS variables and files apply too.\n",
        );
    }
    buf.extend_from_slice(roff.as_bytes());
    if cmd.get_version().is_some() {
        man.render_version_section(&mut buf)?;
    }
    let mut roff = String::from(".SH EXAMPLES\n");
    for (what, line) in examples(&name) {
        roff.push_str(&format!(
            ".PP\n{what}\n.PP\n.RS 4\n.nf\n{}\n.fi\n.RE\n",
            roff_escape(line)
        ));
    }
    roff.push_str(".SH \"SEE ALSO\"\n");
    roff.push_str(if name == "vpnca" {
        "One page per command, named in COMMANDS above (e.g. \\fBvpnca\\-init\\fR(1)); docs/ in \\
         the source distribution.\n"
    } else {
        "\\fBvpnca\\fR(1)\n"
    });
    buf.extend_from_slice(roff.as_bytes());
    Ok(buf)
}

/// The exit codes (src/cli/mod.rs), the same for every command.
const EXIT_STATUS: &str = ".SH \"EXIT STATUS\"\n\
    .TP\n\\fB0\\fR\nSuccess.\n\
    .TP\n\\fB1\\fR\nA check found a problem (\\fBstatus\\fR, \\fBverify\\fR).\n\
    .TP\n\\fB2\\fR\nAn error: bad arguments or input, a wrong passphrase, a refused \
    operation; nothing was changed.\n\
    .TP\n\\fB3\\fR\nAn AWS call failed (the service refused, or could not be reached).\n";

/// A command line as roff text: backslashes and hyphens escaped, no line starting with a dot.
fn roff_escape(s: &str) -> String {
    s.replace('\\', "\\e").replace('-', "\\-")
}

/// What each page shows in EXAMPLES: (what it does, the command line).
fn examples(page: &str) -> &'static [(&'static str, &'static str)] {
    match page {
        "vpnca" => &[
            (
                "A store, a CA, a server and a user in one go:",
                "vpnca quickstart --server vpn.example.com --client alice",
            ),
            (
                "Install the bash completions and the man pages:",
                "vpnca completions bash > ~/.local/share/bash-completion/completions/vpnca\nvpnca man --out ~/.local/share/man/man1",
            ),
        ],
        "vpnca-init" => &[("A new store in ./pki:", "vpnca init")],
        "vpnca-ca" => &[
            ("A root CA:", "vpnca ca --cn \"Example VPN CA\""),
            (
                "A sub-CA signed by the corporate root:",
                "vpnca ca --sub-ca --csr-out sub.csr\nvpnca ca --import-cert sub.crt --chain root.crt",
            ),
        ],
        "vpnca-server" => &[
            ("A server certificate:", "vpnca server vpn.example.com"),
            (
                "Both serverAuth and clientAuth (site-to-site peers):",
                "vpnca server peer1.example.com --template server-client",
            ),
        ],
        "vpnca-client" => &[
            (
                "A user certificate:",
                "vpnca client alice --email alice@example.com",
            ),
            ("Temporary access:", "vpnca client contractor --ttl 8h"),
            (
                "Many users from a CSV file:",
                "vpnca client --batch users.csv --out issued",
            ),
        ],
        "vpnca-sign-req" => &[
            ("Sign a request:", "vpnca sign-req alice.csr --type client"),
            ("easy-rsa form:", "vpnca sign-req client alice"),
        ],
        "vpnca-revoke" => &[
            (
                "Revoke a user:",
                "vpnca revoke alice --reason keyCompromise",
            ),
            ("By serial:", "vpnca revoke --serial 3f2a9c"),
        ],
        "vpnca-renew" => &[(
            "A new certificate and key:",
            "vpnca renew vpn.example.com --revoke-old",
        )],
        "vpnca-crl" => &[(
            "Write the CRL and a copy:",
            "vpnca crl --out /etc/openvpn/crl.pem",
        )],
        "vpnca-list" => &[
            (
                "Revoked users:",
                "vpnca list --status revoked --kind client",
            ),
            (
                "What expires within 30 days:",
                "vpnca list --expiring-within 30",
            ),
        ],
        "vpnca-show" => &[("One certificate, with its PEM:", "vpnca show alice --pem")],
        "vpnca-export" => &[
            (
                "Certificate, chain and key for ACM:",
                "vpnca export vpn.example.com --key --out out",
            ),
            (
                "A PKCS#12 file:",
                "vpnca export alice --format p12 --out out",
            ),
        ],
        "vpnca-profile" => &[
            (
                "From an AWS Client VPN endpoint's configuration:",
                "vpnca profile alice --config downloaded.ovpn --out alice.ovpn",
            ),
            (
                "For a plain OpenVPN server:",
                "vpnca profile alice --remote vpn.example.com:1194 --proto udp",
            ),
        ],
        "vpnca-status" => &[(
            "Warn 60 days ahead (exit 1 if anything needs attention):",
            "vpnca status --warn-days 60",
        )],
        "vpnca-import-easyrsa" => &[(
            "See what would be imported:",
            "vpnca --pki newpki import-easyrsa /etc/openvpn/easy-rsa/pki --dry-run",
        )],
        "vpnca-acm" => &[(
            "Import the server certificate:",
            "vpnca acm import --server vpn.example.com",
        )],
        "vpnca-acm-import" => &[(
            "Import (or re-import after a renewal) the server certificate:",
            "vpnca acm import --server vpn.example.com --profile prod --region eu-west-1",
        )],
        "vpnca-acm-list" => &[("What this store imported:", "vpnca acm list")],
        "vpnca-clientvpn" => &[("Push the CRL everywhere:", "vpnca clientvpn push-crl --all")],
        "vpnca-clientvpn-push-crl" => &[
            (
                "Push the CRL to one endpoint:",
                "vpnca clientvpn push-crl --endpoint cvpn-endpoint-0123456789abcdef0",
            ),
            (
                "Show what would be sent:",
                "vpnca clientvpn push-crl --all --dry-run",
            ),
        ],
        "vpnca-clientvpn-profile" => &[(
            "A user's profile from an endpoint:",
            "vpnca clientvpn profile alice --endpoint cvpn-endpoint-0123456789abcdef0",
        )],
        "vpnca-log" => &[("The audit log as JSON lines:", "vpnca --json log")],
        "vpnca-verify" => &[("Check the whole store:", "vpnca verify")],
        "vpnca-passwd" => &[
            (
                "Change the passphrase from a file:",
                "vpnca passwd --new-passphrase-file new.txt",
            ),
            (
                "When an admin leaves: a new passphrase and a new data key:",
                "vpnca passwd --rekey --new-passphrase-file new.txt",
            ),
        ],
        "vpnca-quickstart" => &[(
            "Everything for a first VPN:",
            "vpnca quickstart --server vpn.example.com --client alice --client bob",
        )],
        "vpnca-completions" => &[(
            "bash completions for the current user:",
            "vpnca completions bash > ~/.local/share/bash-completion/completions/vpnca",
        )],
        "vpnca-man" => &[(
            "Every page, for man(1):",
            "vpnca man --out ~/.local/share/man/man1",
        )],
        _ => &[("Its options:", "vpnca help")],
    }
}
