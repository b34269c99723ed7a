#!/usr/bin/env bash
# Build the end-to-end benchmark image with umoci, the way a user would have one: an OCI layout
# with gzip layers of real files.
#
#   base-v1  one ~800 MB (uncompressed) layer: files from /usr/lib and /usr/share
#   base-v2  base-v1 + a small update layer (files from /etc, a changed file)
#   app      base-v1 + a ~300 MB application layer (files from /usr/bin, /usr/include, /usr/lib)
#
# Usage: benches/make-bench-image.sh [OUT_DIR]     (default: bench-work/, gitignored)
#   BENCH_SCALE=0.1 benches/make-bench-image.sh     quick run: sizes times 0.1
#
# The layout is OUT_DIR/image; the staging trees are removed at the end. File selection is
# sorted, so two runs on the same machine pick the same files. If the sources hold fewer bytes
# than asked, they are copied again under copy1/, copy2/, ...
set -euo pipefail

out=${1:-bench-work}
scale=${BENCH_SCALE:-1}
mb() { awk -v s="$scale" -v n="$1" 'BEGIN { v = int(n * s); print (v < 1 ? 1 : v) }'; }
base_mb=$(mb 800)
app_mb=$(mb 300)
update_mb=$(mb 5)

command -v umoci >/dev/null || { echo "umoci is required" >&2; exit 1; }
rootless=()
[ "$(id -u)" -eq 0 ] || rootless=(--rootless)

image=$out/image
stage=$out/stage
rm -rf "$image" "$stage"
mkdir -p "$stage"

# fill DEST MEGABYTES ORDER SOURCE...: copy regular files (< 64 MiB each, in sorted path order,
# ORDER is "asc" or "desc") from SOURCE dirs into DEST until it holds MEGABYTES (10^6 bytes).
fill() {
    local dest=$1 want=$(($2 * 1000 * 1000)) order=$3 have=0 round=0 list got
    shift 3
    list=$(mktemp)
    while [ "$have" -lt "$want" ]; do
        local sort_flags=(-k2)
        [ "$order" = desc ] && sort_flags=(-k2 -r)
        find "$@" -xdev -type f -readable -size -64M -printf '%s %p\n' 2>/dev/null |
            LC_ALL=C sort "${sort_flags[@]}" |
            awk -v need=$((want - have)) -v sum="$list.sum" '
                tot >= need { next }  # read on: exiting early would SIGPIPE sort
                { tot += $1; sub(/^[0-9]+ /, ""); print }
                END { print tot + 0 > sum }' >"$list"
        got=$(cat "$list.sum")
        [ "$got" -gt 0 ] || { echo "no readable files in $*" >&2; exit 1; }
        local into=$dest
        [ "$round" -gt 0 ] && into=$dest/copy$round
        mkdir -p "$into"
        tar -cf - --no-recursion -P -T "$list" 2>/dev/null | tar -xf - -C "$into" 2>/dev/null || true
        have=$((have + got))
        round=$((round + 1))
    done
    rm -f "$list" "$list.sum"
    echo "  $dest: $(du -sm "$dest" | cut -f1) MiB in $(find "$dest" -type f | wc -l) files"
}

echo "staging (scale $scale: base $base_mb MB, update $update_mb MB, app $app_mb MB)"
fill "$stage/base" "$base_mb" asc /usr/lib /usr/share
fill "$stage/update" "$update_mb" asc /etc /usr/share/doc
mkdir -p "$stage/update/etc"
date -u +%FT%TZ >"$stage/update/etc/base-release"
fill "$stage/app" "$app_mb" desc /usr/bin /usr/include /usr/lib

hist=(--history.author ocipatch-bench)
echo "building $image"
umoci init --layout "$image"
umoci new --image "$image:base-v1"
umoci config "${rootless[@]}" --image "$image:base-v1" "${hist[@]}" \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env BASE_VERSION=1
time umoci insert "${rootless[@]}" --image "$image:base-v1" "${hist[@]}" \
    --history.created_by "bench: base layer" "$stage/base" /

umoci insert "${rootless[@]}" --image "$image:base-v1" --tag base-v2 "${hist[@]}" \
    --history.created_by "bench: update layer" "$stage/update" /
umoci config "${rootless[@]}" --image "$image:base-v2" "${hist[@]}" --config.env BASE_VERSION=2

time umoci insert "${rootless[@]}" --image "$image:base-v1" --tag app "${hist[@]}" \
    --history.created_by "bench: application layer" "$stage/app" /app
umoci config "${rootless[@]}" --image "$image:app" "${hist[@]}" \
    --config.workingdir /app --config.env APP_MODE=bench --config.cmd /app/usr/bin/true

rm -rf "$stage"
umoci ls --layout "$image"
echo "blobs:"
ls -lS "$image/blobs/sha256" | awk 'NR > 1 { printf "  %12d %s\n", $5, $9 }'
du -sh "$image"
