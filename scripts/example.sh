#!/usr/bin/env bash
# Builds the example image (examples/hello.toml) and boots it in QEMU with
# the serial console on this terminal. Quit with Ctrl-A X, or power the
# guest off. Extra arguments go to `berth-image run` (e.g. --timeout 60).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/prereqs.sh
cargo run -q --release -p berth-image -- busybox-rootfs examples/rootfs/busybox
cargo run -q --release -p berth-image -- build examples/hello.toml -o out/hello
# The example's web container publishes port 8080: curl http://127.0.0.1:8080/
exec cargo run -q --release -p berth-image -- run out/hello --forward 8080:8080 "$@"
