#!/usr/bin/env bash
# Supply-chain checks with cargo-deny (deny.toml), for vpnca and for the fuzz workspace:
#   1. licences, banned and duplicate crates, sources (crates.io only);
#   2. RustSec advisories, against a database that is there for real: fetched from its home
#      (github.com), else the dated offline snapshot ../shared/rustsec/advisory-db.bundle (CI
#      has it: these machines reach only the package registries), refused when older than
#      $VPNCA_ADVISORY_MAX_AGE_DAYS (default 120) days;
#   3. a planted finding (tests/data/supply-chain/vulnerable: smallvec 1.6.0,
#      RUSTSEC-2021-0003) that the advisory check must report, so a check that cannot fail is
#      itself a failure.
#
# Verdicts come from exit statuses and cargo-deny's JSON diagnostics, never from grepping its
# words: `cargo deny fetch db` says whether the database could be had; `cargo deny --offline
# check advisories` then runs on a database that is present, so its failure is a finding.
# Where neither the fetch nor the snapshot gives a database, the advisory check is SKIPPED:
# said here, and counted in the closing summary of scripts/test.sh (through $VPNCA_SKIP_LOG).
#
# Exit: 0 all passed (or advisories skipped for want of any database), 1 a finding or a stale
# database, 2 a tool could not be installed or run.
set -uo pipefail
cd "$(dirname "$0")/.."

DENY_VERSION=0.20.2
MAX_AGE_DAYS=${VPNCA_ADVISORY_MAX_AGE_DAYS:-120}
SNAPSHOT=${VPNCA_ADVISORY_SNAPSHOT:-../shared/rustsec/advisory-db.bundle}
PLANTED=tests/data/supply-chain/vulnerable
PLANTED_ID=RUSTSEC-2021-0003
# Where cargo-deny 0.20 keeps the default database (the folder name derives from its URL).
DB_DIR=${CARGO_HOME:-$HOME/.cargo}/advisory-dbs/advisory-db-3157b0e258782691

die() {
    echo "supply-chain: $*" >&2
    exit 2
}

if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $DENY_VERSION" ]; then
    echo "installing: cargo-deny $DENY_VERSION (crates.io)"
    cargo install --quiet --locked cargo-deny --version "$DENY_VERSION" ||
        die "could not install cargo-deny $DENY_VERSION"
fi

# cargo-deny reads the metadata of every crate a lock file names, for every platform (also
# windows-sys, r-efi, …, which no build here downloads), and runs --offline below.
echo "== cargo fetch: every crate of both lock files, all platforms"
for manifest in Cargo.toml fuzz/Cargo.toml "$PLANTED/Cargo.toml"; do
    cargo fetch --locked --quiet --manifest-path "$manifest" || die "cargo fetch for $manifest failed"
done

failed=0
echo "== cargo deny: licences, bans, sources (vpnca)"
cargo deny --offline --log-level error check licenses bans sources || failed=1
echo "== cargo deny: licences, bans, sources (fuzz workspace)"
cargo deny --offline --log-level error --manifest-path fuzz/Cargo.toml \
    --config deny.toml check licenses bans sources || failed=1

echo "== RustSec advisory database"
if timeout 120 cargo deny --log-level error fetch db >/dev/null 2>&1; then
    source="fetched from its home"
elif [ -f "$SNAPSHOT" ]; then
    source="offline snapshot $SNAPSHOT"
    rm -rf "$DB_DIR.new"
    mkdir -p "$(dirname "$DB_DIR")"
    git clone --quiet --branch snapshot "$SNAPSHOT" "$DB_DIR.new" ||
        die "could not read the advisory snapshot $SNAPSHOT"
    rm -rf "$DB_DIR"
    mv "$DB_DIR.new" "$DB_DIR"
else
    echo "SKIPPED: advisories: the RustSec database is unreachable and there is no snapshot at $SNAPSHOT"
    [ -n "${VPNCA_SKIP_LOG:-}" ] &&
        echo "supply-chain advisories: no RustSec database (unreachable, no snapshot)" >>"$VPNCA_SKIP_LOG"
    exit "$failed"
fi
db_date=$(git -C "$DB_DIR" log -1 --format=%cs 2>/dev/null) || die "no database at $DB_DIR after the fetch"
age_days=$(((($(date +%s) - $(date -d "$db_date" +%s)) / 86400)))
echo "database of $db_date ($age_days days old; $source; limit $MAX_AGE_DAYS days)"
if [ "$age_days" -gt "$MAX_AGE_DAYS" ]; then
    echo "FAILED: the advisory database is $age_days days old (limit $MAX_AGE_DAYS): advisories" \
        "published since $db_date are not checked. Refresh the snapshot (../shared/rustsec/)." >&2
    exit 1
fi

# Runs the advisory check on one manifest; prints its findings (JSON diagnostics) and returns
# cargo-deny's exit status.
advisories() {
    local manifest=$1 json rc
    json=$(mktemp)
    cargo deny --offline --format json --log-level error --manifest-path "$manifest" \
        --config deny.toml check advisories 2>"$json"
    rc=$?
    jq -r 'select(.type == "diagnostic") | .fields
        | "  \(.severity) \(.code): \(.graphs[0].Krate.name // "") \(.graphs[0].Krate.version // ""): \(.message) \(.advisory.id // "")"' "$json"
    # Anything else on stderr (not a diagnostic) is shown as it is.
    jq -Rr 'fromjson? // . | strings' "$json" | sed 's/^/  /'
    rm -f "$json"
    return "$rc"
}

for manifest in Cargo.toml fuzz/Cargo.toml; do
    echo "== cargo deny: RustSec advisories ($manifest)"
    if advisories "$manifest"; then echo "advisories ok"; else failed=1; fi
done

echo "== the advisory check on a planted finding ($PLANTED)"
planted=$(advisories "$PLANTED/Cargo.toml")
planted_rc=$?
if [ "$planted_rc" -ne 0 ] && grep -q "vulnerability: .* $PLANTED_ID" <<<"$planted"; then
    echo "found $PLANTED_ID, as planted: the check can fail"
else
    echo "FAILED: the advisory check did not report the planted $PLANTED_ID (exit $planted_rc):" >&2
    echo "$planted" >&2
    failed=1
fi

if [ "$failed" -ne 0 ]; then
    echo "supply-chain: FAILED" >&2
    exit 1
fi
echo "supply-chain: ok (advisories: database of $db_date)"
