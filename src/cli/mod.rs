//! The CLI: parse arguments, get passphrases, call the library, print. No PKI logic here.
//!
//! One module per command group, as the docs group the commands: store.rs
//! (docs/commands-store.md), certificates.rs (docs/commands-certificates.md), revocation.rs
//! (docs/commands-revocation.md), delivery.rs (docs/commands-delivery.md), templates.rs
//! (docs/commands-templates.md), batch.rs (the
//! `--batch` forms, docs/commands-batch.md), aws.rs (docs/aws.md), easyrsa.rs
//! (docs/easy-rsa.md), reference.rs (`completions`, `man`). Each command is one function over
//! its arguments, defined in args.rs; `run()` dispatches. Shared helpers: output.rs (printing),
//! passphrase.rs, options.rs (flags that become library values).

#[macro_use]
mod output;

mod args;
#[cfg(feature = "aws")]
mod aws;
mod batch;
mod certificates;
mod delivery;
mod easyrsa;
mod easyrsa_compat;
mod options;
mod passphrase;
mod reference;
mod revocation;
mod store;
mod templates;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Parser;
use serde_json::json;

use args::{Cli, Command};
use output::{Out, STDOUT_ERROR, stdout_failed};
pub(crate) use passphrase::{forget_env_secrets, take_env_secrets};

/// Exit code: a check found a problem.
const EXIT_PROBLEM: u8 = 1;
/// Exit code: an error (bad input, wrong passphrase, …); nothing was changed.
const EXIT_ERROR: u8 = 2;
/// Exit code: an AWS call failed (the service refused, or could not be reached).
#[cfg(feature = "aws")]
const EXIT_AWS: u8 = 3;

pub fn main() -> ExitCode {
    let argv = match easyrsa_command_line() {
        Ok(Some(argv)) => argv,
        Ok(None) => return ExitCode::SUCCESS,
        Err(code) => return code,
    };
    let cli = match Cli::try_parse_from(argv) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let json = cli.json;
    let result = run(&cli);
    if let Err(e) = std::io::stdout().flush() {
        stdout_failed(e);
    }
    let out_error = STDOUT_ERROR
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            let msg = format!("{e:#}");
            if json {
                outln!("{}", json!({"error": msg}));
            }
            errln!("error: {msg}");
            exit_code(&e)
        }
    };
    match out_error {
        // The reader went away (`vpnca list | head -1`): what it read is all it wanted.
        Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(code),
        // Output that could not be delivered is a failure, even after the work was done.
        Some(e) => {
            errln!(
                "error: writing to standard output failed ({e}); the output is incomplete{}",
                if code == 0 {
                    ", but the command itself completed (see `vpnca log`)"
                } else {
                    ""
                }
            );
            ExitCode::from(if code == 0 { EXIT_ERROR } else { code })
        }
        None => ExitCode::from(code),
    }
}

/// The command line, with easy-rsa's options and verbs translated into vpnca's
/// (easyrsa_compat); its notes printed. `Ok(None)`: nothing to run (exit 0); `Err`: the exit
/// code of a refused easy-rsa command line, its message printed.
fn easyrsa_command_line() -> Result<Option<Vec<std::ffi::OsString>>, ExitCode> {
    let env: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| k.starts_with("EASYRSA") || k == "VPNCA_PKI")
        .collect();
    let pwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
    let t = easyrsa_compat::translate(std::env::args_os().collect(), &env, &pwd);
    for n in &t.notes {
        errln!("note: {n}");
    }
    match t.plan {
        Ok(easyrsa_compat::Plan::Run(argv)) => Ok(Some(argv)),
        Ok(easyrsa_compat::Plan::Done) => Ok(None),
        Err(msg) => {
            if std::env::args_os().any(|a| a == "--json") {
                outln!("{}", json!({"error": msg}));
            }
            errln!("error: {msg}");
            Err(ExitCode::from(EXIT_ERROR))
        }
    }
}

fn exit_code(e: &anyhow::Error) -> u8 {
    #[cfg(feature = "aws")]
    if let Some(
        vpnca::Error::Aws { .. }
        | vpnca::Error::RemoteMismatch { .. }
        | vpnca::Error::Kms { .. }
        | vpnca::Error::KmsBadSignature { .. },
    ) = e.downcast_ref::<vpnca::Error>()
    {
        return EXIT_AWS;
    }
    let _ = e;
    EXIT_ERROR
}

/// Help and version go to stdout with exit 0; a usage error goes to stderr with exit 2 and,
/// when `--json` is among the arguments, also as `{"error": …}` on stdout like every other
/// error.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    if std::env::args_os().any(|a| a == "--json") {
        let msg = e.render().to_string();
        let first = msg
            .lines()
            .next()
            .unwrap_or("invalid arguments")
            .trim_start_matches("error: ");
        outln!("{}", json!({"error": first}));
    }
    let _ = e.print();
    ExitCode::from(EXIT_ERROR)
}

/// Runs the parsed command: one line per command.
fn run(cli: &Cli) -> Result<u8> {
    let out = &Out { json: cli.json };
    match &cli.command {
        Command::Init(args) => store::init(cli, out, args),
        Command::Ca(args) => certificates::ca(cli, out, args),
        Command::Server(args) => certificates::server(cli, out, args),
        Command::Client(args) => certificates::client(cli, out, args),
        Command::SignReq(args) => certificates::sign_req(cli, out, args),
        Command::Revoke(args) => revocation::revoke(cli, out, args),
        Command::Renew(args) => certificates::renew(cli, out, args),
        Command::Crl(args) => revocation::crl(cli, out, args),
        Command::List(args) => certificates::list(cli, out, args),
        Command::Show(args) => certificates::show(cli, out, args),
        Command::Export(args) => certificates::export(cli, out, args),
        Command::Profile(args) => delivery::profile(cli, out, args),
        Command::Status(args) => store::status(cli, out, args),
        Command::ImportEasyrsa(args) => easyrsa::import_easyrsa(cli, out, args),
        #[cfg(feature = "aws")]
        Command::Acm(command) => aws::acm(cli, out, command),
        #[cfg(feature = "aws")]
        Command::ClientVpn(command) => aws::clientvpn(cli, out, command),
        Command::Template(command) => templates::template(cli, out, command),
        Command::Log(args) => store::log(cli, out, args),
        Command::Verify(args) => store::verify(cli, out, args),
        Command::Passwd(args) => store::passwd(cli, out, args),
        Command::Quickstart(args) => store::quickstart(cli, out, args),
        Command::Completions(args) => reference::completions(args),
        Command::Man(args) => reference::man(args),
    }
}
