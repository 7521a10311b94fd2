//! AWS test doubles: moto (ACM), tests/aws/ec2_server.py (the four Client VPN calls) and
//! tests/aws/kms_server.py (KMS), the last two with an independent SigV4 check by botocore.
//! All run on loopback only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::{Env, s};

pub const ACCESS_KEY: &str = "AKIDVPNCATEST";
pub const SECRET_KEY: &str = "vpnca-test-secret-key";
pub const REGION: &str = "eu-west-1";

/// A raw HTTP/1.1 request to 127.0.0.1:port; returns (status, body).
pub fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the test server");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write request");
    let mut resp = String::new();
    stream.read_to_string(&mut resp).expect("read response");
    let status = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One moto server for the whole test binary; tests take turns (`lock`) and reset it.
///
/// A static is never dropped, so the server cannot be killed by a `Drop`: it runs under a small
/// shell that kills it when its standard input closes, which happens when this test process
/// ends, however it ends (before, every test binary that used moto left a `moto_server`
/// running; `.ci/run` listed and killed them).
pub struct Moto {
    pub port: u16,
    _child: Child,
    _stdin: ChildStdin,
}

static MOTO: OnceLock<Moto> = OnceLock::new();
static MOTO_LOCK: Mutex<()> = Mutex::new(());

/// Runs `moto_server ARGS` until standard input closes, then stops it.
const UNTIL_STDIN_CLOSES: &str = "moto_server \"$@\" & m=$!; cat >/dev/null; kill $m; wait $m";

impl Moto {
    /// The shared moto, reset, and the lock that keeps other tests off it meanwhile.
    pub fn get() -> (&'static Moto, MutexGuard<'static, ()>) {
        let guard = MOTO_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let moto = MOTO.get_or_init(Moto::start);
        let (st, body) = http(moto.port, "POST", "/moto-api/reset", "");
        assert_eq!(st, 200, "moto reset failed: {body}");
        (moto, guard)
    }

    fn start() -> Moto {
        let found = Command::new("moto_server").arg("--help").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "moto_server is required (pip install -r tests/aws/requirements.txt; scripts/test.sh installs it)"
        );
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new("sh")
                .args(["-c", UNTIL_STDIN_CLOSES, "sh", "-H", "127.0.0.1", "-p"])
                .arg(port.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("sh");
            let stdin = child.stdin.take().expect("piped stdin");
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Moto {
                        port,
                        _child: child,
                        _stdin: stdin,
                    };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            drop(stdin);
            let _ = child.wait();
        }
        panic!("moto_server did not start");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The Client VPN wire-level server, one per test; it exits when dropped (stdin closes).
pub struct Ec2Server {
    pub port: u16,
    child: Child,
    _stdin: ChildStdin,
}

/// Starts `tests/aws/<script>` (a wire-level test server): it prints `PORT n` and exits when
/// its standard input closes, so a crashed test never leaves it behind.
fn start_script(script: &str) -> (u16, Child, ChildStdin) {
    let path = format!("{}/tests/aws/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("python3")
        .arg(&path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 is required");
    let stdin = child.stdin.take().expect("stdin");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read PORT line");
    let port = line
        .strip_prefix("PORT ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!("{script} printed {line:?}, not PORT n (botocore and cryptography installed?)")
        });
    (port, child, stdin)
}

impl Ec2Server {
    pub fn start() -> Ec2Server {
        let (port, child, stdin) = start_script("ec2_server.py");
        Ec2Server {
            port,
            child,
            _stdin: stdin,
        }
    }

    /// A new server holding `state` (`{"endpoints": [...], "clientConfiguration": {...}}`).
    pub fn with_state(state: &serde_json::Value) -> Ec2Server {
        let ec2 = Ec2Server::start();
        ec2.control("state", state);
        ec2
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// POST /_test/<what> with a JSON body; asserts 200.
    pub fn control(&self, what: &str, body: &serde_json::Value) {
        let (st, resp) = http(
            self.port,
            "POST",
            &format!("/_test/{what}"),
            &body.to_string(),
        );
        assert_eq!(st, 200, "/_test/{what}: {resp}");
    }

    /// Every AWS request the server received.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let (st, body) = http(self.port, "GET", "/_test/requests", "");
        assert_eq!(st, 200);
        serde_json::from_str(&body).expect("requests JSON")
    }

    /// The actions received, in order.
    pub fn actions(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| r["action"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// The CRL the endpoint holds.
    pub fn crl(&self, endpoint: &str) -> Option<String> {
        let (st, body) = http(
            self.port,
            "GET",
            &format!("/_test/crl?endpoint={endpoint}"),
            "",
        );
        (st == 200).then_some(body)
    }

    /// Asserts every request reached the server correctly signed (botocore's check).
    pub fn assert_all_signed(&self) {
        for r in self.requests() {
            assert_eq!(r["signature_ok"], true, "badly signed request: {r}");
            assert_eq!(r["params"]["Version"], "2016-11-15", "{r}");
            assert_eq!(r["region"], REGION, "{r}");
        }
    }
}

impl Drop for Ec2Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The KMS wire-level server (tests/aws/kms_server.py), one per test; it exits when dropped.
pub struct KmsServer {
    pub port: u16,
    child: Child,
    _stdin: ChildStdin,
}

impl KmsServer {
    pub fn start() -> KmsServer {
        let (port, child, stdin) = start_script("kms_server.py");
        KmsServer {
            port,
            child,
            _stdin: stdin,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// POST /_test/<what> with a JSON body; asserts 200 and returns the answer.
    pub fn control(&self, what: &str, body: &serde_json::Value) -> serde_json::Value {
        let (st, resp) = http(
            self.port,
            "POST",
            &format!("/_test/{what}"),
            &body.to_string(),
        );
        assert_eq!(st, 200, "/_test/{what}: {resp}");
        serde_json::from_str(&resp).expect("control answer JSON")
    }

    /// A new key (`{"spec": "ECC_NIST_P256", "state": "Disabled", "aliases": [...]}`, see the
    /// server's docstring); returns `{"KeyId", "Arn", "privateKeyPem"}`.
    pub fn add_key(&self, key: &serde_json::Value) -> serde_json::Value {
        self.control("key", key)
    }

    /// Sets a key's KeyState (`Disabled`, `PendingDeletion`, …).
    pub fn set_state(&self, key: &str, state: &str) {
        self.control(
            "key/state",
            &serde_json::json!({"key": key, "state": state}),
        );
    }

    /// Every AWS request the server received.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let (st, body) = http(self.port, "GET", "/_test/requests", "");
        assert_eq!(st, 200);
        serde_json::from_str(&body).expect("requests JSON")
    }

    /// The operations received, in order.
    pub fn ops(&self) -> Vec<String> {
        self.requests()
            .iter()
            .map(|r| r["op"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    /// Asserts every request reached the server correctly signed (botocore's check), for
    /// the test region, with the operation's X-Amz-Target among the signed headers.
    pub fn assert_all_signed(&self) {
        for r in self.requests() {
            assert_eq!(r["signature_ok"], true, "badly signed request: {r}");
            assert_eq!(r["region"], REGION, "{r}");
            let auth = r["headers"]["authorization"].as_str().unwrap_or("");
            assert!(
                auth.contains("SignedHeaders=") && auth.contains("x-amz-target"),
                "X-Amz-Target not signed: {auth}"
            );
        }
    }
}

impl Drop for KmsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Points a vpnca command at the doubles with test credentials, and nothing else from the
/// machine's AWS environment.
pub fn aws_env(c: &mut Command, moto: Option<&Moto>, ec2: Option<&Ec2Server>) {
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("AWS_REGION", REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/vpnca-test/config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/vpnca-test/credentials",
        );
    if let Some(m) = moto {
        c.env("AWS_ENDPOINT_URL_ACM", m.url());
    }
    if let Some(e) = ec2 {
        c.env("AWS_ENDPOINT_URL_EC2", e.url());
    }
}

impl Env {
    /// Runs vpnca against the AWS doubles.
    pub fn aws_run(&self, moto: Option<&Moto>, ec2: Option<&Ec2Server>, args: &[&str]) -> Output {
        let mut c = self.cmd(args);
        aws_env(&mut c, moto, ec2);
        c.output().expect("run vpnca")
    }

    /// Like [`Env::aws_run`], asserting exit 0; returns stdout.
    pub fn aws_ok(&self, moto: Option<&Moto>, ec2: Option<&Ec2Server>, args: &[&str]) -> String {
        super::expect_ok(args, self.aws_run(moto, ec2, args))
    }

    /// Like [`Env::aws_run`], asserting exit `code`; returns stderr.
    pub fn aws_fails(
        &self,
        moto: Option<&Moto>,
        ec2: Option<&Ec2Server>,
        args: &[&str],
        code: i32,
    ) -> String {
        super::expect_code(args, self.aws_run(moto, ec2, args), code)
    }

    /// Runs `vpnca --json ARGS` against the AWS doubles, asserting exit `code`; returns the
    /// JSON report on stdout, parsed, and stderr.
    pub fn aws_json(
        &self,
        moto: Option<&Moto>,
        ec2: Option<&Ec2Server>,
        args: &[&str],
        code: i32,
    ) -> (serde_json::Value, String) {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let o = self.aws_run(moto, ec2, &a);
        let out = s(&o.stdout);
        let err = super::expect_code(&a, o, code);
        let report = serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("vpnca {a:?}: not JSON ({e}):\n{out}"));
        (report, err)
    }
}

/// A CRL of this store's CA that is newer than any the store holds, as a newer copy of the
/// store would have pushed it: the store is copied to `<env dir>/newer`, alice is revoked
/// there, and that copy's `crl.pem` is returned.
pub fn newer_copy_crl(e: &Env) -> String {
    let newer = e.path("newer");
    super::copy_dir(&e.pki, &newer);
    let newer_env = Env {
        dir: tempfile::tempdir().expect("tempdir"),
        pki: newer.clone(),
    };
    newer_env.ok(&["revoke", "alice"]);
    std::fs::read_to_string(newer.join("crl.pem")).expect("crl.pem")
}

/// Runs a Python snippet with boto3 pointed at moto (an independent ACM client); the
/// snippet prints JSON, which is returned parsed.
pub fn boto3(moto: &Moto, script: &str) -> serde_json::Value {
    let prelude = format!(
        "import boto3, json\nacm = boto3.client('acm', region_name='{REGION}', endpoint_url='{}', aws_access_key_id='{ACCESS_KEY}', aws_secret_access_key='{SECRET_KEY}')\n",
        moto.url()
    );
    let o = Command::new("python3")
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .output()
        .expect("python3");
    assert!(
        o.status.success(),
        "boto3 script failed:\n{}\n{}",
        s(&o.stdout),
        s(&o.stderr)
    );
    serde_json::from_str(&s(&o.stdout)).expect("boto3 script prints JSON")
}
