#!/usr/bin/env bash
# ferry serve (issue 17) against docker-registry, serving the same content.
#   1. a 1 GiB image (4 x 256 MiB incompressible layers) pulled by `skopeo copy --preserve-digests
#      docker://... oci:DIR`, from `ferry serve --integrity-only BUNDLE.tar` and from a second
#      docker-registry the same bundle was pushed into (`ferry push`); alternating, 3 runs each,
#      medians: ratio serve/registry, goal <= 1.0;
#   2. 200 small blobs (an image of 200 x 64 KiB layers) fetched by 8 parallel clients (python
#      threads, one keep-alive connection each, every blob once per client); median of 3, ratio
#      goal <= 1.0.
# Both servers read from the page cache (the machine has the RAM for it): this measures the
# servers, not the disk. Prints a markdown table (also WORKDIR/results.md while it runs).
#   bench/bench_serve.sh        Environment: FERRY (default <repo>/build/ferry).
# Run on demand (not part of meson test). Temporary data (~4 GiB) lives in a mktemp directory
# removed at exit.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # start_registry, free_port
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FERRY="${FERRY:-$root/build/ferry}"
for prog in docker-registry skopeo curl python3 bc; do
  command -v "$prog" >/dev/null || { echo "bench: $prog not installed" >&2; exit 2; }
done
[ -x "$FERRY" ] || { echo "bench: no ferry binary at $FERRY (set FERRY)" >&2; exit 2; }
work="$(mktemp -d /tmp/ferry-bench-serve.XXXXXX)"
mkdir -p "$work/logs"
cp "$FERRY" "$work/ferry"
F="$work/ferry"

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

# Fixtures, written straight into the source registry's storage: big:v1 and small:v1.
python3 "$root/bench/fixtures.py" "$work/src/storage" big --out "$work/fx" 2>/dev/null
python3 "$root/bench/fixtures.py" "$work/src/storage" small --out "$work/fx" 2>/dev/null
start_registry src; A="$REG"
"$F" save -q --plain-http "$A/big:v1" "$A/small:v1" -o "$work/bundle.tar" >"$work/logs/save.log" 2>&1 ||
  { echo "bench: ferry save failed: $(tail -1 "$work/logs/save.log")" >&2; exit 1; }
kill "${pids[0]}"; wait "${pids[0]}" 2>/dev/null || true; pids=()
rm -rf "$work/src"   # the source is no longer needed: keep only the bundle and the two servers
start_registry far; B="$REG"
"$F" push -q --plain-http "$work/bundle.tar" "$B" >"$work/logs/push.log" 2>&1 ||
  { echo "bench: ferry push failed: $(tail -1 "$work/logs/push.log")" >&2; exit 1; }

"$F" serve "$work/bundle.tar" --integrity-only --listen 127.0.0.1:0 --access-log /dev/null \
  </dev/null >"$work/logs/serve.log" 2>&1 &
serve_pid=$!
pids+=($serve_pid)
S=""
for _ in $(seq 600); do
  S="$(sed -n 's|^ferry: serving .* at http://\([0-9.]*:[0-9]*\)/ from .*|\1|p' "$work/logs/serve.log" | head -1)"
  [ -n "$S" ] && break
  kill -0 "$serve_pid" 2>/dev/null || { echo "bench: ferry serve exited: $(tail -3 "$work/logs/serve.log")" >&2; exit 1; }
  sleep 0.1
done
[ -n "$S" ] || { echo "bench: ferry serve printed no startup line" >&2; exit 1; }
startup="$(grep -m1 '^ferry: serving' "$work/logs/serve.log")"

# The digests of small:v1's blobs (config and layers), for the parallel GETs.
awk '$4 != "manifest" {print $2, $3}' "$work/fx/small.blobs" >"$work/small.list"

# copy_big HOST NAME: seconds of one skopeo copy of big:v1 into a fresh oci: layout.
copy_big() {
  local out="$work/oci-$2" s e
  rm -rf "$out"
  sync
  s=$(date +%s.%N)
  skopeo copy -q --preserve-digests --src-tls-verify=false "docker://$1/big:v1" "oci:$out:v1" \
    >"$work/logs/copy-$2.log" 2>&1 || { echo "bench: skopeo copy from $2 failed: $(tail -2 "$work/logs/copy-$2.log")" >&2; exit 1; }
  e=$(date +%s.%N)
  rm -rf "$out"
  echo "$e - $s" | bc -l
}
# small_blobs HOST: seconds for 8 clients each GETting every blob of small:v1 once.
small_blobs() {
  python3 - "$1" "$work/small.list" <<'EOF'
import http.client, sys, threading, time
host, port = sys.argv[1].rsplit(":", 1)
blobs = [(d, int(n)) for d, n in (l.split() for l in open(sys.argv[2]))]
errors = []
def client(k):
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    order = blobs[k * 25 % len(blobs):] + blobs[:k * 25 % len(blobs)]  # clients start at different blobs
    for d, n in order:
        conn.request("GET", f"/v2/small/blobs/{d}")
        r = conn.getresponse()
        body = r.read()
        if r.status != 200 or len(body) != n:
            errors.append(f"{d}: HTTP {r.status}, {len(body)} bytes")
            conn.close()
            conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.close()
t0 = time.monotonic()
threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.monotonic() - t0
if errors:
    sys.exit(f"bench: {len(errors)} failed GETs, first: {errors[0]}")
print(f"{elapsed:.4f}")
EOF
}
median() { sort -n | sed -n 2p; }

: >"$work/big.serve"; : >"$work/big.registry"; : >"$work/small.serve"; : >"$work/small.registry"
for run in 1 2 3; do
  copy_big "$S" serve >>"$work/big.serve"
  copy_big "$B" registry >>"$work/big.registry"
done
for run in 1 2 3; do
  small_blobs "$S" >>"$work/small.serve"
  small_blobs "$B" >>"$work/small.registry"
done
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$serve_pid/status")

bs=$(median <"$work/big.serve"); br=$(median <"$work/big.registry")
ss=$(median <"$work/small.serve"); sr=$(median <"$work/small.registry")
runs() { tr '\n' ' ' <"$1" | awk '{for (i = 1; i <= NF; i++) printf "%s%.2f", (i > 1 ? ", " : ""), $i}'; }
{
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "$(skopeo --version); $(docker-registry --version 2>/dev/null | head -1)"
  echo "${startup#ferry: }"
  printf 'ferry serve peak RSS (VmHWM) after the runs: %.1f MiB\n' "$(echo "$hwm / 1024" | bc -l)"
  echo
  echo "| workload | ferry serve (median of 3) | docker-registry (median of 3) | ratio serve/registry (goal <= 1.0) |"
  echo "| --- | ---: | ---: | ---: |"
  printf '| skopeo copy 1 GiB image (4 x 256 MiB) to oci: | %.2f s (%s) | %.2f s (%s) | %.3f |\n' \
    "$bs" "$(runs "$work/big.serve")" "$br" "$(runs "$work/big.registry")" "$(echo "$bs / $br" | bc -l)"
  printf '| 200 x 64 KiB blobs, 8 parallel clients | %.2f s (%s) | %.2f s (%s) | %.3f |\n' \
    "$ss" "$(runs "$work/small.serve")" "$sr" "$(runs "$work/small.registry")" "$(echo "$ss / $sr" | bc -l)"
} | tee "$work/results.md"
