#!/usr/bin/env python3
"""Wire-level fake of AWS KMS (TrentService, JSON 1.1 protocol), for vpnca's tests.

Why not moto: moto 5.2.1's KMS signs MessageType=DIGEST messages wrongly (it
hashes the digest again), accepts RAW messages over 4,096 bytes, and signs and
returns public keys with disabled keys or keys pending deletion, so none of the
faults vpnca must survive can be tested against it. This server checks what
real KMS checks and signs with real keys (cryptography).

Operations: DescribeKey, GetPublicKey, Sign, CreateKey, CreateAlias,
GetParametersForImport, ImportKeyMaterial; and STS GetCallerIdentity (query
protocol: a form POST without X-Amz-Target, SigV4 for service "sts", an XML
answer naming arn:aws:iam::111122223333:user/vpnca-test or $VPNCA_TEST_CALLER),
so one server answers AWS_ENDPOINT_URL_KMS and AWS_ENDPOINT_URL_STS. CreateKey
keeps the Policy it was given (GET /_test/key shows it). Request and response shapes follow
botocore's kms/2014-11-01/service-2.json: a POST to "/" with
`X-Amz-Target: TrentService.<Op>`, `Content-Type: application/x-amz-json-1.1`,
a JSON object body; blobs are base64, timestamps epoch seconds. Errors are
`{"__type": "<Code>", "message": "..."}` with the HTTP status KMS uses (400
for client errors and throttling, 500 for KMSInternalException).

Start:   python3 tests/aws/kms_server.py
         Binds 127.0.0.1 on a free port, prints "PORT <n>" on stdout, then
         serves. If stdin is a pipe the server exits when it reaches EOF, so
         spawn it with a piped stdin and keep the write end open (a crashed
         test then never leaves it behind). Point vpnca at it with
         AWS_ENDPOINT_URL_KMS=http://127.0.0.1:<n> (or the library's endpoint).
Auth:    SigV4 verified independently with botocore.auth.SigV4Auth, service
         "kms". Access key AKIDVPNCATEST / secret vpnca-test-secret-key (env
         VPNCA_TEST_AK / VPNCA_TEST_SK); any session token is accepted unless
         VPNCA_TEST_TOKEN is set, but X-Amz-Security-Token must be a signed
         header. The region comes from the credential scope; keys live in one
         region (their ARN's), so a key is not found from another region.
         KMS's auth errors: MissingAuthenticationTokenException,
         IncompleteSignatureException, UnrecognizedClientException,
         InvalidSignatureException.

What is checked (as real KMS does; the docs of each operation and of its
errors, and the service-2.json constraints):
  - The target: unknown operation -> UnknownOperationException; a body that is
    not a JSON object, an unknown member, a member of the wrong type or a
    blob that is not base64 -> SerializationException; a missing required
    member or a length/enum constraint -> ValidationException ("1 validation
    error detected: Value ... at 'message' failed to satisfy constraint: ...").
  - KeyId resolution: key id (UUID), key ARN
    (arn:aws:kms:REGION:ACCOUNT:key/ID), alias name (alias/NAME), alias ARN
    (arn:aws:kms:REGION:ACCOUNT:alias/NAME). A malformed ARN ->
    InvalidArnException; anything not found (also another region's or another
    account's ARN) -> NotFoundException.
  - Key state: DescribeKey works in every state. GetPublicKey and Sign:
    Disabled -> DisabledException; PendingDeletion, PendingImport (and any
    other state but Enabled) -> KMSInvalidStateException.
  - GetPublicKey: a symmetric or HMAC key -> UnsupportedOperationException.
  - Sign: KeyUsage must be SIGN_VERIFY (else InvalidKeyUsageException); the
    SigningAlgorithm must be one of the key spec's (RSA: RSASSA_PKCS1_V1_5_*
    and RSASSA_PSS_*; P-256: ECDSA_SHA_256; P-384: ECDSA_SHA_384), else
    InvalidKeyUsageException; Message 1..4,096 bytes for MessageType=RAW
    (else ValidationException); MessageType=DIGEST: the message length must be
    the algorithm's hash length (32/48/64), else ValidationException; DryRun
    true -> DryRunOperationException after every other check.
    RSA signs PKCS#1 v1.5 or PSS (salt = hash length), ECDSA answers the DER
    (ASN.1) signature, as KMS does.
  - CreateKey: KeySpec/KeyUsage must fit (asymmetric RSA/ECC keys are
    SIGN_VERIFY, RSA also ENCRYPT_DECRYPT; SYMMETRIC_DEFAULT is
    ENCRYPT_DECRYPT), Origin AWS_KMS or EXTERNAL (EXTERNAL: PendingImport, no
    key material), Policy must be a JSON object
    (MalformedPolicyDocumentException).
  - CreateAlias: AliasName must match alias/[a-zA-Z0-9/_-]+ and not start with
    alias/aws/ (InvalidAliasNameException); a taken name ->
    AlreadyExistsException; the target must be a key id or key ARN (not an
    alias) and exist.
  - GetParametersForImport: only for an EXTERNAL key in PendingImport
    (UnsupportedOperationException / KMSInvalidStateException); for
    asymmetric key material the wrapping algorithm must be
    RSA_AES_KEY_WRAP_SHA_1 or _SHA_256 (RSAES_OAEP_SHA_* also for ECC).
    Answers a wrapping public key (DER SubjectPublicKeyInfo, RSA of
    WrappingKeySpec) and an import token valid 24 hours.
  - ImportKeyMaterial: the token must be this server's, for this key, and
    unexpired (InvalidImportTokenException / ExpiredImportTokenException);
    asymmetric material needs ExpirationModel KEY_MATERIAL_DOES_NOT_EXPIRE and
    no ValidTo (ValidationException); the material is unwrapped (RSA-OAEP of an
    AES key, then AES key wrap with padding, RFC 5649) into PKCS#8 DER that
    must be a private key of the key's spec (else IncorrectKeyMaterialException
    / InvalidCiphertextException). The key is then Enabled.

Control (plain HTTP, unsigned, JSON):
  POST /_test/key       {"spec":"RSA_2048"|"RSA_3072"|"RSA_4096"|"ECC_NIST_P256"
                          |"ECC_NIST_P384"|"SYMMETRIC_DEFAULT", "usage":"SIGN_VERIFY"|
                          "ENCRYPT_DECRYPT", "state":"Enabled"|"Disabled"|
                          "PendingDeletion"|"PendingImport", "origin":"AWS_KMS"|"EXTERNAL",
                          "aliases":["alias/.."], "region":"eu-west-1", "id":"<uuid>",
                          "privateKeyPem":"<PKCS#8 PEM>"}  all optional (defaults:
                        RSA_2048, SIGN_VERIFY, Enabled, AWS_KMS, no alias, eu-west-1, a
                        new UUID, a new key). Answers {"KeyId","Arn","privateKeyPem"}.
  POST /_test/key/state {"key":"<id|arn|alias>","state":"Disabled"}  sets the KeyState
                        (and Enabled), e.g. to disable a key between two calls.
  GET  /_test/key?id=<id|arn|alias>  {"KeyId","Arn","KeyState","KeySpec","KeyUsage",
                        "Origin","aliases","privateKeyPem"} (privateKeyPem null before import).
  POST /_test/throttle  {"every":N, "ops":["Sign",..]}  every Nth AWS call (counting only
                        the listed operations, default all) answers ThrottlingException,
                        HTTP 400, "Rate exceeded"; N 0 turns it off. The count starts at the
                        switch.
  POST /_test/corrupt   {"times":1,"after":0}  the next `times` Sign answers, after `after`
                        correct ones, carry a signature with one bit flipped (the call itself
                        succeeds).
  POST /_test/fail      {"op":"Sign","code":"KMSInternalException","status":500,
                         "message":"..","times":1}  the next `times` calls of the
                        operation fail so, after the signature check.
  POST /_test/delay     {"seconds":2.5,"times":1}  the next `times` AWS calls are answered
                        only after that long (a client's timeout; the call still happens).
  GET  /_test/requests  every AWS request: [{"op","body","signature_ok","region",
                        "headers","status","error","message","in_flight"}] (body: the JSON
                        sent; in_flight: the AWS calls being served when it arrived, itself
                        included).
  DELETE /_test/requests  clears that log.
Logging to stderr only with VPNCA_TEST_KMS_VERBOSE=1.
"""
import base64, hashlib, json, os, re, threading, time, traceback, uuid
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding

import wire

ACCOUNT = "111122223333"
DEFAULT_REGION = "eu-west-1"
MAX_RAW = 4096  # PlaintextType max
IMPORT_TOKEN_LIFETIME = 24 * 3600
VERBOSE = os.environ.get("VPNCA_TEST_KMS_VERBOSE") == "1"
JSON_TYPE = "application/x-amz-json-1.1"

HASHES = {"SHA_256": (hashes.SHA256, 32), "SHA_384": (hashes.SHA384, 48), "SHA_512": (hashes.SHA512, 64)}
RSA_ALGS = [f"RSASSA_{p}_SHA_{n}" for p in ("PSS", "PKCS1_V1_5") for n in (256, 384, 512)]
SPECS = {  # KeySpec -> (kind, size or curve, signing algorithms)
    "RSA_2048": ("rsa", 2048, RSA_ALGS), "RSA_3072": ("rsa", 3072, RSA_ALGS),
    "RSA_4096": ("rsa", 4096, RSA_ALGS),
    "ECC_NIST_P256": ("ec", ec.SECP256R1, ["ECDSA_SHA_256"]),
    "ECC_NIST_P384": ("ec", ec.SECP384R1, ["ECDSA_SHA_384"]),
    "SYMMETRIC_DEFAULT": ("sym", 256, []),
}
RSA_ENCRYPTION = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
STATES = ("Creating", "Enabled", "Disabled", "PendingDeletion", "PendingImport",
          "PendingReplicaDeletion", "Unavailable", "Updating")
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ALIAS_RE = r"alias/[a-zA-Z0-9/_-]+"

# Operation -> {member: type}, required members. Types: str, blob, bool, list, dict, num.
OPS = {
    "DescribeKey": ({"KeyId": "str", "GrantTokens": "list"}, ["KeyId"]),
    "GetPublicKey": ({"KeyId": "str", "GrantTokens": "list"}, ["KeyId"]),
    "Sign": ({"KeyId": "str", "Message": "blob", "MessageType": "str", "GrantTokens": "list",
              "SigningAlgorithm": "str", "DryRun": "bool"}, ["KeyId", "Message", "SigningAlgorithm"]),
    "CreateKey": ({"Policy": "str", "Description": "str", "KeyUsage": "str",
                   "CustomerMasterKeySpec": "str", "KeySpec": "str", "Origin": "str",
                   "CustomKeyStoreId": "str", "BypassPolicyLockoutSafetyCheck": "bool",
                   "Tags": "list", "MultiRegion": "bool", "XksKeyId": "str"}, []),
    "CreateAlias": ({"AliasName": "str", "TargetKeyId": "str"}, ["AliasName", "TargetKeyId"]),
    "GetParametersForImport": ({"KeyId": "str", "WrappingAlgorithm": "str", "WrappingKeySpec": "str"},
                               ["KeyId", "WrappingAlgorithm", "WrappingKeySpec"]),
    "ImportKeyMaterial": ({"KeyId": "str", "ImportToken": "blob", "EncryptedKeyMaterial": "blob",
                           "ValidTo": "num", "ExpirationModel": "str", "ImportType": "str",
                           "KeyMaterialDescription": "str", "KeyMaterialId": "str"},
                          ["KeyId", "ImportToken", "EncryptedKeyMaterial"]),
}
ENUMS = {
    "MessageType": ["RAW", "DIGEST", "EXTERNAL_MU"],
    "SigningAlgorithm": RSA_ALGS + ["ECDSA_SHA_256", "ECDSA_SHA_384", "ECDSA_SHA_512", "SM2DSA",
                                    "ML_DSA_SHAKE_256", "ED25519_SHA_512", "ED25519_PH_SHA_512"],
    "KeyUsage": ["SIGN_VERIFY", "ENCRYPT_DECRYPT", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"],
    "Origin": ["AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"],
    "WrappingAlgorithm": ["RSAES_PKCS1_V1_5", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256",
                          "RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256", "SM2PKE"],
    "WrappingKeySpec": ["RSA_2048", "RSA_3072", "RSA_4096", "SM2"],
    "ExpirationModel": ["KEY_MATERIAL_EXPIRES", "KEY_MATERIAL_DOES_NOT_EXPIRE"],
}


class ApiError(Exception):
    def __init__(self, code, message, status=400):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def invalid(member, value, constraint):
    shown = "'***Sensitive Data Redacted***'" if member in ("message", "encryptedKeyMaterial") else repr(value)
    return ApiError("ValidationException", f"1 validation error detected: Value {shown} at "
                    f"'{member}' failed to satisfy constraint: {constraint}")


def new_private_key(spec):
    kind, arg, _ = SPECS[spec]
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=arg)
    if kind == "ec":
        return ec.generate_private_key(arg())
    return None


def key_fits_spec(priv, spec):
    kind, arg, _ = SPECS[spec]
    if kind == "rsa":
        return isinstance(priv, rsa.RSAPrivateKey) and priv.key_size == arg
    if kind == "ec":
        return isinstance(priv, ec.EllipticCurvePrivateKey) and isinstance(priv.curve, arg)
    return False


def pem_of(priv):
    if priv is None:
        return None
    return priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()


class Key:
    def __init__(self, region, spec, usage, state, origin, priv, key_id=None, description=""):
        self.id = key_id or str(uuid.uuid4())
        self.region, self.spec, self.usage, self.state = region, spec, usage, state
        self.origin, self.priv, self.description = origin, priv, description
        self.created = time.time()

    @property
    def arn(self):
        return f"arn:aws:kms:{self.region}:{ACCOUNT}:key/{self.id}"

    def metadata(self):
        kind = SPECS[self.spec][0]
        md = {"AWSAccountId": ACCOUNT, "KeyId": self.id, "Arn": self.arn,
              "CreationDate": self.created, "Enabled": self.state == "Enabled",
              "Description": self.description, "KeyUsage": self.usage, "KeyState": self.state,
              "Origin": self.origin, "KeyManager": "CUSTOMER",
              "CustomerMasterKeySpec": self.spec, "KeySpec": self.spec, "MultiRegion": False}
        if self.state == "PendingDeletion":
            md["DeletionDate"] = self.created + 7 * 86400
            md["PendingDeletionWindowInDays"] = 7
        if self.origin == "EXTERNAL":
            md["ExpirationModel"] = "KEY_MATERIAL_DOES_NOT_EXPIRE"
        if self.usage == "SIGN_VERIFY":
            md["SigningAlgorithms"] = SPECS[self.spec][2]
        elif kind == "rsa":
            md["EncryptionAlgorithms"] = RSA_ENCRYPTION
        else:
            md["EncryptionAlgorithms"] = ["SYMMETRIC_DEFAULT"]
        return md


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.keys, self.aliases = {}, {}  # id -> Key; (region, alias name) -> id
        self.imports = {}  # token -> (key id, wrapping private key, expiry, algorithm)
        self.fails = {}
        self.corrupt, self.corrupt_after = 0, 0
        self.delay, self.delay_times = 0.0, 0
        self.in_flight = 0  # AWS calls being served now
        self.throttle_every, self.throttle_ops, self.throttle_count = 0, None, 0

    def add_key(self, cfg):
        unknown = set(cfg) - {"spec", "usage", "state", "origin", "aliases", "region", "id",
                              "privateKeyPem"}
        if unknown:
            raise ValueError(f"unknown key fields {sorted(unknown)}")
        spec = cfg.get("spec", "RSA_2048")
        if spec not in SPECS:
            raise ValueError(f"spec {spec!r} is not one of {sorted(SPECS)}")
        usage = cfg.get("usage", "SIGN_VERIFY" if spec != "SYMMETRIC_DEFAULT" else "ENCRYPT_DECRYPT")
        state = cfg.get("state", "Enabled")
        if usage not in ENUMS["KeyUsage"] or state not in STATES:
            raise ValueError(f"bad usage {usage!r} or state {state!r}")
        origin = cfg.get("origin", "AWS_KMS")
        if "privateKeyPem" in cfg:
            priv = serialization.load_pem_private_key(cfg["privateKeyPem"].encode(), None)
            if not key_fits_spec(priv, spec):
                raise ValueError(f"privateKeyPem is not a {spec} key")
        elif origin == "EXTERNAL" and state == "PendingImport":
            priv = None
        else:
            priv = new_private_key(spec)
        key_id = cfg.get("id")
        if key_id is not None and (not re.fullmatch(UUID_RE, key_id) or key_id in self.keys):
            raise ValueError(f"id {key_id!r} is not a new lower-case UUID")
        key = Key(cfg.get("region", DEFAULT_REGION), spec, usage, state, origin, priv, key_id)
        for a in cfg.get("aliases", []):
            if not re.fullmatch(ALIAS_RE, a) or (key.region, a) in self.aliases:
                raise ValueError(f"alias {a!r} is malformed or taken")
            self.aliases[(key.region, a)] = key.id
        self.keys[key.id] = key
        return key

    def aliases_of(self, key):
        return sorted(a for (r, a), k in self.aliases.items() if k == key.id and r == key.region)

    def resolve(self, key_ref, region, allow_alias=True):
        """KeyId as KMS reads it: key id, key ARN, alias name or alias ARN."""
        m = re.fullmatch(r"arn:(aws[a-z-]*):kms:([a-z0-9-]*):([0-9]*):(.*)", key_ref)
        if key_ref.startswith("arn:"):
            if not m or not m[2] or not re.fullmatch(r"\d{12}", m[3]) or \
                    not re.fullmatch(r"(key/.+|alias/.+)", m[4]):
                raise ApiError("InvalidArnException", f"Invalid arn {key_ref}")
            arn_region, account, resource = m[2], m[3], m[4]
            if arn_region != region or account != ACCOUNT:
                raise ApiError("NotFoundException", f"Invalid arn {key_ref}" if account != ACCOUNT
                               else f"Key '{key_ref}' does not exist")
            key_ref = resource.removeprefix("key/") if resource.startswith("key/") else resource
        if key_ref.startswith("alias/"):
            if not allow_alias:
                raise ApiError("ValidationException", f"{key_ref} is an alias; a key id or ARN is required")
            kid = self.aliases.get((region, key_ref))
            if kid is None:
                raise ApiError("NotFoundException",
                               f"Alias arn:aws:kms:{region}:{ACCOUNT}:{key_ref} is not found.")
            return self.keys[kid]
        key = self.keys.get(key_ref)
        if key is None or key.region != region:
            raise ApiError("NotFoundException",
                           f"Key 'arn:aws:kms:{region}:{ACCOUNT}:key/{key_ref}' does not exist")
        return key


STATE = State()


def usable(key, op):
    """GetPublicKey, Sign: the key must be Enabled."""
    if key.state == "Disabled":
        raise ApiError("DisabledException", f"{key.arn} is disabled.")
    if key.state != "Enabled":
        raise ApiError("KMSInvalidStateException", f"{key.arn} is {key.state} (operation {op}).")


def b64(data):
    return base64.b64encode(data).decode()


# SigV4 failures as KMS answers them (wire.check_sigv4's kinds).
SIGV4_ERRORS = {
    "missing": ("MissingAuthenticationTokenException", "Missing Authentication Token"),
    "incomplete": ("IncompleteSignatureException", None),
    "service": ("InvalidSignatureException", None),
    "credentials": ("UnrecognizedClientException", "The security token included in the request is invalid."),
    "expired": ("InvalidSignatureException", None),
    "mismatch": ("InvalidSignatureException", None),
}


def sigv4_error(kind, message):
    code, fixed = SIGV4_ERRORS[kind]
    if kind == "expired":
        message = f"Signature expired: {message}"
    return ApiError(code, fixed or message)


class Handler(wire.Handler):
    server_version = "Server"
    verbose = VERBOSE
    state = STATE

    @staticmethod
    def body_error(status, message):
        return ApiError("SerializationException", message, status)

    # ----- routing -------------------------------------------------------
    def _get(self, url):
        if url.path != "/_test/key":
            return False
        ref = (parse_qs(url.query).get("id") or [""])[0]
        with STATE.lock:
            try:
                key = None
                for region in {k.region for k in STATE.keys.values()} | {DEFAULT_REGION}:
                    try:
                        key = STATE.resolve(ref, region)
                        break
                    except ApiError:
                        continue
                if key is None:
                    return self._json(404, {"error": f"no key {ref!r}"})
                return self._json(200, {"KeyId": key.id, "Arn": key.arn, "KeyState": key.state,
                                        "KeySpec": key.spec, "KeyUsage": key.usage,
                                        "Origin": key.origin, "aliases": STATE.aliases_of(key),
                                        "privateKeyPem": pem_of(key.priv),
                                        "Policy": getattr(key, "policy", None)})
            except ApiError as e:
                return self._json(400, {"error": e.message})

    def _control(self):
        answer = {"ok": True}
        try:
            cfg = json.loads(self._body() or b"{}")
            if not isinstance(cfg, dict):
                raise ValueError("the body must be a JSON object")
            with STATE.lock:
                if self.path == "/_test/key":
                    key = STATE.add_key(cfg)
                    answer = {"KeyId": key.id, "Arn": key.arn, "privateKeyPem": pem_of(key.priv)}
                elif self.path == "/_test/key/state":
                    if cfg.get("state") not in STATES:
                        raise ValueError(f"state must be one of {STATES}")
                    key = next((k for k in STATE.keys.values()
                                if cfg.get("key") in (k.id, k.arn)), None) \
                        or STATE.resolve(str(cfg.get("key")), DEFAULT_REGION)
                    key.state = cfg["state"]
                elif self.path == "/_test/throttle":
                    every = int(cfg.get("every", 0))
                    if every < 0:
                        raise ValueError("every must be >= 0")
                    ops = cfg.get("ops")
                    if ops is not None and any(o not in OPS for o in ops):
                        raise ValueError(f"unknown op in {ops}")
                    STATE.throttle_every, STATE.throttle_ops, STATE.throttle_count = every, ops, 0
                elif self.path == "/_test/delay":
                    STATE.delay = float(cfg.get("seconds", 1))
                    STATE.delay_times = int(cfg.get("times", 1))
                elif self.path == "/_test/corrupt":
                    STATE.corrupt = int(cfg.get("times", 1))
                    STATE.corrupt_after = int(cfg.get("after", 0))
                elif self.path == "/_test/fail":
                    if cfg.get("op") not in OPS:
                        raise ValueError(f"unknown op {cfg.get('op')!r}")
                    unknown = set(cfg) - {"op", "status", "code", "message", "times"}
                    if unknown:
                        raise ValueError(f"unknown fail keys {sorted(unknown)}")
                    STATE.fails[cfg["op"]] = {
                        "status": int(cfg.get("status", 400)), "code": str(cfg["code"]),
                        "message": str(cfg.get("message", "injected failure")),
                        "times": int(cfg.get("times", 1))}
                else:
                    return self._send(404, "not found\n", "text/plain")
        except (ValueError, KeyError, TypeError, ApiError) as e:
            return self._json(400, {"error": getattr(e, "message", None) or str(e)})
        self._json(200, answer)

    # ----- AWS requests --------------------------------------------------
    def _aws(self):
        request_id = str(uuid.uuid4())
        target = self.headers.get("X-Amz-Target", "")
        if not target and self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return self._sts(request_id)
        with STATE.lock:
            STATE.in_flight += 1
            in_flight = STATE.in_flight
        try:
            self._kms(request_id, target, in_flight)
        finally:
            with STATE.lock:
                STATE.in_flight -= 1

    def _kms(self, request_id, target, in_flight):
        rec = {"op": target.removeprefix("TrentService."), "body": None, "signature_ok": False,
               "region": None, "headers": {k.lower(): v for k, v in self.headers.items()},
               "status": 200, "error": None, "message": None, "in_flight": in_flight}
        status, delay = 200, 0
        try:
            body = self._body()
            try:
                rec["body"] = json.loads(body)
            except ValueError:
                rec["body"] = body.decode("utf-8", "replace")
            self._verify_signature(body, rec)
            rec["signature_ok"] = True
            payload = json.dumps(self._dispatch(target, body, rec["region"]))
            with STATE.lock:
                delay = STATE.delay if STATE.delay_times > 0 else 0
                STATE.delay_times = max(0, STATE.delay_times - 1)
        except ApiError as e:
            status = rec["status"] = e.status
            rec["error"], rec["message"] = e.code, e.message
            payload = json.dumps({"__type": e.code, "message": e.message})
        except Exception as e:  # a bug of this server: say so, as KMS's internal error
            status = rec["status"] = 500
            rec["error"], rec["message"] = "KMSInternalException", repr(e)
            payload = json.dumps({"__type": "KMSInternalException",
                                  "message": f"kms_server.py failed: {e!r}"})
            traceback.print_exc()
        # Logged before the answer leaves, so a client that reads /_test/requests right
        # after its call always finds it.
        with STATE.lock:
            STATE.requests.append(rec)
        if delay:
            rec["delayed"] = delay
            time.sleep(delay)  # outside the lock: other calls go on meanwhile
        try:
            self._send(status, payload, JSON_TYPE, [("x-amzn-RequestId", request_id)])
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
            rec["status"], self.close_connection = "client-gone", True

    def _sts(self, request_id):
        """STS GetCallerIdentity (query protocol, XML answer), for `ca --kms-create`'s key
        policy: the caller is arn:aws:iam::ACCOUNT:user/vpnca-test (env VPNCA_TEST_CALLER)."""
        body = self._body()
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        rec = {"op": "sts:" + form.get("Action", ""), "body": form, "signature_ok": False,
               "region": None, "headers": {k.lower(): v for k, v in self.headers.items()},
               "status": 200, "error": None, "message": None}
        try:
            self._verify_signature(body, rec, "sts")
            rec["signature_ok"] = True
            if form.get("Action") != "GetCallerIdentity" or form.get("Version") != "2011-06-15":
                raise ApiError("InvalidAction", f"Could not find operation {form.get('Action')!r} "
                               f"for version {form.get('Version')!r}")
            caller = os.environ.get("VPNCA_TEST_CALLER", f"arn:aws:iam::{ACCOUNT}:user/vpnca-test")
            status, payload = 200, (
                '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
                f"<GetCallerIdentityResult><Arn>{caller}</Arn><UserId>AIDAVPNCATEST</UserId>"
                f"<Account>{ACCOUNT}</Account></GetCallerIdentityResult>"
                f"<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata>"
                "</GetCallerIdentityResponse>")
        except ApiError as e:
            status = rec["status"] = e.status
            rec["error"], rec["message"] = e.code, e.message
            payload = (f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
                       f"<Type>Sender</Type><Code>{e.code}</Code><Message>{e.message}</Message>"
                       f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")
        with STATE.lock:
            STATE.requests.append(rec)
        self._send(status, payload, "text/xml", [("x-amzn-RequestId", request_id)])

    def _verify_signature(self, body, rec, expected_service="kms"):
        wire.check_sigv4(self, body, rec, expected_service, sigv4_error)

    def _parse(self, op, body):
        ctype = self.headers.get("Content-Type", "")
        if ctype.split(";")[0].strip().lower() != JSON_TYPE:
            raise ApiError("UnknownOperationException", f"Content-Type must be {JSON_TYPE}, got {ctype!r}")
        try:
            req = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError("SerializationException", f"The request body is not JSON: {e}")
        if not isinstance(req, dict):
            raise ApiError("SerializationException", "The request body must be a JSON object")
        members, required = OPS[op]
        types = {"str": str, "bool": bool, "list": list, "dict": dict, "num": (int, float), "blob": str}
        for name, value in req.items():
            if name not in members:
                raise ApiError("SerializationException", f"Unrecognized field \"{name}\" in {op}Request")
            if value is None:
                continue
            kind = members[name]
            if not isinstance(value, types[kind]) or (kind == "num" and isinstance(value, bool)):
                raise ApiError("SerializationException", f"{name}: expected {kind}, got {type(value).__name__}")
            if kind == "blob":
                try:
                    req[name] = base64.b64decode(value, validate=True)
                except ValueError:
                    raise ApiError("SerializationException", f"{name} is not valid base64")
        for name in required:
            if req.get(name) is None:
                raise invalid(name[0].lower() + name[1:], None, "Member must not be null")
        for name, allowed in ENUMS.items():
            if req.get(name) is not None and req[name] not in allowed:
                raise invalid(name[0].lower() + name[1:], req[name],
                              f"Member must satisfy enum value set: [{', '.join(allowed)}]")
        for name in ("KeyId", "TargetKeyId"):
            if name in req and not 1 <= len(req[name]) <= 2048:
                raise invalid(name[0].lower() + name[1:], req[name],
                              "Member must have length between 1 and 2048")
        return req

    def _dispatch(self, target, body, region):
        prefix, _, op = target.partition(".")
        if prefix != "TrentService" or op not in OPS:
            raise ApiError("UnknownOperationException", f"Unknown operation {target!r}")
        req = self._parse(op, body)
        with STATE.lock:
            fail = STATE.fails.get(op)
            if fail and fail["times"] > 0:
                fail["times"] -= 1
                raise ApiError(fail["code"], fail["message"], fail["status"])
            if STATE.throttle_every and (STATE.throttle_ops is None or op in STATE.throttle_ops):
                STATE.throttle_count += 1
                if STATE.throttle_count % STATE.throttle_every == 0:
                    raise ApiError("ThrottlingException", "Rate exceeded")
            return getattr(self, "_" + op)(req, region)

    # ----- operations ----------------------------------------------------
    def _DescribeKey(self, req, region):
        return {"KeyMetadata": STATE.resolve(req["KeyId"], region).metadata()}

    def _GetPublicKey(self, req, region):
        key = STATE.resolve(req["KeyId"], region)
        if SPECS[key.spec][0] == "sym":
            raise ApiError("UnsupportedOperationException",
                           f"{key.arn} key usage is {key.usage} which is not valid for GetPublicKey.")
        usable(key, "GetPublicKey")
        md = key.metadata()
        der = key.priv.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        answer = {"KeyId": key.arn, "PublicKey": b64(der), "CustomerMasterKeySpec": key.spec,
                  "KeySpec": key.spec, "KeyUsage": key.usage}
        for f in ("SigningAlgorithms", "EncryptionAlgorithms"):
            if f in md:
                answer[f] = md[f]
        return answer

    def _Sign(self, req, region):
        message, alg = req["Message"], req["SigningAlgorithm"]
        mtype = req.get("MessageType") or "RAW"
        if not 1 <= len(message) <= MAX_RAW:  # PlaintextType: min 1, max 4096, whatever the type
            raise invalid("message", None, f"Member must have length "
                          f"{'less than or equal to 4096' if message else 'greater than or equal to 1'}")
        key = STATE.resolve(req["KeyId"], region)
        usable(key, "Sign")
        if key.usage != "SIGN_VERIFY":
            raise ApiError("InvalidKeyUsageException",
                           f"{key.arn} key usage is {key.usage} which is not valid for Sign.")
        if alg not in SPECS[key.spec][2]:
            raise ApiError("InvalidKeyUsageException", f"Algorithm {alg} is incompatible with key spec "
                           f"{key.spec}. Supported: {', '.join(SPECS[key.spec][2])}.")
        if mtype == "EXTERNAL_MU":
            raise ApiError("ValidationException", f"MessageType EXTERNAL_MU is valid only for ML_DSA keys, "
                           f"not {key.spec}.")
        hash_cls, hash_len = HASHES[alg[-7:]]
        if mtype == "DIGEST" and len(message) != hash_len:
            raise ApiError("ValidationException", f"Digest is invalid length for algorithm {alg}: "
                           f"{len(message)} bytes, expected {hash_len}.")
        if req.get("DryRun"):
            raise ApiError("DryRunOperationException",
                           "The request would have succeeded, but the DryRun option is set.")
        # DIGEST: the message is the hash already (Prehashed); RAW: hashed here.
        algo = Prehashed(hash_cls()) if mtype == "DIGEST" else hash_cls()
        if SPECS[key.spec][0] == "rsa":
            pad = padding.PKCS1v15() if "PKCS1" in alg else \
                padding.PSS(mgf=padding.MGF1(hash_cls()), salt_length=hash_len)
            sig = key.priv.sign(message, pad, algo)
        else:
            sig = key.priv.sign(message, ec.ECDSA(algo))
        if STATE.corrupt > 0 and STATE.corrupt_after > 0:
            STATE.corrupt_after -= 1
        elif STATE.corrupt > 0:
            STATE.corrupt -= 1
            sig = bytes([sig[0]]) + bytes([sig[1] ^ 0x01]) + sig[2:] if SPECS[key.spec][0] == "rsa" \
                else sig[:-1] + bytes([sig[-1] ^ 0x01])
        return {"KeyId": key.arn, "Signature": b64(sig), "SigningAlgorithm": alg}

    def _CreateKey(self, req, region):
        spec = req.get("KeySpec") or req.get("CustomerMasterKeySpec") or "SYMMETRIC_DEFAULT"
        if spec not in SPECS:
            raise ApiError("UnsupportedOperationException", f"KeySpec {spec} is not supported by this test server")
        kind = SPECS[spec][0]
        usage = req.get("KeyUsage") or ("ENCRYPT_DECRYPT" if kind == "sym" else None)
        if usage is None:
            raise ApiError("ValidationException", f"KeyUsage is required for KeySpec {spec}")
        fits = {"sym": ["ENCRYPT_DECRYPT"], "rsa": ["SIGN_VERIFY", "ENCRYPT_DECRYPT"], "ec": ["SIGN_VERIFY"]}
        if usage not in fits[kind]:
            raise ApiError("ValidationException", f"KeyUsage {usage} is not compatible with KeySpec {spec}")
        origin = req.get("Origin") or "AWS_KMS"
        if origin not in ("AWS_KMS", "EXTERNAL"):
            raise ApiError("UnsupportedOperationException", f"Origin {origin} is not supported by this test server")
        if "Policy" in req:
            try:
                policy = json.loads(req["Policy"])
            except ValueError:
                policy = None
            if not isinstance(policy, dict) or "Statement" not in policy:
                raise ApiError("MalformedPolicyDocumentException", "The new key policy will not allow "
                               "you to update the key policy in the future." if policy else
                               "Policy is not a JSON document with a Statement")
        state = "PendingImport" if origin == "EXTERNAL" else "Enabled"
        key = Key(region, spec, usage, state, origin,
                  None if origin == "EXTERNAL" else new_private_key(spec),
                  description=req.get("Description", ""))
        key.policy = req.get("Policy")
        STATE.keys[key.id] = key
        return {"KeyMetadata": key.metadata()}

    def _CreateAlias(self, req, region):
        name = req["AliasName"]
        if not 1 <= len(name) <= 256 or not re.fullmatch(r"[a-zA-Z0-9:/_-]+", name):
            raise invalid("aliasName", name, "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$")
        if not re.fullmatch(ALIAS_RE, name) or name.startswith("alias/aws/"):
            raise ApiError("InvalidAliasNameException", f"Alias must start with the prefix \"alias/\" "
                           f"and not \"alias/aws/\": {name}")
        if (region, name) in STATE.aliases:
            raise ApiError("AlreadyExistsException",
                           f"An alias with the name arn:aws:kms:{region}:{ACCOUNT}:{name} already exists")
        key = STATE.resolve(req["TargetKeyId"], region, allow_alias=False)
        if key.state == "PendingDeletion":
            raise ApiError("KMSInvalidStateException", f"{key.arn} is pending deletion.")
        STATE.aliases[(region, name)] = key.id
        return {}

    def _GetParametersForImport(self, req, region):
        key = STATE.resolve(req["KeyId"], region)
        if key.origin != "EXTERNAL":
            raise ApiError("UnsupportedOperationException",
                           f"{key.arn} origin is {key.origin} which is not valid for this operation.")
        if key.state != "PendingImport":
            raise ApiError("KMSInvalidStateException", f"{key.arn} is {key.state}: asymmetric key "
                           "material can be imported once only, into a key pending import.")
        walg, wspec = req["WrappingAlgorithm"], req["WrappingKeySpec"]
        allowed = {"rsa": ["RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256"],
                   "ec": ["RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256", "RSAES_OAEP_SHA_1",
                          "RSAES_OAEP_SHA_256"],
                   "sym": ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1",
                           "RSA_AES_KEY_WRAP_SHA_256"]}[SPECS[key.spec][0]]
        if walg not in allowed:
            raise ApiError("ValidationException", f"WrappingAlgorithm {walg} is not valid for key spec "
                           f"{key.spec}; use one of {', '.join(allowed)}")
        if wspec == "SM2":
            raise ApiError("ValidationException", "WrappingKeySpec SM2 is valid only in China Regions")
        wrapping = rsa.generate_private_key(public_exponent=65537, key_size=int(wspec[4:]))
        token = os.urandom(64)
        valid_to = time.time() + IMPORT_TOKEN_LIFETIME
        STATE.imports[token] = (key.id, wrapping, valid_to, walg)
        der = wrapping.public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
        return {"KeyId": key.arn, "ImportToken": b64(token), "PublicKey": b64(der),
                "ParametersValidTo": valid_to}

    def _ImportKeyMaterial(self, req, region):
        key = STATE.resolve(req["KeyId"], region)
        found = STATE.imports.get(req["ImportToken"])
        if found is None or found[0] != key.id:
            raise ApiError("InvalidImportTokenException", "The import token is not valid for this key.")
        _, wrapping, valid_to, walg = found
        if time.time() > valid_to:
            raise ApiError("ExpiredImportTokenException", "The import token has expired.")
        if key.state != "PendingImport":
            raise ApiError("KMSInvalidStateException", f"{key.arn} is {key.state}.")
        asymmetric = SPECS[key.spec][0] != "sym"
        model = req.get("ExpirationModel")
        if asymmetric and (model == "KEY_MATERIAL_EXPIRES" or "ValidTo" in req):
            raise ApiError("ValidationException", "Asymmetric key material cannot expire: use "
                           "ExpirationModel KEY_MATERIAL_DOES_NOT_EXPIRE and no ValidTo.")
        hash_cls = hashes.SHA256 if walg.endswith("SHA_256") else hashes.SHA1
        oaep = padding.OAEP(mgf=padding.MGF1(hash_cls()), algorithm=hash_cls(), label=None)
        blob = req["EncryptedKeyMaterial"]
        try:
            if walg.startswith("RSA_AES_KEY_WRAP"):
                n = wrapping.key_size // 8
                aes_key = wrapping.decrypt(blob[:n], oaep)
                if len(aes_key) != 32:
                    raise ValueError("the wrapped AES key is not 256 bits")
                material = aes_key_unwrap_with_padding(aes_key, blob[n:])
            else:
                material = wrapping.decrypt(blob, oaep)
        except (ValueError, InvalidUnwrap, InvalidKey) as e:
            raise ApiError("InvalidCiphertextException", f"The key material cannot be unwrapped: {e}")
        if asymmetric:
            try:
                priv = serialization.load_der_private_key(material, None)
            except (ValueError, TypeError) as e:
                raise ApiError("IncorrectKeyMaterialException", f"The key material is not PKCS#8 DER: {e}")
            if not key_fits_spec(priv, key.spec):
                raise ApiError("IncorrectKeyMaterialException", f"The key material is not a {key.spec} key.")
            key.priv = priv
        del STATE.imports[req["ImportToken"]]
        key.state = "Enabled"
        return {"KeyId": key.arn, "KeyMaterialId": hashlib.sha256(material).hexdigest()}


def main():
    wire.serve(Handler)


if __name__ == "__main__":
    main()
