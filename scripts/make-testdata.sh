#!/usr/bin/env bash
# Build the example OCI images used by ocipatch's tests, with umoci, the way a
# user would: umoci init/new/unpack, edit the rootfs, umoci repack, umoci config.
#
# Usage: scripts/make-testdata.sh [OUTPUT_LAYOUT_DIR]    (default: testdata/images)
#
# Writes ONE OCI image layout with the tags
#   base-v1               tiny distro-like base, one layer
#   base-v2               base-v1 + one update layer
#   base-v2-fresh         same final tree as base-v2, rebuilt from scratch as one layer
#   app                   two app layers on top of base-v1
#   app-rebuilt-v2        the same two app layers replayed on base-v2
#   app-rebuilt-v2-fresh  the same two app layers replayed on base-v2-fresh
# See testdata/README.md. Must run as root (file ownership uid 1000, umoci
# unpack/repack without --rootless).
set -euo pipefail

umask 022
export LC_ALL=C TZ=UTC
# Fixed time for every file's mtime and for every config/history timestamp.
export SOURCE_DATE_EPOCH=1700000000
T=$SOURCE_DATE_EPOCH
T_BASE1=2023-11-14T22:13:20Z # = @1700000000
T_BASE2=2023-11-16T02:00:00Z
T_APP=2023-11-17T08:00:00Z

die() {
	echo "make-testdata: $*" >&2
	exit 1
}

for tool in umoci skopeo; do
	command -v "$tool" >/dev/null 2>&1 || die "needs '$tool' on PATH (apt-get install $tool)"
done
[ "$(id -u)" = 0 ] || die "must run as root (the images contain files owned by uid 1000)"

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$repo_root/testdata/images}

if [ -e "$out" ]; then
	# Only ever replace an OCI layout (or an empty dir), never anything else.
	if [ -f "$out/oci-layout" ] || [ -z "$(ls -A "$out")" ]; then
		:
	else
		die "$out exists and is not an OCI layout; refusing to overwrite it"
	fi
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ocipatch-testdata.XXXXXX")
trap 'rm -rf "$work"' EXIT
L=$work/layout

# ---------------------------------------------------------------------------
# helpers

# Set every mtime (and atime) below a rootfs to the fixed time, symlinks too.
fix_times() {
	find "$1" -depth -exec touch -h -d "@$T" {} +
}

# Print N lines of deterministic filler, tagged with a label.
filler() {
	local label=$1 n=$2 i
	for ((i = 1; i <= n; i++)); do
		printf '%s %05d %s\n' "$label" "$i" "0123456789abcdefghijklmnopqrstuvwxyz"
	done
}

repack() { # repack IMAGE_TAG BUNDLE CREATED CREATED_BY
	fix_times "$2/rootfs"
	umoci repack --refresh-bundle --image "$L:$1" \
		--history.created "$3" --history.created_by "$4" \
		--history.author "ocipatch testdata" "$2"
}

manifest_digest() { # manifest_digest TAG
	skopeo inspect --format '{{.Digest}}' "oci:$L:$1"
}

# ---------------------------------------------------------------------------
# rootfs contents

base_v1_tree() { # base_v1_tree ROOTFS
	local r=$1
	mkdir -p "$r"/{bin,sbin,etc/ssl,usr/bin,usr/lib,usr/share/doc/foo,var/lib,tmp,root}
	chmod 1777 "$r/tmp"
	chmod 0700 "$r/root"
	printf 'NAME="Example Base"\nID=example\nVERSION=1\n' >"$r/etc/os-release"
	printf '# openssl config of the example base\n[ req ]\ndefault_bits = 2048\n' >"$r/etc/ssl/openssl.cnf"
	{
		printf '\177ELF\002\001\001\000'
		filler "libfoo-v1" 80
	} >"$r/usr/lib/libfoo.so.1"
	chmod 0755 "$r/usr/lib/libfoo.so.1"
	ln -s libfoo.so.1 "$r/usr/lib/libfoo.so"
	printf '#!/bin/sh\necho "tool from base"\n' >"$r/usr/bin/tool"
	chmod 0755 "$r/usr/bin/tool"
	printf 'foo documentation, removed in base v2\n' >"$r/usr/share/doc/foo/README"
}

base_v2_update() { # base_v2_update ROOTFS  (the changes of base v2 over v1)
	local r=$1
	printf 'NAME="Example Base"\nID=example\nVERSION=2\n' >"$r/etc/os-release"
	# patch libfoo in place: same name, new bytes
	{
		printf '\177ELF\002\001\001\000'
		filler "libfoo-v1" 40
		filler "libfoo-v2-patched" 44
	} >"$r/usr/lib/libfoo.so.1"
	mkdir -p "$r/etc/ssl/certs"
	printf -- '-----BEGIN CERTIFICATE-----\nTUlJQmV4YW1wbGUtbmV3LWNlcnQ=\n-----END CERTIFICATE-----\n' >"$r/etc/ssl/certs/new.pem"
	rm "$r/usr/share/doc/foo/README"
}

app_layer1() { # app_layer1 ROOTFS  (first app layer: the application)
	local r=$1
	mkdir -p "$r/app/bin"
	{
		printf '#!/bin/sh\n# demo server\nexec sleep infinity\n'
		filler "server-payload" 60
	} >"$r/app/bin/server"
	chmod 0755 "$r/app/bin/server"
	ln "$r/app/bin/server" "$r/app/bin/server-hard"
	ln -s bin "$r/app/current"
	printf 'listen: 8080\nlog_level: info\nenv: prod\n' >"$r/app/config.yaml"
}

app_layer2() { # app_layer2 ROOTFS  (second app layer: hardening)
	local r=$1
	rm "$r/etc/ssl/openssl.cnf" # a whiteout of a base file
	printf 'not-a-real-secret\n' >"$r/app/secret.key"
	chown 1000:1000 "$r/app/secret.key"
	chmod 0600 "$r/app/secret.key"
}

# ---------------------------------------------------------------------------
# images

umoci init --layout "$L"

# base-v1: one layer
umoci new --image "$L:base-v1"
umoci unpack --image "$L:base-v1" "$work/b1"
base_v1_tree "$work/b1/rootfs"
repack base-v1 "$work/b1" "$T_BASE1" "ADD base-v1 rootfs"
umoci config --image "$L:base-v1" \
	--created "$T_BASE1" --author "ocipatch testdata" \
	--architecture amd64 --os linux \
	--config.env 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--config.env BASE_VERSION=1 --config.env JAVA_HOME=/opt/jdk1 \
	--config.label org.example.base.version=1 \
	--config.cmd /bin/sh \
	--history.created "$T_BASE1" --history.created_by "CONFIG base-v1" \
	--history.author "ocipatch testdata"
rm -rf "$work/b1"

# base-v2: base-v1 + update layer
umoci tag --image "$L:base-v1" base-v2
umoci unpack --image "$L:base-v2" "$work/b2"
base_v2_update "$work/b2/rootfs"
repack base-v2 "$work/b2" "$T_BASE2" "RUN update base to v2"
umoci config --image "$L:base-v2" --created "$T_BASE2" \
	--config.env BASE_VERSION=2 --config.env JAVA_HOME=/opt/jdk2 \
	--config.label org.example.base.version=2 \
	--history.created "$T_BASE2" --history.created_by "CONFIG base-v2" \
	--history.author "ocipatch testdata"
rm -rf "$work/b2"

# base-v2-fresh: base-v2's final tree, from scratch, one layer
umoci new --image "$L:base-v2-fresh"
umoci unpack --image "$L:base-v2-fresh" "$work/b2f"
base_v1_tree "$work/b2f/rootfs"
base_v2_update "$work/b2f/rootfs"
repack base-v2-fresh "$work/b2f" "$T_BASE2" "ADD base-v2 rootfs (rebuilt from scratch)"
umoci config --image "$L:base-v2-fresh" \
	--created "$T_BASE2" --author "ocipatch testdata" \
	--architecture amd64 --os linux \
	--config.env 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--config.env BASE_VERSION=2 --config.env JAVA_HOME=/opt/jdk2 \
	--config.label org.example.base.version=2 \
	--config.cmd /bin/sh \
	--history.created "$T_BASE2" --history.created_by "CONFIG base-v2-fresh" \
	--history.author "ocipatch testdata"
rm -rf "$work/b2f"

# app, app-rebuilt-v2, app-rebuilt-v2-fresh: the same two app layers and the
# same config changes, on three different bases.
build_app() { # build_app TAG BASE_TAG BASE_NAME
	local tag=$1 base=$2 base_name=$3 base_digest
	base_digest=$(manifest_digest "$base")
	umoci tag --image "$L:$base" "$tag"
	umoci unpack --image "$L:$tag" "$work/$tag"
	app_layer1 "$work/$tag/rootfs"
	repack "$tag" "$work/$tag" "$T_APP" "COPY app /app"
	app_layer2 "$work/$tag/rootfs"
	repack "$tag" "$work/$tag" "$T_APP" "RUN harden app"
	umoci config --image "$L:$tag" --created "$T_APP" \
		--config.env APP_ENV=prod \
		--config.label org.example.app=demo \
		--config.cmd /app/bin/server \
		--manifest.annotation "org.opencontainers.image.base.digest=$base_digest" \
		--manifest.annotation "org.opencontainers.image.base.name=$base_name" \
		--history.created "$T_APP" --history.created_by "CONFIG app" \
		--history.author "ocipatch testdata"
	rm -rf "${work:?}/$tag"
}
build_app app base-v1 "example.com/ocipatch/base:v1"
build_app app-rebuilt-v2 base-v2 "example.com/ocipatch/base:v2"
build_app app-rebuilt-v2-fresh base-v2-fresh "example.com/ocipatch/base:v2-fresh"

umoci gc --layout "$L"

rm -rf "$out"
mkdir -p "$(dirname "$out")"
cp -a "$L" "$out"

echo "make-testdata: wrote $out"
for tag in base-v1 base-v2 base-v2-fresh app app-rebuilt-v2 app-rebuilt-v2-fresh; do
	printf '  %-22s %s\n' "$tag" "$(skopeo inspect --format '{{.Digest}}' "oci:$out:$tag")"
done
