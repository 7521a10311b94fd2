# shellcheck shell=bash
# Shared by scripts/bench.sh, scripts/bench-batch.sh and scripts/bench-kms.sh (sourced, not run).

# Installs the benchmark tools from Debian's packages when missing; needs $EASYRSA.
bench_install_tools() {
    local need_apt=() SUDO=""
    command -v hyperfine >/dev/null 2>&1 || need_apt+=(hyperfine)
    command -v jq >/dev/null 2>&1 || need_apt+=(jq)
    [ -x /usr/bin/time ] || need_apt+=(time)
    command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
    [ -x "$EASYRSA" ] || need_apt+=(easy-rsa)
    if [ ${#need_apt[@]} -gt 0 ]; then
        echo "installing: ${need_apt[*]}"
        [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
    fi
    command -v cargo >/dev/null || { echo "cargo (a Rust toolchain) is required" >&2; exit 2; }
}

# Share of all CPUs busy over one second (/proc/stat), sampled while the script is idle:
# others' work on the cores inflates the figures.
cpu_busy() {
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
        busy = y[1] - x[1]; idle = y[2] - x[2];
        printf "%.0f", (busy + idle > 0) ? 100 * busy / (busy + idle) : 0 }'
}

# Builds benches/keygen.rs (the `keygen` bench target, release profile); sets KEYGEN_HOW and
# KEYGEN_BIN for the caller.
# shellcheck disable=SC2034
build_keygen() {
    KEYGEN_HOW="cargo bench --bench keygen (benches/keygen.rs)"
    KEYGEN_BIN=$(cargo bench --locked --bench keygen --no-run --message-format=json |
        jq -r 'select(.executable != null and .target.name == "keygen") | .executable' | tail -n1)
}

# The arguments of a benchmark that writes a Markdown table: `--md FILE` (or BENCH_MD=FILE)
# sets MD_OUT (absolute, from $ROOT), `-h` prints the script's header comment; needs $ROOT.
# shellcheck disable=SC2034
bench_md_args() {
    MD_OUT=${BENCH_MD:-}
    while [ $# -gt 0 ]; do
        case $1 in
            --md) MD_OUT=${2:?--md needs a file}; shift 2 ;;
            --md=*) MD_OUT=${1#--md=}; shift ;;
            -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
            *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
        esac
    done
    [ -n "$MD_OUT" ] && case $MD_OUT in /*) ;; *) MD_OUT=$ROOT/$MD_OUT ;; esac
    return 0
}
