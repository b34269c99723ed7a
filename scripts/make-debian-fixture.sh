#!/usr/bin/env bash
# Build a REAL Debian image set for the package-database interop tests, the way a user would:
# debootstrap a minbase bookworm, apt-get in a chroot, layers cut with umoci
# (init/new/unpack/repack/config) as scripts/make-testdata.sh does.
#
# Usage: scripts/make-debian-fixture.sh OUT_LAYOUT        (run as root)
#
# Writes ONE OCI image layout with the tags
#   base-v1   debootstrap --variant=minbase bookworm (the point release, from suite `bookworm`),
#             its apt sources the three suites Debian's own images list (bookworm,
#             bookworm-updates, bookworm-security): an earlier build of the same tag
#   base-v2   base-v1 + one layer: `apt-get update && apt-get upgrade` (the patched base, its
#             sources.list unchanged; the packages it upgraded are printed)
#   app       base-v1 + one layer: apt-get install -y --no-install-recommends python3-minimal,
#             then rm -rf /var/lib/apt/lists/* (as python:slim does). No base.digest annotation.
#   rebuilt   base-v2 + the same apt-get install, with the app's package versions locked (see
#             below): what `ocipatch rebase app --onto base-v2` must describe in its package db.
#
# Why the rebuild locks the app's versions: base-v2's sources include bookworm-security, so a
# plain rebuild would also get newer libssl3/python3.11 than the app's layer holds. A rebase
# keeps the app's layer byte-for-byte, so the honest reference for its package database is
# "base-v2 + exactly the packages the app installed", i.e. the same RUN line with the app's
# versions pinned (an apt preferences file present only during that RUN, so apt still marks the
# dependencies as automatically installed, exactly as in the app).
#
# Mirrors: learned from the host's apt sources (the entries for suites `bookworm` and
# `bookworm-security`), overridable with OCIPATCH_DEBIAN_MIRROR / OCIPATCH_DEBIAN_SECURITY_MIRROR.
# Nothing else is contacted: the chroot's only sources are those mirrors.
#
# Cache: the build takes minutes and needs the network, so the finished layout is kept in
#   ${OCIPATCH_FIXTURE_CACHE:-/var/cache/ocipatch-fixtures}/debian-<sha256 of this script and
#   scripts/lib/chroot-fixture.sh>/
# and copied to OUT_LAYOUT from there when present. It is built in a temp dir beside it and
# renamed into place when complete (under a lock, so concurrent callers build it once). Any
# change to this script or to the helpers it sources makes a new cache entry. The archive moves
# on, so a rebuild on another day may pick other versions: the tests compare images of ONE build
# with each other, never with recorded versions.
#
# Chroot hygiene (scripts/lib/chroot-fixture.sh): /proc and a private tmpfs /dev (a few device
# nodes and a new devpts instance, never the host's /dev) are mounted for each apt run and always
# unmounted (trap), a policy-rc.d stops services from starting, resolv.conf is lent for the run
# only. None of these end up in a layer.
set -euo pipefail

umask 022
export LC_ALL=C TZ=UTC
export SOURCE_DATE_EPOCH=1700000000
T=$SOURCE_DATE_EPOCH
T_BASE1=2023-11-14T22:13:20Z # = @1700000000
T_BASE2=2023-11-16T02:00:00Z
T_APP=2023-11-17T08:00:00Z
T_REBUILT=2023-11-18T08:00:00Z
SUITE=bookworm
APP_PACKAGES=(python3-minimal)
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

FIXTURE_NAME=make-debian-fixture
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/lib/chroot-fixture.sh
. "$here/lib/chroot-fixture.sh"

[ $# = 1 ] || die "usage: $0 OUT_LAYOUT"
out=$1
fixture_preflight "$out" debootstrap umoci skopeo chroot mount umount flock dpkg-query sha256sum

TAGS="base-v1 base-v2 app rebuilt"
fixture_lock debian "$out" "$TAGS" "$here/make-debian-fixture.sh" "$here/lib/chroot-fixture.sh"

# ---------------------------------------------------------------------------
# mirrors, from the host's apt sources

MIRROR=${OCIPATCH_DEBIAN_MIRROR:-$(host_mirror_for "$SUITE" | head -n1)}
SECURITY_MIRROR=${OCIPATCH_DEBIAN_SECURITY_MIRROR:-$(host_mirror_for "$SUITE-security" | head -n1)}
[ -n "$MIRROR" ] || die "no apt source for suite '$SUITE' on this host; set OCIPATCH_DEBIAN_MIRROR"
[ -n "$SECURITY_MIRROR" ] || die "no apt source for '$SUITE-security' on this host; set OCIPATCH_DEBIAN_SECURITY_MIRROR"
MIRROR=${MIRROR%/}
SECURITY_MIRROR=${SECURITY_MIRROR%/}
ARCH=$(dpkg --print-architecture)
say "mirror $MIRROR, security $SECURITY_MIRROR, arch $ARCH"

fixture_begin debian

# ---------------------------------------------------------------------------
# base-v1: debootstrap --variant=minbase bookworm

umoci init --layout "$L"
SOURCES=$(printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' \
	"$MIRROR" "$SUITE" "$MIRROR" "$SUITE" "$SECURITY_MIRROR" "$SUITE")
debootstrap_base base-v1 "$SUITE" "$MIRROR" "$ARCH" "$T_BASE1" "$SOURCES"$'\n'

# ---------------------------------------------------------------------------
# base-v2: base-v1 + security/updates upgrade

umoci tag --image "$L:base-v1" base-v2
umoci unpack --image "$L:base-v2" "$work/b2"
r=$work/b2/rootfs
say "base-v2: apt-get upgrade (sources: $SUITE, $SUITE-updates, $SUITE-security, as in base-v1)"
in_chroot "$r" sh -c 'apt-get update -q && apt-get upgrade -y -q'
installed "$r" >"$work/base-v2.pkgs"
how="$SUITE-security + $SUITE-updates"
if cmp -s "$work/base-v1.pkgs" "$work/base-v2.pkgs"; then
	# Right after a point release the security suite may hold nothing newer for minbase: the
	# next point release's candidates are then the realistic "newer base".
	say "no minbase package has a security/updates upgrade today; adding $SUITE-proposed-updates"
	printf 'deb %s %s-proposed-updates main\n' "$MIRROR" "$SUITE" >>"$r/etc/apt/sources.list"
	in_chroot "$r" sh -c 'apt-get update -q && apt-get upgrade -y -q'
	installed "$r" >"$work/base-v2.pkgs"
	how="$how + $SUITE-proposed-updates"
	cmp -s "$work/base-v1.pkgs" "$work/base-v2.pkgs" &&
		die "no package of a minbase $SUITE has a newer version in the archive; cannot make base-v2"
fi
apt_tidy "$r"
repack base-v2 "$work/b2" "$T_BASE2" \
	"RUN apt-get update && apt-get upgrade -y ($how)"
umoci config --image "$L:base-v2" --created "$T_BASE2" \
	--history.created "$T_BASE2" --history.created_by 'CMD ["bash"]' \
	--history.author "ocipatch fixtures"
rm -rf --one-file-system "$work/b2"

# ---------------------------------------------------------------------------
# app: base-v1 + apt-get install python3-minimal

INSTALL="apt-get update -q && apt-get install -y -q --no-install-recommends ${APP_PACKAGES[*]} && rm -rf /var/lib/apt/lists/*"
umoci tag --image "$L:base-v1" app
umoci unpack --image "$L:app" "$work/app"
r=$work/app/rootfs
say "app: $INSTALL"
in_chroot "$r" sh -c "$INSTALL"
apt_tidy "$r"
installed "$r" >"$work/app.pkgs"
comm -13 "$work/base-v1.pkgs" "$work/app.pkgs" >"$work/app-added.pkgs"
[ -s "$work/app-added.pkgs" ] || die "the app's apt-get install added no package"
repack app "$work/app" "$T_APP" "RUN /bin/sh -c $INSTALL"
umoci config --image "$L:app" --created "$T_APP" \
	--config.cmd python3 \
	--history.created "$T_APP" --history.created_by 'CMD ["python3"]' \
	--history.author "ocipatch fixtures"
rm -rf --one-file-system "$work/app"

# ---------------------------------------------------------------------------
# rebuilt: base-v2 + the same install, the app's package versions locked

umoci tag --image "$L:base-v2" rebuilt
umoci unpack --image "$L:rebuilt" "$work/rebuilt"
r=$work/rebuilt/rootfs
pin=$r/etc/apt/preferences.d/ocipatch-fixture-app-lock
while read -r pkg _arch ver; do
	printf 'Package: %s\nPin: version %s\nPin-Priority: 1001\n\n' "$pkg" "$ver"
done <"$work/app-added.pkgs" >"$pin"
say "rebuilt: $INSTALL (versions locked to the app's)"
in_chroot "$r" sh -c "$INSTALL"
rm -f "$pin"
apt_tidy "$r"
installed "$r" >"$work/rebuilt.pkgs"
comm -13 "$work/base-v2.pkgs" "$work/rebuilt.pkgs" >"$work/rebuilt-added.pkgs"
cmp -s "$work/app-added.pkgs" "$work/rebuilt-added.pkgs" ||
	die "the rebuild installed other packages than the app: $(diff "$work/app-added.pkgs" "$work/rebuilt-added.pkgs" | tr '\n' ' ')"
comm -23 "$work/base-v2.pkgs" "$work/rebuilt.pkgs" | grep -q . &&
	die "the rebuild changed packages of base-v2"
repack rebuilt "$work/rebuilt" "$T_REBUILT" "RUN /bin/sh -c $INSTALL"
umoci config --image "$L:rebuilt" --created "$T_REBUILT" \
	--config.cmd python3 \
	--history.created "$T_REBUILT" --history.created_by 'CMD ["python3"]' \
	--history.author "ocipatch fixtures"
rm -rf --one-file-system "$work/rebuilt"

umoci gc --layout "$L"

# ---------------------------------------------------------------------------
# report, then publish the cache atomically

{
	echo "packages: base-v1 $(wc -l <"$work/base-v1.pkgs"), base-v2 $(wc -l <"$work/base-v2.pkgs"), app $(wc -l <"$work/app.pkgs") (+$(wc -l <"$work/app-added.pkgs")), rebuilt $(wc -l <"$work/rebuilt.pkgs")"
	echo "base-v2 upgraded ($how):"
	join -j1 <(awk '{ print $1":"$2, $3 }' "$work/base-v1.pkgs") <(awk '{ print $1":"$2, $3 }' "$work/base-v2.pkgs") |
		awk '$2 != $3 { printf "  %s %s -> %s\n", $1, $2, $3; n++ } END { printf "  (%d packages)\n", n }'
	echo "app installed:"
	sed 's/^/  /' "$work/app-added.pkgs"
	echo "built in $((SECONDS - started))s"
} | tee "$L/ocipatch-fixture.txt" >&2


mv -T "$L" "$cache"
# shellcheck disable=SC2086 # a word list
fixture_deliver "$out" $TAGS
