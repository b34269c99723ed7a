#!/usr/bin/env bash
# Fleet rebase vs separate runs, in one run so the ratio is fair on a shared machine.
#
# Builds N small application images on base-v1 of the benchmark image (with `ocipatch append`,
# one distinct layer each), then times:
#   separate: N runs of `ocipatch rebase oci:IMG:app-i --from base-v1 --onto base-v2 -o oci:OUT/i:app`
#   fleet:    one `ocipatch rebase --from base-v1 --onto base-v2 -o 'oci:OUT:{tag}' IMG:app-1 … app-N`
# Both write every image into a fresh layout (hard links on the same filesystem, digests checked).
#
# Usage: scripts/bench-fleet.sh [WORK_DIR]   (the image is WORK_DIR/image, from
#        benches/make-bench-image.sh; N=50 images, RUNS=3 by default; OCIPATCH_BIN=path)
set -euo pipefail

work=${1:-bench-work}
img=$(realpath "$work/image")
n=${N:-50}
runs=${RUNS:-3}
[ -f "$img/index.json" ] || { echo "no OCI layout at $img; build it with benches/make-bench-image.sh $work" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "missing tool: hyperfine" >&2; exit 1; }
if [ -n "${OCIPATCH_BIN:-}" ]; then
    bin=$(realpath "$OCIPATCH_BIN")
else
    cargo build --release --quiet
    bin=$PWD/target/release/ocipatch
fi
fleet_dir=$(realpath -m "$work/fleet")
rm -rf "$fleet_dir"
mkdir -p "$fleet_dir/apps"
cp -r "$img" "$fleet_dir/images"

echo "building $n application images on base-v1 ..."
refs=()
for i in $(seq 1 "$n"); do
    d=$fleet_dir/apps/$i
    mkdir -p "$d/srv/app"
    head -c 200000 /dev/urandom >"$d/srv/app/bin-$i"
    echo "service $i" >"$d/srv/app/config"
    "$bin" append "oci:$fleet_dir/images:base-v1" --layer "$d" -o "oci:$fleet_dir/images:app-$i" -q >/dev/null
    refs+=("oci:$fleet_dir/images:app-$i")
done

cat >"$fleet_dir/separate.sh" <<SEP
set -e
for i in \$(seq 1 $n); do
    "$bin" rebase "oci:$fleet_dir/images:app-\$i" --from "oci:$fleet_dir/images:base-v1" \\
        --onto "oci:$fleet_dir/images:base-v2" -o "oci:$fleet_dir/out-separate/\$i:app" -q >/dev/null
done
SEP
cat >"$fleet_dir/fleet.sh" <<FLEET
set -e
"$bin" rebase --from "oci:$fleet_dir/images:base-v1" --onto "oci:$fleet_dir/images:base-v2" \\
    -o "oci:$fleet_dir/out-fleet/{index}:app" -q ${refs[*]} >/dev/null
FLEET

hyperfine --runs "$runs" --export-json "$fleet_dir/times.json" \
    --prepare "rm -rf $fleet_dir/out-separate $fleet_dir/out-fleet" \
    -n separate "bash $fleet_dir/separate.sh" \
    -n fleet "bash $fleet_dir/fleet.sh"

# the two give the same images (hyperfine's --prepare removed the outputs: make them again)
rm -rf "$fleet_dir/out-separate" "$fleet_dir/out-fleet"
bash "$fleet_dir/separate.sh"
bash "$fleet_dir/fleet.sh"
for i in $(seq 1 "$n"); do
    a=$(jq -r '.manifests[0].digest' "$fleet_dir/out-separate/$i/index.json")
    b=$(jq -r '.manifests[0].digest' "$fleet_dir/out-fleet/$i/index.json")
    [ "$a" = "$b" ] || { echo "image $i differs: $a vs $b" >&2; exit 1; }
done
jq -r '.results | map({(.command): .median}) | add |
  "separate (N runs): \(.separate | . * 1000 | round / 1000) s\nfleet (one run): \(.fleet | . * 1000 | round / 1000) s\nratio separate / fleet = \(.separate / .fleet | . * 100 | round / 100)"' "$fleet_dir/times.json"
echo "(machine: $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg))"
