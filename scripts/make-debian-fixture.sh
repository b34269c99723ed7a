#!/usr/bin/env bash
# Build a REAL Debian image set for the package-database interop tests, the way a user would:
# debootstrap a minbase bookworm, apt-get in a chroot, layers cut with umoci
# (init/new/unpack/repack/config) as scripts/make-testdata.sh does.
#
# Usage: scripts/make-debian-fixture.sh OUT_LAYOUT        (run as root)
#
# Writes ONE OCI image layout with the tags
#   base-v1   debootstrap --variant=minbase bookworm (the point release: suite `bookworm` only)
#   base-v2   base-v1 + one layer: bookworm-security and bookworm-updates added to the apt
#             sources, `apt-get upgrade` (the patched base; the packages it upgraded are printed)
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
#   ${OCIPATCH_FIXTURE_CACHE:-/var/cache/ocipatch-fixtures}/debian-<sha256 of this script>/
# and copied to OUT_LAYOUT from there when present. It is built in a temp dir beside it and
# renamed into place when complete (under a lock, so concurrent callers build it once). Any
# change to this script makes a new cache entry. The archive moves on, so a rebuild on another
# day may pick other versions: the tests compare images of ONE build with each other, never
# with recorded versions.
#
# Chroot hygiene: /proc and a private tmpfs /dev (a few device nodes and a new devpts instance,
# never the host's /dev) are mounted for each apt run and always unmounted (trap), a
# policy-rc.d stops services from starting, resolv.conf is lent for the run only. None of these
# end up in a layer.
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

die() {
	echo "make-debian-fixture: $*" >&2
	exit 1
}
say() {
	echo "make-debian-fixture: $*" >&2
}

[ $# = 1 ] || die "usage: $0 OUT_LAYOUT"
out=$1
[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot, mounts, umoci without --rootless)"
for tool in debootstrap umoci skopeo chroot mount umount flock dpkg-query sha256sum; do
	command -v "$tool" >/dev/null 2>&1 || die "needs '$tool' on PATH (apt-get install debootstrap umoci skopeo)"
done

if [ -e "$out" ] && ! { [ -f "$out/oci-layout" ] || [ -z "$(ls -A "$out")" ]; }; then
	die "$out exists and is not an OCI layout; refusing to overwrite it"
fi

script_sha=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)
cache_root=${OCIPATCH_FIXTURE_CACHE:-/var/cache/ocipatch-fixtures}
cache=$cache_root/debian-$script_sha
mkdir -p "$cache_root"

deliver() { # copy the cached layout to OUT_LAYOUT
	rm -rf "$out"
	mkdir -p "$(dirname "$out")"
	cp -a "$cache" "$out"
	say "wrote $out (from $cache)"
	for tag in base-v1 base-v2 app rebuilt; do
		printf '  %-8s %s\n' "$tag" "$(skopeo inspect --format '{{.Digest}}' "oci:$out:$tag")" >&2
	done
}

if [ -f "$cache/index.json" ]; then
	deliver
	exit 0
fi

# One builder at a time; whoever waited finds the finished cache.
exec 9>"$cache_root/debian-$script_sha.lock"
flock 9
if [ -f "$cache/index.json" ]; then
	deliver
	exit 0
fi

# ---------------------------------------------------------------------------
# mirrors, from the host's apt sources

# Print the first URI the host's apt sources give for SUITE (deb822 .sources and one-line .list).
host_mirror_for() {
	local suite=$1 f
	shopt -s nullglob
	for f in /etc/apt/sources.list.d/*.sources; do
		awk -v S="$suite" '
			function flush() { if (deb && hit && uri != "") { print uri; found = 1; exit } deb = 0; hit = 0; uri = "" }
			/^[[:space:]]*$/ { flush(); next }
			/^#/ { next }
			tolower($1) == "types:" { for (i = 2; i <= NF; i++) if ($i == "deb") deb = 1 }
			tolower($1) == "uris:" { uri = $2 }
			tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == S) hit = 1 }
			END { if (!found) flush() }
		' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk -v S="$suite" '
			$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) == S) print $i }
		' "$f"
	done
	shopt -u nullglob
}
MIRROR=${OCIPATCH_DEBIAN_MIRROR:-$(host_mirror_for "$SUITE" | head -n1)}
SECURITY_MIRROR=${OCIPATCH_DEBIAN_SECURITY_MIRROR:-$(host_mirror_for "$SUITE-security" | head -n1)}
[ -n "$MIRROR" ] || die "no apt source for suite '$SUITE' on this host; set OCIPATCH_DEBIAN_MIRROR"
[ -n "$SECURITY_MIRROR" ] || die "no apt source for '$SUITE-security' on this host; set OCIPATCH_DEBIAN_SECURITY_MIRROR"
MIRROR=${MIRROR%/}
SECURITY_MIRROR=${SECURITY_MIRROR%/}
ARCH=$(dpkg --print-architecture)
say "mirror $MIRROR, security $SECURITY_MIRROR, arch $ARCH"

# ---------------------------------------------------------------------------
# work dir, mounts, cleanup

started=$SECONDS
work=$(mktemp -d "$cache_root/.debian-$script_sha.tmp.XXXXXX")
L=$work/layout
MOUNTS=()

# Mount points below $work that are still mounted (from the kernel's view, not our list).
mounts_below() {
	awk -v W="$work/" 'index($5, W) == 1 { print $5 }' /proc/self/mountinfo
}

unmount_all() {
	local i m
	for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
		m=${MOUNTS[i]}
		if mountpoint -q "$m"; then
			umount "$m" || umount -l "$m" || true
		fi
	done
	MOUNTS=()
	# Anything else (e.g. left by an interrupted debootstrap), deepest first.
	for m in $(mounts_below | sort -r); do
		umount "$m" 2>/dev/null || umount -l "$m" || true
	done
}

cleanup() {
	local rc=$?
	unmount_all
	if [ -n "$(mounts_below)" ]; then
		echo "make-debian-fixture: still mounted below $work, NOT removing it:" >&2
		mounts_below >&2
	else
		rm -rf --one-file-system "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mount_in() { # mount_in TARGET MOUNT-ARGS...
	local target=$1
	shift
	mount "$@" "$target"
	MOUNTS+=("$target")
}

# Run a command in ROOTFS with /proc, a private /dev, no service starts and the host's DNS.
in_chroot() { # in_chroot ROOTFS CMD...
	local r=$1
	shift
	mount_in "$r/proc" -t proc proc
	mount_in "$r/dev" -t tmpfs -o mode=0755,size=8m,nosuid ocipatch-dev
	mknod -m 666 "$r/dev/null" c 1 3
	mknod -m 666 "$r/dev/zero" c 1 5
	mknod -m 666 "$r/dev/full" c 1 7
	mknod -m 666 "$r/dev/random" c 1 8
	mknod -m 666 "$r/dev/urandom" c 1 9
	mknod -m 666 "$r/dev/tty" c 5 0
	ln -s /proc/self/fd "$r/dev/fd"
	mkdir "$r/dev/pts"
	mount_in "$r/dev/pts" -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts
	ln -s pts/ptmx "$r/dev/ptmx"
	cp /etc/resolv.conf "$r/etc/resolv.conf"
	printf '#!/bin/sh\n# ocipatch fixture build: never start services\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
	chmod 0755 "$r/usr/sbin/policy-rc.d"

	local rc=0
	chroot "$r" /usr/bin/env -i PATH="$CHROOT_PATH" HOME=/root LC_ALL=C TZ=UTC \
		DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true "$@" </dev/null || rc=$?

	rm -f "$r/usr/sbin/policy-rc.d" "$r/etc/resolv.conf"
	unmount_all
	[ "$rc" = 0 ] || die "in chroot $r: '$*' failed (exit $rc)"
}

# `Package Architecture Version` of every installed package of ROOTFS, sorted.
installed() {
	dpkg-query --admindir="$1/var/lib/dpkg" -W -f '${db:Status-Abbrev} ${Package} ${Architecture} ${Version}\n' |
		awk '$1 == "ii" { print $2, $3, $4 }' | sort
}

# Set every mtime below a rootfs to the fixed time (symlinks too), as make-testdata.sh does.
fix_times() {
	find "$1" -xdev -depth -exec touch -h -d "@$T" {} +
}

repack() { # repack TAG BUNDLE CREATED CREATED_BY
	[ -z "$(mounts_below)" ] || die "refusing to repack with mounts below $work"
	fix_times "$2/rootfs"
	umoci repack --refresh-bundle --image "$L:$1" \
		--history.created "$3" --history.created_by "$4" \
		--history.author "ocipatch fixtures" "$2"
}

# What apt leaves behind that no image keeps (Debian's own images drop it too).
apt_tidy() { # apt_tidy ROOTFS
	rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb
	rm -f "$1"/var/cache/apt/archives/partial/* 2>/dev/null || true
}

# ---------------------------------------------------------------------------
# base-v1: debootstrap --variant=minbase bookworm

umoci init --layout "$L"
umoci new --image "$L:base-v1"
umoci unpack --image "$L:base-v1" "$work/b1"
say "debootstrap --variant=minbase $SUITE from $MIRROR (a few minutes)"
debootstrap --variant=minbase --arch="$ARCH" "$SUITE" "$work/b1/rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
	{
		tail -n 30 "$work/debootstrap.log" >&2
		die "debootstrap failed"
	}
unmount_all # debootstrap's own mounts, if any were left
r=$work/b1/rootfs
# Like Debian's official images: no host identity, no device nodes (the runtime provides /dev),
# no apt lists or caches.
rm -f "$r/etc/resolv.conf" "$r/etc/hostname"
[ -z "$(mounts_below)" ] || die "unexpected mounts below $work"
find "$r/dev" -mindepth 1 -xdev -delete
apt_tidy "$r"
installed "$r" >"$work/base-v1.pkgs"
repack base-v1 "$work/b1" "$T_BASE1" "debootstrap --variant=minbase $SUITE $MIRROR"
umoci config --image "$L:base-v1" \
	--created "$T_BASE1" --author "ocipatch fixtures" \
	--architecture "$ARCH" --os linux \
	--config.env "PATH=$CHROOT_PATH" \
	--config.cmd bash \
	--history.created "$T_BASE1" --history.created_by 'CMD ["bash"]' \
	--history.author "ocipatch fixtures"
rm -rf --one-file-system "$work/b1"

# ---------------------------------------------------------------------------
# base-v2: base-v1 + security/updates upgrade

umoci tag --image "$L:base-v1" base-v2
umoci unpack --image "$L:base-v2" "$work/b2"
r=$work/b2/rootfs
printf 'deb %s %s-updates main\ndeb %s %s-security main\n' \
	"$MIRROR" "$SUITE" "$SECURITY_MIRROR" "$SUITE" >>"$r/etc/apt/sources.list"
say "base-v2: apt-get upgrade with $SUITE-security and $SUITE-updates"
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
	"RUN echo 'deb ... $SUITE-updates/-security main' >> /etc/apt/sources.list && apt-get update && apt-get upgrade -y ($how)"
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
deliver
