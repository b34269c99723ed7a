#!/usr/bin/env bash
# What the rebase safety verdict costs, on the real Debian app of scripts/make-verdict-fixture.sh
# (app-tidy: python3-minimal installed with apt on a bookworm minbase, rebased onto the
# security-updated base-v2), with a cold layer cache. Not a timed test: it prints what it
# measured, in one run, so the ratios compare like with like on a shared machine.
#
# Each round, in this order:
#   pigz      `pigz -dc` of every layer the rebase reads (the app's, old and new base's), all at
#             once: the floor, decompressing what must be decompressed;
#   rebase    `ocipatch rebase` with the verdict (the default), cold cache, into a fresh layout;
#   no-abi    the same with --no-abi-check (no ELF summary is used: the cost of the loader check);
#   no-pkgdb  the same with --no-package-db (the verdict alone, no database merge).
# Then, once: the same rebase registry to registry (a local docker-registry), with --safety,
# and the bytes each source gave the package-database step and the verdict (--json).
#
# Usage: scripts/bench-verdict.sh [WORK_DIR]   (ROUNDS=5; OCIPATCH_BIN=path; as root: the
# fixture is built with debootstrap the first time)
set -euo pipefail

work=$(realpath -m "${1:-bench-work/verdict}")
rounds=${ROUNDS:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
for t in pigz jq skopeo docker-registry python3; do
	command -v "$t" >/dev/null || {
		echo "missing tool: $t" >&2
		exit 1
	}
done
if [ -n "${OCIPATCH_BIN:-}" ]; then
	bin=$(realpath "$OCIPATCH_BIN")
else
	(cd "$here" && cargo build --release --quiet)
	bin=$here/target/release/ocipatch
fi
rm -rf "$work"
mkdir -p "$work"
L=$work/images
bash "$here/scripts/make-verdict-fixture.sh" "$L" 2>/dev/null

layers() { skopeo inspect --raw "oci:$L:$1" | jq -r '.layers[].digest | sub("sha256:"; "")'; }
mapfile -t read_layers < <({
	layers app-tidy
	layers base-v2
} | sort -u)
blob_bytes=0
for d in "${read_layers[@]}"; do
	blob_bytes=$((blob_bytes + $(stat -c %s "$L/blobs/sha256/$d")))
done
echo "layers the rebase reads: ${#read_layers[@]}, $((blob_bytes / 1000)) kB compressed"

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

pigz_all() {
	local d
	for d in "${read_layers[@]}"; do
		pigz -dc "$L/blobs/sha256/$d" >/dev/null &
	done
	wait
}
rebase() { # rebase TAG EXTRA...
	local out=$work/out-$1
	shift
	rm -rf "$work/cache" "$out"
	"$bin" rebase "oci:$L:app-tidy" --from "oci:$L:base-v1" --onto "oci:$L:base-v2" \
		-o "oci:$out:x" --cache-dir "$work/cache" -q "$@" >/dev/null
}

declare -A t
for name in pigz rebase no-abi no-pkgdb; do t[$name]=""; done
for r in $(seq "$rounds"); do
	# Warm the page cache once so every variant reads from memory.
	cat "$L"/blobs/sha256/* >/dev/null
	s=$(now)
	pigz_all
	t[pigz]+="$(elapsed "$s" "$(now)") "
	s=$(now)
	rebase a
	t[rebase]+="$(elapsed "$s" "$(now)") "
	s=$(now)
	rebase b --no-abi-check
	t[no-abi]+="$(elapsed "$s" "$(now)") "
	s=$(now)
	rebase c --no-package-db
	t[no-pkgdb]+="$(elapsed "$s" "$(now)") "
	echo "round $r: pigz ${t[pigz]##* } rebase ${t[rebase]##* }" | tr -s ' ' >&2
done
p=$(tr ' ' '\n' <<<"${t[pigz]}" | grep . | median)
echo
printf '%-10s %8s %8s\n' variant median ratio
for name in pigz rebase no-abi no-pkgdb; do
	m=$(tr ' ' '\n' <<<"${t[$name]}" | grep . | median)
	printf '%-10s %8s %8s\n' "$name" "$m" "$(python3 -c "print(f'{$m / $p:.2f}')")"
done

# The bytes each step read, from the report.
rm -rf "$work/cache"
"$bin" rebase "oci:$L:app-tidy" --from "oci:$L:base-v1" --onto "oci:$L:base-v2" \
	-o "oci:$work/out-json:x" --cache-dir "$work/cache" --json |
	jq -c '{package_db_bytes_read, verdict_bytes_read: [.safety[].bytes_read], verdict: [.safety[] | (.findings | map(select(.class == "real")) | length)]}'

# Registry to registry, with --safety (the verdict downloads every layer it reads).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry
http:
  addr: 127.0.0.1:$port
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
reg=$!
trap 'kill $reg 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
R=127.0.0.1:$port
for tag in base-v1 base-v2 app-tidy; do
	skopeo copy -q --dest-tls-verify=false "oci:$L:$tag" "docker://$R/verdict/$tag:1"
done
for variant in "" --safety; do
	rm -rf "$work/cache"
	s=$(now)
	"$bin" rebase "docker://$R/verdict/app-tidy:1" --from "docker://$R/verdict/base-v1:1" \
		--onto "docker://$R/verdict/base-v2:1" -o "docker://$R/verdict/app-tidy:rebased${variant:+-safety}" \
		--tls-verify=false --cache-dir "$work/cache" --json $variant >"$work/registry${variant}.json"
	e=$(elapsed "$s" "$(now)")
	jq -c --arg v "registry ${variant:-(default)}" --arg s "$e" \
		'{variant: $v, seconds: ($s | tonumber), package_db_bytes_read, verdict_bytes_read: [(.safety // [])[].bytes_read], skipped: .safety_skipped}' \
		"$work/registry${variant}.json"
done
