#!/usr/bin/env bash
# End-to-end comparison on the benchmark image from benches/make-bench-image.sh, in one run so
# the ratios are fair on a shared, noisy machine.
#
#   verify:  ocipatch verify oci:IMG:app
#            vs (a) the best 2-core shell pipeline: every blob at once, `openssl dgst -sha256` of
#                   the stored bytes and `pigz -dc | openssl dgst -sha256` of each layer
#               (b) the plain loop: `sha256sum` and `gzip -dc | sha256sum`, one blob after another
#   rebase:  ocipatch rebase oci:IMG:app --from oci:IMG:base-v1 --onto oci:IMG:base-v2 -o oci:OUT:app
#            vs skopeo copy oci:IMG:app oci:OUT2:app (a plain copy of the same size class)
#            vs the hash limit: `openssl dgst -sha256` of every layer blob the rebase copies, 2 at once
#   peak RSS of each (GNU time %M).
#
# The shell baselines only compute digests; they compare nothing, so they are a lower bound for
# what a verifying tool must do. Timings are hyperfine medians with a warm page cache.
#
# Usage: scripts/bench-compare.sh [WORK_DIR]    (default bench-work; the image is WORK_DIR/image)
#   RUNS=5 (default) runs per command.
#   OCIPATCH_BIN=path  time that binary instead of building target/release/ocipatch.
set -euo pipefail

work=${1:-bench-work}
img=$work/image
runs=${RUNS:-5}
[ -f "$img/index.json" ] || {
    echo "no OCI layout at $img; build it with: benches/make-bench-image.sh $work" >&2
    exit 1
}
for tool in hyperfine jq skopeo openssl pigz gzip sha256sum /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done

if [ -n "${OCIPATCH_BIN:-}" ]; then
    bin=$(realpath "$OCIPATCH_BIN")
else
    cargo build --release --quiet
    bin=$PWD/target/release/ocipatch
fi
out1=$work/out-ocipatch
out2=$work/out-skopeo
cmds=$work/cmds
mkdir -p "$cmds"

# --- what the image holds --------------------------------------------------------------------
blob() { echo "$img/blobs/sha256/${1#sha256:}"; }
manifest() {
    local digest
    digest=$(jq -r --arg t "$1" \
        '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' \
        "$img/index.json")
    [ -n "$digest" ] || { echo "no tag $1 in $img" >&2; exit 1; }
    cat "$(blob "$digest")"
}
layers() { manifest "$1" | jq -r '.layers[].digest'; }
config() { manifest "$1" | jq -r '.config.digest'; }

mapfile -t app_layers < <(layers app)
mapfile -t v1_layers < <(layers base-v1)
mapfile -t v2_layers < <(layers base-v2)
# A rebase copies base-v2's layers and the app's own layers (those above base-v1).
copied=("${v2_layers[@]}" "${app_layers[@]:${#v1_layers[@]}}")

echo "image $img: app has ${#app_layers[@]} layers, $(du -shL "$img" | cut -f1) on disk"
for d in "${app_layers[@]}"; do printf '  %s %12d bytes\n' "$d" "$(stat -c %s "$(blob "$d")")"; done
echo "a rebase copies ${#copied[@]} layer blobs"

# --- the shell baselines, as scripts so hyperfine runs them as one command ---------------------
{
    echo "openssl dgst -sha256 $(blob "$(config app)") &"
    for d in "${app_layers[@]}"; do
        echo "openssl dgst -sha256 $(blob "$d") &"
        echo "pigz -dc $(blob "$d") | openssl dgst -sha256 &"
    done
    echo wait
} >"$cmds/verify-parallel.sh"
{
    echo "sha256sum $(blob "$(config app)")"
    for d in "${app_layers[@]}"; do
        echo "sha256sum $(blob "$d")"
        echo "gzip -dc $(blob "$d") | sha256sum"
    done
} >"$cmds/verify-loop.sh"
{
    echo -n "printf '%s\\n'"
    for d in "${copied[@]}"; do echo -n " $(blob "$d")"; done
    echo " | xargs -P2 -n1 openssl dgst -sha256"
} >"$cmds/rebase-hash-limit.sh"

verify_cmd="$bin verify oci:$img:app"
rebase_cmd="$bin rebase oci:$img:app --from oci:$img:base-v1 --onto oci:$img:base-v2 -o oci:$out1:app"
copy_cmd="skopeo copy -q oci:$img:app oci:$out2:app"

have_verify=yes
"$bin" verify --help >/dev/null 2>&1 || { have_verify=; echo "note: '$bin verify' not available yet; skipping it"; }
have_rebase=yes
"$bin" rebase --help >/dev/null 2>&1 || { have_rebase=; echo "note: '$bin rebase' not available yet; skipping it"; }

# --- sanity: the rebase output is what it claims ---------------------------------------------
if [ -n "$have_rebase" ]; then
    rm -rf "$out1"
    written=$($rebase_cmd | tail -n 1)
    in_index=$(jq -r '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == "app") | .digest' \
        "$out1/index.json")
    [ "$written" = "$in_index" ] || { echo "rebase printed $written but $out1 has $in_index" >&2; exit 1; }
    mapfile -t out_layers < <(jq -r '.layers[].digest' "$out1/blobs/sha256/${written#sha256:}")
    [ "${out_layers[*]}" = "${copied[*]}" ] || { echo "rebase output layers are not base-v2 + app layers" >&2; exit 1; }
    skopeo inspect "oci:$out1:app" >/dev/null
    [ -z "$have_verify" ] || "$bin" verify "oci:$out1:app" >/dev/null
    echo "rebase output checked: $written"
fi

# --- timings ------------------------------------------------------------------------------------
median() { jq -r '.results[0].median' "$1"; }
time_it() { # name prepare command
    local name=$1 prepare=$2 cmd=$3
    local args=(--style basic --warmup 1 --runs "$runs" --shell bash --export-json "$cmds/$name.json")
    [ -n "$prepare" ] && args+=(--prepare "$prepare")
    hyperfine "${args[@]}" -n "$name" "$cmd" >/dev/null
    median "$cmds/$name.json"
}
peak_rss() { # prepare command -> MiB
    bash -c "$1"
    /usr/bin/time -f %M -o "$cmds/rss" bash -c "$2" >/dev/null 2>&1
    awk '{ printf "%.0f", $1 / 1024 }' "$cmds/rss"
}

declare -A secs rss
run() { # name prepare command
    echo "timing $1 ..."
    secs[$1]=$(time_it "$1" "$2" "$3")
    rss[$1]=$(peak_rss "${2:-true}" "$3")
}

[ -n "$have_verify" ] && run verify-ocipatch "" "$verify_cmd"
run verify-parallel "" "bash $cmds/verify-parallel.sh"
run verify-loop "" "bash $cmds/verify-loop.sh"
[ -n "$have_rebase" ] && run rebase-ocipatch "rm -rf $out1" "$rebase_cmd"
run copy-skopeo "rm -rf $out2" "$copy_cmd"
run rebase-hash-limit "" "bash $cmds/rebase-hash-limit.sh"

# --- report -----------------------------------------------------------------------------------
ratio() { # a b -> a/b, or n/a
    if [ -n "${secs[$1]:-}" ] && [ -n "${secs[$2]:-}" ]; then
        awk -v a="${secs[$1]}" -v b="${secs[$2]}" 'BEGIN { printf "%.2f", a / b }'
    else
        echo n/a
    fi
}
echo
echo "| command | median s | peak RSS MiB |"
echo "|---|---|---|"
for k in verify-ocipatch verify-parallel verify-loop rebase-ocipatch copy-skopeo rebase-hash-limit; do
    [ -n "${secs[$k]:-}" ] && printf '| %s | %.3f | %s |\n' "$k" "${secs[$k]}" "${rss[$k]}"
done
echo
echo "ratios (time, lower is better for ocipatch):"
echo "  verify-ocipatch / verify-parallel   = $(ratio verify-ocipatch verify-parallel)"
echo "  verify-ocipatch / verify-loop       = $(ratio verify-ocipatch verify-loop)"
echo "  rebase-ocipatch / copy-skopeo       = $(ratio rebase-ocipatch copy-skopeo)"
echo "  rebase-ocipatch / rebase-hash-limit = $(ratio rebase-ocipatch rebase-hash-limit)"
echo "(machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); load $(cut -d' ' -f1-3 /proc/loadavg))"
