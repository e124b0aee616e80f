#!/usr/bin/env bash
# Delta bundles (issue 16): week 1 is a 1 GiB image (4 x 256 MiB incompressible layers), saved
# and pushed to the far side; in week 2 one layer changed (a new tag sharing the other three).
# Measured: the delta saved against `ferry inventory` of the far side, as a ratio to a full
# bundle of the same references and to what changed (the new layer plus manifests and config:
# goal ~1.0); time and peak RSS (GNU time) of inventory, save --have, verify --base (hashes the
# 768 MiB the delta leaves out, read from the week-1 bundle), verify --against and push of the
# delta (goal: RSS < 64 MiB, as issue 5).
#   bench/bench_delta.sh [WORKDIR]     (default: a new /tmp/ferry-bench-delta.XXXXXX)
# Environment: FERRY (default <repo>/build/ferry).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"  # start_registry, free_port
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FERRY="${FERRY:-$root/build/ferry}"
work="${1:-$(mktemp -d /tmp/ferry-bench-delta.XXXXXX)}"
mkdir -p "$work/logs"
command -v docker-registry >/dev/null || { echo "bench: docker-registry not installed" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "bench: GNU time (/usr/bin/time) not installed" >&2; exit 2; }
cp "$FERRY" "$work/ferry"
F="$work/ferry"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Fixtures: big:v1 (4 x 256 MiB), big:v2 = its first three layers and a new one.
if [ ! -f "$work/fx/big.blobs" ]; then
  python3 "$root/bench/fixtures.py" "$work/src/storage" big --out "$work/fx" 2>/dev/null
  python3 - "$root/bench" "$work/src/storage" "$work/fx" <<'EOF'
import json, sys
sys.path.insert(0, sys.argv[1])
import fixtures as F
st = F.Storage(sys.argv[2])
blobs = [l.split() for l in open(sys.argv[3] + "/big.blobs")]
old = [(d, int(n)) for r, d, n, k in blobs if k == "layer"]
hexd, n = st.put_random(256 << 20)
st.link_layer("big", hexd)
layers = [{"mediaType": F.LAYER, "digest": d, "size": n} for d, n in old[:3]]
layers.append({"mediaType": F.LAYER, "digest": "sha256:" + hexd, "size": n})
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"bench": "v2"}},
                  "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]}},
                 separators=(",", ":")).encode()
chex, cn = st.put_bytes(cfg)
st.link_layer("big", chex)
man = json.dumps({"schemaVersion": 2, "mediaType": F.MANIFEST,
                  "config": {"mediaType": F.CONFIG, "digest": "sha256:" + chex, "size": cn},
                  "layers": layers}, separators=(",", ":")).encode()
mhex, mn = st.put_bytes(man)
st.link_manifest("big", "v2", mhex)
open(sys.argv[3] + "/changed.bytes", "w").write(str(n + cn + mn))
EOF
fi
start_registry src; A="$REG"
start_registry far; B="$REG"
rm -f "$work"/*.tar "$work"/have.json

# measure NAME CMD...: wall seconds and peak RSS (KiB) of CMD into $work/logs/NAME.{log,m}.
measure() {
  local name="$1" s e; shift
  sync
  s=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$work/logs/$name.rss" "$@" >"$work/logs/$name.log" 2>&1 || {
    echo "bench: $name failed: $(tail -1 "$work/logs/$name.log")" >&2; exit 1; }
  e=$(date +%s.%N)
  printf '%s %s\n' "$(echo "$e - $s" | bc -l)" "$(tail -1 "$work/logs/$name.rss")" >"$work/logs/$name.m"
}
measure save-week1 "$F" save --plain-http "$A/big:v1" -o "$work/week1.tar"
measure push-week1 "$F" push --plain-http "$work/week1.tar" "$B"
measure inventory "$F" inventory --plain-http "$B" -o "$work/have.json"
measure save-delta "$F" save --plain-http "$A/big:v1" "$A/big:v2" --have "$work/have.json" -o "$work/delta.tar"
measure save-full "$F" save --plain-http "$A/big:v1" "$A/big:v2" -o "$work/full.tar"
measure verify-base "$F" verify --integrity-only "$work/delta.tar" --base "$work/week1.tar"
measure verify-against "$F" verify --integrity-only "$work/delta.tar" --against "$B" --plain-http
measure push-delta "$F" push --plain-http "$work/delta.tar" "$B"

delta=$(stat -c %s "$work/delta.tar"); full=$(stat -c %s "$work/full.tar"); changed=$(cat "$work/fx/changed.bytes")
row() {  # NAME LABEL
  read -r t rss <"$work/logs/$1.m"
  printf '| %-44s | %7.2f s | %6.1f MiB |\n' "$2" "$t" "$(echo "$rss / 1024" | bc -l)"
}
{
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  printf 'delta bundle %d bytes; full bundle of the same references %d bytes: ratio %.3f\n' "$delta" "$full" "$(echo "$delta / $full" | bc -l)"
  printf 'what changed (new layer + config + manifest) %d bytes: delta / changed = %.3f (goal ~1: the tar headers, index.json, the record)\n' \
    "$changed" "$(echo "$delta / $changed" | bc -l)"
  echo
  echo "| command | wall | peak RSS (goal < 64 MiB) |"
  echo "| --- | ---: | ---: |"
  row save-week1 "save week 1 (1 GiB)"
  row push-week1 "push week 1"
  row inventory "inventory of the far side"
  row save-delta "save week 2 --have (delta)"
  row save-full "save week 2 (full, for the ratio)"
  row verify-base "verify delta --base week1.tar (hashes 768 MiB)"
  row verify-against "verify delta --against the far side"
  row push-delta "push delta"
} | tee "$work/results.md"
