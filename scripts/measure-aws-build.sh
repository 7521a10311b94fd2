#!/usr/bin/env bash
# Measures what the AWS SDK costs to compile on this machine: a clean release build of
# aws-config + aws-sdk-acm + tokio (what vpnca uses), then the same plus aws-sdk-ec2.
# Wall time and peak memory (GNU time) of each; the numbers go into docs/aws.md.
# Usage: ./scripts/measure-aws-build.sh [WORKDIR]   (needs crates.io; ~15 minutes on 2 cores)
set -euo pipefail
work=${1:-$(mktemp -d)}
mkdir -p "$work"
command -v /usr/bin/time >/dev/null || { echo "needs GNU time (apt-get install time)"; exit 2; }

make_crate() { # name extra-deps
    local dir="$work/$1"
    mkdir -p "$dir/src"
    cat > "$dir/Cargo.toml" <<TOML
[package]
name = "aws-build-$1"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
aws-config = { version = "1", default-features = false, features = ["default-https-client", "rt-tokio", "credentials-process", "sso"] }
aws-sdk-acm = { version = "1", default-features = false, features = ["default-https-client", "rt-tokio"] }
aws-sigv4 = "1"
tokio = { version = "1", default-features = false, features = ["rt"] }
$2

[profile.release]
lto = "thin"
codegen-units = 4
TOML
    echo 'fn main() { let _ = aws_config::BehaviorVersion::latest(); }' > "$dir/src/main.rs"
    (cd "$dir" && cargo fetch -q)
}

measure() { # name
    local dir="$work/$1"
    (cd "$dir" && rm -rf target && /usr/bin/time -f "$1: %e s wall, %M KB peak RSS" cargo build --release -q 2>&1 | tail -1)
}

make_crate without ""
make_crate with-ec2 'aws-sdk-ec2 = { version = "1", default-features = false, features = ["default-https-client", "rt-tokio"] }'
measure without
measure with-ec2
