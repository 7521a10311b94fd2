#!/usr/bin/env bash
# Fuzzes vpnca's parsers of outside input (fuzz/, cargo-fuzz + libFuzzer with AddressSanitizer),
# each target for a bounded time. Exits 1 if any target found a crash, a panic, a timeout or
# an out-of-memory input, naming the saved input and the commands to reproduce and minimize it.
#
#   scripts/fuzz.sh                  # every target, 20 s each: CI's short pass (5.5 min cold, 3 warm)
#   scripts/fuzz.sh 3600             # an hour per target: a real run, before a release
#   scripts/fuzz.sh 600 csr store_open
#
# Targets (fuzz/fuzz_targets/, what each calls: fuzz/src/lib.rs): csr, batch, easyrsa_index,
# easyrsa_key, profile, ovpn, store_open. Each starts from its committed seeds (fuzz/seeds/
# TARGET/, only read) plus what earlier runs here found (fuzz/corpus/TARGET/, not committed;
# new inputs go there, so repeated runs keep going deeper). Crashes go to fuzz/artifacts/TARGET/.
#
# Settings (environment): FUZZ_TIMEOUT seconds one input may take (default 60: the key-derivation
# costs import-easyrsa accepts from a key file, up to 10 million PBKDF2 iterations or 16 lanes of
# 256 MiB scrypt, take 1-8 s in a normal build but 11-33 s under ASan and coverage),
# FUZZ_RSS_MB memory limit in MiB (default 2048), FUZZ_FORK parallel fuzzing processes per
# target (default 1; e.g. 2 on a 2-core machine for long runs), FUZZ_SANITIZER (address,
# or none where AddressSanitizer does not link).
#
# cargo-fuzz needs nightly's -Z flags; the project builds with stable, so RUSTC_BOOTSTRAP=1
# lets the stable compiler take them (nothing else is built this way). cargo-fuzz 0.13.2 is
# installed when missing or at another version.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs=${1:-20}
[ $# -gt 0 ] && shift
case $secs in '' | *[!0-9]*)
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
    ;;
esac
timeout=${FUZZ_TIMEOUT:-60}
rss_mb=${FUZZ_RSS_MB:-2048}
fork=${FUZZ_FORK:-1}
sanitizer=${FUZZ_SANITIZER:-address}
export RUSTC_BOOTSTRAP=1

FUZZ_VERSION=0.13.2
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $FUZZ_VERSION" ]; then
    echo "installing cargo-fuzz $FUZZ_VERSION (crates.io)"
    cargo install cargo-fuzz --locked --version "$FUZZ_VERSION"
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# One build for every target: release, debug assertions and overflow checks, --cfg fuzzing.
if ! cargo fetch --locked --quiet; then
    # The fuzz crate has its own lock file: the main one's versions plus libfuzzer-sys.
    cat >&2 <<'EOF'
fuzz: fuzz/Cargo.lock is out of date with the main crate's dependencies. Bring it in line with
the main Cargo.lock and commit it:
    cp Cargo.lock fuzz/Cargo.lock && (cd fuzz && cargo metadata --format-version 1 >/dev/null)
EOF
    exit 2
fi
start=$SECONDS
cargo fuzz build --debug-assertions --sanitizer "$sanitizer"
echo "fuzz: built in $((SECONDS - start)) s"
bin_dir=target/$(rustc -vV | sed -n 's/^host: //p')/release

# As `cargo fuzz run` does: ASan's ODR check misfires on the static C libraries (SQLite).
export ASAN_OPTIONS=detect_odr_violation=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}
# The targets that make a store keep it in $TMPDIR: a directory of our own, removed at exit.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

failed=()
for t in "${targets[@]}"; do
    [ -x "$bin_dir/$t" ] || {
        echo "fuzz: no target $t (cargo fuzz list)" >&2
        exit 2
    }
    mkdir -p "corpus/$t" "artifacts/$t"
    before=$(ls "artifacts/$t")
    echo "fuzz: $t for $secs s"
    args=(-max_total_time="$secs" -timeout="$timeout" -rss_limit_mb="$rss_mb"
        -artifact_prefix="artifacts/$t/" -print_final_stats=1)
    [ "$fork" -gt 1 ] && args+=(-fork="$fork")
    rc=0
    TMPDIR=$scratch "$bin_dir/$t" "${args[@]}" "corpus/$t" "seeds/$t" || rc=$?
    new=$(comm -13 <(echo "$before") <(ls "artifacts/$t"))
    if [ "$rc" -ne 0 ] || [ -n "$new" ]; then
        failed+=("$t")
        echo "fuzz: $t FAILED (exit $rc)" >&2
        [ -n "$new" ] || echo "  no input was saved: see libFuzzer's output above" >&2
        for a in $new; do
            cat >&2 <<EOF
  input:      fuzz/artifacts/$t/$a
  reproduce:  cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run $t artifacts/$t/$a
  minimize:   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz tmin $t artifacts/$t/$a
  regression: copy the minimized input to tests/data/fuzz-regressions/$t-SHORT-NAME, describe
              it in the README there (cargo test --test fuzz_regressions runs it), fix vpnca
EOF
        done
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, $secs s each: no crash"
