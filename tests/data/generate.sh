#!/usr/bin/env bash
# Regenerates the committed test fixtures in tests/data/. Run it from anywhere:
#
#     tests/data/generate.sh
#
# The outputs are committed, so tests never run this script; rerun it only to change the
# fixtures (then commit the new files with it). Keys are random, so every run gives new bytes
# under the same file names; the tests must only rely on what is described here.
# Needs: bash, the `openssl` CLI (1.1.1 or 3.x), grep and coreutils (head, tail, od, tr, wc,
# mktemp); no other crypto tool.
#
# What each file is:
#
#   foreign-ca.crt          A root CA that is NOT vpnca's: RSA-2048, self-signed,
#                           CN=Foreign Test Root CA, CA:TRUE, 20 years. Nothing vpnca issues
#                           verifies against it.
#   foreign-ca.key          Its private key, unencrypted PKCS#8 PEM (test data, not a secret).
#
#   csr/                    Valid requests for `vpnca sign-req FILE --type client`. Their private
#                           keys are thrown away: tests compare public keys via `openssl req
#                           -pubkey`.
#     alice.csr             RSA-2048, CN=alice, no extensions.
#     bob-p256.csr          EC P-256, CN=bob.
#     mallory-wants-ca.csr  RSA-2048, CN=mallory, asks for basicConstraints critical CA:TRUE,
#                           keyUsage keyCertSign+cRLSign, extendedKeyUsage serverAuth and a
#                           SAN DNS:evil.example.com. vpnca must ignore every requested extension
#                           and apply its own client profile.
#     rsa1024.csr           RSA-1024, CN=weak (a key size vpnca does not sign).
#     ed25519.csr           Ed25519, CN=edward.
#
#   bad-csr/                Negative cases: each must be refused with exit 2 and a specific
#                           message, leaving the store untouched (tests/fixtures.rs).
#     flipped-signature.csr PEM P-256 request whose last signature byte has one bit flipped.
#     wrong-signer.csr      P-256 request for key A whose signature was made with key B:
#                           key A's SubjectPublicKeyInfo was swapped into a request B signed.
#     truncated.csr         The first lines of a PEM request; the rest (and the END line) lost.
#     truncated-body.csr    A PEM request with BEGIN and END lines but half of its base64 body.
#     certificate.pem       A PEM CERTIFICATE (the foreign CA), not a request: wrong label.
#     junk.bin              64 bytes of binary junk (SHA-512 of a fixed string: deterministic).
#     empty.csr             An empty file.
#     trailing-garbage.der  A valid DER P-256 request followed by the bytes "GARBAGE\n".
#     slash-in-cn.csr       Valid P-256 request with CN "a/b" (not an acceptable vpnca name).
#     empty-subject.csr     Valid P-256 request with an empty subject (no CN).
set -euo pipefail
cd "$(dirname "$0")"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rm -rf csr bad-csr foreign-ca.crt foreign-ca.key
mkdir -p csr bad-csr

# A PEM file from DER, byte for byte (no re-encoding by openssl).
pem_of() { # LABEL DER_FILE
    echo "-----BEGIN $1-----"
    openssl base64 -in "$2"
    echo "-----END $1-----"
}
# Hex of a file, one line.
hex_of() { od -An -v -tx1 "$1" | tr -d ' \n'; }
# Bytes from hex on stdin.
unhex() {
    local h
    h=$(cat)
    local i
    for ((i = 0; i < ${#h}; i += 2)); do
        printf "\\x${h:i:2}"
    done
}

p256() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
rsa() { openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$2" -out "$1" 2>/dev/null; }
# Whether openssl finds a request's self-signature valid (OpenSSL 3.0's `req -verify` exits 0
# either way: read its verdict).
self_signed_ok() { openssl req -in "$1" -inform "${2:-PEM}" -verify -noout 2>&1 | grep -q 'verify OK'; }
req() { # KEY SUBJECT OUT [extra openssl req args]
    local key=$1 subj=$2 out=$3
    shift 3
    openssl req -new -key "$key" -subj "$subj" -out "$out" "$@"
}

# --- the foreign root CA ------------------------------------------------------------------
rsa foreign-ca.key 2048
openssl req -new -x509 -key foreign-ca.key -subj "/CN=Foreign Test Root CA" -days 7300 \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out foreign-ca.crt

# --- valid requests -----------------------------------------------------------------------
rsa "$work/alice.key" 2048
req "$work/alice.key" "/CN=alice" csr/alice.csr
p256 "$work/bob.key"
req "$work/bob.key" "/CN=bob" csr/bob-p256.csr
rsa "$work/mallory.key" 2048
req "$work/mallory.key" "/CN=mallory" csr/mallory-wants-ca.csr \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "extendedKeyUsage=serverAuth" \
    -addext "subjectAltName=DNS:evil.example.com"
rsa "$work/weak.key" 1024
req "$work/weak.key" "/CN=weak" csr/rsa1024.csr
openssl genpkey -algorithm ED25519 -out "$work/edward.key"
req "$work/edward.key" "/CN=edward" csr/ed25519.csr

# --- negative cases -----------------------------------------------------------------------
p256 "$work/a.key"
p256 "$work/b.key"
req "$work/a.key" "/CN=victim" "$work/a.der" -outform DER

# Flip one bit of the last byte (inside the signature's s value).
n=$(wc -c <"$work/a.der")
last=$(tail -c 1 "$work/a.der" | od -An -tu1 | tr -d ' ')
{
    head -c $((n - 1)) "$work/a.der"
    printf "\\x$(printf '%02x' $((last ^ 1)))"
} >"$work/flipped.der"
pem_of "CERTIFICATE REQUEST" "$work/flipped.der" >bad-csr/flipped-signature.csr

# Key B signs a request, then key A's public key replaces B's in it (P-256 SubjectPublicKeyInfo
# is always 91 bytes, so every length stays the same).
req "$work/b.key" "/CN=victim" "$work/b.der" -outform DER
openssl pkey -in "$work/a.key" -pubout -outform DER -out "$work/a.spki"
openssl pkey -in "$work/b.key" -pubout -outform DER -out "$work/b.spki"
csr_hex=$(hex_of "$work/b.der")
a_hex=$(hex_of "$work/a.spki")
b_hex=$(hex_of "$work/b.spki")
[[ $csr_hex == *"$b_hex"* ]] || { echo "B's key not found in its request" >&2; exit 1; }
unhex <<<"${csr_hex/$b_hex/$a_hex}" >"$work/swapped.der"
pem_of "CERTIFICATE REQUEST" "$work/swapped.der" >bad-csr/wrong-signer.csr

pem_of "CERTIFICATE REQUEST" "$work/a.der" >"$work/a.pem"
head -n 3 "$work/a.pem" >bad-csr/truncated.csr
{
    head -n 2 "$work/a.pem"
    tail -n 1 "$work/a.pem"
} >bad-csr/truncated-body.csr

cp foreign-ca.crt bad-csr/certificate.pem
printf 'vpnca fixture junk' | openssl dgst -sha512 -binary >bad-csr/junk.bin
: >bad-csr/empty.csr
{
    cat "$work/a.der"
    printf 'GARBAGE\n'
} >bad-csr/trailing-garbage.der
req "$work/a.key" "/CN=a\/b" bad-csr/slash-in-cn.csr
req "$work/a.key" "/" bad-csr/empty-subject.csr

# Sanity: openssl agrees which requests are validly self-signed.
for f in csr/*.csr bad-csr/slash-in-cn.csr bad-csr/empty-subject.csr; do
    self_signed_ok "$f" || { echo "$f: openssl rejects its signature" >&2; exit 1; }
done
for f in bad-csr/flipped-signature.csr bad-csr/wrong-signer.csr; do
    if self_signed_ok "$f"; then echo "$f: openssl accepts its signature" >&2; exit 1; fi
done
self_signed_ok "$work/a.der" DER

echo "fixtures written to $(pwd)"
