//! The `vpnca` command: thin glue over the library (see `src/cli/`).

#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    // Keys and passphrases live in this process's memory: no core dump may write them to
    // disk, and other processes of the same user may not ptrace it or read /proc/PID/mem.
    #[cfg(target_os = "linux")]
    if let Err(e) =
        rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
    {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "warning: could not disable core dumps (prctl PR_SET_DUMPABLE): {e}"
        );
    }
    cli::main()
}
