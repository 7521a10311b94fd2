//! The command reference generated from the definitions in args.rs (habit 11): `completions`
//! and `man`.

use anyhow::Result;
use clap::CommandFactory;

use super::args::{Cli, CompletionsArgs};

/// `vpnca completions SHELL`.
pub(super) fn completions(args: &CompletionsArgs) -> Result<u8> {
    let CompletionsArgs { shell } = args;
    let mut buf = Vec::new();
    clap_complete::generate(*shell, &mut Cli::command(), "vpnca", &mut buf);
    outp!("{}", String::from_utf8_lossy(&buf));
    Ok(0)
}

/// `vpnca man`: the man page (roff).
pub(super) fn man() -> Result<u8> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut buf)?;
    outp!("{}", String::from_utf8_lossy(&buf));
    Ok(0)
}
