#!/usr/bin/env bash
# Build a small Alpine-style image set for the package-database interop tests, with umoci, whose
# `lib/apk/db/installed` and `etc/apk/world` are written the way apk-tools 2.14 (Alpine 3.18 and
# later) writes them. No apk binary is involved: none can be installed on this Debian machine
# (no Debian package, no PyPI reader), so the files are generated here from the rules below,
# read in apk-tools' own sources, and the tests judge a rebase by comparing its reconciled files
# byte-for-byte with this script's rebuild.
#
# Usage: scripts/make-apk-fixture.sh OUT_LAYOUT        (run as root; takes about a second)
#
# Tags of the ONE layout written:
#   base-v1   musl, busybox, zlib, libcrypto3, libssl3, apk-tools, alpine-baselayout-data
#   base-v2   base-v1 + one layer: `apk upgrade` of libcrypto3/libssl3 3.1.4-r2 -> 3.1.4-r5 and
#             busybox 1.36.1-r15 -> 1.36.1-r16 (files replaced, database rewritten)
#   app       base-v1 + one layer: `apk add jq` (jq + its dependency oniguruma)
#   rebuilt   base-v2 + the same `apk add jq`
#
# What apk-tools 2.14 does (src/database.c, src/package.c at tag v2.14.9):
# - `lib/apk/db/installed` is rewritten whole on every commit (apk_db_write_config ->
#   apk_db_write_fdb, through a temp file `installed.new` renamed over it).
# - Package order: apk_db_sorted_installed_packages() sorts by name with
#   apk_name_cmp_display (strcasecmp, then strcmp), then by version. So an upgraded package
#   keeps its place. (apk-tools <= 2.12, i.e. Alpine <= 3.17, walked installed.packages in
#   install order instead, and an upgrade, being a new apk_installed_package, was re-appended at
#   the end; this fixture follows 2.14.)
# - One block per package (apk_pkg_write_index_header, then the FDB part of apk_db_write_fdb):
#     C: package checksum ("Q1" + base64 of a SHA-1)    P: name    V: version    A: arch
#     S: package size    I: installed size    T: description    U: url    L: license
#     o: origin    m: maintainer    t: build time (unix seconds)    c: commit    k: provider prio
#     D: depends    p: provides    i: install_if  (space-separated; each line only when non-empty)
#     r: replaces    q: replaces priority    s: repository tag    f: broken flags
#     then per owned directory  F: path [M:uid:gid:mode (octal) when not root:root 0755]
#     and per file in it        R: name [a:uid:gid:mode when not root:root 0644]  Z: Q1<sha1 b64>
#   Every line ends with "\n"; each block is followed by one empty line, so the file ends with
#   "\n\n". Directory and file order is the order they were installed (hlist appended at the
#   tail), which here is the order listed below.
# - `etc/apk/world` (apk_db_write_config -> apk_deps_write with separator "\n", then one "\n"):
#   one dependency per line, newline-terminated, sorted by apk_solver_solve()'s qsort with
#   cmp_pkgname (apk_name_cmp_display) before every commit. So `apk add jq` inserts jq in order.
#
# Reproducible: fixed times and contents; two runs give identical layouts.
set -euo pipefail

umask 022
export LC_ALL=C TZ=UTC
export SOURCE_DATE_EPOCH=1700000000
T=$SOURCE_DATE_EPOCH
T_BASE1=2023-11-14T22:13:20Z # = @1700000000
T_BASE2=2023-11-16T02:00:00Z
T_APP=2023-11-17T08:00:00Z
T_REBUILT=2023-11-18T08:00:00Z
ARCH=x86_64

die() {
	echo "make-apk-fixture: $*" >&2
	exit 1
}

[ $# = 1 ] || die "usage: $0 OUT_LAYOUT"
out=$1
[ "$(id -u)" = 0 ] || die "must run as root (umoci without --rootless, files owned by other uids)"
for tool in umoci skopeo sha1sum basenc base64; do
	command -v "$tool" >/dev/null 2>&1 || die "needs '$tool' on PATH"
done
if [ -e "$out" ] && ! { [ -f "$out/oci-layout" ] || [ -z "$(ls -A "$out")" ]; }; then
	die "$out exists and is not an OCI layout; refusing to overwrite it"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ocipatch-apk-fixture.XXXXXX")
trap 'rm -rf "$work"' EXIT
L=$work/layout

# "Q1" + base64(SHA-1 of stdin): apk's checksum notation (apk_blob_push_csum).
q1() {
	printf 'Q1%s' "$(sha1sum | cut -c1-40 | tr a-f A-F | basenc --base16 -d | base64)"
}

# ---------------------------------------------------------------------------
# the packages: metadata and files per (name, version)

# Print the index header fields of NAME VERSION (without C:, computed from them).
meta() { # meta NAME VERSION
	local n=$1 v=$2
	case $n in
	alpine-baselayout-data)
		printf 'T:Alpine base dir structure and init scripts\nU:https://git.alpinelinux.org/cgit/aports/tree/main/alpine-baselayout\nL:GPL-2.0-only\no:alpine-baselayout\nm:Natanael Copa <ncopa@alpinelinux.org>\nt:1699000000\nc:3f9ad1a8b7e5c0b3c2d1e0f9a8b7c6d5e4f3a2b1\n'
		;;
	musl)
		printf 'T:the musl c library (libc) implementation\nU:https://musl.libc.org/\nL:MIT\no:musl\nm:Timo Teräs <timo.teras@iki.fi>\nt:1699000100\nc:a1b2c3d4e5f60718293a4b5c6d7e8f9012345678\np:so:libc.musl-x86_64.so.1=1\n'
		;;
	busybox)
		printf 'T:Size optimized toolbox of many common UNIX utilities\nU:https://busybox.net/\nL:GPL-2.0-only\no:busybox\nm:Sören Tempel <soeren+alpine@soeren-tempel.net>\n'
		case $v in
		1.36.1-r15) printf 't:1699000200\nc:b1c2d3e4f5061728394a5b6c7d8e9f0123456789\n' ;;
		1.36.1-r16) printf 't:1700100200\nc:c1d2e3f405162738495a6b7c8d9e0f1234567890\n' ;;
		*) die "no busybox $v" ;;
		esac
		printf 'D:so:libc.musl-x86_64.so.1\np:/bin/sh cmd:busybox=%s cmd:sh=%s\n' "$v" "$v"
		;;
	zlib)
		printf 'T:A compression/decompression Library\nU:https://zlib.net/\nL:Zlib\no:zlib\nm:Natanael Copa <ncopa@alpinelinux.org>\nt:1699000300\nc:d1e2f30415263748596a7b8c9d0e1f2345678901\nD:so:libc.musl-x86_64.so.1\np:so:libz.so.1=1.3\n'
		;;
	libcrypto3 | libssl3)
		if [ "$n" = libcrypto3 ]; then
			printf 'T:Crypto library from openssl\n'
		else
			printf 'T:SSL shared libraries\n'
		fi
		printf 'U:https://www.openssl.org/\nL:Apache-2.0\no:openssl\nm:Ariadne Conill <ariadne@dereferenced.org>\n'
		case $v in
		3.1.4-r2) printf 't:1699000400\nc:e1f2031425364758697a8b9c0d1e2f3456789012\n' ;;
		3.1.4-r5) printf 't:1700100400\nc:f102132435465768798a9bac0d1e2f4567890123\n' ;;
		*) die "no $n $v" ;;
		esac
		if [ "$n" = libcrypto3 ]; then
			printf 'D:so:libc.musl-x86_64.so.1\np:so:libcrypto.so.3=3\n'
		else
			printf 'D:so:libc.musl-x86_64.so.1 so:libcrypto.so.3\np:so:libssl.so.3=3\n'
		fi
		;;
	apk-tools)
		printf 'T:Alpine Package Keeper - package manager for alpine\nU:https://gitlab.alpinelinux.org/alpine/apk-tools\nL:GPL-2.0-only\no:apk-tools\nm:Natanael Copa <ncopa@alpinelinux.org>\nt:1699000500\nc:0a1b2c3d4e5f60718293a4b5c6d7e8f901234567\nD:musl>=1.2 so:libc.musl-x86_64.so.1 so:libcrypto.so.3 so:libssl.so.3 so:libz.so.1\np:so:libapk.so.2.14.0=2.14.0 cmd:apk=%s\n' "$v"
		;;
	oniguruma)
		printf 'T:a regular expressions library\nU:https://github.com/kkos/oniguruma\nL:BSD-2-Clause\no:oniguruma\nm:Natanael Copa <ncopa@alpinelinux.org>\nt:1699000600\nc:1b2c3d4e5f60718293a4b5c6d7e8f90123456789\nD:so:libc.musl-x86_64.so.1\np:so:libonig.so.5=5.4.0\n'
		;;
	jq)
		printf 'T:A lightweight and flexible command-line JSON processor\nU:https://jqlang.github.io/jq/\nL:MIT\no:jq\nm:Natanael Copa <ncopa@alpinelinux.org>\nt:1699000700\nc:2c3d4e5f60718293a4b5c6d7e8f9012345678901\nD:so:libc.musl-x86_64.so.1 so:libonig.so.5\np:cmd:jq=%s\n' "$v"
		;;
	*) die "unknown package $n" ;;
	esac
}

# Print the files of NAME VERSION: "DIR NAME UID GID MODE" (DIR "-" for the top level).
files() { # files NAME VERSION
	case $1 in
	alpine-baselayout-data)
		printf 'etc group 0 0 0644\netc hosts 0 0 0644\netc passwd 0 0 0644\netc shadow 0 42 0640\netc/apk - 0 0 0755\n'
		;;
	musl) printf 'lib ld-musl-x86_64.so.1 0 0 0755\n' ;;
	busybox) printf 'bin busybox 0 0 0755\netc securetty 0 0 0644\n' ;;
	zlib) printf 'lib libz.so.1.3 0 0 0755\n' ;;
	libcrypto3) printf 'usr/lib libcrypto.so.3 0 0 0755\nusr/lib/engines-3 afalg.so 0 0 0755\n' ;;
	libssl3) printf 'usr/lib libssl.so.3 0 0 0755\n' ;;
	apk-tools) printf 'sbin apk 0 0 0755\nlib libapk.so.2.14.0 0 0 0755\n' ;;
	oniguruma) printf 'usr/lib libonig.so.5.4.0 0 0 0755\n' ;;
	jq) printf 'usr/bin jq 0 0 0755\n' ;;
	*) die "unknown package $1" ;;
	esac
}

# Deterministic contents of one file of a package version.
content() { # content NAME VERSION PATH
	local i
	for ((i = 1; i <= 24; i++)); do
		printf '%s %s %s %04d 0123456789abcdefghijklmnopqrstuvwxyz\n' "$1" "$2" "$3" "$i"
	done
}

# Install NAME=VERSION's files into ROOTFS (replacing an older version's).
install_files() { # install_files ROOTFS NAME VERSION
	local r=$1 n=$2 v=$3 dir name uid gid mode
	while read -r dir name uid gid mode; do
		if [ "$name" = - ]; then
			mkdir -p "$r/$dir"
			continue
		fi
		mkdir -p "$r/$dir"
		content "$n" "$v" "$dir/$name" >"$r/$dir/$name"
		chown "$uid:$gid" "$r/$dir/$name"
		chmod "$mode" "$r/$dir/$name"
	done < <(files "$n" "$v")
}

# One package's block of lib/apk/db/installed, blank line included (apk_db_write_fdb).
db_block() { # db_block NAME VERSION
	local n=$1 v=$2 dir name uid gid mode last_dir="" size=0
	while read -r dir name uid gid mode; do
		[ "$name" = - ] || size=$((size + $(content "$n" "$v" "$dir/$name" | wc -c)))
	done < <(files "$n" "$v")
	printf 'C:%s\n' "$(printf 'control %s-%s\n' "$n" "$v" | q1)"
	printf 'P:%s\nV:%s\nA:%s\nS:%d\nI:%d\n' "$n" "$v" "$ARCH" $((size / 3 + 1024)) $(((size + 4095) / 4096 * 4096))
	meta "$n" "$v"
	while read -r dir name uid gid mode; do
		if [ "$dir" != "$last_dir" ]; then
			printf 'F:%s\n' "$dir"
			last_dir=$dir
		fi
		[ "$name" != - ] || continue
		printf 'R:%s\n' "$name"
		if [ "$uid:$gid:$mode" != 0:0:0644 ]; then
			printf 'a:%s:%s:%o\n' "$uid" "$gid" "$((8#$mode))"
		fi
		printf 'Z:%s\n' "$(content "$n" "$v" "$dir/$name" | q1)"
	done < <(files "$n" "$v")
	printf '\n'
}

# Write ROOTFS's lib/apk/db/installed and etc/apk/world for the packages NAME=VERSION... and
# the world WORLD (space separated), as apk 2.14 does after a commit. Sorted by name: every name
# here is lowercase ASCII, where C-locale sort is exactly strcasecmp-then-strcmp.
write_db() { # write_db ROOTFS "WORLD" NAME=VERSION...
	local r=$1 world=$2 nv
	shift 2
	mkdir -p "$r/lib/apk/db" "$r/etc/apk"
	for nv in $(printf '%s\n' "$@" | sort -t= -k1,1); do
		db_block "${nv%%=*}" "${nv#*=}"
	done >"$r/lib/apk/db/installed"
	printf '%s\n' $world | sort >"$r/etc/apk/world"
}

# ---------------------------------------------------------------------------
# umoci plumbing (as in make-testdata.sh)

fix_times() {
	find "$1" -depth -exec touch -h -d "@$T" {} +
}

repack() { # repack TAG BUNDLE CREATED CREATED_BY
	fix_times "$2/rootfs"
	umoci repack --refresh-bundle --image "$L:$1" \
		--history.created "$3" --history.created_by "$4" \
		--history.author "ocipatch fixtures" "$2"
}

BASE_V1=(alpine-baselayout-data=3.4.3-r2 musl=1.2.4_git20230717-r4 busybox=1.36.1-r15 zlib=1.3-r2
	libcrypto3=3.1.4-r2 libssl3=3.1.4-r2 apk-tools=2.14.0-r5)
BASE_V2=(alpine-baselayout-data=3.4.3-r2 musl=1.2.4_git20230717-r4 busybox=1.36.1-r16 zlib=1.3-r2
	libcrypto3=3.1.4-r5 libssl3=3.1.4-r5 apk-tools=2.14.0-r5)
BASE_WORLD="alpine-baselayout-data apk-tools busybox"
APP_ADDS=(oniguruma=6.9.9-r0 jq=1.7.1-r0)
APP_WORLD="$BASE_WORLD jq"

umoci init --layout "$L"

# base-v1: the packages, in dependency order
umoci new --image "$L:base-v1"
umoci unpack --image "$L:base-v1" "$work/b1"
r=$work/b1/rootfs
mkdir -p "$r"/{bin,sbin,etc,lib,usr/bin,usr/lib,var,tmp,root}
chmod 1777 "$r/tmp"
chmod 0700 "$r/root"
printf '3.19.0\n' >"$r/etc/alpine-release"
mkdir -p "$r/etc/apk"
printf 'https://dl-cdn.alpinelinux.org/alpine/v3.19/main\n' >"$r/etc/apk/repositories"
for nv in musl=1.2.4_git20230717-r4 alpine-baselayout-data=3.4.3-r2 busybox=1.36.1-r15 zlib=1.3-r2 \
	libcrypto3=3.1.4-r2 libssl3=3.1.4-r2 apk-tools=2.14.0-r5; do
	install_files "$r" "${nv%%=*}" "${nv#*=}"
done
mkdir -p "$r/lib/apk/db"
: >"$r/lib/apk/db/lock"
write_db "$r" "$BASE_WORLD" "${BASE_V1[@]}"
repack base-v1 "$work/b1" "$T_BASE1" "ADD alpine-minirootfs-3.19.0-x86_64.tar.gz /"
umoci config --image "$L:base-v1" \
	--created "$T_BASE1" --author "ocipatch fixtures" \
	--architecture amd64 --os linux \
	--config.env 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--config.cmd /bin/sh \
	--history.created "$T_BASE1" --history.created_by 'CMD ["/bin/sh"]' \
	--history.author "ocipatch fixtures"
rm -rf "$work/b1"

# base-v2: apk upgrade (new files in place, database rewritten: upgraded packages keep their place)
umoci tag --image "$L:base-v1" base-v2
umoci unpack --image "$L:base-v2" "$work/b2"
r=$work/b2/rootfs
for nv in busybox=1.36.1-r16 libcrypto3=3.1.4-r5 libssl3=3.1.4-r5; do
	install_files "$r" "${nv%%=*}" "${nv#*=}"
done
printf '3.19.1\n' >"$r/etc/alpine-release"
write_db "$r" "$BASE_WORLD" "${BASE_V2[@]}"
repack base-v2 "$work/b2" "$T_BASE2" "RUN apk upgrade --no-cache"
umoci config --image "$L:base-v2" --created "$T_BASE2" \
	--history.created "$T_BASE2" --history.created_by 'CMD ["/bin/sh"]' \
	--history.author "ocipatch fixtures"
rm -rf "$work/b2"

# app and rebuilt: `apk add jq` on each base
build_app() { # build_app TAG BASE_TAG CREATED BASE_PACKAGES...
	local tag=$1 base=$2 created=$3 nv
	shift 3
	umoci tag --image "$L:$base" "$tag"
	umoci unpack --image "$L:$tag" "$work/$tag"
	r=$work/$tag/rootfs
	for nv in "${APP_ADDS[@]}"; do
		install_files "$r" "${nv%%=*}" "${nv#*=}"
	done
	write_db "$r" "$APP_WORLD" "$@" "${APP_ADDS[@]}"
	repack "$tag" "$work/$tag" "$created" "RUN /bin/sh -c apk add --no-cache jq"
	umoci config --image "$L:$tag" --created "$created" \
		--config.entrypoint jq --config.cmd --help \
		--history.created "$created" --history.created_by 'ENTRYPOINT ["jq"]' \
		--history.author "ocipatch fixtures"
	rm -rf "${work:?}/$tag"
}
build_app app base-v1 "$T_APP" "${BASE_V1[@]}"
build_app rebuilt base-v2 "$T_REBUILT" "${BASE_V2[@]}"

umoci gc --layout "$L"

rm -rf "$out"
mkdir -p "$(dirname "$out")"
cp -a "$L" "$out"
echo "make-apk-fixture: wrote $out" >&2
for tag in base-v1 base-v2 app rebuilt; do
	printf '  %-8s %s\n' "$tag" "$(skopeo inspect --format '{{.Digest}}' "oci:$out:$tag")" >&2
done
