//! Tests that need root (mounting a tmpfs, creating a device node): in CI they run as root;
//! elsewhere they fail, unless the developer says that skipping them is intended.

use std::io::Write;

/// Fails the test with `why`, unless `VPNCA_SKIP_MOUNT_TESTS=1` asks to skip the tests that
/// need root: then the skip is recorded in `$VPNCA_SKIP_LOG` (when set, as the line `FILE
/// TEST: WHY`) and on stderr. `file` is the test file (`tests/iofault.rs`).
///
/// Fails when (seen): run as a user who may not mount, without the opt-out variable.
pub fn skip_or_fail(file: &str, why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("a test that needs root")
        .to_owned();
    if std::env::var("VPNCA_SKIP_MOUNT_TESTS").as_deref() != Ok("1") {
        panic!(
            "{test}: {why}\nRun the tests as root, or set VPNCA_SKIP_MOUNT_TESTS=1 to skip the \
             tests that need root on purpose (the skip is then counted in the summary)."
        );
    }
    eprintln!("SKIPPED: {test}: {why}");
    if let Some(log) = std::env::var_os("VPNCA_SKIP_LOG") {
        let line = format!("{file} {test}: {}\n", why.replace('\n', " "));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open $VPNCA_SKIP_LOG");
        f.write_all(line.as_bytes()).expect("write $VPNCA_SKIP_LOG");
    }
}
