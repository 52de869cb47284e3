#!/usr/bin/env bash
# Runs every check and test: formatting, clippy, the static-binary check,
# unit tests, host tests and the QEMU boot tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prereqs.sh

echo "== format"
cargo fmt --all -- --check
echo "== clippy"
cargo clippy --workspace --all-targets -q -- -D warnings

echo "== static berth binary"
# The same RUSTFLAGS as berth-image's build (STATIC_RUSTFLAGS in
# initramfs/src/berth_binary.rs), so the tests reuse this build.
RUSTFLAGS="-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs" CARGO_TARGET_DIR=target/static \
  cargo build -q --release -p berth --target x86_64-unknown-linux-gnu
bin=target/static/x86_64-unknown-linux-gnu/release/berth
info=$(file -b "$bin")
echo "$bin: $info"
case "$info" in
  *"dynamically linked"*|*"interpreter"*) echo "berth is not static" >&2; exit 1 ;;
  *"statically linked"*|*"static-pie linked"*) ;;
  *) echo "cannot tell whether berth is static" >&2; exit 1 ;;
esac
ls -l "$bin"

echo "== tests (unit, host, QEMU)"
cargo test --workspace --no-fail-fast -- --test-threads 2
