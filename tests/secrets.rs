//! Secrets handling (docs/security.md#secrets-handling): the passphrase variables are read once
//! and removed from the environment, so that no child process inherits them.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::aws::{Moto, aws_env};
use common::{Env, PASS};

/// Issue 17: an AWS `credential_process` helper (run by the SDK from the profile) logged its
/// environment, and with it `$VPNCA_PASSPHRASE`. The helper here records its environment and
/// prints credentials; after `acm import`, which needs both the credentials and the store
/// passphrase, the record must hold neither variable nor either passphrase.
///
/// Fails when: the `remove_var` loop in main.rs was disabled (seen: the dump held
/// `VPNCA_PASSPHRASE=test-passphrase-1`).
#[test]
fn credential_process_helper_sees_no_passphrase() {
    let e = Env::with_ca();
    e.ok(&["server", "vpn.example.com"]);
    let (moto, _g) = Moto::get();

    let dump = e.path("helper-env.txt");
    let helper = e.path("credential-helper.sh");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nenv > '{}'\necho '{{\"Version\":1,\"AccessKeyId\":\"testing\",\"SecretAccessKey\":\"testing\"}}'\n",
            dump.display()
        ),
    )
    .expect("write helper");
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let config = e.path("aws-config");
    std::fs::write(
        &config,
        format!(
            "[profile theprofile]\ncredential_process = {}\n",
            helper.display()
        ),
    )
    .expect("write AWS config");

    let new_pass = "new-passphrase-never-inherited";
    let args = [
        "acm",
        "import",
        "--server",
        "vpn.example.com",
        "--region",
        "us-east-1",
        "--profile",
        "theprofile",
    ];
    let mut c = e.cmd(&args);
    aws_env(&mut c, Some(moto), None);
    // Credentials only from the profile's helper.
    c.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_REGION")
        .env("AWS_CONFIG_FILE", &config)
        .env("VPNCA_NEW_PASSPHRASE", new_pass);
    common::expect_ok(&args, c.output().expect("run vpnca"));

    let seen = std::fs::read_to_string(&dump).expect("the credential_process helper ran");
    assert!(
        seen.contains("AWS_CONFIG_FILE="),
        "the dump is the helper's environment: {seen}"
    );
    for secret in ["VPNCA_PASSPHRASE", "VPNCA_NEW_PASSPHRASE", PASS, new_pass] {
        assert!(
            !seen.contains(secret),
            "the helper's environment holds {secret:?}:\n{seen}"
        );
    }
}

/// A passphrase variable that is not UTF-8 is an error naming it (it used to count as unset,
/// which ended in "no store passphrase: set $VPNCA_PASSPHRASE" although it was set).
#[test]
fn a_passphrase_variable_that_is_not_utf8_is_named() {
    use std::os::unix::ffi::OsStrExt;
    let e = Env::init();
    let mut c = e.cmd(&["verify"]);
    c.env(
        "VPNCA_PASSPHRASE",
        std::ffi::OsStr::from_bytes(b"test-pass\xffphrase"),
    );
    let err = common::expect_code(&["verify"], c.output().expect("run vpnca"), 2);
    assert!(
        err.contains("$VPNCA_PASSPHRASE is not valid UTF-8"),
        "{err}"
    );
}
