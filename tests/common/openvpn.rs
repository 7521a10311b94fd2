//! Real OpenVPN TLS handshakes on loopback, for integration tests.
//!
//! Runs Debian's `openvpn` binary twice — a server and a client — on `127.0.0.1`
//! with `--dev null` (no tun/tap device, no root needed) and reports whether the
//! TLS handshake completed or was refused, together with both logs for assertion
//! messages.
//!
//! # Mode and options
//!
//! OpenVPN 2.6 refuses `--mode server` (and thus `--server`) unless the device is
//! tun or tap, so both sides run in **point-to-point TLS mode**:
//! `--tls-server` / `--tls-client`. A p2p TLS server still answers `PUSH_REQUEST`,
//! so a profile using `client` (= `pull` + `tls-client`) completes against it too.
//!
//! * both: `--dev null`, UDP (`udp4`) on a free loopback port, `--verb 3`,
//!   `--data-ciphers AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305` (except in profile
//!   mode, where the profile's own cipher settings are kept), `--hand-window 15`,
//!   `--tls-exit` (exit on a TLS failure instead of restarting) and `--inactive 30`
//!   (with `--dev null` there is never tunnel traffic, so this is a self-destruct
//!   timer that ends an orphaned process even if the test runner is SIGKILLed and
//!   the `Drop` guard never runs; `--ping-exit` is not used because it conflicts
//!   with a profile's `keepalive`);
//! * server: `--local 127.0.0.1 --lport PORT --dh none` (ECDHE only), and
//!   `--crl-verify CRL` when a CRL is given;
//! * client: `--remote 127.0.0.1 PORT --nobind --remote-cert-tls server
//!   --connect-retry-max 1`.
//!
//! A profile asking for TCP gets a `tcp4-server` server on a free TCP port.
//!
//! # Success and failure markers
//!
//! Success means the client logged `Initialization Sequence Completed` **and** the
//! server logged `Peer Connection Initiated`. The client only reaches
//! "Initialization Sequence Completed" after both sides' certificate checks
//! passed and the key-method-2 exchange (plus `PUSH_REPLY` for a `pull`
//! client) finished, which the server only takes part in once it has verified the
//! client certificate (including against the CRL) — unlike the TLS 1.3 handshake
//! itself, which the client may consider finished before the server checked its
//! certificate. The server-side line is required as corroboration.
//!
//! Failure is detected as soon as either log shows a verification or TLS error
//! (`VERIFY ERROR`, e.g. `error=certificate revoked`, `VERIFY KU ERROR`,
//! `VERIFY EKU ERROR`, `TLS Error: TLS handshake failed`, `AUTH_FAILED`,
//! `tls-crypt unwrapping failed`, `Options error`, ...), or either process
//! exits, so a refused client costs about 0.4 s (including 0.3 s left to the peer
//! to log its side), not the timeout. Everything is bounded by a 20 s
//! deadline after which both processes are killed.
//!
//! A successful handshake takes about 1–1.5 s (OpenVPN's one-second timer sits
//! between "Peer Connection Initiated" and "Initialization Sequence Completed"); a
//! refusal takes well under a second.
//!
//! The binary is `$OPENVPN_BIN` if set, else `openvpn` from `PATH`, else
//! `/usr/sbin/openvpn` (not in a non-root user's `PATH` on Debian). If none can be
//! run, the functions panic: the tests must fail, never skip silently.
#![allow(dead_code)]

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File};
use std::io;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use super::Env;

/// The server side: PEM files given to `--ca`, `--cert`, `--key` and, when
/// present, `--crl-verify`.
pub struct ServerFiles<'a> {
    /// CA certificate(s) that client certificates must chain to.
    pub ca: &'a Path,
    /// Server certificate.
    pub cert: &'a Path,
    /// Server private key (unencrypted).
    pub key: &'a Path,
    /// CRL checked against the client certificate (`--crl-verify`).
    pub crl: Option<&'a Path>,
}

/// A server certificate and key exported from a store (`vpnca export NAME --out DIR --key`),
/// with the store's `ca.crt` and `crl.pem`: an OpenVPN server for the store's clients.
pub struct ExportedServer {
    /// The store's `ca.crt`.
    pub ca: PathBuf,
    /// The exported server certificate.
    pub cert: PathBuf,
    /// The exported server key (unencrypted).
    pub key: PathBuf,
    /// The store's `crl.pem`.
    pub crl: PathBuf,
}

impl ExportedServer {
    /// Exports the server certificate `name` with its key to `<env dir>/<out>`.
    pub fn export(e: &Env, name: &str, out: &str) -> ExportedServer {
        e.ok(&["export", name, "--out", out, "--key"]);
        ExportedServer {
            ca: e.pki.join("ca.crt"),
            cert: e.path(&format!("{out}/{name}.crt")),
            key: e.path(&format!("{out}/{name}.key")),
            crl: e.pki.join("crl.pem"),
        }
    }

    /// The server's files, trusting the store's CA and checking its CRL.
    pub fn files(&self) -> ServerFiles<'_> {
        ServerFiles {
            ca: &self.ca,
            cert: &self.cert,
            key: &self.key,
            crl: Some(&self.crl),
        }
    }

    /// [`handshake_with_profile`] against this server.
    pub fn connect(&self, profile: &str) -> Handshake {
        handshake_with_profile(&self.files(), profile)
    }
}

/// The client side: PEM files given to `--ca`, `--cert` and `--key`.
pub struct ClientFiles<'a> {
    /// CA certificate(s) that the server certificate must chain to.
    pub ca: &'a Path,
    /// Client certificate.
    pub cert: &'a Path,
    /// Client private key (unencrypted).
    pub key: &'a Path,
}

/// Outcome of one server+client run.
///
/// Its `Display` shows the outcome and both logs, ready for assertion messages:
/// `assert!(hs.ok, "{hs}")`. When the harness itself decided the outcome (timeout,
/// a process exited, ...), a line starting with `[harness]` is appended to
/// `client_log`.
#[derive(Debug)]
pub struct Handshake {
    /// `true` if the handshake fully completed (see the module docs).
    pub ok: bool,
    /// The server's `--log` file, followed by its console output if any.
    pub server_log: String,
    /// The client's `--log` file, followed by its console output if any.
    pub client_log: String,
}

impl Handshake {
    /// The server refused the client's certificate (any `VERIFY ... ERROR` in
    /// the server log, including a revocation).
    pub fn refused_by_server(&self) -> bool {
        VERIFY_ERRORS.iter().any(|m| self.server_log.contains(m)) || self.client_cert_revoked()
    }

    /// The client refused the server's certificate (wrong CA, missing
    /// `serverAuth` EKU or key usage for `remote-cert-tls server`, ...).
    pub fn refused_by_client(&self) -> bool {
        VERIFY_ERRORS.iter().any(|m| self.client_log.contains(m))
    }

    /// The server rejected the client certificate because the CRL lists it.
    ///
    /// Use this rather than just `!ok` in revocation tests, so that a broken
    /// setup (bad path, server that never started) cannot pass for a refusal.
    pub fn client_cert_revoked(&self) -> bool {
        REVOKED_MARKERS.iter().any(|m| self.server_log.contains(m))
    }
}

impl fmt::Display for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let outcome = if self.ok {
            "COMPLETED"
        } else {
            "NOT completed"
        };
        writeln!(f, "OpenVPN handshake {outcome}")?;
        writeln!(f, "===== server log =====")?;
        writeln!(f, "{}", self.server_log.trim_end())?;
        writeln!(f, "===== client log =====")?;
        write!(f, "{}", self.client_log.trim_end())
    }
}

/// Client log line proving the connection fully came up.
const SUCCESS_MARKER: &str = "Initialization Sequence Completed";
/// Line both sides log once the TLS and key exchange with the peer succeeded.
const PEER_MARKER: &str = "Peer Connection Initiated";
/// Certificate verification failures (either side).
const VERIFY_ERRORS: &[&str] = &[
    "VERIFY ERROR",
    "VERIFY KU ERROR",
    "VERIFY EKU ERROR",
    "VERIFY X509NAME ERROR",
];
/// Revocation as reported with a CRL file (OpenSSL) or a CRL directory / mbed TLS.
const REVOKED_MARKERS: &[&str] = &["certificate revoked", "is revoked", "is REVOKED"];
/// Any of these in either log means the handshake failed for good.
const FAILURE_MARKERS: &[&str] = &[
    "VERIFY ERROR",
    "VERIFY KU ERROR",
    "VERIFY EKU ERROR",
    "VERIFY X509NAME ERROR",
    "CRL CHECK FAILED",
    "TLS Error: TLS handshake failed",
    "TLS Error: TLS key negotiation failed",
    "tls-crypt unwrapping failed",
    "incoming packet authentication failed",
    "AUTH_FAILED",
    "Options error",
    "Exiting due to fatal error",
];

/// Data-channel ciphers offered by both sides (modern AEADs only).
const DATA_CIPHERS: &str = "AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305";
/// `--hand-window`: OpenVPN's own bound on the TLS negotiation.
const HAND_WINDOW_SECS: &str = "15";
/// `--inactive`: self-destruct for processes orphaned by a killed test runner.
const SELF_DESTRUCT_SECS: &str = "30";
/// Hard bound for one run; both processes are killed when it passes.
const DEADLINE: Duration = Duration::from_secs(20);
/// How long the server may take to bind its port.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the server's `Peer Connection Initiated` once the
/// client has completed (normally it is already there).
const PEER_GRACE: Duration = Duration::from_secs(3);
/// Extra time given to the peer to log its side of a failure.
const FAILURE_SETTLE: Duration = Duration::from_millis(300);
/// Log polling interval.
const POLL: Duration = Duration::from_millis(50);
/// Attempts at starting the server if its port was taken in between.
const BIND_ATTEMPTS: usize = 3;

/// Runs an OpenVPN server and client on loopback and reports whether the TLS
/// handshake completed.
///
/// The client uses `--remote-cert-tls server`; the server uses `--crl-verify`
/// when `server.crl` is `Some`. Panics if `openvpn` cannot be run or one of
/// the files does not exist (a test bug, which must not look like a refusal).
pub fn handshake(server: &ServerFiles, client: &ClientFiles) -> Handshake {
    check_server_files(server);
    for (what, path) in [
        ("client CA", client.ca),
        ("client certificate", client.cert),
        ("client key", client.key),
    ] {
        assert_file(what, path);
    }
    let ca = absolute(client.ca);
    let cert = absolute(client.cert);
    let key = absolute(client.key);
    run(server, Transport::Udp, move |_dir, port| {
        let mut args = common_args(Transport::Udp.client_proto());
        args.extend(os_args(&[
            "--remote",
            "127.0.0.1",
            &port.to_string(),
            "--nobind",
            "--tls-client",
            "--remote-cert-tls",
            "server",
            "--data-ciphers",
            DATA_CIPHERS,
            "--connect-retry-max",
            "1",
        ]));
        args.extend([
            "--ca".into(),
            ca.into(),
            "--cert".into(),
            cert.into(),
            "--key".into(),
            key.into(),
        ]);
        Ok(args)
    })
}

/// Like [`handshake`], but the client runs a complete client configuration file
/// (an `.ovpn` profile with inline `<ca>`/`<cert>`/`<key>`), as a user would.
///
/// The profile is kept as is except that every `remote` line is rewritten to
/// `remote 127.0.0.1 <port> [proto]`, `dev` becomes `dev null` (`dev-type` and
/// `dev-node` are dropped; `dev null` is appended if there was no `dev`), and
/// `remote-random-hostname` and `resolv-retry` are removed. Inline blocks are
/// left untouched. If the profile asks for TCP (`proto tcp...` or a `tcp`
/// protocol on its first `remote`), the server listens on TCP instead of UDP.
/// On the command line after `--config`, the harness only adds `--verb 3`,
/// `--log`, and the bounding options `--hand-window`, `--tls-exit`,
/// `--connect-retry-max 1` and `--inactive`.
pub fn handshake_with_profile(server: &ServerFiles, profile_text: &str) -> Handshake {
    check_server_files(server);
    let transport = profile_transport(profile_text);
    let profile_text = profile_text.to_owned();
    run(server, transport, move |dir, port| {
        let profile = dir.join("client.ovpn");
        fs::write(&profile, rewrite_profile(&profile_text, port))?;
        let mut args: Vec<OsString> = vec!["--config".into(), profile.into()];
        args.extend(common_args(None));
        args.extend(os_args(&["--connect-retry-max", "1"]));
        Ok(args)
    })
}

/// Transport used by the server (and, in [`handshake`], the client).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    fn server_proto(self) -> &'static str {
        match self {
            Transport::Udp => "udp4",
            Transport::Tcp => "tcp4-server",
        }
    }

    fn client_proto(self) -> Option<&'static str> {
        Some(match self {
            Transport::Udp => "udp4",
            Transport::Tcp => "tcp4-client",
        })
    }

    /// Server log line showing the port is bound and the server ready.
    fn ready_marker(self) -> &'static str {
        match self {
            Transport::Udp => "link local (bound)",
            Transport::Tcp => "Listening for incoming TCP connection",
        }
    }

    fn free_port(self) -> u16 {
        let port = match self {
            Transport::Udp => UdpSocket::bind(("127.0.0.1", 0)).and_then(|s| s.local_addr()),
            Transport::Tcp => TcpListener::bind(("127.0.0.1", 0)).and_then(|s| s.local_addr()),
        };
        port.expect("cannot bind a loopback socket to pick a free port")
            .port()
    }
}

/// Kills and reaps the child processes when dropped, including on panic.
struct Processes {
    server: Option<Child>,
    client: Option<Child>,
}

impl Processes {
    fn kill_all(&mut self) {
        for child in [self.client.as_mut(), self.server.as_mut()]
            .into_iter()
            .flatten()
        {
            // Errors only mean the process is already gone.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.kill_all();
    }
}

fn run(
    server: &ServerFiles,
    transport: Transport,
    client_args: impl FnOnce(&Path, u16) -> io::Result<Vec<OsString>>,
) -> Handshake {
    let binary = openvpn_binary();
    let start = Instant::now();
    let deadline = start + DEADLINE;
    // Declared before the guard so the processes are killed before it is removed.
    let tmp = tempfile::Builder::new()
        .prefix("vpnca-openvpn-")
        .tempdir()
        .expect("cannot create a temporary directory for the OpenVPN run");
    let dir = tmp.path();
    let mut procs = Processes {
        server: None,
        client: None,
    };

    // Start the server, retrying with another port if it was taken meanwhile.
    let mut port = 0;
    for attempt in 1..=BIND_ATTEMPTS {
        port = transport.free_port();
        let _ = fs::remove_file(dir.join("server.log"));
        let mut args = common_args(Some(transport.server_proto()));
        args.extend(server_args(server, port));
        procs.server = Some(spawn(binary, dir, "server", args));
        match wait_server_ready(&mut procs, dir, transport, deadline) {
            Ok(()) => break,
            Err(note) => {
                procs.kill_all();
                let log = read_log(dir, "server");
                let port_taken =
                    log.contains("Address already in use") || log.contains("bind failed");
                if !(port_taken && attempt < BIND_ATTEMPTS) {
                    return finish(&mut procs, dir, false, Some(note));
                }
            }
        }
    }

    let args = match client_args(dir, port) {
        Ok(args) => args,
        Err(e) => panic!("cannot prepare the OpenVPN client: {e}"),
    };
    procs.client = Some(spawn(binary, dir, "client", args));

    loop {
        let client_log = read_log(dir, "client");
        let server_log = read_log(dir, "server");
        if client_log.contains(SUCCESS_MARKER) {
            if server_log.contains(PEER_MARKER) {
                return finish(&mut procs, dir, true, None);
            }
            let grace = (Instant::now() + PEER_GRACE).min(deadline);
            while Instant::now() < grace {
                thread::sleep(POLL);
                if read_log(dir, "server").contains(PEER_MARKER) {
                    return finish(&mut procs, dir, true, None);
                }
            }
            let note = format!("client completed but the server never logged {PEER_MARKER:?}");
            return finish(&mut procs, dir, false, Some(note));
        }
        let failure = failure_in(&server_log)
            .map(|m| format!("server log shows {m:?}"))
            .or_else(|| failure_in(&client_log).map(|m| format!("client log shows {m:?}")))
            .or_else(|| exited(&mut procs.client).map(|s| format!("client exited ({s})")))
            .or_else(|| exited(&mut procs.server).map(|s| format!("server exited ({s})")));
        if let Some(note) = failure {
            // Let the peer log its side of the failure, for the assertion message.
            thread::sleep(FAILURE_SETTLE);
            return finish(&mut procs, dir, false, Some(note));
        }
        if Instant::now() >= deadline {
            let note = format!("timed out after {DEADLINE:?} waiting for {SUCCESS_MARKER:?}");
            return finish(&mut procs, dir, false, Some(note));
        }
        thread::sleep(POLL);
    }
}

/// Waits for the server to bind its port, or to fail.
fn wait_server_ready(
    procs: &mut Processes,
    dir: &Path,
    transport: Transport,
    deadline: Instant,
) -> Result<(), String> {
    let until = (Instant::now() + SERVER_START_TIMEOUT).min(deadline);
    loop {
        if read_log(dir, "server").contains(transport.ready_marker()) {
            return Ok(());
        }
        if let Some(status) = exited(&mut procs.server) {
            return Err(format!("server exited before binding its port ({status})"));
        }
        if Instant::now() >= until {
            return Err("server did not bind its port in time".to_owned());
        }
        thread::sleep(POLL);
    }
}

/// Kills both processes and collects the logs.
fn finish(procs: &mut Processes, dir: &Path, ok: bool, note: Option<String>) -> Handshake {
    procs.kill_all();
    let server_log = read_log(dir, "server");
    let mut client_log = read_log(dir, "client");
    if let Some(note) = note {
        client_log.push_str(&format!("\n[harness] {note}\n"));
    }
    Handshake {
        ok,
        server_log,
        client_log,
    }
}

/// Options shared by both sides; `proto` is omitted in profile mode.
fn common_args(proto: Option<&str>) -> Vec<OsString> {
    let mut args = os_args(&["--dev", "null"]);
    if let Some(proto) = proto {
        args.extend(os_args(&["--proto", proto]));
    }
    args.extend(os_args(&[
        "--verb",
        "3",
        "--hand-window",
        HAND_WINDOW_SECS,
        "--tls-exit",
        "--inactive",
        SELF_DESTRUCT_SECS,
    ]));
    args
}

fn server_args(server: &ServerFiles, port: u16) -> Vec<OsString> {
    let mut args = os_args(&[
        "--local",
        "127.0.0.1",
        "--lport",
        &port.to_string(),
        "--tls-server",
        "--dh",
        "none",
        "--data-ciphers",
        DATA_CIPHERS,
    ]);
    args.extend([
        "--ca".into(),
        absolute(server.ca).into(),
        "--cert".into(),
        absolute(server.cert).into(),
        "--key".into(),
        absolute(server.key).into(),
    ]);
    if let Some(crl) = server.crl {
        args.extend(["--crl-verify".into(), absolute(crl).into()]);
    }
    args
}

/// Starts `openvpn` in `dir`, logging to `<name>.log`; stdout and stderr (which
/// carry errors reported before the log file is opened) go to `<name>.console`.
fn spawn(binary: &Path, dir: &Path, name: &str, mut args: Vec<OsString>) -> Child {
    args.extend(["--log".into(), dir.join(format!("{name}.log")).into()]);
    let console = File::create(dir.join(format!("{name}.console")))
        .expect("cannot create the OpenVPN console file");
    let console_err = console
        .try_clone()
        .expect("cannot duplicate the OpenVPN console file");
    Command::new(binary)
        .args(&args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(console)
        .stderr(console_err)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {} ({name}): {e}", binary.display()))
}

/// The `--log` file followed by the console output, lossily decoded.
fn read_log(dir: &Path, name: &str) -> String {
    let read = |file: String| {
        fs::read(dir.join(file))
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    };
    let mut log = read(format!("{name}.log"));
    let console = read(format!("{name}.console"));
    if !console.trim().is_empty() {
        log.push_str("\n--- console output ---\n");
        log.push_str(&console);
    }
    log
}

fn failure_in(log: &str) -> Option<&'static str> {
    FAILURE_MARKERS.iter().copied().find(|m| log.contains(m))
}

fn exited(child: &mut Option<Child>) -> Option<ExitStatus> {
    child.as_mut().and_then(|c| c.try_wait().ok().flatten())
}

fn os_args(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

fn assert_file(what: &str, path: &Path) {
    assert!(
        path.is_file(),
        "OpenVPN handshake: {what} {} does not exist",
        path.display()
    );
}

fn check_server_files(server: &ServerFiles) {
    assert_file("server CA", server.ca);
    assert_file("server certificate", server.cert);
    assert_file("server key", server.key);
    if let Some(crl) = server.crl {
        assert_file("CRL", crl);
    }
}

/// Finds a runnable `openvpn`, once; panics (failing the test) if there is none.
fn openvpn_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let candidates: Vec<PathBuf> = match std::env::var_os("OPENVPN_BIN") {
            Some(bin) => vec![bin.into()],
            None => vec!["openvpn".into(), "/usr/sbin/openvpn".into()],
        };
        for candidate in &candidates {
            // `openvpn --version` exits with status 1, so look at its output.
            if let Ok(out) = Command::new(candidate).arg("--version").output()
                && String::from_utf8_lossy(&out.stdout).contains("OpenVPN")
            {
                return candidate.clone();
            }
        }
        panic!(
            "the `openvpn` binary is required by this test but none could be run (tried {candidates:?}); \
             install it (`apt-get install openvpn`) or set OPENVPN_BIN"
        );
    })
}

/// Protocol the profile asks for: `proto`, else the first `remote`'s third field.
fn profile_transport(profile: &str) -> Transport {
    let mut proto = None;
    let mut remote_proto = None;
    for words in config_lines(profile) {
        match words.as_slice() {
            ["proto", p, ..] => proto = Some(p.to_ascii_lowercase()),
            ["remote", _, _, p, ..] if remote_proto.is_none() => {
                remote_proto = Some(p.to_ascii_lowercase());
            }
            _ => {}
        }
    }
    match remote_proto.or(proto) {
        Some(p) if p.starts_with("tcp") => Transport::Tcp,
        _ => Transport::Udp,
    }
}

/// The directive lines of a config (outside inline blocks other than
/// `<connection>`, comments skipped), split into words.
fn config_lines(profile: &str) -> Vec<Vec<&str>> {
    let mut lines = Vec::new();
    let mut block: Option<String> = None;
    for line in profile.lines() {
        let trimmed = line.trim();
        if let Some(name) = &block {
            if trimmed.eq_ignore_ascii_case(&format!("</{name}>")) {
                block = None;
            }
            continue;
        }
        if let Some(name) = block_start(trimmed) {
            block = Some(name);
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        lines.push(trimmed.split_whitespace().collect());
    }
    lines
}

/// `Some(name)` for the opening tag of an inline data block (not `<connection>`,
/// whose content is ordinary directives).
fn block_start(trimmed: &str) -> Option<String> {
    let name = trimmed.strip_prefix('<')?.strip_suffix('>')?;
    if name.starts_with('/') || name.eq_ignore_ascii_case("connection") {
        return None;
    }
    Some(name.to_owned())
}

/// Rewrites a client profile to target `127.0.0.1:port` with `--dev null`
/// (see [`handshake_with_profile`]).
fn rewrite_profile(profile: &str, port: u16) -> String {
    let mut out = String::with_capacity(profile.len() + 64);
    let mut block: Option<String> = None;
    let mut saw_dev = false;
    for line in profile.lines() {
        let trimmed = line.trim();
        if let Some(name) = &block {
            if trimmed.eq_ignore_ascii_case(&format!("</{name}>")) {
                block = None;
            }
            out.push_str(line);
            out.push('\n');
            continue;
        }
        if let Some(name) = block_start(trimmed) {
            block = Some(name);
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let words: Vec<&str> = trimmed.split_whitespace().collect();
        match words.as_slice() {
            ["remote", args @ ..] => {
                // Replace host and port, keep an explicit protocol (third field).
                let proto = args.get(2).map(|p| format!(" {p}")).unwrap_or_default();
                out.push_str(&format!("remote 127.0.0.1 {port}{proto}\n"));
            }
            ["dev", ..] => {
                saw_dev = true;
                out.push_str("dev null\n");
            }
            [
                "dev-type" | "dev-node" | "remote-random-hostname" | "resolv-retry",
                ..,
            ] => {
                out.push_str(&format!("# removed by the test harness: {trimmed}\n"));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    if !saw_dev {
        out.push_str("dev null\n");
    }
    out
}
