# shellcheck shell=bash
# Helpers shared by the scripts that build REAL Debian images in a chroot (debootstrap, apt-get,
# dpkg) and cut their layers with umoci: scripts/make-debian-fixture.sh and
# scripts/make-verdict-fixture.sh. Sourced, never run.
#
# The sourcing script sets, before calling anything here:
#   FIXTURE_NAME   prefix of the messages (e.g. make-debian-fixture)
#   T              the fixed mtime (epoch seconds) of every file of a base layer
#   CHROOT_PATH    PATH inside the chroot
# and optionally CHROOT_ENV (an array of NAME=VALUE added to the chroot's clean environment).
# fixture_begin sets `work` (the temp dir beside the cache) and `L` (the layout being built);
# fixture_lock sets `cache`.
#
# Chroot hygiene: /proc and a private tmpfs /dev (a few device nodes and a new devpts instance,
# never the host's /dev) are mounted for each chroot run and always unmounted (trap), a
# policy-rc.d stops services from starting, resolv.conf is lent for the run only. None of these
# end up in a layer. The work dir is only removed when nothing is mounted below it.

MOUNTS=()
if ! declare -p CHROOT_ENV >/dev/null 2>&1; then
	CHROOT_ENV=()
fi

die() {
	echo "$FIXTURE_NAME: $*" >&2
	exit 1
}
say() {
	echo "$FIXTURE_NAME: $*" >&2
}

# Root, the tools, and an OUT_LAYOUT that is absent, empty or an OCI layout.
fixture_preflight() { # fixture_preflight OUT_LAYOUT TOOL...
	local out=$1 tool
	shift
	[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot, mounts, umoci without --rootless)"
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || die "needs '$tool' on PATH (apt-get install debootstrap umoci skopeo binutils)"
	done
	if [ -e "$out" ] && ! { [ -f "$out/oci-layout" ] || [ -z "$(ls -A "$out")" ]; }; then
		die "$out exists and is not an OCI layout; refusing to overwrite it"
	fi
}

# ---------------------------------------------------------------------------
# cache: ${OCIPATCH_FIXTURE_CACHE:-/var/cache/ocipatch-fixtures}/NAME-<sha256 of FILES>/

fixture_deliver() { # fixture_deliver OUT_LAYOUT TAG...: copy the cached layout to OUT_LAYOUT
	local out=$1 tag
	shift
	rm -rf "$out"
	mkdir -p "$(dirname "$out")"
	cp -a "$cache" "$out"
	say "wrote $out (from $cache)"
	for tag in "$@"; do
		printf '  %-12s %s\n' "$tag" "$(skopeo inspect --format '{{.Digest}}' "oci:$out:$tag")" >&2
	done
}

# Sets `cache` and `cache_key`. Returns 0 with the lock (fd 9) held when the caller must build;
# delivers and exits when the cache is (or, after waiting for another builder, became) complete.
fixture_lock() { # fixture_lock NAME OUT_LAYOUT "TAG..." FILE...
	local name=$1 out=$2 tags=$3
	shift 3
	cache_key=$(cat "$@" | sha256sum | cut -d' ' -f1)
	cache_root=${OCIPATCH_FIXTURE_CACHE:-/var/cache/ocipatch-fixtures}
	cache=$cache_root/$name-$cache_key
	mkdir -p "$cache_root"
	# shellcheck disable=SC2086 # tags is a word list
	if [ -f "$cache/index.json" ]; then
		fixture_deliver "$out" $tags
		exit 0
	fi
	# One builder at a time; whoever waited finds the finished cache.
	exec 9>"$cache_root/$name-$cache_key.lock"
	flock 9
	# shellcheck disable=SC2086
	if [ -f "$cache/index.json" ]; then
		fixture_deliver "$out" $tags
		exit 0
	fi
}

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

# ---------------------------------------------------------------------------
# work dir, mounts, cleanup

# Sets `work`, `L` and `started`; installs the traps.
fixture_begin() { # fixture_begin NAME
	# shellcheck disable=SC2034 # read by the sourcing script
	started=$SECONDS
	work=$(mktemp -d "$cache_root/.$1-$cache_key.tmp.XXXXXX")
	L=$work/layout
	trap cleanup EXIT
	trap 'exit 130' INT TERM
}

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
		echo "$FIXTURE_NAME: still mounted below $work, NOT removing it:" >&2
		mounts_below >&2
	else
		rm -rf --one-file-system "$work"
	fi
	exit "$rc"
}

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
		DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true "${CHROOT_ENV[@]}" "$@" </dev/null || rc=$?

	rm -f "$r/usr/sbin/policy-rc.d" "$r/etc/resolv.conf"
	unmount_all
	[ "$rc" = 0 ] || die "in chroot $r: '$*' failed (exit $rc)"
}

# `Package Architecture Version` of every installed package of ROOTFS, sorted.
installed() {
	dpkg-query --admindir="$1/var/lib/dpkg" -W -f '${db:Status-Abbrev} ${Package} ${Architecture} ${Version}\n' |
		awk '$1 == "ii" { print $2, $3, $4 }' | sort
}

# Fix the mtimes below a rootfs (symlinks too), as make-testdata.sh does. With one argument every
# path gets $T. With a second one, the paths whose mtime is not $T (i.e. written since the last
# layer was cut: new files, rewritten files, changed directories) get CHANGED_EPOCH and the rest
# keep $T, so a file rewritten with the same bytes lands in the layer as a build would put it there.
fix_times() { # fix_times ROOTFS [CHANGED_EPOCH]
	if [ $# = 1 ]; then
		find "$1" -xdev -depth -exec touch -h -d "@$T" {} +
	else
		find "$1" -xdev -depth \( -newermt "@$T" -o ! -newermt "@$((T - 1))" \) \
			-exec touch -h -d "@$2" {} +
	fi
}

repack() { # repack TAG BUNDLE CREATED CREATED_BY [CHANGED_EPOCH]
	[ -z "$(mounts_below)" ] || die "refusing to repack with mounts below $work"
	fix_times "$2/rootfs" ${5:+"$5"}
	umoci repack --refresh-bundle --image "$L:$1" \
		--history.created "$3" --history.created_by "$4" \
		--history.author "ocipatch fixtures" "$2"
}

# What apt leaves behind that no image keeps (Debian's own images drop it too).
apt_tidy() { # apt_tidy ROOTFS
	rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb
	rm -f "$1"/var/cache/apt/archives/partial/* 2>/dev/null || true
}

# A new one-layer image TAG in $L: debootstrap --variant=minbase SUITE from MIRROR, like Debian's
# official images: no host identity, no device nodes (the runtime provides /dev), no apt lists or
# caches; Cmd bash. Writes $work/TAG.pkgs (installed packages).
debootstrap_base() { # debootstrap_base TAG SUITE MIRROR ARCH CREATED [SOURCES_LIST_TEXT]
	local tag=$1 suite=$2 mirror=$3 arch=$4 created=$5 sources=${6:-} r
	umoci new --image "$L:$tag"
	umoci unpack --image "$L:$tag" "$work/$tag.bundle"
	say "$tag: debootstrap --variant=minbase $suite from $mirror (a few minutes)"
	debootstrap --variant=minbase --arch="$arch" "$suite" "$work/$tag.bundle/rootfs" "$mirror" \
		>"$work/$tag.debootstrap.log" 2>&1 ||
		{
			tail -n 30 "$work/$tag.debootstrap.log" >&2
			die "debootstrap $suite failed"
		}
	unmount_all # debootstrap's own mounts, if any were left
	r=$work/$tag.bundle/rootfs
	rm -f "$r/etc/resolv.conf" "$r/etc/hostname"
	# As Debian's official images do: the release, its updates and its security suite.
	[ -z "$sources" ] || printf '%s' "$sources" >"$r/etc/apt/sources.list"
	[ -z "$(mounts_below)" ] || die "unexpected mounts below $work"
	find "$r/dev" -mindepth 1 -xdev -delete
	apt_tidy "$r"
	installed "$r" >"$work/$tag.pkgs"
	repack "$tag" "$work/$tag.bundle" "$created" "debootstrap --variant=minbase $suite $mirror"
	umoci config --image "$L:$tag" \
		--created "$created" --author "ocipatch fixtures" \
		--architecture "$arch" --os linux \
		--config.env "PATH=$CHROOT_PATH" \
		--config.cmd bash \
		--history.created "$created" --history.created_by 'CMD ["bash"]' \
		--history.author "ocipatch fixtures"
	rm -rf --one-file-system "$work/$tag.bundle"
}
