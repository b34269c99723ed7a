#!/usr/bin/env bash
# Packages the ocipatch release binary as an OCI image with `ocipatch append scratch`:
# one layer holding /usr/local/bin/ocipatch and the CA certificates a docker:// over HTTPS
# needs (/etc/ssl/certs/ca-certificates.crt, where ocipatch looks by default), with
# /etc/ssl/certs/ca-certificates.crt.source saying which bundle it is (its sha256 and, when
# dpkg knows it, the ca-certificates package version). Two builds of the same binary and
# bundle give a byte-identical image (fixed SOURCE_DATE_EPOCH, reproducible layer, no clock).
#
# Usage: scripts/build-image.sh [--binary PATH] [--ca-bundle FILE] [--platform OS/ARCH] [DEST]
#   DEST         where to write the image (default oci:target/image:latest)
#   --binary     package this binary instead of building one (what the tests do)
#   --ca-bundle  the PEM bundle to ship (default: this machine's
#                /etc/ssl/certs/ca-certificates.crt, Debian's ca-certificates)
#   --platform   the image's platform (default linux/amd64: the binary's)
#
# Without --binary it builds `cargo build --release`, statically linked
# (-C target-feature=+crt-static on x86_64-unknown-linux-gnu) when the toolchain can, so the
# image needs nothing else. When the static build fails it says so and packages the dynamic
# binary: that image needs glibc (2.36 or newer) under it, e.g. rebased onto a Debian or
# distroless/cc base with `ocipatch rebase IMAGE --from SCRATCH_IMAGE --onto BASE`.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

binary=
platform=linux/amd64
dest=oci:target/image:latest
ca_bundle=/etc/ssl/certs/ca-certificates.crt
while (($#)); do
	case $1 in
	--binary) binary=$2; shift 2 ;;
	--platform) platform=$2; shift 2 ;;
	--ca-bundle) ca_bundle=$2; shift 2 ;;
	-h | --help) sed -n '2,22p' "$0"; exit 0 ;;
	-*) echo "scripts/build-image.sh: unknown option: $1" >&2; exit 2 ;;
	*) dest=$1; shift ;;
	esac
done

if [ -z "$binary" ]; then
	target=x86_64-unknown-linux-gnu
	if RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --target "$target" >&2; then
		binary=target/$target/release/ocipatch
		echo "build-image: statically linked ($target, +crt-static)" >&2
	else
		echo "build-image: a static build failed; packaging the dynamic binary (the image needs glibc under it)" >&2
		cargo build --release --locked >&2
		binary=target/release/ocipatch
	fi
fi
[ -x "$binary" ] || { echo "scripts/build-image.sh: $binary is not an executable" >&2; exit 1; }

# The packaging tool is the binary itself when it runs here, else the one built for tests.
ocipatch=${OCIPATCH:-$binary}

rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
install -D -m 0755 "$binary" "$rootfs/usr/local/bin/ocipatch"

# CA certificates: without them every docker:// over HTTPS fails verification.
[ -s "$ca_bundle" ] || {
	echo "scripts/build-image.sh: no CA bundle at $ca_bundle (install Debian's ca-certificates, or pass --ca-bundle FILE)" >&2
	exit 1
}
install -D -m 0644 "$ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
{
	echo "sha256 $(sha256sum "$ca_bundle" | cut -d' ' -f1)"
	if [ "$ca_bundle" = /etc/ssl/certs/ca-certificates.crt ] && version=$(dpkg-query -W -f '${Version}' ca-certificates 2>/dev/null); then
		echo "this machine's bundle (update-ca-certificates), Debian package ca-certificates $version"
	fi
} >"$rootfs/etc/ssl/certs/ca-certificates.crt.source"
chmod 0644 "$rootfs/etc/ssl/certs/ca-certificates.crt.source"

# The commit's time when there is one, else a fixed date: never the clock.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 1700000000)}
"$ocipatch" append scratch --layer "$rootfs" --platform "$platform" -o "$dest" -q
