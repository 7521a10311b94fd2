#!/usr/bin/env bash
# Benchmark: how long does issuing one client certificate take with vpnca, against the limit
# (raw RSA-2048 key generation) and against easy-rsa? A benchmark, not a test: it asserts no
# timing, it measures and prints a table (Markdown, ready for docs/performance.md).
#
#   ./scripts/bench.sh            # N=30 runs per measurement (BENCH_N=40 ./scripts/bench.sh)
#   ./scripts/bench.sh batch ...  # the batch benchmark instead (issue 4): scripts/bench-batch.sh
#
# It installs what it needs when missing (hyperfine, jq, time, openssl, easy-rsa from Debian's
# packages), builds vpnca in release, and cleans up its temporary directories. About 40 s of
# measuring on 2 cores, plus the builds (from scratch: ~2 min for vpnca, ~35 s for the keygen
# program, which is cached in target/bench-keygen). Run it on an otherwise idle machine: it
# reports how busy the CPU was before and after, and flags a run that was disturbed.
#
# What is measured (wall-clock; single command at a time, no parallelism):
#   raw keygen   in-process RSA-2048 KeyPair::generate of aws-lc-rs (the call vpnca makes
#                through rcgen), from benches/keygen.rs; also one RSA-2048 signature and
#                Argon2id at both KDF settings, in-process; and, one fresh process per sample,
#                the first random number of a process (aws-lc seeds its RNG then).
#   openssl      `openssl genpkey ... rsa_keygen_bits:2048`, one process per key (reference).
#   vpnca client `vpnca client userN`: unlock (Argon2id) + keygen + sign + commit, store made by
#                `vpnca init` with the default KDF (64 MiB, 3 passes), and with
#                `--kdf-memory-mib 8 --kdf-time 1`.
#   vpnca crl    `vpnca crl`: unlock + one RSA signature + commit, no keygen (for the breakdown).
#   vpnca list   `vpnca list`: process start + open the store, no unlock (for the breakdown).
#   easy-rsa     `easyrsa build-client-full userN nopass` (Debian's easy-rsa, EASYRSA_BATCH=1,
#                CA built with `build-ca nopass`).
#   peak RSS     `/usr/bin/time -v vpnca client ...` "Maximum resident set size".
set -euo pipefail
if [ "${1:-}" = batch ]; then
    shift
    exec "$(dirname "$0")/bench-batch.sh" "$@"
fi
cd "$(dirname "$0")/.."
ROOT=$PWD
N=${BENCH_N:-30}
if ! [[ $N =~ ^[0-9]+$ ]] || [ "$N" -lt 20 ]; then
    echo "BENCH_N must be a number >= 20 (got '$N')" >&2
    exit 2
fi
WARMUP=2
RSS_RUNS=5
EASYRSA=/usr/share/easy-rsa/easyrsa
START=$(date +%s)

# ---- tools -------------------------------------------------------------------------------
# shellcheck source=scripts/bench-lib.sh
. "$(dirname "$0")/bench-lib.sh"
bench_install_tools

WORK=$(mktemp -d "${TMPDIR:-/tmp}/vpnca-bench.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
RES=$WORK/results        # lines: key n median mean sd min max (milliseconds)
: >"$RES"

# Reads seconds (one per line) on stdin, appends "KEY n median mean sd min max" in ms to $RES.
stats() {
    sort -g | awk -v key="$1" '
        { x[NR] = $1 * 1000; s += x[NR] }
        END {
            n = NR; if (n == 0) { print "no samples for " key > "/dev/stderr"; exit 1 }
            mean = s / n
            for (i = 1; i <= n; i++) v += (x[i] - mean) ^ 2
            sd = (n > 1) ? sqrt(v / (n - 1)) : 0
            med = (n % 2) ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2
            printf "%s %d %.2f %.2f %.2f %.2f %.2f\n", key, n, med, mean, sd, x[1], x[n]
        }' >>"$RES"
}
# get KEY FIELD (n median mean sd min max)
get() {
    awk -v key="$1" -v f="$2" '
        BEGIN { c["n"]=2; c["median"]=3; c["mean"]=4; c["sd"]=5; c["min"]=6; c["max"]=7 }
        $1 == key { print $(c[f]); found = 1 }
        END { if (!found) exit 1 }' "$RES"
}
# hf_times JSON -> the run times in seconds, one per line
hf_times() { jq -r '.results[0].times[]' "$1"; }
# hf_cpu JSON -> "user_ms system_ms" (means)
hf_cpu() { jq -r '.results[0] | "\(.user * 1000 | floor) \(.system * 1000 | floor)"' "$1"; }
hf() { hyperfine --style basic --warmup "$WARMUP" --runs "$N" "$@"; }

# ---- machine -----------------------------------------------------------------------------
CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
MEM=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
echo "== machine: $(nproc) cores, ${CPU:-unknown CPU}, $MEM RAM, $(uname -sr)"
echo "== date: $(date -u '+%Y-%m-%d %H:%M UTC'), N=$N runs per measurement (+$WARMUP warm-up)"


# ---- build -------------------------------------------------------------------------------
echo "== cargo build --release"
cargo build --release
VPNCA=$ROOT/target/release/vpnca
VPNCA_VERSION=$("$VPNCA" --version)

# ---- 1. raw keygen, in process -----------------------------------------------------------
echo "== raw RSA-2048 keygen, in process (aws-lc-rs), $N keys"
KG_OUT=$WORK/keygen.out
build_keygen
BUSY_START=$(cpu_busy)
echo "== CPU busy (others) before measuring: $BUSY_START%"
"$KEYGEN_BIN" "$N" >"$KG_OUT"
# The first random number of a process (aws-lc seeds its generator): one fresh process each.
for _ in $(seq 1 "$N"); do "$KEYGEN_BIN" first-rng; done >>"$KG_OUT"
grep '^#' "$KG_OUT" || true
for k in rsa2048_keygen rsa2048_sign argon2id_64m_t3 argon2id_8m_t1 aws_lc_first_rng; do
    awk -v k="$k" '$1 == k { print $2 }' "$KG_OUT" | stats "$k"
done

# ---- 1b. openssl genpkey, one process per key (reference) --------------------------------
echo "== openssl genpkey RSA-2048, one process per key"
hf -N --export-json "$WORK/openssl.json" \
    'openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out /dev/null'
hf_times "$WORK/openssl.json" | stats openssl_genpkey

# ---- 2. vpnca ----------------------------------------------------------------------------
export VPNCA_PASSPHRASE="benchmark passphrase, not a secret"
unset VPNCA_PKI
q() { printf '%q' "$1"; }
bench_vpnca() { # LABEL PKI [init options...]
    local label=$1 pki=$2; shift 2
    "$VPNCA" --pki "$pki" init "$@" >/dev/null
    "$VPNCA" --pki "$pki" ca --cn "Bench CA" >/dev/null
    local ctr=$WORK/$label.ctr
    echo 0 >"$ctr"
    echo "== vpnca client userN, $label KDF ($*)"
    # --prepare (untimed) bumps the counter, so every timed run issues a new name.
    hf --export-json "$WORK/client_$label.json" \
        --prepare "read n < $(q "$ctr"); echo \$((n + 1)) > $(q "$ctr")" \
        "read n < $(q "$ctr"); exec $(q "$VPNCA") --pki $(q "$pki") client user\$n"
    hf_times "$WORK/client_$label.json" | stats "client_$label"
    local issued
    issued=$(find "$pki/issued" -name 'user*.crt' | wc -l)
    if [ "$issued" -ne $((N + WARMUP)) ]; then
        echo "expected $((N + WARMUP)) issued client certificates, found $issued" >&2
        exit 2
    fi
    echo "== vpnca crl (unlock + sign + commit, no keygen), $label KDF"
    hf -N --export-json "$WORK/crl_$label.json" "$(q "$VPNCA") --pki $(q "$pki") crl"
    hf_times "$WORK/crl_$label.json" | stats "crl_$label"
    echo "== vpnca list (start + open, no unlock), $label KDF"
    hf -N --export-json "$WORK/list_$label.json" "$(q "$VPNCA") --pki $(q "$pki") list"
    hf_times "$WORK/list_$label.json" | stats "list_$label"
    echo "== peak RSS of vpnca client, $label KDF, $RSS_RUNS runs"
    for i in $(seq 1 "$RSS_RUNS"); do
        /usr/bin/time -v "$VPNCA" --pki "$pki" client "rss$i" 2>&1 >/dev/null |
            awk -F': ' '/Maximum resident set size/ { print $2 / 1000 }'
    done | stats "rss_$label" # stats() multiplies by 1000: the stored figures are KiB
}
bench_vpnca default "$WORK/pki-default"
bench_vpnca light "$WORK/pki-light" --kdf-memory-mib 8 --kdf-time 1

# ---- 3. easy-rsa -------------------------------------------------------------------------
EASYRSA_VERSION=$("$EASYRSA" --version 2>/dev/null | awk '/^Version:/ { print $2 }')
echo "== easy-rsa $EASYRSA_VERSION build-client-full userN nopass"
export EASYRSA_BATCH=1 EASYRSA_PKI=$WORK/easyrsa-pki
mkdir -p "$WORK/easyrsa"
# (EASYRSA_REQ_CN only for build-ca: build-client-full refuses an external commonName.)
(cd "$WORK/easyrsa" && "$EASYRSA" init-pki && EASYRSA_REQ_CN="Bench CA" "$EASYRSA" build-ca nopass) >"$WORK/easyrsa-setup.log" 2>&1 ||
    { cat "$WORK/easyrsa-setup.log" >&2; exit 2; }
echo 0 >"$WORK/easyrsa.ctr"
(cd "$WORK/easyrsa" && hf --export-json "$WORK/easyrsa.json" \
    --prepare "read n < $(q "$WORK/easyrsa.ctr"); echo \$((n + 1)) > $(q "$WORK/easyrsa.ctr")" \
    "read n < $(q "$WORK/easyrsa.ctr"); exec $(q "$EASYRSA") build-client-full user\$n nopass")
hf_times "$WORK/easyrsa.json" | stats easyrsa_client
issued=$(find "$EASYRSA_PKI/issued" -name 'user*.crt' | wc -l)
if [ "$issued" -ne $((N + WARMUP)) ]; then
    echo "expected $((N + WARMUP)) easy-rsa certificates, found $issued" >&2
    exit 2
fi

# ---- report ------------------------------------------------------------------------------
BUSY_END=$(cpu_busy)
row() { # KEY DESCRIPTION
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$2" \
        "$(get "$1" n)" "$(get "$1" median)" "$(get "$1" mean)" "$(get "$1" sd)" \
        "$(get "$1" min)" "$(get "$1" max)"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
sub3() { awk -v a="$1" -v b="$2" -v c="${3:-0}" 'BEGIN { printf "%.1f", a - b - c }'; }

echo
echo "## vpnca benchmark"
echo
echo "- machine: $(nproc) cores, ${CPU:-unknown CPU}, $MEM RAM, $(uname -sr)"
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC'); $VPNCA_VERSION; easy-rsa $EASYRSA_VERSION; $(openssl version | cut -d' ' -f1-2); $(hyperfine --version)"
echo "- raw keygen: $KEYGEN_HOW"
echo "- N=$N timed runs each (+$WARMUP warm-up); times are wall-clock milliseconds"
echo "- CPU busy with other work, sampled for 1 s before and after measuring: $BUSY_START% / $BUSY_END%"
if [ "$BUSY_START" -gt 10 ] || [ "$BUSY_END" -gt 10 ]; then
    echo "- **something else was using the CPU: figures are inflated, run again on a quiet machine**"
fi
echo
echo "| measurement | N | median ms | mean ms | sd ms | min ms | max ms |"
echo "|---|---:|---:|---:|---:|---:|---:|"
row rsa2048_keygen "raw RSA-2048 keygen, in process, 1 thread (aws-lc-rs)"
row openssl_genpkey "openssl genpkey RSA-2048, 1 process per key (reference)"
row rsa2048_sign "one RSA-2048 SHA-256 signature, in process"
row argon2id_64m_t3 "Argon2id 64 MiB, 3 passes, in process"
row argon2id_8m_t1 "Argon2id 8 MiB, 1 pass, in process"
row aws_lc_first_rng "aws-lc first random number of a process (RNG seeding)"
row client_default "**vpnca client userN** (default KDF 64 MiB/3)"
row client_light "vpnca client userN (KDF 8 MiB/1)"
row crl_default "vpnca crl (unlock + sign + commit), default KDF"
row crl_light "vpnca crl, KDF 8 MiB/1"
row list_default "vpnca list (start + open, no unlock)"
row easyrsa_client "**easy-rsa build-client-full userN nopass**"
echo
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo "| peak RSS of one vpnca client | runs | median MiB | max MiB |"
echo "|---|---:|---:|---:|"
echo "| default KDF (64 MiB) | $(get rss_default n) | $(mib "$(get rss_default median)") | $(mib "$(get rss_default max)") |"
echo "| KDF 8 MiB/1 | $(get rss_light n) | $(mib "$(get rss_light median)") | $(mib "$(get rss_light max)") |"
echo
echo "| ratio | by median | by mean |"
echo "|---|---:|---:|"
for pair in "easyrsa_client client_default easy-rsa / vpnca (default KDF), per cert" \
    "easyrsa_client client_light easy-rsa / vpnca (KDF 8 MiB/1), per cert" \
    "client_default rsa2048_keygen vpnca client (default KDF) / raw keygen" \
    "client_light rsa2048_keygen vpnca client (KDF 8 MiB/1) / raw keygen" \
    "openssl_genpkey rsa2048_keygen openssl genpkey process / in-process aws-lc keygen"; do
    read -r a b desc <<<"$pair"
    echo "| $desc | $(ratio "$(get "$a" median)" "$(get "$b" median)") | $(ratio "$(get "$a" mean)" "$(get "$b" mean)") |"
done
echo
# Means add up (medians do not), so the breakdown uses means. The KDF share is measured on
# `vpnca crl` (no keygen, so little noise): crl(default KDF) - crl(8 MiB/1) + Argon2id(8 MiB/1).
LIST=$(get list_default mean)
KDF8=$(get argon2id_8m_t1 mean)
KG=$(get rsa2048_keygen mean)
RNG=$(get aws_lc_first_rng mean)
CRLD=$(get crl_default mean)
CRLL=$(get crl_light mean)
CLIENT=$(get client_default mean)
KDF_CLI=$(awk -v a="$CRLD" -v b="$CRLL" -v c="$KDF8" 'BEGIN { printf "%.1f", a - b + c }')
SIGN=$(awk -v a="$CRLL" -v b="$LIST" -v c="$KDF8" -v d="$RNG" 'BEGIN { printf "%.1f", a - b - c - d }')
REST=$(awk -v t="$CLIENT" -v a="$LIST" -v b="$KDF_CLI" -v c="$KG" -v d="$SIGN" -v e="$RNG" \
    'BEGIN { printf "%.1f", t - a - b - c - d - e }')
pct() { awk -v a="$1" -v t="$CLIENT" 'BEGIN { printf "%.0f%%", 100 * a / t }'; }
echo "Where one \`vpnca client\` (default KDF) goes, by means:"
echo
echo "| part | ms | share | how it is measured |"
echo "|---|---:|---:|---|"
echo "| process start + open store | $LIST | $(pct "$LIST") | vpnca list |"
echo "| Argon2id unlock, 64 MiB / 3 passes | $KDF_CLI | $(pct "$KDF_CLI") | crl(default) - crl(8 MiB/1) + Argon2id 8 MiB/1 in process ($(get argon2id_64m_t3 mean) ms in a warm process) |"
echo "| aws-lc RNG seeding (once per process) | $RNG | $(pct "$RNG") | first random number of a fresh process |"
echo "| RSA-2048 keygen | $KG | $(pct "$KG") | in process, warm |"
echo "| sign + commit + write files | $SIGN | $(pct "$SIGN") | crl(8 MiB/1) - list - Argon2id 8 MiB/1 - RNG seeding |"
echo "| rest (certificate vs CRL building, keygen noise) | $REST | $(pct "$REST") | client - the above |"
echo "| **vpnca client, measured** | $CLIENT | 100% | |"
echo
echo "KDF share seen directly: client(default) - client(8 MiB/1) = $(sub3 "$CLIENT" "$(get client_light mean)") ms by mean, $(sub3 "$(get client_default median)" "$(get client_light median)") ms by median (noisier: keygen varies)."
echo "CPU (hyperfine means, user/system ms): client default $(hf_cpu "$WORK/client_default.json" | tr ' ' /), client 8 MiB/1 $(hf_cpu "$WORK/client_light.json" | tr ' ' /), crl default $(hf_cpu "$WORK/crl_default.json" | tr ' ' /), crl 8 MiB/1 $(hf_cpu "$WORK/crl_light.json" | tr ' ' /), easy-rsa $(hf_cpu "$WORK/easyrsa.json" | tr ' ' /)."
echo
echo "bench.sh finished in $(($(date +%s) - START)) s"
