#!/usr/bin/env bash
# Peak memory (issue 18): peak RSS (GNU time, KiB) of ferry save, push and verify
# --integrity-only for
#   big    1 image, 4 x 256 MiB incompressible layers (1 GiB)
#   scale  1,000 images, 20 repositories x 50 tags, 18 layers of 1-4 KiB each (19,000 blobs
#          plus 1,000 manifests; the refs passed with save -f, one per line)
# saved into .tar and .tar.zst from a docker-registry, pushed from the .tar into a second
# docker-registry (storage on /dev/shm), verified in both formats.       goal: every row < 64 MiB
#   bench/bench_memory.sh        Environment: FERRY (default <repo>/build/ferry), SKIP_BIG=1.
# Run on demand (not part of meson test). Prints a markdown table; temporary data (~2.5 GiB on
# disk, ~1.1 GiB in /dev/shm) is removed at exit. Memory does not depend on timing, so one run
# each.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init memory
shm="$(mktemp -d /dev/shm/ferry-bench-memory.XXXXXX)"
extra_cleanup+=("$shm")

sets="scale"
[ "${SKIP_BIG:-0}" = 1 ] || sets="big scale"
src_storage="$work/src/storage"
for s in $sets; do
  python3 "$root/bench/fixtures.py" "$src_storage" "$s" --out "$work/fx" 2>>"$work/logs/fixtures.log"
done
start_registry src "$src_storage"; A="$REG"
start_registry dst "$shm/storage"; B="$REG"

rows=()
row() {  # row WHAT KEY
  local kib
  kib=$(tail -1 "$m/$2.rss")
  rows+=("| $1 | $(awk -v k="$kib" 'BEGIN {printf "%.1f MiB", k / 1024}') | < 64 MiB | $([ "$kib" -lt 65536 ] && echo "✓" || echo "✗") |")
}
for s in $sets; do
  sed "s|^|$A/|" "$work/fx/$s.refs" >"$work/$s.list"
  measure "save-$s-tar" "$F" save -q --plain-http -f "$work/$s.list" -o "$work/$s.tar"
  row "save $s → .tar" "save-$s-tar"
  measure "save-$s-zst" "$F" save -q --plain-http -f "$work/$s.list" -o "$work/$s.tar.zst"
  row "save $s → .tar.zst" "save-$s-zst"
  measure "push-$s" "$F" push -q --plain-http "$work/$s.tar" "$B/$s"
  row "push $s (.tar)" "push-$s"
  measure "verify-$s-tar" "$F" verify --integrity-only "$work/$s.tar"
  row "verify --integrity-only $s (.tar)" "verify-$s-tar"
  measure "verify-$s-zst" "$F" verify --integrity-only "$work/$s.tar.zst"
  row "verify --integrity-only $s (.tar.zst)" "verify-$s-zst"
  rm -f "$work/$s.tar" "$work/$s.tar.zst"
done

{
  echo "### Peak memory (bench/bench_memory.sh)"
  echo
  echo "$(machine_line); ferry $("$F" --version | head -1 | cut -d' ' -f2-)"
  echo
  echo "| command | peak RSS | goal | |"
  echo "| --- | --: | --- | --- |"
  printf '%s\n' "${rows[@]}"
} | tee "$work/results.md"
