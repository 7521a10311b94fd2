#!/usr/bin/env bash
# Benchmark of the batch commands (issue 4): how close does `vpnca client --batch` get to the
# limit (raw RSA-2048 key generation on every core), how does it compare with easy-rsa per
# certificate, and how fast are P-256 batches, CSR batches and a CRL of 20,000 entries?
# A benchmark, not a test: it asserts no timing. It measures everything in ONE run and prints
# each figure with its target and a compact table at the end (Markdown, for
# docs/performance.md, section "Batches (issue 4)").
#
#   ./scripts/bench-batch.sh                  # the issue-4 sizes (about 2-3 min, see below)
#   ./scripts/bench.sh batch                  # the same
#   ./scripts/bench-batch.sh --md FILE        # also write the final table to FILE (or BENCH_MD=FILE)
#   BENCH_SIZES=20/200/50/5/500 ./scripts/bench-batch.sh   # quick check of the script itself
#
# Sizes (environment; BENCH_SIZES=RSA/P256/CSR/EASYRSA/CRL sets the first five at once):
#   BENCH_RSA_N=1000       (b) users of `vpnca client --batch` (RSA-2048)
#   BENCH_KEYGEN_N=$BENCH_RSA_N   (a) keys generated on all cores (the limit)
#   BENCH_P256_N=10000     (c) users of `vpnca client --batch --algo p256`
#   BENCH_CSR_N=1000       (c) requests for `vpnca sign-req --batch DIR`
#   BENCH_EASYRSA_N=50     (d) `easyrsa build-client-full userN nopass`, one after the other
#   BENCH_CRL_N=20000      (e) revoked entries in the CRL (vpnca's limit is 20,000, AWS's too)
#   BENCH_CRL_RUNS=10      (e) timed runs of each CRL command (+1 warm-up), with hyperfine
#   BENCH_BASE=BIN         (e) also measure another vpnca binary (e.g. main's, or the last
#                          format-1 commit's) the same way, on a store of its own, in this run
# Figures from reduced sizes are flagged as such: they are no issue-4 figures.
#
# What is measured (wall clock, one command at a time; the batch commands use every core):
#   (a) `benches/keygen.rs parallel`: RSA-2048 KeyPair::generate of aws-lc-rs (the call vpnca
#       makes through rcgen) on nproc threads in one process, keys/s; also RSA-2048 signatures
#       on all cores (the limit for (c): a P-256 user or a CSR costs one RSA signature by the CA).
#   (b) `vpnca client --batch users.csv`: the whole command (start, Argon2id unlock with the
#       DEFAULT KDF, 64 MiB/3 passes, once per batch; keygen + signing on every core; chunked
#       commits; issued/*.crt mirrors), certs/s = users / wall time, and % of (a).
#   (c) `vpnca client --batch --algo p256` (certs/s, peak RSS by /usr/bin/time -v) and
#       `vpnca sign-req --batch DIR --type client` (signings/s) on RSA-2048 CSRs made beforehand
#       by openssl (untimed; a pool of 8 keys is shared by the CSRs to keep the set-up short:
#       the CA's work per request is the same).
#   (d) easy-rsa (Debian's package, EASYRSA_BATCH=1): `build-client-full userN nopass`, one
#       process after the other, mean per certificate; ratio to (b)'s time per certificate.
#   (e) `vpnca crl` on a store with BENCH_CRL_N revoked certificates (set up, untimed, by
#       `client --batch --algo p256` and `revoke --batch` of all of them) beside
#       `openssl ca -gencrl` with an index.txt holding the same serials and revocation dates
#       (a throwaway RSA-2048 openssl CA, unencrypted key); both CRLs are checked to list
#       BENCH_CRL_N entries (`openssl crl -text | grep -c 'Serial Number'`) and to verify.
#       Also `vpnca crl` with no entry (the store of (b)): the fixed cost (start, unlock,
#       one signature, commit).
#
# It installs what it needs when missing (hyperfine, jq, time, openssl, easy-rsa from Debian's
# packages), builds vpnca in release and the keygen program (cached in target/bench-keygen),
# and removes its temporary directories (about 33,000 files at the full sizes). Run it on an
# otherwise idle machine: it samples how busy the CPU is before and after measuring and flags a
# disturbed run. It also samples how long creating a file takes: each certificate writes a new
# file (issued/NAME.crt), and on ext4 creating files is several times slower for a few minutes
# after many files were deleted, e.g. by the clean-up of the previous run or by `cargo clean`;
# so leave about 5 minutes between two runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
START=$(date +%s)
EASYRSA=/usr/share/easy-rsa/easyrsa

# shellcheck source=scripts/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"
bench_md_args "$@"

# ---- sizes -------------------------------------------------------------------------------
if [ -n "${BENCH_SIZES:-}" ]; then
    IFS=/ read -r s1 s2 s3 s4 s5 extra <<<"$BENCH_SIZES"
    if [ -z "${s5:-}" ] || [ -n "${extra:-}" ]; then
        echo "BENCH_SIZES must be RSA/P256/CSR/EASYRSA/CRL, e.g. 20/200/50/5/500 (got '$BENCH_SIZES')" >&2
        exit 2
    fi
    : "${BENCH_RSA_N:=$s1}" "${BENCH_P256_N:=$s2}" "${BENCH_CSR_N:=$s3}" "${BENCH_EASYRSA_N:=$s4}" "${BENCH_CRL_N:=$s5}"
fi
RSA_N=${BENCH_RSA_N:-1000}
KEYGEN_N=${BENCH_KEYGEN_N:-$RSA_N}
P256_N=${BENCH_P256_N:-10000}
CSR_N=${BENCH_CSR_N:-1000}
EASYRSA_N=${BENCH_EASYRSA_N:-50}
CRL_N=${BENCH_CRL_N:-20000}
CRL_RUNS=${BENCH_CRL_RUNS:-10}
for v in RSA_N KEYGEN_N P256_N CSR_N EASYRSA_N CRL_N CRL_RUNS; do
    if ! [[ ${!v} =~ ^[0-9]+$ ]] || [ "${!v}" -lt 1 ]; then
        echo "BENCH_$v must be a whole number >= 1 (got '${!v}')" >&2
        exit 2
    fi
done
if [ "$CRL_RUNS" -lt 2 ]; then echo "BENCH_CRL_RUNS must be >= 2" >&2; exit 2; fi
if [ "$CRL_N" -gt 20000 ]; then
    echo "BENCH_CRL_N=$CRL_N: vpnca refuses CRLs over 20,000 entries (AWS Client VPN's limit)" >&2
    exit 2
fi
FULL=1
[ "$RSA_N" = 1000 ] && [ "$KEYGEN_N" = 1000 ] && [ "$P256_N" = 10000 ] && [ "$CSR_N" = 1000 ] &&
    [ "$EASYRSA_N" = 50 ] && [ "$CRL_N" = 20000 ] || FULL=0
SIZES="users RSA $RSA_N, keygen $KEYGEN_N, P-256 $P256_N, CSRs $CSR_N, easy-rsa $EASYRSA_N, CRL $CRL_N (x$CRL_RUNS runs)"

# ---- tools -------------------------------------------------------------------------------
bench_install_tools

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vpnca-bench-batch.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
RES=$WORK/results        # lines: KEY VALUE
: >"$RES"
put() { echo "$1 $2" >>"$RES"; }
val() { awk -v k="$1" '$1 == k { v = $2; f = 1 } END { if (!f) exit 1; print v }' "$RES"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; } # calc FORMAT EXPRESSION
q() { printf '%q' "$1"; }
die() { echo "bench-batch: $*" >&2; exit 2; }
NPROC=$(nproc)


# Microseconds per new file, creating 500 empty files in one process. Every certificate that
# vpnca issues writes a new file (its public mirror issued/NAME.crt); on ext4, creating files is
# much slower for a few minutes after many files were deleted (the kernel skips recently freed
# inodes: seen at 0.3-1 ms per file instead of ~30 us), which slows every batch, so it is sampled.
fs_probe() {
    local d t0 t1
    d=$(mktemp -d "$WORK/probe.XXXXXX")
    t0=$(date +%s%N)
    (cd "$d" && seq -f 'f%g' 1 500 | xargs touch)
    t1=$(date +%s%N)
    calc %.0f "($t1 - $t0) / 1000 / 500"
}

# timed LABEL CMD...: runs CMD under /usr/bin/time -v, stdout/stderr to $WORK/LABEL.{out,err};
# stores LABEL.wall (s, from the clock around it) and LABEL.rss (KiB, peak RSS).
timed() {
    local label=$1; shift
    local t0 t1 rc=0
    t0=$(date +%s%N)
    /usr/bin/time -v -o "$WORK/$label.time" "$@" >"$WORK/$label.out" 2>"$WORK/$label.err" || rc=$?
    t1=$(date +%s%N)
    if [ "$rc" -ne 0 ]; then
        echo "bench-batch: '$*' failed (exit $rc); its last output:" >&2
        tail -n 20 "$WORK/$label.out" "$WORK/$label.err" >&2
        exit 2
    fi
    put "$label.wall" "$(calc %.6f "($t1 - $t0) / 1e9")"
    put "$label.rss" "$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/$label.time")"
    put "$label.user" "$(awk -F': ' '/User time \(seconds\)/ { print $2 }' "$WORK/$label.time")"
    put "$label.sys" "$(awk -F': ' '/System time \(seconds\)/ { print $2 }' "$WORK/$label.time")"
}
# cpu LABEL -> "user/sys" CPU seconds of a timed command
cpu() { echo "$(val "$1.user")/$(val "$1.sys")"; }
# hf_median JSON -> median run time in seconds
hf_median() {
    jq -r '.results[0].times[]' "$1" | sort -g |
        awk '{ x[NR] = $1 } END { print (NR % 2) ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2 }'
}
hf_stat() { jq -r ".results[0].$2" "$1"; } # hf_stat JSON mean|stddev|min|max
hf() { hyperfine --style basic --warmup 1 --runs "$CRL_RUNS" "$@"; }
# crl_entries PEM -> number of revoked entries
crl_entries() { openssl crl -in "$1" -noout -text | grep -c 'Serial Number' || true; }
# users FILE N PREFIX: a CSV batch of N names
users() { { echo name; seq -f "$3%g" 1 "$2"; } >"$1"; }

# ---- machine -----------------------------------------------------------------------------
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
echo "== machine: $NPROC cores, ${CPU:-unknown CPU}, $MEM RAM, $(uname -sr)"
echo "== date: $(date -u '+%Y-%m-%d %H:%M UTC'); sizes: $SIZES"
[ "$FULL" = 1 ] || echo "== REDUCED SIZES: a check of the script, not the issue-4 figures"

# ---- build -------------------------------------------------------------------------------
echo "== cargo build --release"
cargo build --release
VPNCA=$ROOT/target/release/vpnca
VPNCA_VERSION=$("$VPNCA" --version)
"$VPNCA" client --help | grep -q -- '--batch' || die "$VPNCA has no client --batch"

echo "== building benches/keygen.rs"
build_keygen

export VPNCA_PASSPHRASE="benchmark passphrase, not a secret"
unset VPNCA_PKI
# new_store DIR: a store with the DEFAULT KDF and an RSA-2048 CA (untimed)
new_store() {
    "$VPNCA" --pki "$1" init >/dev/null
    "$VPNCA" --pki "$1" ca --cn "Bench CA" >/dev/null
}
# issued_count LABEL -> the N of vpnca's "N issued, ..." summary line
issued_count() { sed -n 's/^\([0-9][0-9]*\) issued, .*/\1/p' "$WORK/$1.out" | tail -n1; }
# check_issued LABEL PKI N ALGO_PATTERN: the summary says N issued, N mirrors exist, and the
# last certificate verifies against the CA and has the expected key.
check_issued() {
    local label=$1 pki=$2 n=$3 pat=$4 got files last
    got=$(issued_count "$label")
    [ "$got" = "$n" ] || die "$label: expected $n issued, vpnca reports '${got:-nothing}' ($(tail -n1 "$WORK/$label.out"))"
    files=$(find "$pki/issued" -name '*.crt' | wc -l)
    [ "$files" -ge "$n" ] || die "$label: $files certificates in $pki/issued, expected $n"
    last=$(find "$pki/issued" -name '*.crt' | sort | tail -n1)
    openssl verify -CAfile "$pki/ca.crt" "$last" >/dev/null || die "$label: $last does not verify"
    openssl x509 -in "$last" -noout -text | grep -Eq "$pat" || die "$label: $last has not the expected key ($pat)"
}

BUSY_START=$(cpu_busy)
echo "== CPU busy (others) before measuring: $BUSY_START%"

# ---- (a) the limit: RSA-2048 keygen on all cores, in process -----------------------------
echo "== (a) raw RSA-2048 keygen on $NPROC threads, $KEYGEN_N keys (+ signatures on all cores)"
"$KEYGEN_BIN" parallel "$KEYGEN_N" "$NPROC" | tee "$WORK/keygen.out" | grep '^#'
read -r _ KG_THREADS KG_KEYS KG_S < <(grep '^par_rsa2048_keygen ' "$WORK/keygen.out")
read -r _ _ SG_COUNT SG_S < <(grep '^par_rsa2048_sign ' "$WORK/keygen.out")
put a.rate "$(calc %.3f "$KG_KEYS / $KG_S")"
put a.sign_rate "$(calc %.1f "$SG_COUNT / $SG_S")"

# ---- (b) vpnca client --batch, RSA-2048 --------------------------------------------------
echo "== (b) vpnca client --batch, $RSA_N RSA-2048 users, default KDF"
new_store "$WORK/pki-rsa"
users "$WORK/rsa.csv" "$RSA_N" user
put b.fs "$(fs_probe)"
timed b "$VPNCA" --pki "$WORK/pki-rsa" client --batch "$WORK/rsa.csv"
check_issued b "$WORK/pki-rsa" "$RSA_N" 'Public-Key: \(2048 bit\)'
put b.rate "$(calc %.3f "$RSA_N / $(val b.wall)")"
# vpnca's own "(X s)": from the open store to the last commit (no start, no unlock)
put b.inner "$(sed -n 's/.*failed (\([0-9.]*\) s)$/\1/p' "$WORK/b.out" | tail -n1)"
put b.pct "$(calc %.1f "100 * $(val b.rate) / $(val a.rate)")"
echo "   $(val b.wall) s, $(val b.rate) certs/s = $(val b.pct)% of (a); peak RSS $(val b.rss) KiB"

# ---- (c) P-256 batch and CSR batch -------------------------------------------------------
echo "== (c) vpnca client --batch --algo p256, $P256_N users, default KDF"
new_store "$WORK/pki-p256"
users "$WORK/p256.csv" "$P256_N" user
put c.fs "$(fs_probe)"
timed c "$VPNCA" --pki "$WORK/pki-p256" client --batch "$WORK/p256.csv" --algo p256
check_issued c "$WORK/pki-p256" "$P256_N" 'ASN1 OID: prime256v1'
put c.rate "$(calc %.1f "$P256_N / $(val c.wall)")"
put c.inner "$(sed -n 's/.*failed (\([0-9.]*\) s)$/\1/p' "$WORK/c.out" | tail -n1)"
echo "   $(val c.wall) s, $(val c.rate) certs/s; peak RSS $(val c.rss) KiB"

echo "== (c) making $CSR_N RSA-2048 CSRs with openssl (untimed)"
mkdir -p "$WORK/csr-keys" "$WORK/csrs"
POOL=$((CSR_N < 8 ? CSR_N : 8))
seq 1 "$POOL" | xargs -P "$NPROC" -I{} openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
    -out "$WORK/csr-keys/k{}.pem" 2>/dev/null
# shellcheck disable=SC2016 # expanded by the inner sh
seq 1 "$CSR_N" | xargs -P "$NPROC" -I{} sh -c \
    'openssl req -new -key "$1/csr-keys/k$(( $2 % $3 + 1 )).pem" -subj "/CN=csr$2" -out "$1/csrs/csr$2.csr"' \
    _ "$WORK" {} "$POOL"
[ "$(find "$WORK/csrs" -name '*.csr' | wc -l)" -eq "$CSR_N" ] || die "CSR generation failed"
echo "== (c) vpnca sign-req --batch, $CSR_N CSRs, default KDF"
new_store "$WORK/pki-csr"
put s.fs "$(fs_probe)"
timed s "$VPNCA" --pki "$WORK/pki-csr" sign-req --batch "$WORK/csrs" --type client
check_issued s "$WORK/pki-csr" "$CSR_N" 'Public-Key: \(2048 bit\)'
put s.rate "$(calc %.1f "$CSR_N / $(val s.wall)")"
put s.inner "$(sed -n 's/.*failed (\([0-9.]*\) s)$/\1/p' "$WORK/s.out" | tail -n1)"
echo "   $(val s.wall) s, $(val s.rate) signings/s; peak RSS $(val s.rss) KiB"

# ---- (d) easy-rsa ------------------------------------------------------------------------
EASYRSA_VERSION=$("$EASYRSA" --version 2>/dev/null | awk '/^Version:/ { print $2 }')
echo "== (d) easy-rsa $EASYRSA_VERSION build-client-full userN nopass, $EASYRSA_N users"
mkdir -p "$WORK/easyrsa"
(
    export EASYRSA_BATCH=1 EASYRSA_PKI=$WORK/easyrsa-pki
    cd "$WORK/easyrsa"
    # (EASYRSA_REQ_CN only for build-ca: build-client-full refuses an external commonName.)
    { "$EASYRSA" init-pki && EASYRSA_REQ_CN="Bench CA" "$EASYRSA" build-ca nopass; } >"$WORK/easyrsa-setup.log" 2>&1 ||
        { cat "$WORK/easyrsa-setup.log" >&2; exit 2; }
    for i in $(seq 1 "$EASYRSA_N"); do
        t0=$(date +%s%N)
        "$EASYRSA" build-client-full "user$i" nopass >>"$WORK/easyrsa.log" 2>&1 ||
            { tail -n 20 "$WORK/easyrsa.log" >&2; exit 2; }
        t1=$(date +%s%N)
        echo "$(((t1 - t0) / 1000)) us"
    done >"$WORK/easyrsa.times"
)
n=$(find "$WORK/easyrsa-pki/issued" -name 'user*.crt' | wc -l)
[ "$n" -eq "$EASYRSA_N" ] || die "expected $EASYRSA_N easy-rsa certificates, found $n"
put d.mean "$(awk '{ s += $1 } END { printf "%.2f", s / NR / 1000 }' "$WORK/easyrsa.times")"
put d.median "$(sort -n "$WORK/easyrsa.times" | awk '{ x[NR] = $1 } END { printf "%.2f", ((NR % 2) ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2) / 1000 }')"
put b.per_cert "$(calc %.3f "1000 * $(val b.wall) / $RSA_N")"
put d.ratio "$(calc %.2f "$(val d.mean) / $(val b.per_cert)")"
echo "   easy-rsa $(val d.mean) ms per cert (median $(val d.median)); vpnca batch $(val b.per_cert) ms per cert: $(val d.ratio)x"

# ---- (e) CRL with CRL_N entries ----------------------------------------------------------
BASE=${BENCH_BASE:-}
if [ -n "$BASE" ]; then
    [ -x "$BASE" ] || die "BENCH_BASE=$BASE is not an executable"
    "$BASE" revoke --help | grep -q -- '--batch' || die "BENCH_BASE=$BASE has no revoke --batch"
    echo "== (e) set-up of the base binary ($("$BASE" --version)): $CRL_N P-256 users, revoked"
    PKI_BASE=$WORK/pki-base
    VPNCA=$BASE new_store "$PKI_BASE"
    VPNCA=$BASE new_store "$WORK/pki-base0"
    users "$WORK/base.csv" "$CRL_N" r
    timed e_base_issue "$BASE" --pki "$PKI_BASE" client --batch "$WORK/base.csv" --algo p256
    timed e_base_revoke "$BASE" --pki "$PKI_BASE" revoke --batch "$WORK/base.csv"
    grep -q "^$CRL_N certificate(s) revoked" "$WORK/e_base_revoke.out" ||
        die "base revoke --batch: $(tail -n1 "$WORK/e_base_revoke.out")"
fi
echo "== (e) set-up (untimed for the target): $CRL_N P-256 users, then revoke --batch of all"
PKI_CRL=$WORK/pki-crl
new_store "$PKI_CRL"
users "$WORK/crl.csv" "$CRL_N" r
timed e_issue "$VPNCA" --pki "$PKI_CRL" client --batch "$WORK/crl.csv" --algo p256
[ "$(issued_count e_issue)" = "$CRL_N" ] || die "set-up: $(tail -n1 "$WORK/e_issue.out")"
timed e_revoke "$VPNCA" --pki "$PKI_CRL" revoke --batch "$WORK/crl.csv"
grep -q "^$CRL_N certificate(s) revoked" "$WORK/e_revoke.out" ||
    die "revoke --batch: $(grep 'revoked,' "$WORK/e_revoke.out" || tail -n1 "$WORK/e_revoke.out")"
echo "   issue $(val e_issue.wall) s, revoke --batch $(val e_revoke.wall) s (peak RSS $(val e_revoke.rss) KiB)"

echo "== (e) vpnca crl, $CRL_N entries, $CRL_RUNS runs"
hf -N --export-json "$WORK/crl.json" "$(q "$VPNCA") --pki $(q "$PKI_CRL") crl"
got=$(crl_entries "$PKI_CRL/crl.pem")
[ "$got" = "$CRL_N" ] || die "vpnca's CRL lists $got entries, expected $CRL_N"
openssl crl -in "$PKI_CRL/crl.pem" -CAfile "$PKI_CRL/ca.crt" -noout 2>&1 | grep -q 'verify OK' ||
    die "vpnca's CRL does not verify against its CA"
put e.median "$(calc %.1f "1000 * $(hf_median "$WORK/crl.json")")"
put e.mean "$(calc %.1f "1000 * $(hf_stat "$WORK/crl.json" mean)")"
put e.sd "$(calc %.1f "1000 * $(hf_stat "$WORK/crl.json" stddev)")"
put e.bytes "$(openssl crl -in "$PKI_CRL/crl.pem" -outform DER | wc -c)"
timed e_rss "$VPNCA" --pki "$PKI_CRL" crl

echo "== (e) vpnca crl, no entries (fixed cost: start, unlock, one signature, commit), $CRL_RUNS runs"
hf -N --export-json "$WORK/crl0.json" "$(q "$VPNCA") --pki $(q "$WORK/pki-rsa") crl"
put e0.median "$(calc %.1f "1000 * $(hf_median "$WORK/crl0.json")")"

if [ -n "$BASE" ]; then
    # The two binaries alternate, run by run, so that a change in the machine's load weighs on
    # both alike; the zero-entry runs likewise.
    echo "== (e) this build and the base binary alternately: crl with $CRL_N entries, then none"
    for i in $(seq 1 "$CRL_RUNS"); do
        for who in new base; do
            if [ "$who" = new ]; then bin=$VPNCA pki=$PKI_CRL pki0=$WORK/pki-rsa; else bin=$BASE pki=$PKI_BASE pki0=$WORK/pki-base0; fi
            timed "alt.$who.$i" "$bin" --pki "$pki" crl
            timed "alt0.$who.$i" "$bin" --pki "$pki0" crl
        done
    done
    [ "$(crl_entries "$PKI_BASE/crl.pem")" = "$CRL_N" ] || die "the base binary's CRL does not list $CRL_N entries"
    # med PREFIX -> median wall time in ms of PREFIX.1 .. PREFIX.CRL_RUNS; cpu_ms likewise for user+sys
    med() { for i in $(seq 1 "$CRL_RUNS"); do val "$1.$i.wall"; done | sort -g |
        awk '{ x[NR] = $1 } END { printf "%.1f", 1000 * ((NR % 2) ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2) }'; }
    cpu_ms() { for i in $(seq 1 "$CRL_RUNS"); do echo "$(val "$1.$i.user") $(val "$1.$i.sys")"; done |
        awk '{ s += $1 + $2 } END { printf "%.0f", 1000 * s / NR }'; }
    for who in new base; do
        put "alt.$who.median" "$(med "alt.$who")"; put "alt0.$who.median" "$(med "alt0.$who")"
        put "alt.$who.cpu" "$(cpu_ms "alt.$who")"; put "alt0.$who.cpu" "$(cpu_ms "alt0.$who")"
    done
fi

echo "== (e) openssl ca -gencrl on the same $CRL_N serials (throwaway RSA-2048 CA)"
OC=$WORK/osslca
mkdir -p "$OC/certs"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$OC/ca.key" -out "$OC/ca.crt" -days 3650 \
    -subj "/CN=Bench openssl CA" -sha256 2>/dev/null
echo 1000 >"$OC/crlnumber"
echo 01 >"$OC/serial"
echo "unique_subject = no" >"$OC/index.txt.attr"
# index.txt: one R line per entry of vpnca's CRL: same serial, revocation date and reason.
openssl crl -in "$PKI_CRL/crl.pem" -noout -text | awk '
    BEGIN {
        split("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec", m, " ")
        for (i = 1; i <= 12; i++) mon[m[i]] = sprintf("%02d", i)
        r["Unspecified"] = "unspecified"; r["Key Compromise"] = "keyCompromise"
        r["CA Compromise"] = "CACompromise"; r["Affiliation Changed"] = "affiliationChanged"
        r["Superseded"] = "superseded"; r["Cessation Of Operation"] = "cessationOfOperation"
        r["Certificate Hold"] = "certificateHold"; r["Privilege Withdrawn"] = "privilegeWithdrawn"
    }
    function flush() {
        if (serial == "") return
        if (length(serial) % 2) serial = "0" serial
        printf "R\t301231000000Z\t%s%s\t%s\tunknown\t/CN=r%d\n", date, (reason != "" ? "," reason : ""), serial, ++n
        serial = ""; reason = ""
    }
    /Serial Number:/ { flush(); serial = $3 }
    /Revocation Date:/ {
        # Revocation Date: Nov 21 06:20:03 2026 GMT
        split($5, t, ":")
        date = sprintf("%02d%s%02d%s%s%sZ", $6 % 100, mon[$3], $4, t[1], t[2], t[3])
    }
    want_reason { sub(/^[ \t]+/, ""); reason = ($0 in r) ? r[$0] : ""; want_reason = 0 }
    /CRL Reason Code:/ { want_reason = 1 }
    /Signature Algorithm:/ && serial != "" { flush() }
    END { flush() }' >"$OC/index.txt"
cat >"$OC/openssl.cnf" <<EOF
[ ca ]
default_ca = bench
[ bench ]
dir = $OC
database = \$dir/index.txt
crlnumber = \$dir/crlnumber
certificate = \$dir/ca.crt
private_key = \$dir/ca.key
new_certs_dir = \$dir/certs
serial = \$dir/serial
default_md = sha256
default_crl_days = 3650
crl_extensions = crl_ext
policy = policy_any
[ crl_ext ]
authorityKeyIdentifier = keyid:always
[ policy_any ]
commonName = supplied
EOF
[ "$(wc -l <"$OC/index.txt")" -eq "$CRL_N" ] || die "index.txt has $(wc -l <"$OC/index.txt") lines, expected $CRL_N"
hf -N --export-json "$WORK/ossl.json" \
    "openssl ca -config $(q "$OC/openssl.cnf") -gencrl -out $(q "$OC/crl.pem")"
got=$(crl_entries "$OC/crl.pem")
[ "$got" = "$CRL_N" ] || die "openssl's CRL lists $got entries, expected $CRL_N"
openssl crl -in "$OC/crl.pem" -CAfile "$OC/ca.crt" -noout 2>&1 | grep -q 'verify OK' ||
    die "openssl's CRL does not verify against its CA"
cmp -s <(openssl crl -in "$PKI_CRL/crl.pem" -noout -text | grep 'Serial Number' | sort) \
    <(openssl crl -in "$OC/crl.pem" -noout -text | grep 'Serial Number' | sort) ||
    die "the two CRLs list different serials"
put o.median "$(calc %.1f "1000 * $(hf_median "$WORK/ossl.json")")"
put o.bytes "$(openssl crl -in "$OC/crl.pem" -outform DER | wc -c)"
put e.ratio "$(calc %.2f "$(val e.median) / $(val o.median)")"

BUSY_END=$(cpu_busy)
FS_MAX=$(printf '%s\n' "$(val b.fs)" "$(val c.fs)" "$(val s.fs)" | sort -n | tail -n1)

# ---- report ------------------------------------------------------------------------------
mib() { calc %.1f "$1 / 1024"; }           # KiB -> MiB
mb() { calc %.1f "$1 * 1024 / 1e6"; }      # KiB -> MB
met() { if awk "BEGIN { exit !($1) }"; then echo met; else echo "**missed**"; fi; }
HF_VERSION=$(hyperfine --version)
report() {
    echo "### Batches: one run of \`scripts/bench-batch.sh\`"
    echo
    echo "- machine: $NPROC cores, ${CPU:-unknown CPU}, $MEM RAM, $(uname -sr)"
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); $VPNCA_VERSION (commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null || echo ', with local changes')); easy-rsa $EASYRSA_VERSION; $(openssl version | cut -d' ' -f1-2); $HF_VERSION"
    echo "- sizes: $SIZES"
    [ "$FULL" = 1 ] || echo "- **reduced sizes: a check of the script, not the issue-4 figures (fixed costs weigh more)**"
    echo "- (a): $KEYGEN_HOW, mode \`parallel\`, $KG_THREADS threads"
    echo "- CPU busy with other work, sampled for 1 s before and after measuring: $BUSY_START% / $BUSY_END%"
    echo "- creating one file (500 in one process), just before (b), (c) P-256, (c) CSRs: $(val b.fs) / $(val c.fs) / $(val s.fs) µs"
    if [ "$BUSY_START" -gt 10 ] || [ "$BUSY_END" -gt 10 ]; then
        echo "- **something else was using the CPU: figures are deflated, run again on a quiet machine**"
    fi
    if [ "$FS_MAX" -gt 100 ]; then
        echo "- **creating files was slow (many files deleted recently?): batch figures are deflated, run again in a few minutes**"
    fi
    echo
    echo "| figure | value | target | |"
    echo "|---|---:|---|---|"
    echo "| (a) raw RSA-2048 keygen, in process, $KG_THREADS threads | $(calc %.1f "$(val a.rate)") keys/s | the limit | |"
    echo "| (b) \`client --batch\`, $RSA_N RSA-2048 users, default KDF | $(calc %.1f "$(val b.rate)") certs/s = **$(val b.pct)%** of (a) | ≥ 90% of (a) | $(met "$(val b.pct) >= 90") |"
    echo "| (b) per certificate vs (d) easy-rsa per certificate | $(val b.per_cert) ms vs $(val d.mean) ms = **$(val d.ratio)×** | ≥ 6× | $(met "$(val d.ratio) >= 6") |"
    echo "| (c) \`client --batch --algo p256\`, $P256_N users | **$(val c.rate)** certs/s | ≥ 2,000/s | $(met "$(val c.rate) >= 2000") |"
    echo "| (c) peak RSS of that command | **$(mb "$(val c.rss)") MB** ($(mib "$(val c.rss)") MiB) | < 200 MB | $(met "$(val c.rss) * 1024 < 200e6") |"
    echo "| (c) \`sign-req --batch\`, $CSR_N RSA-2048 CSRs | **$(val s.rate)** signings/s | ≥ 1,000/s | $(met "$(val s.rate) >= 1000") |"
    echo "| (d) easy-rsa \`build-client-full\`, $EASYRSA_N users, one after the other | $(val d.mean) ms per cert (median $(val d.median)) | reference | |"
    echo "| (e) \`vpnca crl\`, $CRL_N entries, median of $CRL_RUNS | **$(val e.median) ms** (mean $(val e.mean), sd $(val e.sd)) | < 200 ms | $(met "$(val e.median) < 200") |"
    echo "| (e) \`openssl ca -gencrl\`, same $CRL_N serials, median of $CRL_RUNS | $(val o.median) ms (vpnca / openssl = $(val e.ratio)×) | reference | |"
    if [ -n "$BASE" ]; then
        echo "| (e) alternating with the base binary ($("$BASE" --version)), $CRL_N entries, median of $CRL_RUNS: this build; base | **$(val alt.new.median) ms**; $(val alt.base.median) ms (CPU $(val alt.new.cpu); $(val alt.base.cpu) ms) | no slower than the base | $(met "$(val alt.new.median) <= $(val alt.base.median)") |"
        echo "| (e) the same, no entry: this build; base | $(val alt0.new.median) ms; $(val alt0.base.median) ms (CPU $(val alt0.new.cpu); $(val alt0.base.cpu) ms) | reference | |"
        echo "| (e) issue 16's target: 2 × openssl + this build's zero-entry \`crl\` (alternating run) | $(calc %.1f "2 * $(val o.median) + $(val alt0.new.median)") ms against $(val alt.new.median) ms | ≥ this build's | $(met "$(val alt.new.median) <= 2 * $(val o.median) + $(val alt0.new.median)") |"
    fi
    echo
    echo "Context (no targets):"
    echo
    echo "| | |"
    echo "|---|---:|"
    echo "| RSA-2048 signatures on $KG_THREADS threads, in process (the limit of (c)) | $(calc %.0f "$(val a.sign_rate)")/s |"
    echo "| (b) wall time; vpnca's own figure (after start and unlock); CPU user/sys | $(calc %.2f "$(val b.wall)") s; $(val b.inner) s; $(cpu b) s |"
    echo "| (c) P-256 wall time; vpnca's own figure; CPU user/sys | $(calc %.2f "$(val c.wall)") s; $(val c.inner) s; $(cpu c) s |"
    echo "| (c) sign-req wall time; vpnca's own figure; CPU user/sys | $(calc %.2f "$(val s.wall)") s; $(val s.inner) s; $(cpu s) s |"
    echo "| peak RSS: (b) RSA batch; sign-req batch; \`crl\` with $CRL_N entries | $(mib "$(val b.rss)"); $(mib "$(val s.rss)"); $(mib "$(val e_rss.rss)") MiB |"
    echo "| (e) \`vpnca crl\` with no entry (start + unlock + sign + commit), median | $(val e0.median) ms |"
    echo "| (e) set-up: \`client --batch --algo p256\` of $CRL_N; \`revoke --batch\` of $CRL_N | $(calc %.2f "$(val e_issue.wall)") s; $(calc %.2f "$(val e_revoke.wall)") s |"
    echo "| (e) one \`vpnca crl\` with $CRL_N entries: CPU user/sys | $(cpu e_rss) s |"
    echo "| (e) CRL size, DER: vpnca; openssl | $(val e.bytes); $(val o.bytes) bytes |"
}
echo
report | tee "$WORK/report.md"
if [ -n "$MD_OUT" ]; then
    cp "$WORK/report.md" "$MD_OUT"
    echo
    echo "(table written to $MD_OUT)"
fi
echo
echo "bench-batch.sh finished in $(($(date +%s) - START)) s"
