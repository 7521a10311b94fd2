#!/usr/bin/env bash
# Supply-chain checks with cargo-deny (deny.toml): licences, banned and duplicate crates, and
# sources (crates.io only) for vpnca and for the fuzz workspace; then RustSec advisories.
#
# Licences, bans and sources need only Cargo.lock and the crates' metadata: they always run and
# fail the build. The advisory check needs the RustSec database, fetched from github.com; where
# that is unreachable (these build machines reach only the package registries) it is reported
# as SKIPPED, loudly, and docs/security.md#supply-chain records the last manual audit.
set -euo pipefail
cd "$(dirname "$0")/.."

DENY_VERSION=0.20.2
if ! command -v cargo-deny >/dev/null 2>&1; then
    echo "installing: cargo-deny $DENY_VERSION (crates.io)"
    cargo install --quiet --locked cargo-deny --version "$DENY_VERSION"
fi

echo "== cargo deny: licences, bans, sources (vpnca)"
cargo deny --offline --log-level error check licenses bans sources
if [ -f fuzz/Cargo.toml ]; then
    echo "== cargo deny: licences, bans, sources (fuzz workspace)"
    cargo deny --offline --log-level error --manifest-path fuzz/Cargo.toml \
        --config deny.toml check licenses bans sources
fi

echo "== cargo deny: RustSec advisories"
# A fetched database (here or by an earlier run) is used; the fetch itself is bounded.
if timeout 120 cargo deny --log-level error check advisories 2>/tmp/vpnca-advisories.$$; then
    echo "advisories ok"
elif grep -qiE 'fetch|network|resolve|connect|github' /tmp/vpnca-advisories.$$; then
    echo "SKIPPED: the RustSec advisory database could not be fetched (no route to github.com);"
    echo "         see docs/security.md#supply-chain for the last manual audit"
    sed -n '1,5p' /tmp/vpnca-advisories.$$ | sed 's/^/         /'
else
    cat /tmp/vpnca-advisories.$$
    rm -f /tmp/vpnca-advisories.$$
    exit 1
fi
rm -f /tmp/vpnca-advisories.$$
