#!/usr/bin/env bash
# Regenerates the fuzzers' seed inputs in fuzz/seeds/<target>/. Run it from anywhere:
#
#     fuzz/generate-seeds.sh
#
# The seeds are committed; the fuzz runs (scripts/fuzz.sh) and tests/fuzz_regressions.rs only
# read them. Rerun this to change them (keys and stores are random: every run gives new bytes
# under the same names). Every key here is a throwaway test key.
# Needs: openssl, Debian's easy-rsa 3.1 (/usr/share/easy-rsa/easyrsa), python3 (its sqlite3
# module), and a vpnca binary ($VPNCA, else target/debug/vpnca, built when missing).
#
# What each target's seeds are:
#
#   csr/            tests/data/csr and tests/data/bad-csr, a DER request, a request labelled
#                   NEW CERTIFICATE REQUEST.
#   batch/          First byte = the target's selector (bits 0-1: 0 format detected, 1 csv,
#                   2 jsonl; bit 2: revoke columns), then a batch file: good issue and revoke
#                   files in CSV and JSON lines, and tests/data/batch.
#   easyrsa_index/  index.txt files written by easy-rsa (issued, revoked with a reason,
#                   renewed), and hand-written lines (GeneralizedTime, every revocation reason).
#   easyrsa_key/    First byte = the selector (odd: the passphrase "vpnca-fuzz-passphrase",
#                   even: none), then a key file: easy-rsa's encrypted CA keys (RSA and EC,
#                   PKCS#8 PBES2), plain PKCS#8, traditional RSA/EC PEM plain and encrypted
#                   (DES-EDE3-CBC, AES-128/192/256-CBC), PKCS#8 with scrypt (small cost).
#   profile/        pki-templates/*.toml and a few broken templates.
#   ovpn/           tests/data/ovpn, a plain OpenVPN client config (CRLF, IPv6 remote).
#   store_open/     A store made by `vpnca init --kdf-memory-mib 8 --kdf-time 1` (passphrase
#                   "vpnca-fuzz-passphrase"), with a CA, a client, a revocation and a CRL;
#                   rewritten with 512-byte pages to keep it small. And an empty store. And
#                   the format-1 stores of tests/data/store-v1 (v1-*.db), which upgrade. And
#                   items.db (a server, non-ASCII names, an adopted profile, a renewal),
#                   rekeyed.db (the same after `passwd --rekey`), sub-ca-pending.db. The target
#                   gets the database alone: a store that had a checkpoint is accepted as a
#                   restore (`verify --accept-restore`), which is a write (tests/fuzz_regressions
#                   requires every store seed to reach that success path).
set -euo pipefail
fuzz=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$fuzz")
seeds=$fuzz/seeds
data=$top/tests/data
EASYRSA=/usr/share/easy-rsa/easyrsa
PASS=vpnca-fuzz-passphrase

command -v openssl >/dev/null || { echo "openssl is needed" >&2; exit 2; }
[ -x "$EASYRSA" ] || { echo "easy-rsa is needed (apt-get install easy-rsa)" >&2; exit 2; }
VPNCA=${VPNCA:-$top/target/debug/vpnca}
if [ ! -x "$VPNCA" ]; then
    (cd "$top" && cargo build --locked --bin vpnca)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$seeds"
mkdir -p "$seeds"/{csr,batch,easyrsa_index,easyrsa_key,profile,ovpn,store_open}

# --- csr ------------------------------------------------------------------------------------
cp "$data"/csr/* "$data"/bad-csr/* "$seeds/csr/"
openssl req -in "$data/csr/bob-p256.csr" -outform DER -out "$seeds/csr/bob-p256.der"
sed 's/CERTIFICATE REQUEST/NEW CERTIFICATE REQUEST/' "$data/csr/ed25519.csr" \
    >"$seeds/csr/ed25519-new-label.csr"

# --- batch ----------------------------------------------------------------------------------
batch() { # NAME SELECTOR TEXT
    { printf '%b' "\\x$2"; printf '%b' "$3"; } >"$seeds/batch/$1"
}
batch issue.csv 00 'name,email,days,san\nalice,alice@example.com,30,DNS:alice.example.com;IP:10.0.0.1\n"bob",,,\n'
batch issue-bom-crlf.csv 01 '\xef\xbb\xbfName,Email\r\ncarol,carol@example.com\r\n'
batch issue.jsonl 02 '{"name":"alice","email":"alice@example.com","days":30}\n{"name":"bob","san":"DNS:b.example.com IP:::1"}\n'
batch issue-bad-rows.csv 00 'name,days\nalice,0\nalice,9999999\n../x,1\n'
batch revoke.csv 04 'name,reason\nalice,keyCompromise\nbob,\n'
batch revoke-serial.csv 05 'serial,reason\n0a1b2c3d4e5f,superseded\n'
batch revoke.jsonl 06 '{"name":"alice","reason":"affiliationChanged"}\n{"serial":"01"}\n{"name":"x","serial":"02"}\n'
for f in "$data"/batch/*; do
    case $f in *.md) continue ;; esac
    { printf '\x00'; cat "$f"; } >"$seeds/batch/$(basename "$f")"
done

# --- easy-rsa: a PKI with an encrypted CA (RSA), another with EC keys --------------------------
easyrsa() { # PKI_DIR ARGS...
    local pki=$1
    shift
    EASYRSA_BATCH=1 EASYRSA_PKI=$pki EASYRSA_CERT_RENEW=100000 \
        "$EASYRSA" --passin=pass:$PASS --passout=pass:$PASS "$@" >"$work/easyrsa.log" 2>&1 ||
        { cat "$work/easyrsa.log" >&2; exit 2; }
}
for algo in rsa ec; do
    pki=$work/easyrsa-$algo
    export EASYRSA_ALGO=$algo EASYRSA_CURVE=prime256v1 EASYRSA_KEY_SIZE=1024
    easyrsa "$pki" init-pki
    EASYRSA_REQ_CN="Fuzz Old CA" easyrsa "$pki" build-ca
    easyrsa "$pki" build-server-full server nopass
    easyrsa "$pki" build-client-full alice nopass
    easyrsa "$pki" build-client-full bob nopass
    easyrsa "$pki" revoke alice keyCompromise
    easyrsa "$pki" renew bob nopass
    easyrsa "$pki" gen-crl
    cp "$pki/index.txt" "$seeds/easyrsa_index/index-$algo.txt"
    { printf '\x01'; cat "$pki/private/ca.key"; } >"$seeds/easyrsa_key/easyrsa-ca-$algo.key"
    { printf '\x00'; cat "$pki/private/server.key"; } >"$seeds/easyrsa_key/easyrsa-server-$algo.key"
done
unset EASYRSA_ALGO EASYRSA_CURVE EASYRSA_KEY_SIZE
{
    printf 'V\t20991231235959Z\t\t0A\tunknown\t/CN=long-date\n'
    for r in unspecified keyCompromise CACompromise affiliationChanged superseded \
        cessationOfOperation certificateHold removeFromCRL; do
        printf 'R\t301231235959Z\t240101000000Z,%s\t%02X\tunknown\t/CN=%s\n' "$r" $((${#r} + 16)) "$r"
    done
    printf 'E\t200101000000Z\t\tFF\tunknown\t/C=DE/O=Example/CN=old\n'
} >"$seeds/easyrsa_index/handwritten.txt"

# --- easyrsa_key: openssl's other key formats (P-256 and RSA-1024 keep the seeds small) -------
k=$seeds/easyrsa_key
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/ec.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out "$work/rsa.pem" 2>/dev/null
key() { # NAME SELECTOR COMMAND... (the command writes the key to stdout)
    local name=$1 sel=$2
    shift 2
    { printf '%b' "\\x$sel"; "$@" 2>/dev/null; } >"$k/$name"
}
key pkcs8-ec.pem 00 cat "$work/ec.pem"
key pkcs8-rsa.pem 00 cat "$work/rsa.pem"
key sec1-ec.pem 00 openssl ec -in "$work/ec.pem"
key pkcs1-rsa.pem 00 openssl rsa -in "$work/rsa.pem" -traditional
key sec1-ec-des3.pem 01 openssl ec -in "$work/ec.pem" -des3 -passout pass:$PASS
for c in aes128 aes192 aes256; do
    key sec1-ec-$c.pem 01 openssl ec -in "$work/ec.pem" -$c -passout pass:$PASS
done
key pkcs1-rsa-aes256.pem 01 openssl rsa -in "$work/rsa.pem" -traditional -aes256 -passout pass:$PASS
key pkcs1-rsa-des3-nopass.pem 00 openssl rsa -in "$work/rsa.pem" -traditional -des3 -passout pass:$PASS
key pkcs8-ec-pbes2.pem 01 openssl pkcs8 -topk8 -in "$work/ec.pem" -v2 aes-256-cbc -iter 16 -passout pass:$PASS
key pkcs8-ec-scrypt.pem 01 openssl pkcs8 -topk8 -in "$work/ec.pem" -scrypt -scrypt_N 1024 \
    -scrypt_r 8 -scrypt_p 1 -passout pass:$PASS

# --- profile --------------------------------------------------------------------------------
cp "$top"/pki-templates/*.toml "$seeds/profile/"
printf 'ca = false\ndays = 0\nkey_usage = ["digitalSignature"]\n' >"$seeds/profile/days-zero.toml"
printf 'ca = true\ndays = 3650\npath_len = 0\nkey_usage = ["digitalSignature"]\n' \
    >"$seeds/profile/ca-without-certsign.toml"
printf 'ca = false\ndays = 30\nkey_usage = ["nope"]\nextended_key_usage = ["1.2.3"]\n[san]\nallow = ["uri"]\n' \
    >"$seeds/profile/unknown-values.toml"

# --- ovpn -----------------------------------------------------------------------------------
for f in "$data"/ovpn/*.ovpn; do cp "$f" "$seeds/ovpn/"; done
printf 'client\r\ndev tun\r\nproto udp\r\nremote [2001:db8::1]:1194\r\nremote vpn.example.com 443\r\nremote-random-hostname\r\n<ca>\r\n%s\r\n</ca>\r\n' \
    "$(sed -n '/BEGIN CERTIFICATE/,/END CERTIFICATE/p' "$data/ovpn/clientvpn-endpoint-config.ovpn" | tr -d '\r' | sed 's/$/\r/' | sed '$ s/\r$//')" \
    >"$seeds/ovpn/plain-crlf.ovpn"

# --- store_open -----------------------------------------------------------------------------
small_db() { # STORE_DIR OUT: the store's database with 512-byte pages
    cp "$1/vpnca.db" "$work/copy.db"
    python3 - "$work/copy.db" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA page_size = 512")
c.execute("VACUUM")
c.close()
EOF
    cp "$work/copy.db" "$2"
}
export VPNCA_PASSPHRASE=$PASS
"$VPNCA" --pki "$work/store-empty" init --kdf-memory-mib 8 --kdf-time 1 >/dev/null
small_db "$work/store-empty" "$seeds/store_open/empty.db"
s=$work/store
"$VPNCA" --pki "$s" init --kdf-memory-mib 8 --kdf-time 1 >/dev/null
"$VPNCA" --pki "$s" ca --cn "Fuzz CA" --algo p256 >/dev/null 2>&1
"$VPNCA" --pki "$s" client alice --algo p256 >/dev/null 2>&1
"$VPNCA" --pki "$s" client bob --algo p256 >/dev/null 2>&1
"$VPNCA" --pki "$s" revoke alice >/dev/null
small_db "$s" "$seeds/store_open/ca-client-revoked.db"
# Names the look-alike index holds (non-ASCII spellings), a server, an adopted profile, a
# renewal, a CRL: most kinds of state item in one store.
s=$work/store-items
"$VPNCA" --pki "$s" init --kdf-memory-mib 8 --kdf-time 1 >/dev/null
"$VPNCA" --pki "$s" ca --cn "Fuzz CA" --algo p256 >/dev/null 2>&1
"$VPNCA" --pki "$s" server vpn.example.com --algo p256 >/dev/null 2>&1
"$VPNCA" --pki "$s" client zoë --algo p256 >/dev/null 2>&1
"$VPNCA" --pki "$s" client ﬁona --algo p256 >/dev/null 2>&1
"$VPNCA" --pki "$s" template list >/dev/null
"$VPNCA" --pki "$s" template show client | sed 's/^days = .*/days = 30/' >"$work/client.toml"
"$VPNCA" --pki "$s" template adopt client --file "$work/client.toml" >/dev/null 2>&1 ||
    { echo "template adopt failed" >&2; exit 2; }
"$VPNCA" --pki "$s" client carol --algo p256 >/dev/null 2>&1
"$VPNCA" --pki "$s" renew carol --revoke-old >/dev/null 2>&1
small_db "$s" "$seeds/store_open/items.db"
# After `passwd --rekey`: the audit log spans two data keys.
VPNCA_NEW_PASSPHRASE=$PASS "$VPNCA" --pki "$s" passwd --rekey --kdf-memory-mib 8 --kdf-time 1 >/dev/null 2>&1
small_db "$s" "$seeds/store_open/rekeyed.db"
# A pending sub-CA request (its key sealed apart from the CA's).
s=$work/store-sub
"$VPNCA" --pki "$s" init --kdf-memory-mib 8 --kdf-time 1 >/dev/null
"$VPNCA" --pki "$s" ca --sub-ca --csr-out "$work/sub.csr" --cn "Fuzz Sub-CA" --algo p256 >/dev/null 2>&1
small_db "$s" "$seeds/store_open/sub-ca-pending.db"
# Format 1 (before the authenticated state): the first unlock upgrades them.
for f in "$data"/store-v1/*.db; do cp "$f" "$seeds/store_open/v1-$(basename "$f")"; done

du -sh --apparent-size "$seeds"
for d in "$seeds"/*/; do printf '%-15s %3d files\n' "$(basename "$d")" "$(find "$d" -type f | wc -l)"; done
