#!/usr/bin/env bash
# Integrity throughput of `ferry verify --integrity-only` on a 1 GiB bundle (4 x 256 MiB
# incompressible layers), as a ratio to `openssl dgst -sha256` over the same blobs, and
# ferry's peak RSS. Run on demand: bench/bench_verify.sh [WORKDIR]
# Goals (issue 3): ratio >= 0.8 for .tar; peak RSS < 64 MiB.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FERRY="${FERRY:-$root/build/ferry}"
work="${1:-$(mktemp -d /tmp/ferry-bench-verify.XXXXXX)}"
runs="${RUNS:-5}"
[ -f "$work/bundle.tar" ] || python3 "$root/bench/make_layout.py" "$work" >/dev/null
command -v zstd >/dev/null && [ ! -f "$work/bundle.tar.zst" ] && zstd -q -T0 -3 "$work/bundle.tar" -o "$work/bundle.tar.zst"
bytes=$(du -cb "$work"/layout/blobs/sha256/* | tail -1 | cut -f1)

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
secs() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }

# Warm the page cache, then alternate the runs.
cat "$work/bundle.tar" "$work"/layout/blobs/sha256/* >/dev/null
t_ossl=(); t_tar=(); t_dir=(); t_zst=(); t_zstd=()
for _ in $(seq "$runs"); do
  t_ossl+=("$(secs openssl dgst -sha256 "$work"/layout/blobs/sha256/*)")
  t_tar+=("$(secs "$FERRY" verify --integrity-only "$work/bundle.tar")")
  t_dir+=("$(secs "$FERRY" verify --integrity-only "$work/layout")")
  if [ -f "$work/bundle.tar.zst" ]; then
    t_zstd+=("$(secs zstd -d -c "$work/bundle.tar.zst")")
    t_zst+=("$(secs "$FERRY" verify --integrity-only "$work/bundle.tar.zst")")
  fi
done
m_ossl=$(printf '%s\n' "${t_ossl[@]}" | median)
m_tar=$(printf '%s\n' "${t_tar[@]}" | median)
m_dir=$(printf '%s\n' "${t_dir[@]}" | median)
rss=$(/usr/bin/time -v "$FERRY" verify --integrity-only "$work/bundle.tar" 2>&1 >/dev/null | awk -F: '/Maximum resident/ {gsub(/ /,"",$2); print $2}')
gbps() { echo "scale=3; $bytes / $1 / 1000000000" | bc -l; }
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "blobs: $bytes bytes; medians of $runs alternating runs"
printf 'openssl dgst -sha256 (blobs)        %6.3f s  %s GB/s\n' "$m_ossl" "$(gbps "$m_ossl")"
printf 'ferry verify --integrity-only .tar  %6.3f s  %s GB/s  ratio %.2f (goal >= 0.8)\n' "$m_tar" "$(gbps "$m_tar")" "$(echo "$m_ossl / $m_tar" | bc -l)"
printf 'ferry verify --integrity-only dir   %6.3f s  %s GB/s  ratio %.2f\n' "$m_dir" "$(gbps "$m_dir")" "$(echo "$m_ossl / $m_dir" | bc -l)"
if [ ${#t_zst[@]} -gt 0 ]; then
  m_zstd=$(printf '%s\n' "${t_zstd[@]}" | median)
  m_zst=$(printf '%s\n' "${t_zst[@]}" | median)
  printf 'zstd -d (bundle.tar.zst)            %6.3f s\n' "$m_zstd"
  printf 'ferry verify --integrity-only .zst  %6.3f s  ratio to zstd -d %.2f (goal >= 0.8)\n' "$m_zst" "$(echo "$m_zstd / $m_zst" | bc -l)"
fi
echo "peak RSS of ferry verify (.tar): ${rss} KiB (goal < 65536)"
