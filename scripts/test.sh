#!/usr/bin/env bash
# Runs every vpnca test on a fresh machine (the README's test command; CI runs it through
# .ci/run). Steps, in order, each timed; a failing step does not stop the later ones (but a
# failed set-up stops everything):
#
#   setup         installs what the tests need when missing or at another version: openssl,
#                 openvpn, easy-rsa, jq, sqlite3, gnutls-bin, groff-base, man-db (Debian);
#                 tests/aws/requirements.txt
#                 (PyPI: moto[server] and what tests/aws/ec2_server.py uses) and
#                 tests/requirements-lint.txt (pkilint); fetches every crate (cargo fetch)
#   fmt           cargo fmt --check
#   clippy        cargo clippy --all-targets -D warnings (the keygen bench included), and the library and binary without default features (no `aws`)
#   tests         cargo test --all-targets --no-fail-fast (unit, integration, bench smoke run)
#   doctests      cargo test --doc
#   supply-chain  scripts/supply-chain.sh (cargo-deny: licences, bans, sources, advisories)
#   fuzz          scripts/fuzz.sh, $FUZZ_SECONDS (default 20) per target
#
# Then one closing line, the one CI reports:
#   vpnca: P passed, F failed, C crashed (of B test binaries), S skipped; failed steps: none
# "crashed" counts test binaries that ended without a result (killed by a signal, aborted);
# "skipped" counts what was skipped on purpose (VPNCA_SKIP_MOUNT_TESTS=1, no advisory
# database), each listed above the line. Exit 0 when every step passed, else 1.
#
#   ./scripts/test.sh                          # everything
#   ./scripts/test.sh --steps fmt,tests        # some steps (setup always runs)
#   ./scripts/test.sh --steps tests -- --test lifecycle   # cargo test arguments (instead of
#                                                          # --all-targets)
#
# Tools missing are installed, never skipped. The I/O-fault tests mount tmpfs file systems and
# so need root; without root they fail, unless VPNCA_SKIP_MOUNT_TESTS=1 says to skip them.
set -uo pipefail
cd "$(dirname "$0")/.."

all_steps="fmt clippy tests doctests supply-chain fuzz"
steps=$all_steps
while [ $# -gt 0 ]; do
    case $1 in
    --steps)
        steps=${2//,/ }
        shift 2
        ;;
    --steps=*)
        steps=${1#--steps=}
        steps=${steps//,/ }
        shift
        ;;
    --)
        shift
        break
        ;;
    *)
        echo "usage: scripts/test.sh [--steps STEP,...] [-- CARGO_TEST_ARGS...]" >&2
        echo "steps: $all_steps" >&2
        exit 2
        ;;
    esac
done
for s in $steps; do
    case " $all_steps " in *" $s "*) ;; *)
        echo "scripts/test.sh: no step '$s' (steps: $all_steps)" >&2
        exit 2
        ;;
    esac
done
cargo_test_args=("$@")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export VPNCA_SKIP_LOG=$work/skipped
: >"$VPNCA_SKIP_LOG"
test_log=$work/tests.log
: >"$test_log"
failed_steps=()
timings=()

# step NAME COMMAND...: runs one step, records its time and whether it failed.
step() {
    local name=$1 t0=$SECONDS rc=0
    shift
    echo "== $name"
    "$@" || rc=$?
    local st=ok
    if [ "$rc" -ne 0 ]; then
        st="FAILED (exit $rc)"
        failed_steps+=("$name")
    fi
    timings+=("$(printf '%-13s %5d s  %s' "$name" $((SECONDS - t0)) "$st")")
}

setup() {
    local need_apt=() SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
    command -v openvpn >/dev/null 2>&1 || [ -x /usr/sbin/openvpn ] || need_apt+=(openvpn)
    # The real easy-rsa (Debian's 3.1.x) makes the source PKIs of the import-easyrsa tests.
    [ -x /usr/share/easy-rsa/easyrsa ] || need_apt+=(easy-rsa)
    # jq reads cargo-deny's JSON diagnostics (scripts/supply-chain.sh).
    command -v jq >/dev/null 2>&1 || need_apt+=(jq)
    # sqlite3 reads the store header from outside (tests/documented.rs).
    command -v sqlite3 >/dev/null 2>&1 || need_apt+=(sqlite3)
    # GnuTLS's certtool reads every exported key and PKCS#12 file (tests/interop.rs).
    command -v certtool >/dev/null 2>&1 || need_apt+=(gnutls-bin)
    # groff renders every man page `vpnca man --out` writes, warnings on (tests/reference.rs).
    command -v groff >/dev/null 2>&1 || need_apt+=(groff-base)
    # man reads a page `vpnca man --out` wrote, as README.md shows (tests/docs_commands.rs).
    command -v man >/dev/null 2>&1 || need_apt+=(man-db)
    if [ ${#need_apt[@]} -gt 0 ]; then
        echo "installing: ${need_apt[*]} (Debian)"
        $SUDO apt-get update -qq || return 1
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" || return 1
    fi
    command -v openssl >/dev/null || return 1
    command -v sqlite3 >/dev/null || return 1
    command -v openvpn >/dev/null || [ -x /usr/sbin/openvpn ] || return 1
    [ -x /usr/share/easy-rsa/easyrsa ] || return 1
    command -v certtool >/dev/null || return 1

    # AWS test doubles, at the pinned versions (pip does nothing when they are installed).
    if ! python3 -m pip install --quiet --disable-pip-version-check -r tests/aws/requirements.txt; then
        echo "setup: could not install tests/aws/requirements.txt" >&2
        return 1
    fi
    command -v moto_server >/dev/null || return 1
    # pkilint, the RFC 5280 linter of tests/interop.rs, pinned (after the AWS file: it takes
    # that file's cryptography).
    if ! python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements-lint.txt; then
        echo "setup: could not install tests/requirements-lint.txt" >&2
        return 1
    fi
    command -v lint_pkix_cert >/dev/null || return 1
    command -v lint_crl >/dev/null || return 1
    cargo fetch --locked --quiet
}

run_tests() {
    # Arguments after `--` choose the targets themselves (e.g. --test lifecycle).
    local args=(--all-targets)
    [ ${#cargo_test_args[@]} -gt 0 ] && args=("${cargo_test_args[@]}")
    cargo test --locked --no-fail-fast "${args[@]}" 2>&1 | tee -a "$test_log"
    return "${PIPESTATUS[0]}"
}

# clippy on every target, and on the library and binary built without the default features
# (no `aws`: what the fuzz workspace builds), so that a module or item wired to the wrong
# feature fails here rather than in the fuzz step.
run_clippy() {
    cargo clippy --all-targets --locked -- -D warnings &&
        cargo clippy --lib --bins --no-default-features --locked -- -D warnings
}

run_doctests() {
    cargo test --locked --doc 2>&1 | tee -a "$test_log"
    return "${PIPESTATUS[0]}"
}

step setup setup
if [ ${#failed_steps[@]} -gt 0 ]; then
    echo "vpnca: set-up failed: no test ran; failed steps: setup"
    exit 1
fi
for s in $steps; do
    case $s in
    fmt) step fmt cargo fmt --all -- --check ;;
    clippy) step clippy run_clippy ;;
    tests) step tests run_tests ;;
    doctests) step doctests run_doctests ;;
    supply-chain) step supply-chain ./scripts/supply-chain.sh ;;
    fuzz) step fuzz ./scripts/fuzz.sh "${FUZZ_SECONDS:-20}" ;;
    esac
done

# The summary, from libtest's and cargo's own lines: "Running X" / "Doc-tests X" start a test
# binary; "test result: … N passed; M failed; …" ends one; cargo's "error: test failed, to
# rerun pass …" follows one that failed. A failed binary with no result line crashed (a
# signal, an abort, an exit from inside a test); a harness = false target (the keygen bench)
# has no result line and is fine when cargo reports no failure.
read -r passed failed binaries crashed_names < <(awk '
    function finish() {
        if (cur != "" && !done && err) crashed = crashed (crashed == "" ? "" : ",") cur
    }
    /^ *Running / || /^ *Doc-tests / {
        finish(); n++; done = 0; err = 0
        cur = $2; if ($1 == "Running" && $2 == "unittests") cur = $3
        next
    }
    /^error: test failed, to rerun pass / { err = 1 }
    /^test result: / {
        done = 1
        for (i = 1; i <= NF; i++) {
            if ($(i + 1) ~ /^passed/) p += $i
            if ($(i + 1) ~ /^failed/) f += $i
        }
    }
    END { finish(); print p + 0, f + 0, n + 0, (crashed == "" ? "-" : crashed) }
' "$test_log")
crashed=0
[ "$crashed_names" != "-" ] && crashed=$(tr ',' '\n' <<<"$crashed_names" | wc -l)
skipped=$(wc -l <"$VPNCA_SKIP_LOG")

echo
echo "== summary"
printf '  %s\n' "${timings[@]}"
[ "$crashed" -gt 0 ] && echo "  crashed test binaries (no result line): ${crashed_names//,/ }"
if [ "$skipped" -gt 0 ]; then
    echo "  skipped on purpose:"
    sed 's/^/    /' "$VPNCA_SKIP_LOG"
fi
steps_text=none
[ ${#failed_steps[@]} -gt 0 ] && steps_text=$(
    IFS=,
    echo "${failed_steps[*]}"
)
echo "vpnca: $passed passed, $failed failed, $crashed crashed (of $binaries test binaries), $skipped skipped; failed steps: $steps_text"
[ ${#failed_steps[@]} -eq 0 ]
