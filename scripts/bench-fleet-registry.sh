#!/usr/bin/env bash
# Fleet rebase at registry scale: N small distinct applications on a base, in a local
# docker-registry, rebased registry-to-registry in one fleet run, directly and through a proxy
# that adds a round trip (DELAY_MS, default 20 ms) to every request. Not a timed test: it
# prints what it measured.
#
# Reports, from one run:
#   images/s, direct and at DELAY_MS;
#   registry requests per image, counted in the registry's access log (every request of the
#   run, bases included, divided by N);
#   the re-run's writes (PUT/POST/PATCH/DELETE in the access log; 0 expected: every image
#   reports `unchanged`);
#   4 concurrent `--shard i/4` processes: each image rebased by exactly one of them, and the
#   tags they wrote hold exactly the digests of the one-run fleet;
#   CPU per image of ocipatch (GNU time), of docker-registry and of the proxy (/proc/PID/stat):
#   on a 2-core machine, where all three share the cores, it says which one bounds the rate.
#
# Usage: scripts/bench-fleet-registry.sh [WORK_DIR]  (N=100, DELAY_MS=20, JOBS=32; OCIPATCH_BIN=path)
# Needs docker-registry, skopeo, jq, python3, GNU time. The base is testdata/images (base-v1 -> base-v2).
set -euo pipefail

work=$(realpath -m "${1:-bench-work/fleet-registry}")
n=${N:-100}
delay=${DELAY_MS:-20}
jobs=${JOBS:-32}
here=$(cd "$(dirname "$0")/.." && pwd)
for t in docker-registry skopeo jq python3 /usr/bin/time; do
    command -v "$t" >/dev/null || { echo "missing tool: $t" >&2; exit 1; }
done
if [ -n "${OCIPATCH_BIN:-}" ]; then
    bin=$(realpath "$OCIPATCH_BIN")
else
    (cd "$here" && cargo build --release --quiet)
    bin=$here/target/release/ocipatch
fi
rm -rf "$work"
mkdir -p "$work"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

reg_port=$(port)
cat >"$work/registry.yml" <<YML
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $work/data
http:
  addr: 127.0.0.1:$reg_port
YML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$reg_port") 2>/dev/null && break; sleep 0.1; done
R=127.0.0.1:$reg_port

proxy_port=$(port)
python3 "$here/scripts/latency-proxy.py" "$proxy_port" "$R" "$delay" >"$work/proxy.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$work/proxy.out" 2>/dev/null && break; sleep 0.1; done
P=127.0.0.1:$proxy_port

tls=--tls-verify=false
skopeo copy -q --dest-tls-verify=false "oci:$here/testdata/images:base-v1" "docker://$R/lib/base:v1"
skopeo copy -q --dest-tls-verify=false "oci:$here/testdata/images:base-v2" "docker://$R/lib/base:v2"

echo "building $n application images on lib/base:v1 ..."
: >"$work/direct.txt"
: >"$work/proxied.txt"
for i in $(seq 1 "$n"); do
    d=$work/apps/$i
    mkdir -p "$d/srv/app"
    head -c 20000 /dev/urandom >"$d/srv/app/bin-$i"
    echo "service $i" >"$d/srv/app/config"
    "$bin" append "docker://$R/lib/base:v1" --layer "$d" -o "docker://$R/apps/app-$i:v1" -q $tls >/dev/null
    echo "docker://$R/apps/app-$i:v1" >>"$work/direct.txt"
    echo "docker://$P/apps/app-$i:v1" >>"$work/proxied.txt"
done

log_mark() { wc -c <"$work/registry.log"; }
# CPU seconds (user + system) a process has used so far, from /proc/PID/stat.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"; }
cpu_ms_per_image() { awk -v n="$n" -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) * 1000 / n }'; }
ours_ms_per_image() { awk -v n="$n" '{ printf "%.1f", ($1 + $2) * 1000 / n }' "$work/$1.cpu"; }
# requests logged since MARK (the access log: "METHOD /v2/... HTTP/1.1")
requests_since() { sleep 0.3; tail -c +"$(($1 + 1))" "$work/registry.log" | grep -oE '"(GET|HEAD|PUT|POST|PATCH|DELETE) /v2/[^"]* HTTP' || true; }
now() { date +%s.%N; }
rate() { awk -v n="$n" -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", n / (b - a) }'; }
per() { awk -v n="$n" -v c="$1" 'BEGIN { printf "%.2f", c / n }'; }

# fleet HOST LIST TAG NAME CACHE [extra args]: one fleet run writing TAG, report in NAME.json,
# package-database layer cache in CACHE (a fresh one reads each application layer once).
# --base-name makes the result independent of the host the base was reached by.
fleet() {
    local host=$1 list=$2 tag=$3 name=$4 cache=$5
    shift 5
    /usr/bin/time -f '%U %S' -o "$work/$name.cpu" \
        "$bin" rebase --images-from "$list" --from "docker://$host/lib/base:v1" \
        --onto "docker://$host/lib/base:v2" --base-name "registry.test/lib/base:v2" \
        -o "docker://$host/{repo}:$tag" --jobs "$jobs" --cache-dir "$work/$cache" \
        $tls --json -q "$@" >"$work/$name.json"
}

echo "fleet rebase, direct ..."
mark=$(log_mark); t0=$(now)
reg_cpu_d0=$(cpu_of "${pids[0]}")
fleet "$R" "$work/direct.txt" v2 direct cache-direct
t1=$(now)
reg_cpu_d1=$(cpu_of "${pids[0]}")
direct_requests=$(requests_since "$mark" | wc -l)
[ "$(jq .rebased "$work/direct.json")" = "$n" ] || { echo "direct run: not all rebased" >&2; jq '.images[] | select(.error)' "$work/direct.json" >&2; exit 1; }

echo "re-run (same cache) ..."
mark=$(log_mark); t2=$(now)
fleet "$R" "$work/direct.txt" v2 rerun cache-direct
t3=$(now)
rerun=$(requests_since "$mark")
rerun_requests=$(printf '%s\n' "$rerun" | grep -c . || true)
rerun_writes=$(printf '%s\n' "$rerun" | grep -cE '^"(PUT|POST|PATCH|DELETE) ' || true)
[ "$(jq .unchanged "$work/rerun.json")" = "$n" ] || { echo "re-run: not all unchanged" >&2; exit 1; }

echo "fleet rebase through the ${delay} ms proxy ..."
mark=$(log_mark); t4=$(now)
reg_cpu0=$(cpu_of "${pids[0]}"); proxy_cpu0=$(cpu_of "${pids[1]}")
fleet "$P" "$work/proxied.txt" v2p proxied cache-proxied
t5=$(now)
reg_cpu1=$(cpu_of "${pids[0]}"); proxy_cpu1=$(cpu_of "${pids[1]}")
proxied_requests=$(requests_since "$mark" | wc -l)
[ "$(jq .rebased "$work/proxied.json")" = "$n" ] || { echo "proxied run: not all rebased" >&2; exit 1; }

echo "4 concurrent shards (direct) ..."
spids=()
mark=$(log_mark); t6=$(now)
for i in 0 1 2 3; do
    fleet "$R" "$work/direct.txt" v2s "shard$i" "cache-shard$i" --shard "$i/4" &
    spids+=($!)
done
for p in "${spids[@]}"; do wait "$p"; done
t7=$(now)
shard_requests=$(requests_since "$mark" | wc -l)
# each image exactly once; the tags hold the one run's digests
jq -r '.images[] | select(.status == "rebased") | .image' "$work"/shard?.json | sort >"$work/shard-images.txt"
sort "$work/direct.txt" >"$work/all-images.txt"
diff -u "$work/all-images.txt" "$work/shard-images.txt" >/dev/null ||
    { echo "shards: images rebased not exactly once" >&2; diff -u "$work/all-images.txt" "$work/shard-images.txt" >&2; exit 1; }
jq -r '.images[] | "\(.image) \(.report.digest)"' "$work"/shard?.json | sort >"$work/shard-digests.txt"
jq -r '.images[] | "\(.image) \(.report.digest)"' "$work/direct.json" | sort >"$work/one-digests.txt"
diff -u "$work/one-digests.txt" "$work/shard-digests.txt" >/dev/null ||
    { echo "shards: digests differ from the one-run fleet" >&2; exit 1; }
for i in $(seq 1 "$n"); do
    a=$(skopeo inspect --raw --tls-verify=false "docker://$R/apps/app-$i:v2" | sha256sum | cut -c1-64)
    b=$(skopeo inspect --raw --tls-verify=false "docker://$R/apps/app-$i:v2s" | sha256sum | cut -c1-64)
    [ "$a" = "$b" ] || { echo "apps/app-$i: v2s ($b) differs from v2 ($a)" >&2; exit 1; }
done

echo
echo "N=$n images, --jobs $jobs, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "direct:        $(rate "$t0" "$t1") images/s, $(per "$direct_requests") requests/image ($direct_requests in the access log)"
echo "at ${delay} ms RTT:  $(rate "$t4" "$t5") images/s, $(per "$proxied_requests") requests/image ($proxied_requests)"
echo "re-run:        $(rate "$t2" "$t3") images/s, $rerun_writes writes, $(per "$rerun_requests") requests/image, $(jq .unchanged "$work/rerun.json") unchanged"
echo "4 shards:      $(rate "$t6" "$t7") images/s together, $(per "$shard_requests") requests/image; each image once, digests equal to one run"
echo "CPU per image: direct run ocipatch $(ours_ms_per_image direct) ms, docker-registry $(cpu_ms_per_image "$reg_cpu_d0" "$reg_cpu_d1") ms; 20 ms run ocipatch $(ours_ms_per_image proxied) ms, docker-registry $(cpu_ms_per_image "$reg_cpu0" "$reg_cpu1") ms, proxy $(cpu_ms_per_image "$proxy_cpu0" "$proxy_cpu1") ms"
echo "ocipatch's own count (direct run): $(jq .requests.per_image "$work/direct.json") requests/image, bases $(jq .requests.bases "$work/direct.json")"
