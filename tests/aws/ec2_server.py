#!/usr/bin/env python3
"""Wire-level fake of four AWS EC2 Query API (2016-11-15) calls, for vpnca's tests.

No AWS emulator implements the Client VPN CRL/configuration calls, so this
server speaks them itself: DescribeClientVpnEndpoints,
ImportClientVpnClientCertificateRevocationList,
ExportClientVpnClientCertificateRevocationList and
ExportClientVpnClientConfiguration. Response shapes follow botocore's
ec2/2016-11-15/service-2.json (element names are the members' locationName).

Start:   python3 tests/aws/ec2_server.py
         Binds 127.0.0.1 on a free port, prints "PORT <n>" on stdout, then
         serves. If stdin is a pipe the server exits when it reaches EOF, so
         spawn it with a piped stdin and keep the write end open (a crashed
         test then never leaves it behind). Point vpnca at it with
         AWS_ENDPOINT_URL_EC2=http://127.0.0.1:<n>.
Auth:    SigV4 verified independently with botocore.auth.SigV4Auth. Access key
         AKIDVPNCATEST / secret vpnca-test-secret-key (env VPNCA_TEST_AK /
         VPNCA_TEST_SK); any session token is accepted unless VPNCA_TEST_TOKEN
         is set, but X-Amz-Security-Token must be a signed header. Region comes
         from the credential scope; the service must be "ec2".
Control (plain HTTP, unsigned, JSON):
  POST /_test/state     {"endpoints":[{"id":"cvpn-endpoint-..","serverCertificateArn":"arn:..",
                          "clientRootCertificateChainArn":"arn:.."|null,
                          "authType":"certificate-authentication"|"federated-authentication"
                            |"directory-service-authentication" (or a list of them),
                          "dnsName":"..","description":"..", optional "status",
                          "samlProviderArn","directoryId","clientCidrBlock","vpcId"}],
                         "clientConfiguration":{"cvpn-endpoint-..":"text"}, "pageSize":2}
                        Replaces the state; stored CRLs and pending failures are reset.
                        Without a clientConfiguration entry, a default OpenVPN text
                        (no <ca> block) naming the endpoint's DNS name is exported.
  POST /_test/fail      {"action":"..","status":400,"code":"..","message":"..",
                         "times":1, "endpoint":"cvpn-endpoint-.."}  next `times` calls of
                        the action fail (after the signature check passes); with
                        "endpoint", only the calls whose ClientVpnEndpointId is that one
                        (the others go through and do not count).
  POST /_test/tamper    {"endpoint":"id","crl":"PEM","sticky":bool} sets a stored CRL
                        as is; sticky: later imports say true but keep it.
  GET  /_test/requests  every AWS request: [{"action","params","signature_ok",
                        "region","headers","status","error"}]
  DELETE /_test/requests  clears that log.
  GET  /_test/crl?endpoint=ID  the stored PEM, or 404.
Paging: a DescribeClientVpnEndpoints page holds min(pageSize, MaxResults)
endpoints (AWS may return fewer than MaxResults), so NextToken is exercised.
Logging to stderr only with VPNCA_TEST_EC2_VERBOSE=1.
"""
import base64, hashlib, json, os, re, threading, uuid
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from cryptography import x509

import wire

NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
MAX_CRL_ENTRIES = 20000  # Client VPN quota, not adjustable
VERBOSE = os.environ.get("VPNCA_TEST_EC2_VERBOSE") == "1"

# Action -> (parameter-name patterns, required names); Action/Version are common.
ID, DRY = r"ClientVpnEndpointId", r"DryRun"
ACTIONS = {
    "DescribeClientVpnEndpoints": (
        [r"ClientVpnEndpointId\.[1-9]\d*", r"MaxResults", r"NextToken", DRY,
         r"Filter\.[1-9]\d*\.Name", r"Filter\.[1-9]\d*\.Value\.[1-9]\d*"], []),
    "ImportClientVpnClientCertificateRevocationList": (
        [ID, r"CertificateRevocationList", DRY], ["ClientVpnEndpointId", "CertificateRevocationList"]),
    "ExportClientVpnClientCertificateRevocationList": ([ID, DRY], ["ClientVpnEndpointId"]),
    "ExportClientVpnClientConfiguration": ([ID, DRY], ["ClientVpnEndpointId"]),
}
AUTH_TYPES = ("certificate-authentication", "federated-authentication",
              "directory-service-authentication")
ENDPOINT_KEYS = {"id", "serverCertificateArn", "clientRootCertificateChainArn", "authType",
                 "dnsName", "description", "status", "samlProviderArn", "directoryId",
                 "clientCidrBlock", "vpcId"}


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.replace({})

    def replace(self, cfg):
        unknown = set(cfg) - {"endpoints", "clientConfiguration", "pageSize"}
        if unknown:
            raise ValueError(f"unknown state keys {sorted(unknown)}")
        endpoints = []
        for ep in cfg.get("endpoints", []):
            if set(ep) - ENDPOINT_KEYS or not str(ep.get("id", "")).startswith("cvpn-endpoint-"):
                raise ValueError(f"bad endpoint {ep!r} (keys {sorted(ENDPOINT_KEYS)})")
            types = ep.get("authType", "certificate-authentication")
            types = [types] if isinstance(types, str) else list(types)
            if not types or any(t not in AUTH_TYPES for t in types):
                raise ValueError(f"bad authType {types!r}")
            endpoints.append(dict(ep, authType=types))
        page_size = cfg.get("pageSize", 2)
        if not isinstance(page_size, int) or page_size < 1:
            raise ValueError("pageSize must be a positive integer")
        self.endpoints, self.page_size = endpoints, page_size
        self.configs = dict(cfg.get("clientConfiguration", {}))
        self.crls, self.fails, self.sticky = {}, {}, set()

    def endpoint(self, ep_id):
        for ep in self.endpoints:
            if ep["id"] == ep_id:
                return ep
        raise ApiError(400, "InvalidClientVpnEndpointId.NotFound",
                       f"The clientVpnEndpoint ID '{ep_id}' does not exist")


STATE = State()


def text(value):
    """XML-escape element text; \\r as a character reference so parsers keep CRLF."""
    return escape(str(value)).replace("\r", "&#13;")


def el(name, content):
    return f"<{name}>{content}</{name}>"


# SigV4 failures as EC2 answers them (wire.check_sigv4's kinds).
SIGV4_ERRORS = {
    "missing": (401, "MissingAuthenticationToken", "Request is missing Authentication Token"),
    "incomplete": (400, "IncompleteSignature", None),
    "service": (403, "SignatureDoesNotMatch", None),
    "credentials": (401, "AuthFailure", "AWS was not able to validate the provided access credentials"),
    "expired": (400, "RequestExpired", None),
    "mismatch": (403, "SignatureDoesNotMatch", None),
}


def sigv4_error(kind, message):
    status, code, fixed = SIGV4_ERRORS[kind]
    if kind == "expired":
        message = f"Request has expired ({message})"
    return ApiError(status, code, fixed or message)


class Handler(wire.Handler):
    server_version = "AmazonEC2"
    verbose = VERBOSE
    state = STATE

    @staticmethod
    def body_error(status, message):
        return ApiError(status, "MissingContentLength", message)

    # ----- routing -------------------------------------------------------
    def _get(self, url):
        if url.path == "/_test/crl":
            ep_id = (parse_qs(url.query).get("endpoint") or [""])[0]
            with STATE.lock:
                pem = STATE.crls.get(ep_id)
            if pem is None:
                return self._send(404, "no CRL stored\n", "text/plain")
            return self._send(200, pem, "application/x-pem-file")
        return False

    def _control(self):
        try:
            cfg = json.loads(self._body() or b"{}")
            with STATE.lock:
                if self.path == "/_test/state":
                    STATE.replace(cfg)
                elif self.path == "/_test/fail":
                    if cfg.get("action") not in ACTIONS:
                        raise ValueError(f"unknown action {cfg.get('action')!r}")
                    unknown = set(cfg) - {"action", "status", "code", "message", "times", "endpoint"}
                    if unknown:
                        raise ValueError(f"unknown fail keys {sorted(unknown)}")
                    STATE.fails[cfg["action"]] = {
                        "status": int(cfg.get("status", 400)), "code": str(cfg["code"]),
                        "message": str(cfg.get("message", "injected failure")),
                        "times": int(cfg.get("times", 1)), "endpoint": cfg.get("endpoint")}
                elif self.path == "/_test/tamper":
                    STATE.endpoint(cfg["endpoint"])
                    STATE.crls[cfg["endpoint"]] = str(cfg["crl"])
                    if cfg.get("sticky"):  # later imports answer true but change nothing
                        STATE.sticky.add(cfg["endpoint"])
                else:
                    return self._send(404, "not found\n", "text/plain")
        except (ValueError, KeyError, TypeError, ApiError) as e:
            return self._json(400, {"error": str(e)})
        self._json(200, {"ok": True})

    # ----- AWS requests --------------------------------------------------
    def _aws(self):
        request_id = str(uuid.uuid4())
        rec = {"action": None, "params": {}, "signature_ok": False, "region": None,
               "headers": {k.lower(): v for k, v in self.headers.items()},
               "status": 200, "error": None}
        try:
            body = self._body()
            try:  # best effort, so the log shows what a rejected request tried
                loose = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
                rec["params"] = {k: v[-1] for k, v in loose.items()}
                rec["action"] = rec["params"].get("Action")
            except ValueError:
                pass
            self._verify_signature(body, rec)
            rec["signature_ok"] = True
            params = self._parse_params(body)
            rec["params"] = params
            rec["action"] = params.get("Action")
            xml = self._dispatch(params, rec["region"], request_id)
            status = 200
        except ApiError as e:
            rec["status"], rec["error"] = e.status, e.code
            xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
                   f"{el('Code', text(e.code))}{el('Message', text(e.message))}</Error></Errors>"
                   f"{el('RequestID', request_id)}</Response>")
            status = e.status
        # Logged before the answer is sent: a client that reads /_test/requests right after
        # its call returned must find the call there (it once did not: a flaky test).
        with STATE.lock:
            STATE.requests.append(rec)
        self._send(status, xml, "text/xml;charset=UTF-8", [("x-amzn-RequestId", request_id)])

    def _verify_signature(self, body, rec):
        wire.check_sigv4(self, body, rec, "ec2", sigv4_error)

    def _parse_params(self, body):
        ctype = self.headers.get("Content-Type", "")
        if ctype.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
            raise ApiError(400, "InvalidParameterValue",
                           f"Content-Type must be application/x-www-form-urlencoded, got {ctype!r}")
        try:
            parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True,
                              strict_parsing=True, errors="strict")
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, "MalformedQueryString", f"Malformed form body: {e}")
        for name, values in parsed.items():
            if len(values) != 1:
                raise ApiError(400, "MalformedQueryString", f"Parameter {name} appears {len(values)} times")
        return {k: v[0] for k, v in parsed.items()}

    # ----- actions -------------------------------------------------------
    def _dispatch(self, params, region, request_id):
        action = params.get("Action")
        if action is None:
            raise ApiError(400, "MissingAction", "The request must contain the parameter Action")
        if "Version" not in params:
            raise ApiError(400, "MissingParameter", "The request must contain the parameter Version")
        if params["Version"] != "2016-11-15":
            raise ApiError(400, "InvalidParameterValue", f"Unsupported Version {params['Version']!r}")
        if action not in ACTIONS:
            raise ApiError(400, "InvalidAction", f"The action {action} is not valid for this web service.")
        with STATE.lock:
            fail = STATE.fails.get(action)
            if fail and fail["endpoint"] not in (None, params.get("ClientVpnEndpointId")):
                fail = None
            if fail and fail["times"] > 0:
                fail["times"] -= 1
                raise ApiError(fail["status"], fail["code"], fail["message"])
        patterns, required = ACTIONS[action]
        for name in params:
            if name not in ("Action", "Version") and not any(re.fullmatch(p, name) for p in patterns):
                raise ApiError(400, "UnknownParameter", f"The parameter {name} is not recognized")
        for name in required:
            if not params.get(name):
                raise ApiError(400, "MissingParameter", f"The request must contain the parameter {name}")
        dry_run = params.get("DryRun", "false").lower()
        if dry_run not in ("true", "false"):
            raise ApiError(400, "InvalidParameterValue", f"Invalid value for DryRun: {params['DryRun']!r}")
        if dry_run == "true":
            raise ApiError(412, "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
        with STATE.lock:
            inner = getattr(self, "_" + action)(params, region)
        return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{action}Response xmlns="{NS}">'
                f"{el('requestId', request_id)}{inner}</{action}Response>")

    def _DescribeClientVpnEndpoints(self, params, region):
        ids = [params[k] for k in sorted((k for k in params if k.startswith("ClientVpnEndpointId.")),
                                         key=lambda k: int(k.split(".")[1]))]
        filters = {}
        for k in params:
            m = re.fullmatch(r"Filter\.(\d+)\.(Name|Value\.\d+)", k)
            if m:
                filters.setdefault(m[1], {"values": []})
                if m[2] == "Name":
                    filters[m[1]]["name"] = params[k]
                else:
                    filters[m[1]]["values"].append(params[k])
        for n, f in filters.items():
            if "name" not in f:
                raise ApiError(400, "MissingParameter",
                               f"The request must contain the parameter Filter.{n}.Name")
            if f["name"] not in ("endpoint-id", "transport-protocol"):
                raise ApiError(400, "InvalidParameterValue", f"The filter '{f['name']}' is invalid")
        page = STATE.page_size
        if "MaxResults" in params:
            if not re.fullmatch(r"\d+", params["MaxResults"]) or not 5 <= int(params["MaxResults"]) <= 1000:
                raise ApiError(400, "InvalidParameterValue",
                               f"Value ({params['MaxResults']}) for parameter maxResults is invalid. "
                               "Expecting a value between 5 and 1000.")
            page = min(page, int(params["MaxResults"]))
        endpoints = [STATE.endpoint(i) for i in dict.fromkeys(ids)] if ids else list(STATE.endpoints)
        for f in filters.values():
            key = (lambda ep: ep["id"]) if f["name"] == "endpoint-id" else (lambda ep: "udp")
            endpoints = [ep for ep in endpoints if key(ep) in f["values"]]
        query = hashlib.sha256(json.dumps([ids, sorted(filters.items())]).encode()).hexdigest()[:16]
        start = 0
        if params.get("NextToken"):
            try:
                offset, bound = base64.urlsafe_b64decode(params["NextToken"]).decode().split(":")
                start = int(offset)
            except ValueError:
                bound, start = "", -1
            if bound != query or start <= 0:
                raise ApiError(400, "InvalidPaginationToken",
                               f"Invalid pagination token {params['NextToken']!r} for this request")
        items = "".join(self._endpoint_xml(ep, region) for ep in endpoints[start:start + page])
        xml = el("clientVpnEndpoint", items)
        if start + page < len(endpoints):
            token = base64.urlsafe_b64encode(f"{start + page}:{query}".encode()).decode()
            xml += el("nextToken", token)
        return xml

    @staticmethod
    def _endpoint_xml(ep, region):
        options = ""
        for t in ep["authType"]:
            if t == "certificate-authentication":
                chain = ep.get("clientRootCertificateChainArn")
                inner = el("clientRootCertificateChain", text(chain)) if chain else ""
                detail = el("mutualAuthentication", inner)
            elif t == "federated-authentication":
                arn = ep.get("samlProviderArn", "arn:aws:iam::123456789012:saml-provider/vpnca-test")
                detail = el("federatedAuthentication", el("samlProviderArn", text(arn)))
            else:
                detail = el("activeDirectory", el("directoryId", text(ep.get("directoryId", "d-1234567890"))))
            options += el("item", el("type", t) + detail)
        dns = ep.get("dnsName") or f"*.{ep['id']}.prod.clientvpn.{region}.amazonaws.com"
        return el("item", "".join([
            el("clientVpnEndpointId", text(ep["id"])),
            el("description", text(ep.get("description", ""))),
            el("status", el("code", text(ep.get("status", "available")))),
            el("creationTime", "2024-01-01T00:00:00.000Z"),
            el("dnsName", text(dns)),
            el("clientCidrBlock", text(ep.get("clientCidrBlock", "10.100.0.0/22"))),
            el("splitTunnel", "false"),
            el("vpnProtocol", "openvpn"),
            el("transportProtocol", "udp"),
            el("vpnPort", "443"),
            el("serverCertificateArn", text(ep["serverCertificateArn"]))
            if ep.get("serverCertificateArn") else "",
            el("authenticationOptions", options),
            el("tagSet", ""),
            el("vpcId", text(ep.get("vpcId", "vpc-0123456789abcdef0"))),
            el("sessionTimeoutHours", "24"),
        ]))

    def _ImportClientVpnClientCertificateRevocationList(self, params, region):
        ep_id, pem = params["ClientVpnEndpointId"], params["CertificateRevocationList"]
        STATE.endpoint(ep_id)
        blocks = re.findall(r"-----BEGIN ([A-Z0-9 ]+)-----", pem)
        if blocks != ["X509 CRL"]:
            raise ApiError(400, "InvalidParameterValue", "The certificate revocation list must contain "
                           f"exactly one PEM 'X509 CRL' block, found {blocks}")
        try:
            crl = x509.load_pem_x509_crl(pem.encode())
        except ValueError as e:
            raise ApiError(400, "InvalidParameterValue", f"The certificate revocation list is not valid: {e}")
        if len(crl) > MAX_CRL_ENTRIES:
            raise ApiError(400, "InvalidParameterValue", f"The certificate revocation list has {len(crl)} "
                           f"entries; at most {MAX_CRL_ENTRIES} are allowed")
        if ep_id not in STATE.sticky:
            STATE.crls[ep_id] = pem
        return el("return", "true")

    def _ExportClientVpnClientCertificateRevocationList(self, params, region):
        ep_id = params["ClientVpnEndpointId"]
        STATE.endpoint(ep_id)
        pem = STATE.crls.get(ep_id)
        if pem is None:
            return el("status", el("code", "pending"))
        return el("certificateRevocationList", text(pem)) + el("status", el("code", "active"))

    def _ExportClientVpnClientConfiguration(self, params, region):
        ep = STATE.endpoint(params["ClientVpnEndpointId"])
        config = STATE.configs.get(ep["id"])
        if config is None:  # the shape AWS exports, minus the <ca> block
            dns = ep.get("dnsName") or f"{ep['id']}.prod.clientvpn.{region}.amazonaws.com"
            dns = dns.removeprefix("*.")
            config = (f"client\ndev tun\nproto udp\nremote {dns} 443\nremote-random-hostname\n"
                      "resolv-retry infinite\nnobind\nremote-cert-tls server\ncipher AES-256-GCM\n"
                      "verb 3\n\nreneg-sec 0\n")
        return el("clientConfiguration", text(config))


def main():
    wire.serve(Handler)


if __name__ == "__main__":
    main()
