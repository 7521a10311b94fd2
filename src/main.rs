//! The `vpnca` command: thin glue over the library (see `src/cli/`).
//!
//! The library forbids unsafe code (`#![forbid(unsafe_code)]` in lib.rs). The binary denies
//! it and allows exactly one reviewed block: removing the passphrase variables from the
//! environment, which edition 2024 makes `unsafe` (docs/security.md#secrets-handling).

#![deny(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    // $VPNCA_PASSPHRASE and $VPNCA_NEW_PASSPHRASE: read once into zeroizing memory, then
    // removed from the environment so that no child process inherits them (an AWS
    // `credential_process` helper, a shell). First thing, while the process has one thread.
    let names = cli::take_env_secrets();
    #[cfg(target_os = "linux")]
    debug_assert_eq!(
        std::fs::read_dir("/proc/self/task")
            .map(Iterator::count)
            .ok(),
        Some(1),
        "the environment must be changed while the process is single-threaded"
    );
    for name in names {
        // SAFETY: `remove_var` is unsafe because another thread could read or write the
        // environment at the same time (libc's getenv/setenv are not synchronised with Rust's
        // lock). Nothing else runs yet: the Rust runtime starts no thread before `main`, no
        // dependency starts one from a static constructor, and this loop runs at the top of
        // `main`, before argument parsing, the AWS SDK's tokio runtime, or anything that could
        // spawn a thread or a child (checked on Linux in debug builds above).
        #[allow(unsafe_code)]
        unsafe {
            std::env::remove_var(name);
        }
    }

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
    let code = cli::main();
    cli::forget_env_secrets();
    code
}
