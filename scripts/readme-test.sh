#!/usr/bin/env bash
# Runs the README's commands verbatim, as a new user would: every ```sh block that follows a
# `<!-- readme-test -->` line, in order, in a fresh clone of this repository's HEAD (so commit
# first), each block under `bash -euo pipefail` from the clone's root. Blocks share the clone
# (and its out/ directory), so later blocks may use what earlier ones made.
#
# Usage: scripts/readme-test.sh [README]   (default: README.md of the clone)
#
# `cargo install --path .` installs into a private root that is put first on PATH, and builds
# in this checkout's target/ directory so dependencies are not rebuilt.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

git clone -q "$root" "$tmp/clone"
readme=${1:-$tmp/clone/README.md}

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
export CARGO_INSTALL_ROOT=$tmp/cargo-root
export PATH=$CARGO_INSTALL_ROOT/bin:$PATH

# Split the marked blocks into $tmp/block-N.sh.
awk -v dir="$tmp" '
	/^<!-- readme-test -->$/ { marked = 1; next }
	marked && /^```sh$/ { n++; file = sprintf("%s/block-%02d.sh", dir, n); inblock = 1; marked = 0; next }
	{ marked = 0 }
	inblock && /^```$/ { inblock = 0; close(file); next }
	inblock { print > file }
' "$readme"

blocks=("$tmp"/block-*.sh)
if [ ! -e "${blocks[0]}" ]; then
	echo "scripts/readme-test.sh: no block marked <!-- readme-test --> in $readme" >&2
	exit 1
fi
passed=0
failed=0
for block in "${blocks[@]}"; do
	name=$(basename "$block" .sh)
	printf -- '--- %s\n' "$name"
	sed 's/^/    /' "$block"
	if (cd "$tmp/clone" && bash -euo pipefail "$block"); then
		passed=$((passed + 1))
	else
		echo "scripts/readme-test.sh: README $name failed" >&2
		failed=$((failed + 1))
	fi
done
echo "README: $passed passed, $failed failed"
((failed == 0))
