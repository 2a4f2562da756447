#!/usr/bin/env bash
# Builds the code location image (deploy/Containerfile) with buildah where no container registry
# can be reached: the base image is made from Debian packages (debootstrap from the Debian mirror,
# the same Debian 12 "bookworm" the Containerfile's base is) instead of being pulled. Then it checks
# the image: the definitions load inside it, as the non-root user, with Tesseract's German data.
#
#   scripts/build-image.sh [tag]        default tag: localhost/invoice-pipelines:dev
#
# Needs root, buildah and debootstrap (apt-get install -y buildah debootstrap). Storage driver vfs
# and chroot isolation, so it runs without overlayfs, user namespaces or a daemon. Environment:
#   DEBIAN_MIRROR   default http://deb.debian.org/debian
#   WORK_DIR        where the base root file system is made (default /var/tmp/invoice-pipelines-image)
#   PIP_CERT        CA bundle pip must trust (a TLS-intercepting proxy), passed as a build secret
#   CHECK_PORT      loopback port for the code server check (default 3939)
# With a registry at hand, use the Containerfile directly (docker/podman/buildah build); it pulls
# its pinned base image and gives the same result.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
tag="${1:-localhost/invoice-pipelines:dev}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
work="${WORK_DIR:-/var/tmp/invoice-pipelines-image}"
base="localhost/invoice-pipelines-base:bookworm"
buildah=(buildah --storage-driver vfs)

for tool in buildah debootstrap; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "build-image: $tool is missing (apt-get install -y buildah debootstrap)" >&2
        exit 1
    }
done
[ "$(id -u)" -eq 0 ] || { echo "build-image: run as root (debootstrap and vfs storage)" >&2; exit 1; }

# 1. The base: a minimal Debian 12 root file system with the same apt sources as debian:12-slim.
rootfs="$work/rootfs"
if [ ! -x "$rootfs/usr/bin/apt-get" ]; then
    rm -rf "$rootfs"
    mkdir -p "$work"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror"
fi
cat > "$rootfs/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
EOF
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

if ! "${buildah[@]}" inspect --type image "$base" >/dev/null 2>&1; then
    container="$("${buildah[@]}" from scratch)"
    "${buildah[@]}" copy "$container" "$rootfs" /
    "${buildah[@]}" config --cmd /bin/bash "$container"
    "${buildah[@]}" commit --rm "$container" "$base"
fi

# 2. The image, from the Containerfile, on that base. Where PyPI is reached through a
# TLS-intercepting proxy, PIP_CERT names the CA bundle that trusts it; it goes in as a build secret.
secret=()
if [ -n "${PIP_CERT:-}" ] && [ -s "$PIP_CERT" ]; then
    secret=(--secret "id=pip-ca,src=$PIP_CERT")
fi
# --format docker: the OCI format has no HEALTHCHECK and would drop it.
"${buildah[@]}" build --isolation chroot --pull=false --layers --format docker "${secret[@]}" \
    --build-arg BASE_IMAGE="$base" \
    -f "$repo/deploy/Containerfile" -t "$tag" "$repo"

# 3. Check it: who runs, Tesseract's languages, the code location loading its definitions, and
# the image's code server answering its health check (chroot isolation shares the host's network:
# CHECK_PORT must be free here).
container="$("${buildah[@]}" from "$tag")"
server=""
cleanup() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    "${buildah[@]}" rm "$container" >/dev/null
}
trap cleanup EXIT
run() { "${buildah[@]}" run --isolation chroot "$container" -- "$@"; }
run id -u
run tesseract --list-langs
run dagster definitions validate -m invoice_pipelines.definitions
port="${CHECK_PORT:-3939}"
# --heartbeat: should the stop below not reach it, the server ends itself a minute after the check
"${buildah[@]}" run --isolation chroot "$container" -- dagster code-server start -h 127.0.0.1 \
    -p "$port" -m invoice_pipelines.definitions --heartbeat --heartbeat-timeout 60 &
server=$!
for _ in $(seq 1 30); do
    sleep 2
    if run dagster api grpc-health-check -p "$port" >/dev/null 2>&1; then
        echo "build-image: the image's code server answers on port $port"
        echo "build-image: built and checked $tag"
        exit 0
    fi
done
echo "build-image: the image's code server did not answer on port $port within 60 s" >&2
exit 1
