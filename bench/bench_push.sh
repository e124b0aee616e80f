#!/usr/bin/env bash
# ferry push against the registry's own limit, and cross-repository mounts (issue 18).
#   1. Yardstick: curl uploading the same blobs at the same concurrency (4) as ferry push:
#      one `curl --parallel --parallel-max 4` of every POST /v2/<repo>/blobs/uploads/, one of
#      every monolithic PUT <location>&digest=<d> (the blob files straight from the source
#      registry's storage), one of every manifest PUT. No HEAD, no proof, no retry: the least
#      any pusher must do. Against it, `ferry push -q BUNDLE.tar` (HEADs, uploads, manifests,
#      tags, and the proof that re-reads the destination). Fresh repositories each run,
#      alternating order, medians of RUNS (default 3):
#        big    1 image, 4 x 256 MiB incompressible layers (1 GiB)
#        small  1 image, 200 x 64 KiB layers
#        scale  1,000 images, 20 repositories x 50 tags, 18 layers of 1-4 KiB (SKIP_SCALE=1
#               skips it; one run each)                                        goal <= 1.2
#      The destination registry's storage is on tmpfs (/dev/shm): docker-registry fsyncs every
#      upload, and on disk that, not the pusher, is what the scale set measures.
#   2. Mounts: 8 images in 8 repositories on one 64 MiB base (4 x 16 MiB) plus 4 MiB of their
#      own, saved one bundle per image (8 transfers) and pushed one after the other into a
#      registry behind a counting proxy: without --have (every push uploads the base again),
#      and with `ferry inventory` of the destination before each push and `push --have`.
#      Bytes the registry received (client to server, headers included) over the unique bytes
#      of the 8 images (blobs and manifests)                                    goal <= 1.01
#   bench/bench_push.sh        Environment: FERRY (default <repo>/build/ferry), RUNS, SKIP_SCALE.
# Run on demand (not part of meson test). Prints a markdown table (WORKDIR/results.md while it
# runs); temporary data (~3 GiB on disk, ~1.5 GiB in /dev/shm) is removed at exit.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init push
shm="$(mktemp -d /dev/shm/ferry-bench-push.XXXXXX)"
extra_cleanup+=("$shm")

# ---------------------------------------------------------------------------- fixtures
sets="big small"
[ "${SKIP_SCALE:-0}" = 1 ] || sets="$sets scale"
src_storage="$work/src/storage"
for s in $sets family; do
  python3 "$root/bench/fixtures.py" "$src_storage" "$s" --out "$work/fx" 2>>"$work/logs/fixtures.log"
done
start_registry src "$src_storage"; A="$REG"
blob_file() { local h="${1#sha256:}"; echo "$src_storage/docker/registry/v2/blobs/sha256/${h:0:2}/$h/data"; }
for s in $sets; do
  mapfile -t refs <"$work/fx/$s.refs"
  "$F" save -q --plain-http "${refs[@]/#/$A/}" -o "$work/$s.tar" >"$work/logs/save-$s.log" 2>&1 ||
    die "ferry save $s failed: $(tail -1 "$work/logs/save-$s.log")"
done
mapfile -t family <"$work/fx/family.refs"
for i in "${!family[@]}"; do
  "$F" save -q --plain-http "$A/${family[$i]}" -o "$work/family-$i.tar" >"$work/logs/save-family-$i.log" 2>&1 ||
    die "ferry save ${family[$i]} failed: $(tail -1 "$work/logs/save-family-$i.log")"
done
start_registry dst "$shm/storage"; B="$REG"

# ---------------------------------------------------------------------------- yardstick
# curl_push SET PREFIX: uploads SET's blobs into B under PREFIX/<repo>, then its manifests
# (tagged as in SET.refs, the n-th manifest line being the n-th image).
curl_push() {
  local set="$1" prefix="$2" dir="$work/curl-$1"
  rm -rf "$dir"; mkdir -p "$dir"
  # 1. Upload sessions, one per distinct (repository, blob).
  awk '$4 != "manifest" && !seen[$1 " " $2]++ {print $1, $2}' "$work/fx/$set.blobs" >"$dir/blobs"
  awk -v b="$B" -v p="$prefix" '{printf "url = \"http://%s/v2/%s/%s/blobs/uploads/?bench=%s\"\noutput = /dev/null\n", b, p, $1, $2}' \
    "$dir/blobs" >"$dir/post.cfg"
  curl -sS --fail --parallel --parallel-max 4 -X POST -H 'Content-Length: 0' -K "$dir/post.cfg" \
    -w '%{url} %header{location}\n' >"$dir/locations" || die "curl POST ($set) failed"
  # 2. Monolithic PUTs of the blob files.
  python3 - "$dir/locations" "$B" "$src_storage" >"$dir/put.cfg" <<'EOF'
import sys, urllib.parse
locs, host, storage = sys.argv[1:]
for line in open(locs):
    url, loc = line.split()
    digest = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["bench"][0]
    if loc.startswith("/"):
        loc = f"http://{host}{loc}"
    h = digest[len("sha256:"):]
    sep = "&" if "?" in loc else "?"
    print(f'url = "{loc}{sep}digest={digest}"')
    print(f'upload-file = "{storage}/docker/registry/v2/blobs/sha256/{h[:2]}/{h}/data"')
    print("output = /dev/null")
EOF
  curl -sS --fail --parallel --parallel-max 4 -H 'Content-Type: application/octet-stream' -K "$dir/put.cfg" ||
    die "curl PUT ($set) failed"
  # 3. Manifests, after every blob.
  awk '$4 == "manifest" {print $2}' "$work/fx/$set.blobs" | paste -d' ' "$work/fx/$set.refs" - |
    while read -r ref digest; do
      printf 'url = "http://%s/v2/%s/%s/manifests/%s"\nupload-file = "%s"\noutput = /dev/null\n' \
        "$B" "$prefix" "${ref%%:*}" "${ref#*:}" "$(blob_file "$digest")"
    done >"$dir/manifests.cfg"
  curl -sS --fail --parallel --parallel-max 4 -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    -K "$dir/manifests.cfg" || die "curl manifest PUT ($set) failed"
}
ferry_push() { measure "ferry-$1" "$F" push -q --plain-http "$work/$1.tar" "$B/ferry-$2"; }
yard_push() { measure "curl-$1" curl_push "$1" "curl-$2"; }
for s in $sets; do
  runs="$RUNS"; [ "$s" = scale ] && runs=1
  for run in $(seq "$runs"); do
    if [ $((run % 2)) = 1 ]; then ferry_push "$s" "$s-$run"; yard_push "$s" "$s-$run"
    else yard_push "$s" "$s-$run"; ferry_push "$s" "$s-$run"; fi
  done
done

# ---------------------------------------------------------------------------- mounts
# A TCP proxy in front of B that counts the bytes clients send; after each connection closes
# it writes the running total to $work/received.
python3 - "$B" "$work/received" >"$work/proxy.port" 2>"$work/logs/proxy.log" <<'EOF' &
import os, socket, sys, threading
host, port = sys.argv[1].rsplit(":", 1)
out = sys.argv[2]
lock = threading.Lock()
total = [0]
def save():
    with open(out + ".tmp", "w") as f:
        f.write(str(total[0]))
    os.replace(out + ".tmp", out)
def pipe(a, b, count):
    try:
        while True:
            data = a.recv(1 << 20)
            if not data:
                break
            if count:
                with lock:
                    total[0] += len(data)
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
def serve(client):
    upstream = socket.create_connection((host, int(port)))
    t = threading.Thread(target=pipe, args=(upstream, client, False))
    t.start()
    pipe(client, upstream, True)
    t.join()
    client.close(); upstream.close()
    with lock:
        save()
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0)); ls.listen(64)
save()
print(ls.getsockname()[1], flush=True)
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
pids+=($!)
for _ in $(seq 100); do [ -s "$work/proxy.port" ] && break; sleep 0.1; done
P="127.0.0.1:$(cat "$work/proxy.port")"
received() { sleep 0.3; cat "$work/received"; }
unique=$(awk '!seen[$2]++ {n += $3} END {print n}' "$work/fx/family.blobs")
family_push() {  # family_push PREFIX [--have]: the 8 bundles one after the other; prints bytes received
  local before after i
  before=$(received)
  for i in "${!family[@]}"; do
    if [ "${2:-}" = --have ]; then
      "$F" inventory -q --plain-http "$P/$1" -o "$work/have.json" >>"$work/logs/mounts-$1.log" 2>&1 ||
        die "ferry inventory $P/$1 failed: $(tail -1 "$work/logs/mounts-$1.log")"
      "$F" push -q --plain-http --have "$work/have.json" "$work/family-$i.tar" "$P/$1" >>"$work/logs/mounts-$1.log" 2>&1
    else
      "$F" push -q --plain-http "$work/family-$i.tar" "$P/$1" >>"$work/logs/mounts-$1.log" 2>&1
    fi || die "ferry push family-$i.tar to $P/$1 failed: $(tail -1 "$work/logs/mounts-$1.log")"
  done
  after=$(received)
  echo $((after - before))
}
plain_bytes=$(family_push plain)
have_bytes=$(family_push have --have)

# ---------------------------------------------------------------------------- report
runs_of() { tr '\n' ' ' <"$1" | awk '{for (i = 1; i <= NF; i++) printf "%s%.2f", (i > 1 ? ", " : ""), $i}'; }
mib() { echo "$1 / 1048576" | bc -l | xargs printf '%.1f MiB'; }
check() { if [ "$(echo "$1" | bc -l)" = 1 ]; then echo "✓"; else echo "✗"; fi; }
{
  machine_line
  echo "$(curl --version | head -1 | cut -d' ' -f1-2); $(docker-registry --version 2>/dev/null | head -1); destination storage on tmpfs"
  echo
  echo "| push (concurrency 4) | ferry push | curl yardstick | ratio ferry/curl | goal | | ferry peak RSS |"
  echo "| --- | ---: | ---: | ---: | --- | --- | ---: |"
  for s in $sets; do
    f=$(median <"$m/ferry-$s.t"); c=$(median <"$m/curl-$s.t"); r=$(echo "$f / $c" | bc -l)
    rss=$(sort -n "$m/ferry-$s.rss" | tail -1)
    if [ "$s" = scale ]; then goal="≤ 1.2"; ok=$(check "$r <= 1.2"); else goal="(reported)"; ok=""; fi
    printf '| %s | %.2f s (%s) | %.2f s (%s) | %.2f | %s | %s | %s |\n' "$s" "$f" "$(runs_of "$m/ferry-$s.t")" \
      "$c" "$(runs_of "$m/curl-$s.t")" "$r" "$goal" "$ok" "$(mib $((rss * 1024)))"
  done
  echo
  echo "| 8 bundles of 8 images on one base, pushed one after the other | bytes the registry received | over the unique bytes ($(mib "$unique")) | goal | |"
  echo "| --- | ---: | ---: | --- | --- |"
  r=$(echo "$plain_bytes / $unique" | bc -l)
  printf '| ferry push (no inventory: the base is uploaded 8 times) | %s | %.2f | (reported) | |\n' "$(mib "$plain_bytes")" "$r"
  r=$(echo "$have_bytes / $unique" | bc -l)
  printf '| ferry inventory + ferry push --have (the base is mounted) | %s | %.3f | ≤ 1.01 | %s |\n' "$(mib "$have_bytes")" "$r" "$(check "$r <= 1.01")"
} | tee "$work/results.md"
