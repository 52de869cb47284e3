#!/usr/bin/env bash
# Builds a berth image whose workload is a real Debian server: nginx-light
# from a minimal debootstrap, turned into an OCI image layout with umoci,
# imported by `berth-image build` (examples/nginx.toml). Prints the build
# time and the artifact sizes. Needs the Debian mirror (apt's); not part of
# the test suite.
#
#   scripts/debian-server-image.sh [WORKDIR]    (default: target/debian-server)
#   cargo run -p berth-image -- run target/debian-server/out --forward 8080:80
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-target/debian-server}
scripts/prereqs.sh
if ! command -v debootstrap >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi
mkdir -p "$work"
work=$(realpath "$work")
if [ ! -f "$work/layout/index.json" ]; then
  rm -rf "$work/rootfs" "$work/layout" "$work/bundle"
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  debootstrap --variant=minbase --include=nginx-light bookworm "$work/rootfs" "${mirror:-http://deb.debian.org/debian}" >/dev/null
  # Images carry no device nodes (the runtime makes /dev); berth refuses them in workloads.
  rm -rf "$work/rootfs/dev/"* "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  # nginx logs to the console (the container's stdout/stderr).
  ln -sf /dev/stdout "$work/rootfs/var/log/nginx/access.log"
  ln -sf /dev/stderr "$work/rootfs/var/log/nginx/error.log"
  umoci init --layout "$work/layout"
  umoci new --image "$work/layout:nginx"
  umoci unpack --image "$work/layout:nginx" "$work/bundle"
  cp -a "$work/rootfs/." "$work/bundle/rootfs/"
  umoci repack --image "$work/layout:nginx" "$work/bundle"
  umoci config --image "$work/layout:nginx" \
    --config.entrypoint=/usr/sbin/nginx --config.cmd=-g --config.cmd="daemon off;" \
    --config.exposedports=80/tcp --config.stopsignal=SIGQUIT
  rm -rf "$work/bundle"
fi
sed "s|@LAYOUT@|$work/layout|" examples/nginx.toml > "$work/nginx.toml"
start=$(date +%s.%N)
cargo run -q --release -p berth-image -- build "$work/nginx.toml" -o "$work/out"
end=$(date +%s.%N)
echo "build time: $(echo "$end - $start" | bc) s"
du -b "$work/layout" | tail -1 | awk '{printf "OCI layout: %.1f MiB\n", $1/1048576}'
