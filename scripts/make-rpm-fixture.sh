#!/usr/bin/env bash
# Build a small RPM-based image set for the rpm package-database interop test, with the real
# rpm tooling (rpmbuild, rpm with its sqlite backend, as in rpm 4.16+) and umoci.
#
# Usage: scripts/make-rpm-fixture.sh OUT_LAYOUT        (run as root)
#
# Packages (noarch, built here with rpmbuild; AutoReqProv off so the roots need no /bin/sh):
#   basefs   1.0-1     /etc/basefs-release
#   osslite  3.0.1-1   "openssl"-like: /usr/lib64/libosslite.so.3, provides libosslite.so.3
#   osslite  3.0.1-2   the same, patched (the new base's)
#   curlite  8.0-1     "curl"-like: /usr/bin/curlite, requires osslite >= 3.0 and
#                      libosslite.so.3, recommends a rich dependency (osslite or basefs)
#
# Writes ONE OCI image layout with the tags
#   base-v1   rpm -i basefs osslite-3.0.1-1
#   base-v2   base-v1 + one layer: rpm -U osslite-3.0.1-2
#   app       base-v1 + one layer: rpm -i curlite
#   rebuilt   base-v2 + one layer: rpm -i curlite (what the rebase must describe)
# Every rpm call uses --root ROOTFS --dbpath /var/lib/rpm and _db_backend sqlite, so each layer
# that installs something carries the whole var/lib/rpm/rpmdb.sqlite, as a `RUN dnf install`
# layer does. Install times are real, so two runs give different bytes: the tests compare
# images of one run with each other.
set -euo pipefail

umask 022
export LC_ALL=C TZ=UTC
T_BASE1=2023-11-14T22:13:20Z
T_BASE2=2023-11-16T02:00:00Z
T_APP=2023-11-17T08:00:00Z
T_REBUILT=2023-11-18T08:00:00Z

die() {
	echo "make-rpm-fixture: $*" >&2
	exit 1
}

[ $# = 1 ] || die "usage: $0 OUT_LAYOUT"
out=$1
[ "$(id -u)" = 0 ] || die "must run as root (rpm --root, umoci without --rootless)"
for tool in rpm rpmbuild umoci skopeo; do
	command -v "$tool" >/dev/null 2>&1 || die "needs '$tool' on PATH (apt-get install rpm umoci skopeo)"
done
if [ -e "$out" ] && ! { [ -f "$out/oci-layout" ] || [ -z "$(ls -A "$out")" ]; }; then
	die "$out exists and is not an OCI layout; refusing to overwrite it"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ocipatch-rpm-fixture.XXXXXX")
trap 'rm -rf "$work"' EXIT
L=$work/layout
top=$work/rpmbuild
mkdir -p "$top"/{SPECS,SOURCES,BUILD,RPMS,SRPMS}

# spec NAME VERSION RELEASE SUMMARY FILE_PATH FILE_CONTENT [EXTRA_HEADER_LINES]
spec() {
	local name=$1 version=$2 release=$3 summary=$4 path=$5 body=$6 extra=${7:-}
	cat >"$top/SPECS/$name-$version-$release.spec" <<EOF
Name: $name
Version: $version
Release: $release
Summary: $summary
License: MIT
Group: System Environment/Base
BuildArch: noarch
AutoReqProv: no
$extra

%description
$summary (ocipatch rpm fixture).

%install
mkdir -p %{buildroot}$(dirname "$path")
printf '%s\n' '$body' > %{buildroot}$path
chmod 0755 %{buildroot}$path

%files
$path
EOF
	rpmbuild --quiet --define "_topdir $top" --define '_binary_payload w9.gzdio' \
		-bb "$top/SPECS/$name-$version-$release.spec" >&2
}

spec basefs 1.0 1 "Base file system" /etc/basefs-release "basefs 1.0"
spec osslite 3.0.1 1 "TLS library (openssl-like)" /usr/lib64/libosslite.so.3 "osslite 3.0.1-1" \
	"Provides: libosslite.so.3"
spec osslite 3.0.1 2 "TLS library (openssl-like)" /usr/lib64/libosslite.so.3 "osslite 3.0.1-2 (patched)" \
	"Provides: libosslite.so.3"
spec curlite 8.0 1 "Transfer tool (curl-like)" /usr/bin/curlite "#!/bin/sh" \
	"Requires: osslite >= 3.0
Requires: libosslite.so.3
Recommends: (osslite or basefs)"
R=$top/RPMS/noarch

rpm_in() { # rpm_in ROOTFS ARGS...: rpm on an image's root, sqlite backend
	local root=$1
	shift
	rpm --root "$root" --dbpath /var/lib/rpm --define '_db_backend sqlite' \
		--nosignature --noscripts "$@"
}

repack() { # repack TAG BUNDLE CREATED CREATED_BY
	# The lock file and an empty write-ahead log are what rpm leaves; keep them as rpm does.
	umoci repack --refresh-bundle --image "$L:$1" \
		--history.created "$3" --history.created_by "$4" \
		--history.author "ocipatch fixtures" "$2"
}

umoci init --layout "$L"

umoci new --image "$L:base-v1"
umoci unpack --image "$L:base-v1" "$work/b1"
r=$work/b1/rootfs
mkdir -p "$r"/{etc,usr/bin,usr/lib64,var/lib/rpm,tmp}
rpm_in "$r" -i "$R/basefs-1.0-1.noarch.rpm" "$R/osslite-3.0.1-1.noarch.rpm"
repack base-v1 "$work/b1" "$T_BASE1" "RUN rpm -i basefs osslite-3.0.1-1"
umoci config --image "$L:base-v1" --created "$T_BASE1" --author "ocipatch fixtures" \
	--architecture amd64 --os linux \
	--config.env 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--history.created "$T_BASE1" --history.created_by 'ENV PATH' --history.author "ocipatch fixtures"
rm -rf "$work/b1"

umoci tag --image "$L:base-v1" base-v2
umoci unpack --image "$L:base-v2" "$work/b2"
rpm_in "$work/b2/rootfs" -U "$R/osslite-3.0.1-2.noarch.rpm"
repack base-v2 "$work/b2" "$T_BASE2" "RUN rpm -U osslite-3.0.1-2"
umoci config --image "$L:base-v2" --created "$T_BASE2" \
	--history.created "$T_BASE2" --history.created_by 'ENV PATH' --history.author "ocipatch fixtures"
rm -rf "$work/b2"

build_app() { # build_app TAG BASE_TAG CREATED
	umoci tag --image "$L:$2" "$1"
	umoci unpack --image "$L:$1" "$work/$1"
	rpm_in "$work/$1/rootfs" -i "$R/curlite-8.0-1.noarch.rpm"
	repack "$1" "$work/$1" "$3" "RUN rpm -i curlite"
	umoci config --image "$L:$1" --created "$3" --config.entrypoint /usr/bin/curlite \
		--history.created "$3" --history.created_by 'ENTRYPOINT ["/usr/bin/curlite"]' \
		--history.author "ocipatch fixtures"
	rm -rf "${work:?}/$1"
}
build_app app base-v1 "$T_APP"
build_app rebuilt base-v2 "$T_REBUILT"

umoci gc --layout "$L"
rm -rf "$out"
mkdir -p "$(dirname "$out")"
cp -a "$L" "$out"
echo "make-rpm-fixture: wrote $out" >&2
for tag in base-v1 base-v2 app rebuilt; do
	printf '  %-8s %s\n' "$tag" "$(skopeo inspect --format '{{.Digest}}' "oci:$out:$tag")" >&2
done
