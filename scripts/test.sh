#!/usr/bin/env bash
# Runs every vpnca test on a fresh machine: installs what the tests need (openssl, openvpn,
# easy-rsa, moto and botocore for the AWS tests, cargo-deny, cargo-fuzz), then lints, runs the
# whole test suite, the supply-chain checks (cargo-deny) and a short fuzzing pass (20 s per
# target; FUZZ_SECONDS=N to change it). Fails, never skips, when a tool can't be had (the one
# exception: the RustSec database, which only github.com serves; see scripts/supply-chain.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v openvpn >/dev/null 2>&1 || [ -x /usr/sbin/openvpn ] || need_apt+=(openvpn)
# The real easy-rsa (Debian's 3.1.x) makes the source PKIs of the import-easyrsa tests.
[ -x /usr/share/easy-rsa/easyrsa ] || need_apt+=(easy-rsa)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing: ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
command -v openssl >/dev/null
command -v openvpn >/dev/null || [ -x /usr/sbin/openvpn ]
[ -x /usr/share/easy-rsa/easyrsa ]

# AWS tests: moto's server for ACM; botocore and cryptography for tests/aws/ec2_server.py
# (the Client VPN calls, which no emulator implements).
if ! command -v moto_server >/dev/null 2>&1 \
    || ! python3 -c 'import moto, boto3, botocore, cryptography, flask' >/dev/null 2>&1; then
    echo "installing: moto[server] (PyPI)"
    python3 -m pip install --quiet 'moto[server]>=5,<6'
fi
command -v moto_server >/dev/null
python3 -c 'import moto, boto3, botocore, cryptography'

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# The I/O-fault tests mount tmpfs file systems: as root they must run, elsewhere they skip.
[ "$(id -u)" -eq 0 ] && export VPNCA_REQUIRE_MOUNT=1
cargo test --locked --all-targets

./scripts/supply-chain.sh
./scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
