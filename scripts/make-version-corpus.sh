#!/usr/bin/env bash
# Write the real-version corpus of the version interop test (tests/integration/interop/versions.rs):
# a deterministic sample of version strings from the Debian archive indexes on this machine,
# plus the versions of the rpm fixture.
#
# Usage: scripts/make-version-corpus.sh [OUT]     (default: testdata/versions/debian.txt)
#
# Input: the Packages indexes apt keeps in /var/lib/apt/lists (run `apt-get update` first),
# read with apt's own decompressor (`apt-helper cat-file`). Every "Version:" field and every
# version of a relation ("libc6 (>= 2.36)", "Provides: foo (= 1.2)") is taken, with the
# package it belongs to. The same indexes give the same file: the selection below depends
# only on the sorted set of (package, version) pairs, never on time or randomness.
#
# Selection, from the distinct versions in byte order, spread evenly over each class:
#   400 with an epoch, 600 with '~', 600 with '+', 300 with a digit run of 8 or more,
#   2100 of the rest; and every version (up to 6) of 250 packages that have several,
#   so the test can compare one package's versions with each other.
# Output: comment lines (#), then "PACKAGE VERSION" lines sorted by package, then version.
set -euo pipefail

export LC_ALL=C
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-testdata/versions/debian.txt}

die() {
	echo "make-version-corpus: $*" >&2
	exit 1
}

helper=/usr/lib/apt/apt-helper
[ -x "$helper" ] || die "needs apt's $helper (apt-get install apt)"
shopt -s nullglob
indexes=(/var/lib/apt/lists/*_Packages*)
[ ${#indexes[@]} -gt 0 ] || die "no Packages indexes in /var/lib/apt/lists: run apt-get update"

work=$(mktemp -d "${TMPDIR:-/tmp}/ocipatch-version-corpus.XXXXXX")
trap 'rm -rf "$work"' EXIT

for f in "${indexes[@]}"; do
	"$helper" cat-file "$f"
	echo
done >"$work/packages"

# (package, version) from Version: fields and from every versioned relation.
awk '
	function relations(value,    n, parts, i, m, name, ver) {
		n = split(value, parts, /[,|]/)
		for (i = 1; i <= n; i++) {
			if (match(parts[i], /^[ \t]*[a-z0-9][a-z0-9+.-]*(:[a-z0-9-]+)?[ \t]*\([ \t]*[<>=]+[ \t]*[^ \t)]+[ \t]*\)/)) {
				m = substr(parts[i], RSTART, RLENGTH)
				name = m; sub(/^[ \t]*/, "", name); sub(/[ \t:(].*/, "", name)
				ver = m; sub(/^[^(]*\([ \t]*[<>=]+[ \t]*/, "", ver); sub(/[ \t)].*/, "", ver)
				print name, ver
			}
		}
	}
	/^Package:/ { pkg = $2 }
	/^Version:/ { print pkg, $2 }
	/^(Depends|Pre-Depends|Recommends|Suggests|Enhances|Breaks|Conflicts|Replaces|Provides):/ {
		value = $0; sub(/^[^:]*:/, "", value); relations(value)
	}
' "$work/packages" | sort -u >"$work/pairs"
[ -s "$work/pairs" ] || die "no versions found in the indexes"

# One line per distinct version, with the first package (in byte order) that has it.
sort -k2,2 -k1,1 "$work/pairs" | awk '$2 != last { print; last = $2 }' | sort -k2,2 >"$work/by_version"

# spread N: N lines picked evenly from stdin (all of them when there are fewer).
spread() {
	awk -v n="$1" '{ a[NR] = $0 } END {
		if (NR <= n) { for (i = 1; i <= NR; i++) print a[i] }
		else { for (i = 0; i < n; i++) print a[int(i * NR / n) + 1] }
	}'
}

{
	grep -E ' [0-9]+:' "$work/by_version" | spread 400
	grep -v -E ' [0-9]+:' "$work/by_version" | grep '~' | spread 600
	grep -v -E ' [0-9]+:' "$work/by_version" | grep -v '~' | grep -F '+' | spread 600
	grep -v -E ' [0-9]+:' "$work/by_version" | grep -v '~' | grep -v -F '+' | grep -E '[0-9]{8}' | spread 300
	grep -v -E ' [0-9]+:' "$work/by_version" | grep -v '~' | grep -v -F '+' | grep -v -E '[0-9]{8}' | spread 2100
	# Packages with several versions: up to 6 of each, for 250 of them.
	awk '{ n[$1]++ } END { for (p in n) if (n[p] >= 3) print p }' "$work/pairs" | sort | spread 250 >"$work/multi"
	awk 'NR == FNR { want[$1] = 1; next } ($1 in want) && seen[$1]++ < 6' "$work/multi" "$work/pairs"
} | sort -u -k1,1 -k2,2 >"$work/sample"

mkdir -p "$(dirname "$out")"
{
	cat <<EOF
# Real version strings for tests/integration/interop/versions.rs, written by scripts/make-version-corpus.sh
# from the Debian archive indexes of the machine that ran it ($(sed -n 's/^Codename: //p' /var/lib/apt/lists/*_InRelease 2>/dev/null | sort -u | tr '\n' ' ' | sed 's/ $//')):
# $(wc -l <"$work/pairs") (package, version) pairs from Version: fields and versioned relations,
# sampled to $(wc -l <"$work/sample") lines (epochs, '~', '+', long digit runs, the rest, and several versions of
# one package). Regenerate with the script after apt-get update; the test reads only this file.
#
# The same strings are the rpm corpus: rpm has no archive on a Debian machine, and Debian
# versions are valid rpm EVRs ([epoch:]version[-release], the release after the last '-') that
# exercise rpmvercmp's separators, '~', '+' and long numbers just as well. The lines after
# "from scripts/make-rpm-fixture.sh" are the versions the rpm fixture builds and requires.
#
# Format: PACKAGE VERSION
EOF
	cat "$work/sample"
	echo "# from scripts/make-rpm-fixture.sh"
	# spec NAME VERSION RELEASE ..., and the "Requires: NAME >= VERSION" lines.
	sed -n 's/^spec \([^ ]*\) \([^ ]*\) \([^ ]*\) .*/\1 \2-\3/p' scripts/make-rpm-fixture.sh | sort -u
	grep -o 'Requires: [a-z]* [<>=]* [0-9][^ \\"]*' scripts/make-rpm-fixture.sh |
		awk '{ print $2, $4 }' | sort -u
} >"$out"
echo "make-version-corpus: wrote $out ($(grep -vc '^#' "$out") versions)"
