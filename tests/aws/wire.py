"""What vpnca's wire-level AWS test servers share (ec2_server.py, kms_server.py).

- `check_sigv4`: the request's SigV4 signature, checked independently with botocore's own
  SigV4Auth (canonical request, payload hash, string to sign, signing key), plus the rules
  AWS applies around it: the credential scope, the service, the access key, the signed
  `host`/`x-amz-date`/`x-amz-security-token`, the 15-minute clock skew, the payload hash.
  Each server names its own errors (EC2 and KMS use different codes and statuses).
- `Handler`: HTTP/1.1 plumbing — answers, the body (no chunked bodies), the log switch, the
  `/_test/requests` log, routing of `/_test/*` control calls and AWS calls.
- `serve`: binds 127.0.0.1 on a free port, prints "PORT <n>", exits when stdin (a pipe) ends.

Credentials: access key AKIDVPNCATEST / secret vpnca-test-secret-key (env VPNCA_TEST_AK /
VPNCA_TEST_SK); any session token unless VPNCA_TEST_TOKEN is set.
"""
import hashlib, hmac, json, os, re, stat, sys, threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

ACCESS_KEY = os.environ.get("VPNCA_TEST_AK", "AKIDVPNCATEST")
SECRET_KEY = os.environ.get("VPNCA_TEST_SK", "vpnca-test-secret-key")
SESSION_TOKEN = os.environ.get("VPNCA_TEST_TOKEN")  # None: accept any token
MAX_SKEW = 15 * 60


class _SignedHeadersOnly(SigV4Auth):
    """Canonicalise exactly the headers the client listed in SignedHeaders.

    Stock SigV4Auth drops a blacklist (user-agent, expect, ...) that a client
    may legitimately sign; everything else (canonical request, payload hash,
    string to sign, signing key) is botocore's own code."""

    def headers_to_sign(self, request):
        return request.headers


def check_sigv4(handler, body, rec, service, fail):
    """Checks the SigV4 signature of the request `handler` is serving; sets rec["region"].

    `fail(kind, message)` returns the server's exception for one kind of failure:
    "missing" (no Authorization), "incomplete" (a malformed header or scope, an unsigned
    required header, a bad X-Amz-Date), "service" (scoped to another service),
    "credentials" (unknown access key or session token), "expired" (clock skew),
    "mismatch" (the signature, date scope, payload hash or a signed header is wrong).
    Returns nothing; raises fail(...) on the first problem."""
    headers_in = handler.headers
    auth = headers_in.get("Authorization")
    if not auth:
        raise fail("missing", None)
    algorithm, _, rest = auth.partition(" ")
    fields = dict(p.strip().partition("=")[::2] for p in rest.split(","))
    cred, signed, signature = (fields.get(k) for k in ("Credential", "SignedHeaders", "Signature"))
    if algorithm != "AWS4-HMAC-SHA256" or not (cred and signed and signature):
        raise fail("incomplete", "Authorization header requires 'Credential', 'SignedHeaders' "
                   f"and 'Signature' (AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., "
                   f"Signature=...): {auth!r}")
    scope = cred.split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not re.fullmatch(r"[a-z0-9-]+", scope[2]):
        raise fail("incomplete", f"Malformed credential scope {cred!r}")
    access_key, date, region, scoped_service, _ = scope
    rec["region"] = region
    if scoped_service != service:
        raise fail("service", f"Credential should be scoped to correct service: '{service}'. "
                   f"(got {scoped_service!r})")
    if access_key != ACCESS_KEY:
        raise fail("credentials", None)
    signed_list = signed.split(";")
    for required in ("host", "x-amz-date"):
        if required not in signed_list:
            raise fail("incomplete", f"SignedHeaders must include '{required}'")
    token = headers_in.get("X-Amz-Security-Token")
    if token is not None and "x-amz-security-token" not in signed_list:
        raise fail("incomplete", "X-Amz-Security-Token must be a signed header")
    if SESSION_TOKEN is not None and token != SESSION_TOKEN:
        raise fail("credentials", None)
    amz_date = headers_in.get("X-Amz-Date", "")
    try:
        when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        raise fail("incomplete", f"X-Amz-Date {amz_date!r} is not YYYYMMDDTHHMMSSZ")
    if abs((datetime.now(timezone.utc) - when).total_seconds()) > MAX_SKEW:
        raise fail("expired", f"{amz_date} is more than 15 minutes from the server time.")
    if date != amz_date[:8]:
        raise fail("mismatch", f"Credential should be scoped to a valid date: {date} vs {amz_date[:8]}")
    content_sha = headers_in.get("X-Amz-Content-SHA256")
    if content_sha not in (None, "UNSIGNED-PAYLOAD") and content_sha != hashlib.sha256(body).hexdigest():
        raise fail("mismatch", "x-amz-content-sha256 does not match the request body")
    headers = HTTPHeaders()
    for name in signed_list:
        values = headers_in.get_all(name)
        if values is None:
            raise fail("mismatch", f"Signed header '{name}' is not in the request")
        for v in values:
            headers[name] = v  # HTTPHeaders keeps repeated values
    request = AWSRequest(method=handler.command, url=f"http://{headers_in['Host']}{handler.path}",
                         data=body)
    request.headers = headers
    request.context["timestamp"] = amz_date
    signer = _SignedHeadersOnly(Credentials(ACCESS_KEY, SECRET_KEY, token), service, region)
    canonical = signer.canonical_request(request)
    string_to_sign = signer.string_to_sign(request, canonical)
    expected = signer.signature(string_to_sign, request)
    if not hmac.compare_digest(expected, signature):
        raise fail("mismatch",
                   "The request signature we calculated does not match the signature you "
                   "provided. Check your AWS Secret Access Key and signing method.\n\n"
                   f"The Canonical String for this request should have been\n'{canonical}'\n\n"
                   f"The String-to-Sign should have been\n'{string_to_sign}'\n")


class Handler(BaseHTTPRequestHandler):
    """A server's handler subclasses this and sets `state` (with `.lock` and `.requests`),
    `verbose`, `body_error(status, message)` (its exception for an unreadable body), and
    defines `_control()` (POST /_test/*), `_aws()` (POST /) and `_get(url)` (GET, returning
    False when the path is not its own)."""

    protocol_version = "HTTP/1.1"
    sys_version = ""
    verbose = False
    state = None

    def log_message(self, fmt, *args):
        if self.verbose:
            super().log_message(fmt, *args)

    def _send(self, status, body, ctype, extra=()):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status, obj):
        self._send(status, json.dumps(obj, indent=1), "application/json")

    def _body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True  # the unread body would poison keep-alive
            raise self.body_error(411, "Chunked bodies are not supported")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise self.body_error(400, "Content-Length is not a number")
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/_test/requests":
            with self.state.lock:
                return self._json(200, self.state.requests)
        if self._get(url) is False:
            self._send(404, "not found\n", "text/plain")

    def do_DELETE(self):
        if self.path == "/_test/requests":
            self._body()
            with self.state.lock:
                self.state.requests.clear()
            return self._json(200, {"ok": True})
        self._send(404, "not found\n", "text/plain")

    def do_POST(self):
        if self.path.startswith("/_test/"):
            return self._control()
        if urlsplit(self.path).path != "/":
            self._body()
            return self._send(404, "not found\n", "text/plain")
        self._aws()


def _exit_on_stdin_eof():
    try:
        while sys.stdin.buffer.read(65536):
            pass
    finally:
        os._exit(0)


def serve(handler_class):
    """Serves `handler_class` on 127.0.0.1, a free port announced as "PORT <n>" on stdout;
    exits when stdin, if a pipe or socket, reaches EOF (a crashed test leaves no server)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    server.daemon_threads = True
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (AttributeError, OSError, ValueError):
        mode = 0
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):  # not /dev/null or a terminal
        threading.Thread(target=_exit_on_stdin_eof, daemon=True).start()
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
