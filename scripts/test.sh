#!/usr/bin/env bash
# The whole ocipatch test suite: tool check/install, formatting, lints, build, unit +
# integration + interop tests. What a new contributor runs, and what CI runs (.ci/run).
#
# Usage: scripts/test.sh [--release]
#   --release   also build the release binary (LTO; slow on small machines)
#
# FUZZ_SECONDS (default 20) bounds each cargo-fuzz target's run (nightly + cargo-fuzz; cargo-fuzz
# is installed from crates.io when missing, as root); FUZZ_SECONDS=0 skips fuzzing.
#
# The interop tests drive real clients: skopeo, umoci, oci-image-tool, buildah, docker-registry, htpasswd,
# openssl, debootstrap, dpkg, apt-get, rpm and rpmbuild, rpm's python bindings (python3-rpm),
# setcap/getcap, jq (the fixture scripts), unshare and ldconfig (running results in a chroot),
# readelf, gcc and the s390x and powerpc cross binutils (big-endian ELF objects for the ELF
# scanner's tests) (plus pigz and GNU time for the benchmarks). As root, missing ones are
# installed with
# apt-get; otherwise the script stops and says what to install. The interop tests must run
# as root (umoci unpack of files owned by other uids).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

release=0
for arg in "$@"; do
	case $arg in
	--release) release=1 ;;
	-h | --help)
		sed -n '2,15p' "$0"
		exit 0
		;;
	*)
		echo "scripts/test.sh: unknown argument: $arg" >&2
		exit 2
		;;
	esac
done

section() {
	printf '\n==== %s ====\n' "$*"
}

start=$SECONDS

section "tools"
# command -> Debian package
declare -A pkg_of=(
	[skopeo]=skopeo
	[umoci]=umoci
	[oci-image-tool]=oci-image-tool
	[docker-registry]=docker-registry
	[pigz]=pigz
	[time]=time
	[htpasswd]=apache2-utils
	[openssl]=openssl
	[buildah]=buildah
	[debootstrap]=debootstrap
	[dpkg-query]=dpkg
	[chroot]=coreutils
	[mountpoint]=util-linux
	[tar]=tar
	[basenc]=coreutils
	[rpm]=rpm
	[rpmbuild]=rpm
	[man]=man-db
	[setcap]=libcap2-bin
	[getcap]=libcap2-bin
	[bash]=bash
	[jq]=jq
	[unshare]=util-linux
	[readelf]=binutils
	[ldconfig]=libc-bin
	[gcc]=gcc
	[s390x-linux-gnu-ld]=binutils-s390x-linux-gnu
	[powerpc-linux-gnu-ld]=binutils-powerpc-linux-gnu
)
missing=()
for tool in skopeo umoci oci-image-tool docker-registry pigz time htpasswd openssl buildah \
	debootstrap dpkg-query chroot mountpoint tar basenc rpm rpmbuild man setcap getcap bash \
	jq unshare readelf ldconfig gcc s390x-linux-gnu-ld powerpc-linux-gnu-ld; do
	# type -P: a file on PATH (bash's `time` keyword does not count)
	if ! type -P "$tool" >/dev/null; then
		missing+=("${pkg_of[$tool]}")
	fi
done
# Not commands: rpm's python bindings (tests/integration/interop/versions.rs asks rpm itself
# through them; the system python, not a pyenv one on PATH), and apt-get
# (tests/integration/interop/relations.rs).
if ! /usr/bin/python3 -c 'import rpm' >/dev/null 2>&1; then
	missing+=(python3-rpm)
fi
if ! type -P apt-get >/dev/null; then
	missing+=(apt)
fi
# The venv of the "python tools (venv)" section needs ensurepip.
if ! /usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1; then
	missing+=(python3-venv)
fi
if ((${#missing[@]})); then
	if [ "$(id -u)" = 0 ] && type -P apt-get >/dev/null; then
		echo "installing: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update
		apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
	else
		echo "scripts/test.sh: missing tools: ${missing[*]}" >&2
		echo "install them (Debian/Ubuntu: sudo apt-get install -y ${missing[*]}) and rerun" >&2
		exit 1
	fi
fi
section "python tools (venv)"
# PyPI packages the interop tests run, in one venv the suite owns (util::tools::venv_python).
# One pip install line per subject, exact versions.
venv=${OCIPATCH_VENV:-/var/cache/ocipatch-test/venv}
if [ ! -x "$venv/bin/python" ]; then
	mkdir -p "$(dirname "$venv")"
	/usr/bin/python3 -m venv "$venv"
fi
# SBOM and provenance documents (tests/integration/interop/attest.rs): pyspdxtools, the
# CycloneDX strict JSON validator, the in-toto attestation (Statement v1, SLSA v1) bindings.
"$venv/bin/pip" install --quiet --disable-pip-version-check 'spdx-tools==0.8.5' \
	'cyclonedx-python-lib[json-validation]==11.12.0' 'in-toto-attestation==0.9.3'
# referrers: the oras Python SDK lists and pushes OCI 1.1 referrers (interop/referrers.rs)
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check oras==0.2.43

for tool in skopeo umoci oci-image-tool; do
	printf '%-16s %s\n' "$tool" "$("$tool" --version 2>&1 | head -n1)"
done

if [ "$(id -u)" != 0 ]; then
	echo "scripts/test.sh: the interop tests need root (umoci unpack/repack of uid 1000 files)" >&2
	exit 1
fi
for sub in fmt clippy; do
	if ! cargo "$sub" --version >/dev/null 2>&1; then
		echo "scripts/test.sh: 'cargo $sub' is not available; install the rustfmt/clippy components" >&2
		exit 1
	fi
done
cargo --version

section "cargo fmt --check"
cargo fmt --all --check

section "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

section "the library alone (default-features = false): no CLI crates in its tree"
cargo build --lib --no-default-features --quiet
if cargo tree -e normal --no-default-features --prefix none |
	grep -E '^(clap|clap_complete|clap_mangen|roff|indicatif|anyhow|signal-hook) '; then
	echo "scripts/test.sh: the library depends on a CLI crate (above); keep it behind the cli feature" >&2
	exit 1
fi

if ((release)); then
	section "cargo build --release"
	cargo build --release
fi

section "cargo test --all-targets (unit, integration, interop)"
cargo test --all-targets --no-fail-fast

section "cargo test --doc"
cargo test --doc

section "cargo doc (RUSTDOCFLAGS=-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps

section "examples: cargo run --example (the library as a user calls it)"
cargo run --quiet --example rebase_layouts
cargo run --quiet --example verify_registry -- oci:testdata/images:app

section "cargo publish --dry-run (the crate packages and builds alone)"
# --allow-dirty: a developer's uncommitted edits are packaged as they are; CI is a clean clone.
cargo publish --dry-run --allow-dirty --quiet

section "README commands (scripts/readme-test.sh)"
bash scripts/readme-test.sh

fuzz_seconds=${FUZZ_SECONDS:-20}
if ((fuzz_seconds > 0)); then
	section "fuzz: every target of fuzz/ for ${fuzz_seconds}s"
	if ! cargo +nightly --version >/dev/null 2>&1; then
		echo "scripts/test.sh: fuzzing needs a nightly toolchain (rustup toolchain install nightly), or FUZZ_SECONDS=0" >&2
		exit 1
	fi
	if ! cargo fuzz --version >/dev/null 2>&1; then
		if [ "$(id -u)" = 0 ]; then
			cargo install cargo-fuzz --locked
		else
			echo "scripts/test.sh: missing cargo-fuzz (cargo install cargo-fuzz), or FUZZ_SECONDS=0" >&2
			exit 1
		fi
	fi
	for target in $(cargo +nightly fuzz list); do
		# New inputs go to a scratch corpus under target/; the committed seeds in
		# fuzz/corpus/<target> are only read. A crash stops the script (and is saved under
		# fuzz/artifacts/<target>/): turn it into a regression unit test.
		scratch=target/fuzz-corpus/$target
		mkdir -p "$scratch" "fuzz/corpus/$target"
		log=target/fuzz-$target.log
		if ! cargo +nightly fuzz run "$target" "$scratch" "fuzz/corpus/$target" -- \
			-max_total_time="$fuzz_seconds" -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 \
			>"$log" 2>&1; then
			tail -n 40 "$log"
			echo "scripts/test.sh: fuzz target $target failed (log: $log)" >&2
			exit 1
		fi
		printf '%-18s %s runs, peak RSS %s MB, corpus %s inputs\n' "$target" \
			"$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")" \
			"$(sed -n 's/^stat::peak_rss_mb: *//p' "$log")" \
			"$(find "$scratch" "fuzz/corpus/$target" -type f | wc -l)"
	done
fi

section "done in $((SECONDS - start))s"
