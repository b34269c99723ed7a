#!/usr/bin/env bash
# Build REAL Debian images for judging a rebase's safety: what the swap does to the app's
# libraries, loader, users and apt sources, as dpkg, apt and ld.so see it. Made the way users make
# images (debootstrap, apt-get, useradd, ldconfig in a chroot), layers cut with umoci; nothing a
# judge reads is written by hand.
#
# Usage: scripts/make-verdict-fixture.sh OUT_LAYOUT        (run as root)
#
# Starts from scripts/make-debian-fixture.sh (its tags base-v1, base-v2, app, rebuilt come along,
# from its own cache) and adds, in the same OCI layout:
#   app-tidy      base-v1 + one layer made the way real Dockerfiles do it, one RUN:
#                   apt-get update && apt-get install -y --no-install-recommends python3-minimal
#                   && printf '%s\n' 'deb MIRROR bookworm main' … > /etc/apt/sources.list
#                      (the SAME bytes as the bases' file: only its mtime changes, so the layer
#                      carries a copy)
#                   && useradd --system --create-home app   (etc/passwd, group, shadow, gshadow)
#                   && ldconfig                             (etc/ld.so.cache)
#                   && rm -rf /var/lib/apt/lists/*
#                 Cmd: python3 -c 'import ssl, zlib, hashlib; ...' (loads _ssl/_hashlib, i.e.
#                 libssl.so.3 and libcrypto.so.3 from the app's layer, and the base's libz.so.1).
#   rebuilt-tidy  base-v2 + the same RUN with the app's package versions locked (as `rebuilt`
#                 is made): the reference for `rebase app-tidy --onto base-v2`.
#   trixie        debootstrap --variant=minbase trixie (same hygiene as base-v1): the next
#                 release, whose minbase has OpenSSL (libssl3t64, apt 3) and no GnuTLS.
#   app-gnutls    base-v1 + apt-get install -y --no-install-recommends wget (adds libpsl5):
#                 Debian's wget links libgnutls.so.30 and libidn2.so.0, which bookworm's minbase
#                 has (for apt 2.6) and trixie's does not. Cmd: wget --version.
#   app-trixie    trixie + apt-get install -y --no-install-recommends tree: libc6 is its only
#                 dependency and /usr/bin/tree needs GLIBC_2.38 (__isoc23_strtol), newer than
#                 bookworm's glibc 2.36. Cmd: tree --version.
# Every apt RUN ends with the lists removed; images stay minbase-sized.
#
# The script checks what the cases rely on and fails when the archive stops providing it (the
# RUN rewrote sources.list with the same bytes; rebuilt-tidy added exactly app-tidy's packages;
# wget needs a soname that base-v1 has and trixie lacks; tree needs a GLIBC version bookworm's
# libc.so.6 does not define) and writes what it found to the layout's ocipatch-fixture.txt.
#
# Times: base layers have every mtime at @1700000000 (as make-debian-fixture.sh). In the layers
# made here, every path the RUN wrote (new files, rewritten files, changed directories) gets the
# layer's created time and the rest keeps @1700000000, so a rewrite lands in the layer as it
# does in a real build. SOURCE_DATE_EPOCH=1700000000 is passed into the chroot (shadow's
# useradd takes the password-change day from it). created/history times are fixed.
#
# Mirror: the host's apt source for `bookworm` (override: OCIPATCH_DEBIAN_MIRROR); trixie comes
# from the same archive. The chroot's only sources are that mirror (and, in base-v2, the
# security mirror that make-debian-fixture.sh uses).
#
# Cache: like make-debian-fixture.sh, under
#   ${OCIPATCH_FIXTURE_CACHE:-/var/cache/ocipatch-fixtures}/verdict-<sha256 of this script,
#   scripts/make-debian-fixture.sh and scripts/lib/chroot-fixture.sh>/
# built once under a lock, in a temp dir renamed into place, then copied to OUT_LAYOUT.
set -euo pipefail

umask 022
export LC_ALL=C TZ=UTC
export SOURCE_DATE_EPOCH=1700000000
T=$SOURCE_DATE_EPOCH
T_APP_TIDY=2023-11-19T08:00:00Z
T_REBUILT_TIDY=2023-11-20T08:00:00Z
T_TRIXIE=2023-11-21T08:00:00Z
T_APP_GNUTLS=2023-11-22T08:00:00Z
T_APP_TRIXIE=2023-11-23T08:00:00Z
SUITE=bookworm
NEXT_SUITE=trixie
TIDY_PACKAGES=(python3-minimal)
GNUTLS_PACKAGES=(wget)
GNUTLS_BINARY=/usr/bin/wget
TRIXIE_PACKAGES=(tree)
TRIXIE_BINARY=/usr/bin/tree
TRIXIE_GLIBC=GLIBC_2.38
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CHROOT_ENV=("SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH")

FIXTURE_NAME=make-verdict-fixture
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/chroot-fixture.sh
. "$here/lib/chroot-fixture.sh"

[ $# = 1 ] || die "usage: $0 OUT_LAYOUT"
out=$1
fixture_preflight "$out" debootstrap umoci skopeo chroot mount umount flock dpkg-query sha256sum \
	readelf ldconfig jq

TAGS="base-v1 base-v2 app rebuilt app-tidy rebuilt-tidy trixie app-gnutls app-trixie"
fixture_lock verdict "$out" "$TAGS" "$here/make-verdict-fixture.sh" "$here/make-debian-fixture.sh" \
	"$here/lib/chroot-fixture.sh"

MIRROR=${OCIPATCH_DEBIAN_MIRROR:-$(host_mirror_for "$SUITE" | head -n1)}
[ -n "$MIRROR" ] || die "no apt source for suite '$SUITE' on this host; set OCIPATCH_DEBIAN_MIRROR"
MIRROR=${MIRROR%/}
ARCH=$(dpkg --print-architecture)
say "mirror $MIRROR, arch $ARCH"

fixture_begin verdict

# `soname path` of every library in ROOTFS's ld.so.cache (read by the host's ldconfig), sorted.
sonames() { # sonames ROOTFS
	ldconfig -C "$1/etc/ld.so.cache" -p | awk 'NR > 1 && $NF ~ /^\// { print $1, $NF }' | sort -u
}

# layer_run TAG FROM RUN: unpack FROM as TAG and run RUN (sh -c) in it. With LOCK_PKGS set (a
# file of `Package Architecture Version`), those versions are pinned for the RUN only. Writes
# $work/TAG.{before,}.pkgs, TAG.added.pkgs, TAG.before.sonames; leaves the bundle for checks.
layer_run() {
	local tag=$1 from=$2 run=$3 r pin
	umoci tag --image "$L:$from" "$tag"
	umoci unpack --image "$L:$tag" "$work/$tag.bundle"
	r=$work/$tag.bundle/rootfs
	installed "$r" >"$work/$tag.before.pkgs"
	sonames "$r" >"$work/$tag.before.sonames"
	pin=$r/etc/apt/preferences.d/ocipatch-fixture-app-lock
	if [ -n "${LOCK_PKGS:-}" ]; then
		while read -r pkg _arch ver; do
			printf 'Package: %s\nPin: version %s\nPin-Priority: 1001\n\n' "$pkg" "$ver"
		done <"$LOCK_PKGS" >"$pin"
		say "$tag: $run (versions locked to $(basename "$LOCK_PKGS" .added.pkgs)'s)"
	else
		say "$tag: $run"
	fi
	in_chroot "$r" sh -c "$run"
	rm -f "$pin"
	apt_tidy "$r"
	installed "$r" >"$work/$tag.pkgs"
	comm -13 "$work/$tag.before.pkgs" "$work/$tag.pkgs" >"$work/$tag.added.pkgs"
	[ -s "$work/$tag.added.pkgs" ] || die "$tag: the RUN installed no package"
	if comm -23 "$work/$tag.before.pkgs" "$work/$tag.pkgs" | grep -q .; then
		die "$tag: the RUN changed packages of $from"
	fi
}

# layer_cut TAG CREATED RUN CMD...: repack TAG's bundle as one layer, Cmd CMD.
layer_cut() {
	local tag=$1 created=$2 run=$3 cmd=() a
	shift 3
	for a in "$@"; do
		cmd+=(--config.cmd "$a")
	done
	repack "$tag" "$work/$tag.bundle" "$created" "RUN /bin/sh -c $run" \
		"$(date -u -d "$created" +%s)"
	umoci config --image "$L:$tag" --created "$created" "${cmd[@]}" \
		--history.created "$created" --history.created_by "CMD $(printf '%s\n' "$@" | jq -Rnc '[inputs]')" \
		--history.author "ocipatch fixtures"
	rm -rf --one-file-system "$work/$tag.bundle"
}

# ---------------------------------------------------------------------------
# base-v1, base-v2, app, rebuilt: scripts/make-debian-fixture.sh (from its cache when built)

say "base-v1, base-v2, app, rebuilt from scripts/make-debian-fixture.sh"
bash "$here/make-debian-fixture.sh" "$L"

# ---------------------------------------------------------------------------
# app-tidy: base-v1 + the tidy RUN; rebuilt-tidy: base-v2 + the same RUN, versions locked

umoci unpack --image "$L:base-v1" "$work/b1"
cp "$work/b1/rootfs/etc/apt/sources.list" "$work/base-v1.sources.list"
rm -rf --one-file-system "$work/b1"
mapfile -t src_lines <"$work/base-v1.sources.list"
re="^deb [^ ']+ $SUITE(-updates|-security)? main\$"
for l in "${src_lines[@]}"; do
	[[ $l =~ $re ]] || die "base-v1's sources.list has an unexpected line: $l"
done

# Writes the same lines back (as a Dockerfile that sets its own sources does).
TIDY_RUN="apt-get update -q && apt-get install -y -q --no-install-recommends ${TIDY_PACKAGES[*]}"
TIDY_RUN+=" && printf '%s\\n'$(printf " '%s'" "${src_lines[@]}") > /etc/apt/sources.list"
TIDY_RUN+=" && useradd --system --create-home app && ldconfig && rm -rf /var/lib/apt/lists/*"
TIDY_CMD=(python3 -c 'import ssl, zlib, hashlib; print("ok", ssl.OPENSSL_VERSION, zlib.ZLIB_RUNTIME_VERSION, hashlib.sha256(b"").hexdigest()[:12])')

layer_run app-tidy base-v1 "$TIDY_RUN"
r=$work/app-tidy.bundle/rootfs
cmp -s "$work/base-v1.sources.list" "$r/etc/apt/sources.list" ||
	die "app-tidy: the RUN did not rewrite sources.list with the same bytes"
grep -q '^app:' "$r/etc/passwd" || die "app-tidy: useradd added no user 'app'"
grep '^app:' "$r/etc/passwd" >"$work/app-tidy.user"
layer_cut app-tidy "$T_APP_TIDY" "$TIDY_RUN" "${TIDY_CMD[@]}"

LOCK_PKGS=$work/app-tidy.added.pkgs layer_run rebuilt-tidy base-v2 "$TIDY_RUN"
cmp -s "$work/app-tidy.added.pkgs" "$work/rebuilt-tidy.added.pkgs" ||
	die "rebuilt-tidy installed other packages than app-tidy: $(diff "$work/app-tidy.added.pkgs" "$work/rebuilt-tidy.added.pkgs" | tr '\n' ' ')"
grep '^app:' "$work/rebuilt-tidy.bundle/rootfs/etc/passwd" | cmp -s - "$work/app-tidy.user" ||
	die "rebuilt-tidy's user 'app' differs from app-tidy's"
layer_cut rebuilt-tidy "$T_REBUILT_TIDY" "$TIDY_RUN" "${TIDY_CMD[@]}"

# ---------------------------------------------------------------------------
# trixie: debootstrap --variant=minbase trixie; app-trixie: + tree

debootstrap_base trixie "$NEXT_SUITE" "$MIRROR" "$ARCH" "$T_TRIXIE"

TRIXIE_RUN="apt-get update -q && apt-get install -y -q --no-install-recommends ${TRIXIE_PACKAGES[*]} && rm -rf /var/lib/apt/lists/*"
layer_run app-trixie trixie "$TRIXIE_RUN"
r=$work/app-trixie.bundle/rootfs
readelf -W --dyn-syms "$r$TRIXIE_BINARY" | awk '$7 == "UND" { print $8 }' | grep "@$TRIXIE_GLIBC" |
	sort -u >"$work/app-trixie.needs" || true
[ -s "$work/app-trixie.needs" ] || die "app-trixie: $TRIXIE_BINARY needs no $TRIXIE_GLIBC symbol"
{
	for f in /etc/os-release /etc/debian_version; do
		[ -f "$r$f" ] || die "trixie has no $f"
	done
	grep '^PRETTY_NAME=' "$r/etc/os-release"
	echo "debian_version $(cat "$r/etc/debian_version")"
} >"$work/trixie.release"
layer_cut app-trixie "$T_APP_TRIXIE" "$TRIXIE_RUN" "$(basename "$TRIXIE_BINARY")" --version

# ---------------------------------------------------------------------------
# app-gnutls: base-v1 + wget

GNUTLS_RUN="apt-get update -q && apt-get install -y -q --no-install-recommends ${GNUTLS_PACKAGES[*]} && rm -rf /var/lib/apt/lists/*"
layer_run app-gnutls base-v1 "$GNUTLS_RUN"
r=$work/app-gnutls.bundle/rootfs
readelf -W -d "$r$GNUTLS_BINARY" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p' | sort >"$work/app-gnutls.needed"
libc=$(awk '$1 == "libc.so.6" { print $2; exit }' "$work/app-gnutls.before.sonames")
[ -n "$libc" ] || die "base-v1's ld.so.cache has no libc.so.6"
readelf -W -V "$r$libc" | sed -n '/^Version definition section/,/^Version needs section/p' |
	grep -o 'Name: GLIBC_[0-9.]*' | sed 's/Name: //' | sort -Vu | tail -n1 >"$work/base-v1.libc-max"
layer_cut app-gnutls "$T_APP_GNUTLS" "$GNUTLS_RUN" "$(basename "$GNUTLS_BINARY")" --version

# ---------------------------------------------------------------------------
# checks across images: the sonames bookworm's minbase has and trixie's lacks

cut -d' ' -f1 "$work/app-gnutls.before.sonames" | sort -u >"$work/bookworm.so"
cut -d' ' -f1 "$work/app-trixie.before.sonames" | sort -u >"$work/trixie.so"
comm -23 "$work/bookworm.so" "$work/trixie.so" >"$work/bookworm-only.so"
comm -13 "$work/bookworm.so" "$work/trixie.so" >"$work/trixie-only.so"
comm -12 "$work/app-gnutls.needed" "$work/bookworm-only.so" >"$work/app-gnutls.lost"
[ -s "$work/app-gnutls.lost" ] ||
	die "app-gnutls: $GNUTLS_BINARY needs no soname that base-v1 has and trixie lacks ($(tr '\n' ' ' <"$work/app-gnutls.needed"))"
libc_max=$(cat "$work/base-v1.libc-max")
if [ -z "$libc_max" ] || [ "$libc_max" = "$TRIXIE_GLIBC" ] ||
	[ "$(printf '%s\n' "$libc_max" "$TRIXIE_GLIBC" | sort -V | tail -n1)" != "$TRIXIE_GLIBC" ]; then
	die "base-v1's libc.so.6 defines up to '$libc_max', not older than $TRIXIE_GLIBC"
fi

umoci gc --layout "$L"

# ---------------------------------------------------------------------------
# report, then publish the cache atomically

{
	echo
	echo "make-verdict-fixture:"
	for tag in app-tidy rebuilt-tidy app-gnutls app-trixie; do
		echo "$tag: $(wc -l <"$work/$tag.pkgs") packages, installed:"
		sed 's/^/  /' "$work/$tag.added.pkgs"
	done
	echo "trixie: $(wc -l <"$work/trixie.pkgs") packages; $(tr '\n' ';' <"$work/trixie.release")"
	grep -E '^(libc6|libssl3t64|libgnutls30t64|apt) ' "$work/trixie.pkgs" | sed 's/^/  /'
	echo "app-tidy user: $(cat "$work/app-tidy.user")"
	echo "sonames of bookworm minbase (base-v1) that trixie minbase lacks: $(tr '\n' ' ' <"$work/bookworm-only.so")"
	echo "sonames of trixie minbase that base-v1 lacks: $(tr '\n' ' ' <"$work/trixie-only.so")"
	echo "$GNUTLS_BINARY needs: $(tr '\n' ' ' <"$work/app-gnutls.needed")(lost on trixie: $(tr '\n' ' ' <"$work/app-gnutls.lost"))"
	echo "$TRIXIE_BINARY needs $TRIXIE_GLIBC: $(tr '\n' ' ' <"$work/app-trixie.needs")(base-v1's libc.so.6 defines up to $(cat "$work/base-v1.libc-max"))"
	echo "built in $((SECONDS - started))s"
} | tee -a "$L/ocipatch-fixture.txt" >&2

mv -T "$L" "$cache"
# shellcheck disable=SC2086 # a word list
fixture_deliver "$out" $TAGS
