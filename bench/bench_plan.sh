#!/usr/bin/env bash
# Planning cost (issue 18): does ferry's work grow as O(n log n) in the number of images?
# A synthetic bundle directory of N images (20 repositories; each image a config, two 1 KiB
# layers and one SBOM referrer with its own blob: 6 files per image) for N = 1,000 and 10,000:
#   verify   ferry verify --integrity-only DIR      (roots, graphs, referrers, every blob hashed)
#   plan     ferry push --dry-run DIR REGISTRY      (into an empty docker-registry: the plan of
#            20 new repositories, 10 requests or so, the rest is ferry's own work)
#   inspect  ferry inspect DIR
# Each timed RUNS times (default 3, median); goal: time(10,000) <= 12 x time(1,000), with
# peak RSS reported. Usage: bench/bench_plan.sh        Environment: FERRY, RUNS.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init plan

# layout N DIR: the synthetic bundle directory.
layout() {
  python3 - "$1" "$2" <<'EOF'
import hashlib, json, os, sys
n, out = int(sys.argv[1]), sys.argv[2]
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobs, d), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + d, "size": len(data)}
def js(o):
    return json.dumps(o, separators=(",", ":"), sort_keys=True).encode()
entries = []
for i in range(n):
    repo, tag = f"plan/r{i % 20:02d}", f"t{i // 20:05d}"
    layers = [dict(put(f"{i}-{k}".encode() * 100), mediaType="application/vnd.oci.image.layer.v1.tar") for k in (0, 1)]
    cfg = dict(put(js({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers",
               "diff_ids": [l["digest"] for l in layers]}})), mediaType="application/vnd.oci.image.config.v1+json")
    man = dict(put(js({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": cfg, "layers": layers})), mediaType="application/vnd.oci.image.manifest.v1+json")
    empty = dict(put(b"{}"), mediaType="application/vnd.oci.empty.v1+json")
    sbom = dict(put(js({"spdxVersion": "SPDX-2.3", "name": f"image-{i}"})), mediaType="application/spdx+json")
    ref = dict(put(js({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "artifactType": "application/spdx+json", "config": empty, "layers": [sbom],
                       "subject": man})), mediaType="application/vnd.oci.image.manifest.v1+json",
               artifactType="application/spdx+json")
    entries.append(dict(man, annotations={"io.containerd.image.name": f"bench.local/{repo}:{tag}",
                                          "org.opencontainers.image.ref.name": tag}))
    entries.append(ref)
with open(os.path.join(out, "index.json"), "wb") as f:
    f.write(js({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}))
with open(os.path.join(out, "oci-layout"), "wb") as f:
    f.write(b'{"imageLayoutVersion":"1.0.0"}')
EOF
}
for n in 1000 10000; do layout "$n" "$work/b$n"; done

start_registry reg "$work/storage"
R="$REG"

find "$work"/b* -type f -exec cat {} + >/dev/null  # page cache warm
for run in $(seq "$RUNS"); do
  for n in 1000 10000; do
    measure "verify-$n" "$F" verify --integrity-only -q "$work/b$n"
    measure "plan-$n" "$F" push --dry-run -q --plain-http "$work/b$n" "$R/run$run"
    measure "inspect-$n" "$F" inspect "$work/b$n"
  done
done

{
  machine_line
  echo "synthetic bundle directories: 1,000 and 10,000 images (+ one SBOM referrer each), 6 files per image"
  echo
  echo "| work | 1,000 images | 10,000 images | ratio (goal <= 12) | | peak RSS 1,000 / 10,000 |"
  echo "| --- | ---: | ---: | ---: | --- | ---: |"
  for k in verify plan inspect; do
    a=$(median <"$m/$k-1000.t"); b=$(median <"$m/$k-10000.t"); r=$(echo "$b / $a" | bc -l)
    ok=$([ "$(echo "$r <= 12" | bc -l)" = 1 ] && echo "✓" || echo "✗")
    ra=$(sort -n "$m/$k-1000.rss" | tail -1); rb=$(sort -n "$m/$k-10000.rss" | tail -1)
    printf '| %s | %.2f s | %.2f s | %.1f | %s | %.1f / %.1f MiB |\n' "$k" "$a" "$b" "$r" "$ok" \
      "$(echo "$ra / 1024" | bc -l)" "$(echo "$rb / 1024" | bc -l)"
  done
} | tee "$work/results.md"
