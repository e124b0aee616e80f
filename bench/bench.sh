#!/usr/bin/env bash
# ferry against its peers, side by side, against two local CNCF distribution registries.
#
#   bench/bench.sh [WORKDIR]            (default WORKDIR: a new /tmp/ferry-bench.XXXXXX)
#
# Environment: RUNS (default 3) alternating runs, medians reported; FERRY (default
# <repo>/build/ferry; copied into WORKDIR first, so a rebuild meanwhile does not mix binaries);
# SKIP_SCALE=1 skips the 1,000-image set; KEEP_FIXTURES=1 keeps registry A's storage in WORKDIR
# (a later run with the same WORKDIR reuses it instead of building it again).
#
# Fixtures (bench/fixtures.py writes them straight into registry A's storage):
#   big    1 image, 4 x 256 MiB incompressible layers (1 GiB)
#   small  1 image, 200 x 64 KiB layers
#   scale  1,000 images: 20 repositories x 50 tags, 18 layers of 1-4 KiB + config each
#          (20,000 blobs counting the manifests)
# Measured (page cache and registry A warm, outputs removed between runs, tool order
# alternating per run):
#   save   ferry save REF -o X.tar  vs  skopeo copy docker://REF oci-archive:X.tar   (goal <= 0.5)
#          ferry save               vs  curl --parallel --parallel-max 4 of the same blobs and
#                                       manifest into files                         (goal <= 1.3)
#   push   ferry push X.tar B/ferry-N  vs  skopeo copy oci-archive:X.tar docker://B/skopeo-N/..
#          (fresh repositories each run; registry B restarts on a new port each run, so
#          skopeo's blob-info cache cannot turn uploads into cross-repository mounts) (<= 0.7)
#   verify ferry verify --integrity-only big.tar  vs  openssl dgst -sha256 over the blob files,
#          big.tar.zst (written by ferry save) vs zstd -d -c; throughput ratios (goal >= 0.8)
#   RSS    peak RSS (GNU time) of ferry save/push/verify: big < 64 MiB, scale < 256 MiB
#   volumes ferry save big --max-size 300M (4 volumes), verify and push of big.tar.001, against
#          the same on one big.tar (time ratio), and their peak RSS (< 64 MiB; issue 16)
#   scale  ferry save of the 1,000 references in one command (vs curl of the same blobs), verify;
#          ferry push (for its RSS) in run 1 only, into a registry whose storage is on tmpfs
#          (on disk, the registry's fsyncs make it take 150-300 s)
#   resume ferry save big is killed (SIGKILL) once it has received half the bytes of a full save
#          (bytes_received of its connections, ss -ti) and run again; the bytes the re-run
#          downloads (registry A's log, http.response.written of its GETs) over the bytes of an
#          uninterrupted save (goal <= 0.55); the resumed bundle is verified
# Every measured command starts after `sync`; its wall time is taken around GNU time.
# Output: a machine line and a table on stdout; the same table in markdown in WORKDIR/results.md;
# each command's stdout/stderr in WORKDIR/logs/.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FERRY_SRC="${FERRY:-$root/build/ferry}"
RUNS="${RUNS:-3}"
SKIP_SCALE="${SKIP_SCALE:-0}"
KEEP_FIXTURES="${KEEP_FIXTURES:-0}"
export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"

die() { echo "bench: error: $*" >&2; exit 2; }
note() { echo "bench: $*" >&2; }

# ---------------------------------------------------------------------------- prerequisites
for tool in docker-registry skopeo curl zstd openssl python3 awk ss; do
  command -v "$tool" >/dev/null || die "$tool not found in PATH (Debian: apt-get install docker-registry skopeo curl zstd openssl python3 iproute2)"
done
[ -x /usr/bin/time ] && /usr/bin/time -f %M true >/dev/null 2>&1 || die "GNU time (/usr/bin/time) not found (Debian: apt-get install time)"
if [ -z "${FERRY:-}" ] && [ ! -x "$FERRY_SRC" ]; then
  # From a clean checkout: build ferry first (meson and ninja, as the README says).
  note "building ferry in $root/build"
  { [ -f "$root/build/build.ninja" ] || meson setup "$root/build" "$root" >/dev/null; } && meson compile -C "$root/build" ferry >/dev/null ||
    die "could not build ferry (see the README's build command)"
fi
[ -x "$FERRY_SRC" ] || die "ferry binary not found at $FERRY_SRC (build it, or set FERRY=/abs/path)"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer"

work="${1:-$(mktemp -d /tmp/ferry-bench.XXXXXX)}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
out="$work/out"          # everything a run writes; removed after each use
m="$work/m"              # measurements: KEY.t (seconds), KEY.rss (KiB), one line per run
logs="$work/logs"
rm -rf "$out" "$m" "$logs" "$work/regB" "$work/regC" "$work/results.md" "$work/results.txt"
mkdir -p "$out" "$m" "$logs"
cp "$FERRY_SRC" "$work/ferry"
F="$work/ferry"

# ---------------------------------------------------------------------------- registries
pidA=""; pidB=""; pidC=""; bgpid=""; shm=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [ -n "$bgpid" ] && kill -9 "$bgpid" 2>/dev/null || true
  for p in "$pidA" "$pidB" "$pidC"; do
    [ -n "$p" ] && kill "$p" 2>/dev/null && wait "$p" 2>/dev/null || true
  done
  for r in regA regB regC; do  # keep the registries' logs, compressed
    [ -f "$work/$r/registry.log" ] && gzip -1 -c "$work/$r/registry.log" >"$logs/$r.log.gz" 2>/dev/null || true
  done
  rm -rf "$out" "$work/regB" "$work/regC" "$work/ferry"
  [ -n "$shm" ] && rm -rf "$shm"
  [ "$KEEP_FIXTURES" = 1 ] && rm -f "$work/regA/registry.log"
  if [ "$KEEP_FIXTURES" != 1 ] && [ -d "$work/regA" ]; then
    local t=$SECONDS  # ~100,000 files: 20 s to minutes on a busy disk
    note "removing the fixtures ($work/regA; KEEP_FIXTURES=1 keeps them for the next run)"
    rm -rf "$work/regA" "$work/fx"
    note "removed in $((SECONDS - t)) s"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_registry NAME [STORAGE]: serves STORAGE (default WORKDIR/NAME/storage) on
# 127.0.0.1:<free port>, log in WORKDIR/NAME/registry.log (appended). Sets REG_PORT and REG_PID.
start_registry() {
  local name="$1" dir="$work/$1" storage="${2:-$work/$1/storage}" attempt code
  mkdir -p "$dir" "$storage"
  for attempt in 1 2 3; do
    REG_PORT="$(free_port)"
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $storage
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$REG_PORT
  secret: ferry-bench-$name
EOF
    docker-registry serve "$dir/config.yml" </dev/null >>"$dir/registry.log" 2>&1 &
    REG_PID=$!
    for _ in $(seq 200); do
      kill -0 "$REG_PID" 2>/dev/null || break
      code="$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$REG_PORT/v2/" || true)"
      [ "$code" = 200 ] && return 0
      sleep 0.1
    done
    kill "$REG_PID" 2>/dev/null || true
    wait "$REG_PID" 2>/dev/null || true
  done
  tail -20 "$dir/registry.log" >&2
  die "docker-registry ($name) did not start; log: $dir/registry.log"
}

stop_pid() {
  if [ -n "$1" ]; then kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi
}

# ---------------------------------------------------------------------------- fixtures
sets=(big small)
[ "$SKIP_SCALE" = 1 ] || sets+=(scale)
t0=$SECONDS
for s in "${sets[@]}"; do
  if [ -f "$work/fx/$s.blobs" ] && [ -d "$work/regA/storage" ]; then
    note "fixture $s: reusing $work/regA"
  else
    note "fixture $s: writing into registry A's storage"
    python3 "$root/bench/fixtures.py" "$work/regA/storage" "$s" --out "$work/fx"
  fi
done
note "fixtures ready in $((SECONDS - t0)) s"

start_registry regA; portA=$REG_PORT; pidA=$REG_PID
logA="$work/regA/registry.log"
A="127.0.0.1:$portA"
note "registry A at $A (pid $pidA)"

# Sanity: every fixture's first and last image answers with the expected manifest digest.
for s in "${sets[@]}"; do
  n="$(wc -l <"$work/fx/$s.refs")"
  for k in 1 "$n"; do
    ref="$(sed -n "${k}p" "$work/fx/$s.refs")"; repo="${ref%:*}"; tag="${ref##*:}"
    want="$(awk -v k="$k" '$4 == "manifest" && ++n == k {print $2}' "$work/fx/$s.blobs")"
    got="$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$A/v2/$repo/manifests/$tag" | sha256sum | cut -d' ' -f1)"
    [ "sha256:$got" = "$want" ] || die "registry A serves $ref as sha256:$got, expected $want"
  done
done

# Per set: blob files in A's storage (for openssl), a curl config (blobs and manifests), refs.
blobfile() { echo "$work/regA/storage/docker/registry/v2/blobs/sha256/${1:7:2}/${1:7}/data"; }
for s in "${sets[@]}"; do
  {
    echo 'header = "Accept: application/vnd.oci.image.manifest.v1+json"'
    awk -v a="$A" -v o="$out/curl" '
      $4 != "manifest" { printf "url = \"http://%s/v2/%s/blobs/%s\"\noutput = \"%s/%s\"\n", a, $1, $2, o, substr($2, 8) }' "$work/fx/$s.blobs"
    awk -v a="$A" -v o="$out/curl" '{ r=$0; sub(/:[^:]*$/, "", r); t=$0; sub(/.*:/, "", t);
      printf "url = \"http://%s/v2/%s/manifests/%s\"\noutput = \"%s/manifest-%d\"\n", a, r, t, o, NR }' "$work/fx/$s.refs"
  } >"$work/fx/$s.curl"
done
scale_refs=()
[ "$SKIP_SCALE" = 1 ] || mapfile -t scale_refs < <(sed "s|^|$A/|" "$work/fx/scale.refs")
mapfile -t big_files < <(awk '{print $2}' "$work/fx/big.blobs" | while read -r d; do blobfile "$d"; done)
big_bytes="$(awk '{s+=$3} END {print s}' "$work/fx/big.blobs")"

# Warm the page cache (registry A's storage, the binaries) and registry A itself (its blob
# descriptor cache): one untimed download of every fixture.
find "$work/regA/storage" -type f -exec cat {} + >/dev/null
"$F" --version >/dev/null; skopeo --version >/dev/null
t0=$SECONDS
for s in "${sets[@]}"; do
  mkdir -p "$out/curl"
  curl -sS -f --no-progress-meter --parallel --parallel-max 4 -K "$work/fx/$s.curl" || die "warm-up download of $s from registry A failed"
  rm -rf "$out/curl"
done
note "registry A warmed up in $((SECONDS - t0)) s"

# ---------------------------------------------------------------------------- measuring
run=0
# measure KEY CMD...: runs CMD under GNU time; appends wall seconds to $m/KEY.t and peak RSS
# (KiB) to $m/KEY.rss; CMD's stdout and stderr go to $logs/KEY.RUN.log. A failure is recorded as
# "fail" and reported, and the benchmark goes on.
measure() {
  local key="$1" s e rc=0; shift
  local log="$logs/$key.$run.log"
  sync  # start with no dirty pages: a tool's fsync must not pay for the previous tool's writes
  s=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$m/.rss" "$@" >"$log" 2>&1 || rc=$?
  e=$(date +%s.%N)
  if [ "$rc" -ne 0 ]; then
    echo fail >>"$m/$key.t"; echo fail >>"$m/$key.rss"
    note "FAILED (exit $rc): $key, run $run: $*"
    tail -5 "$log" | sed 's/^/bench:   | /' >&2
    return 0
  fi
  awk -v s="$s" -v e="$e" 'BEGIN {printf "%.4f\n", e - s}' >>"$m/$key.t"
  tail -1 "$m/.rss" >>"$m/$key.rss"
}
# alt "F ARGS" ...: calls the functions in this order on odd runs, in reverse on even runs.
alt() {
  local i
  if (( run % 2 )); then for ((i = 1; i <= $#; i++)); do ${!i}; done
  else for ((i = $#; i >= 1; i--)); do ${!i}; done; fi
}
median() {  # median of a file of numbers; "fail" if any run failed, "n/a" if none
  [ -s "$1" ] || { echo n/a; return; }
  grep -qx fail "$1" && { echo fail; return; }
  sort -g "$1" | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}
maximum() {
  [ -s "$1" ] || { echo n/a; return; }
  grep -qx fail "$1" && { echo fail; return; }
  sort -g "$1" | tail -1
}
logpos() { stat -c %s "$logA"; }
# served_bytes FROM TO REPO: bytes registry A wrote in answers to GETs under /v2/REPO/ logged
# between byte offsets FROM and TO of its log.
served_bytes() {
  tail -c +"$(($1 + 1))" "$logA" | head -c "$(($2 - $1))" | awk -v r="/v2/$3/" '
    /msg="response completed/ && /http.request.method=GET/ && (index($0, "http.request.uri=\"" r) || index($0, "http.request.uri=" r)) {
      if (match($0, /http.response.written=[0-9]+/)) s += substr($0, RSTART + 22, RLENGTH - 22) }
    END {print s + 0}'
}

save_ferry()  {
  local p0; p0=$(logpos)
  measure "save_$1.ferry" "$F" save --plain-http "$A/$1:v1" -o "$out/$1.tar"
  if [ "$1" = big ]; then  # what an uninterrupted save downloads: the resume ratio's denominator
    sleep 0.3; served_bytes "$p0" "$(logpos)" big >"$m/.total_big"
  fi
}
save_skopeo() { measure "save_$1.skopeo" skopeo copy --src-tls-verify=false "docker://$A/$1:v1" "oci-archive:$out/$1.skopeo.tar"; rm -f "$out/$1.skopeo.tar"; }
save_curl()   { rm -rf "$out/curl"; mkdir -p "$out/curl"
                measure "save_$1.curl" curl -sS -f --no-progress-meter --parallel --parallel-max 4 -K "$work/fx/$1.curl"; rm -rf "$out/curl"; }
push_ferry()  { measure "push_$1.ferry"  "$F" push --plain-http "$out/$1.tar" "$B/ferry-$run"; }
push_skopeo() { measure "push_$1.skopeo" skopeo copy --dest-tls-verify=false "oci-archive:$out/$1.tar:v1" "docker://$B/skopeo-$run/$1:v1"; }
verify_ferry()   { measure verify_tar.ferry "$F" verify --integrity-only "$out/big.tar"; }
verify_openssl() { measure verify_tar.openssl openssl dgst -sha256 "${big_files[@]}"; }
verify_zst_ferry() { measure verify_zst.ferry "$F" verify --integrity-only "$out/big.tar.zst"; }
verify_zst_zstd()  { measure verify_zst.zstd sh -c 'zstd -q -d -c "$1" >/dev/null' sh "$out/big.tar.zst"; }

# resume_big: a save of big is killed (SIGKILL) once it has received half the bytes of an
# uninterrupted save (the sum of bytes_received of the open TCP connections to registry A, from
# `ss -ti`; nothing else talks to A meanwhile), then the same command runs again.
resume_big() {
  local before mid after total target got=0 t0 t1 kill_ok=1
  rm -rf "$out"/resume.tar*
  total="$(cat "$m/.total_big" 2>/dev/null || true)"; [ "${total:-0}" -gt 0 ] || total=$big_bytes
  target=$((total / 2))
  sync
  before=$(logpos)
  t0=$(date +%s.%N)
  "$F" save --plain-http "$A/big:v1" -o "$out/resume.tar" >"$logs/resume_killed.$run.log" 2>&1 &
  bgpid=$!
  while kill -0 "$bgpid" 2>/dev/null; do
    got="$( (ss -tin "dport = :$portA" 2>/dev/null || true) | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^bytes_received:/) s += substr($i, 16)} END {print s + 0}')"
    [ "${got:-0}" -ge "$target" ] && break
    sleep 0.02
  done
  t1=$(date +%s.%N)
  kill -9 "$bgpid" 2>/dev/null || kill_ok=0
  wait "$bgpid" 2>/dev/null || true
  bgpid=""
  awk -v a="$t0" -v b="$t1" -v r="$got" -v t="$total" \
    'BEGIN {printf "bench: killed after %.2f s, %d bytes received (%.0f%% of a full save)\n", b - a, r, 100 * r / t}' \
    >>"$logs/resume_killed.$run.log"
  awk -v r="$got" -v t="$total" 'BEGIN {printf "%.4f\n", r / t}' >>"$m/resume.killed_read"
  sleep 1  # let the registry log the answers the kill cut short
  [ "$kill_ok" = 1 ] && [ ! -e "$out/resume.tar" ] || note "resume: the save finished before the kill (run $run)"
  ls -la "$out" >"$logs/resume_after_kill.$run.ls"
  mid=$(logpos)
  measure resume.ferry "$F" save --plain-http "$A/big:v1" -o "$out/resume.tar"
  sleep 0.3; after=$(logpos)
  awk -v b="$(served_bytes "$before" "$mid" big)" -v t="$total" 'BEGIN {printf "%.4f\n", b / t}' >>"$m/resume.killed_frac"
  awk -v b="$(served_bytes "$mid" "$after" big)" -v t="$total" 'BEGIN {printf "%.4f\n", b / t}' >>"$m/resume.ratio"
  # The resumed bundle must be whole and correct.
  if [ -f "$out/resume.tar" ] && "$F" verify --integrity-only "$out/resume.tar" >"$logs/resume_verify.$run.log" 2>&1; then
    echo ok >>"$m/resume.verify"
  else
    echo fail >>"$m/resume.verify"; note "resume: the resumed bundle does not verify (run $run), see $logs/resume_verify.$run.log"
  fi
  rm -rf "$out"/resume.tar*
}

t_bench=$SECONDS
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
for run in $(seq "$RUNS"); do
  note "run $run/$RUNS"
  stop_pid "$pidB"; pidB=""
  start_registry regB; pidB=$REG_PID; B="127.0.0.1:$REG_PORT"
  rm -rf "$out"; mkdir -p "$out"

  # big: save (.tar), push, verify; save .tar.zst, verify it; resume.
  alt "save_ferry big" "save_skopeo big" "save_curl big"
  alt "push_ferry big" "push_skopeo big"
  alt verify_ferry verify_openssl
  rm -f "$out/big.tar"
  measure save_zst.ferry "$F" save --plain-http "$A/big:v1" -o "$out/big.tar.zst"
  alt verify_zst_ferry verify_zst_zstd
  rm -f "$out/big.tar.zst"
  # big as volumes (issue 16): 4 volumes of at most 300 MiB; verify and push take the first.
  measure save_vol.ferry "$F" save --plain-http "$A/big:v1" -o "$out/vol.tar" --max-size 300M
  measure verify_vol.ferry "$F" verify --integrity-only "$out/vol.tar.001"
  measure push_vol.ferry "$F" push --plain-http "$out/vol.tar.001" "$B/vol-$run"
  rm -f "$out"/vol.tar.*
  resume_big

  # small: save, push.
  alt "save_ferry small" "save_skopeo small" "save_curl small"
  alt "push_ferry small" "push_skopeo small"
  rm -f "$out/small.tar"

  # scale: save 1,000 references at once, verify; no peer takes 1,000 images into one archive,
  # curl of the same blobs is given for reference. The push runs in the first run only, for its
  # peak RSS, into registry C whose storage is on tmpfs (/dev/shm): on disk the registry's
  # fsyncs (every upload, every link file) make the ~60,000 requests take 150-300 s.
  if [ "$SKIP_SCALE" != 1 ]; then
    scale_ferry() { measure save_scale.ferry "$F" save --plain-http -o "$out/scale.tar" "${scale_refs[@]}"; }
    scale_curl()  { rm -rf "$out/curl"; mkdir -p "$out/curl"
                    measure save_scale.curl curl -sS -f --no-progress-meter --parallel --parallel-max 4 -K "$work/fx/scale.curl"; rm -rf "$out/curl"; }
    alt scale_ferry scale_curl
    measure verify_scale.ferry "$F" verify --integrity-only "$out/scale.tar"
    if [ "$run" = 1 ]; then
      shm="$(mktemp -d /dev/shm/ferry-bench-regC.XXXXXX 2>/dev/null || echo "$work/regC/storage")"
      start_registry regC "$shm"; pidC=$REG_PID
      measure push_scale.ferry "$F" push --plain-http "$out/scale.tar" "127.0.0.1:$REG_PORT/ferry-$run"
      stop_pid "$pidC"; pidC=""; rm -rf "$shm"; shm=""
    fi
    rm -f "$out/scale.tar"
  fi
done
bench_secs=$((SECONDS - t_bench))
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---------------------------------------------------------------------------- report
rows=()  # what|ferry|peer|ratio|goal|verdict
fmt_s() { if [[ "$1" =~ ^[0-9.]+$ ]]; then awk -v x="$1" 'BEGIN {printf "%.3f s", x}'; elif [ "$1" != n/a ]; then echo "$1"; fi; }
verdict() {  # verdict VALUE OP GOAL
  [[ "$1" =~ ^[0-9.]+$ ]] || { echo "✗"; return; }
  awk -v v="$1" -v op="$2" -v g="$3" 'BEGIN {ok = (op == "<=") ? v <= g : (op == ">=") ? v >= g : v < g; print ok ? "✓" : "✗"}'
}
goal_txt() { case "$1" in "<=") echo "≤ $2";; ">=") echo "≥ $2";; "<") echo "< $2";; *) echo "";; esac; }
# row_time WHAT KEY_FERRY KEY_PEER OP GOAL: ratio = ferry time / peer time
# row_thru ...: ratio = peer time / ferry time (throughput of ferry relative to the peer)
row_ratio() {
  local kind="$1" what="$2" f p r="" v=""; f="$(median "$m/$3.t")"; p="$(median "$m/$4.t")"
  if [[ "$f" =~ ^[0-9.]+$ && "$p" =~ ^[0-9.]+$ ]]; then
    r="$(awk -v f="$f" -v p="$p" -v k="$kind" 'BEGIN {printf "%.2f", (k == "time") ? f / p : p / f}')"
  fi
  [ -n "${5:-}" ] && v="$(verdict "$r" "$5" "$6")"
  rows+=("$what|$(fmt_s "$f")|$(fmt_s "$p")|$r|$(goal_txt "${5:-}" "${6:-}")|$v")
}
row_time() { row_ratio time "$@"; }
row_thru() { row_ratio thru "$@"; }
row_rss() {  # row_rss WHAT KEY GOAL_MIB: the largest peak RSS over the runs
  local mx v mib=fail; mx="$(maximum "$m/$2.rss")"
  [[ "$mx" =~ ^[0-9]+$ ]] && mib="$(awk -v k="$mx" 'BEGIN {printf "%.1f", k / 1024}')"
  v="$(verdict "$mib" "<" "$3")"
  [[ "$mib" =~ ^[0-9.]+$ ]] && mib="$mib MiB"
  rows+=("$1|$mib| | |< $3 MiB|$v")
}

row_time "save big (1 GiB) vs skopeo → oci-archive" save_big.ferry save_big.skopeo "<=" 0.5
row_time "save small (200 × 64 KiB) vs skopeo → oci-archive" save_small.ferry save_small.skopeo "<=" 0.5
row_time "save big vs curl ×4 of its blobs" save_big.ferry save_big.curl "<=" 1.3
row_time "save small vs curl ×4 of its blobs" save_small.ferry save_small.curl "<=" 1.3
row_time "push big vs skopeo oci-archive → registry" push_big.ferry push_big.skopeo "<=" 0.7
row_time "push small vs skopeo oci-archive → registry" push_small.ferry push_small.skopeo "<=" 0.7
row_thru "verify --integrity-only big.tar vs openssl dgst (throughput)" verify_tar.ferry verify_tar.openssl ">=" 0.8
row_thru "verify --integrity-only big.tar.zst vs zstd -d (throughput)" verify_zst.ferry verify_zst.zstd ">=" 0.8
row_time "save big → .tar.zst (vs skopeo → oci-archive .tar)" save_zst.ferry save_big.skopeo
row_rss "peak RSS: save big (.tar)" save_big.ferry 64
row_rss "peak RSS: save big (.tar.zst)" save_zst.ferry 64
row_rss "peak RSS: push big" push_big.ferry 64
row_rss "peak RSS: verify big.tar" verify_tar.ferry 64
row_rss "peak RSS: verify big.tar.zst" verify_zst.ferry 64
row_time "save big as 4 volumes (--max-size 300M) vs save big.tar" save_vol.ferry save_big.ferry
row_time "verify big as volumes vs verify big.tar" verify_vol.ferry verify_tar.ferry
row_time "push big as volumes vs push big.tar" push_vol.ferry push_big.ferry
row_rss "peak RSS: save big as volumes" save_vol.ferry 64
row_rss "peak RSS: verify big as volumes" verify_vol.ferry 64
row_rss "peak RSS: push big as volumes" push_vol.ferry 64
if [ "$SKIP_SCALE" != 1 ]; then
  row_time "save scale (1,000 images, 20,000 blobs) vs curl ×4" save_scale.ferry save_scale.curl
  row_time "verify scale (time)" verify_scale.ferry -
  row_time "push scale (time; run 1 only, registry on tmpfs)" push_scale.ferry -
  row_rss "peak RSS: save scale" save_scale.ferry 256
  row_rss "peak RSS: push scale (run 1 only)" push_scale.ferry 256
  row_rss "peak RSS: verify scale" verify_scale.ferry 256
fi
rr="$(median "$m/resume.ratio")"
[[ "$rr" =~ ^[0-9.]+$ ]] && rr="$(awk -v x="$rr" 'BEGIN {printf "%.2f", x}')"
rows+=("resume: bytes the re-run downloads / a full save's (ferry: re-run time)|$(fmt_s "$(median "$m/resume.ferry.t")")| |$rr|≤ 0.55|$(verdict "$rr" "<=" 0.55)")

machine="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
os="$( (. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME") || uname -s), kernel $(uname -r)"
ver="$("$F" --version 2>/dev/null | head -1) ($(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$root" diff --quiet HEAD -- src include 2>/dev/null || echo '+local changes')), $(skopeo --version), $(docker-registry --version | awk '{print "docker-registry", $NF}'), $(curl --version | head -1 | cut -d' ' -f1-2), $(openssl version | cut -d' ' -f1-2), zstd $(zstd -V | grep -o 'v[0-9.]*' | head -1)"
pct() { if [[ "$1" =~ ^[0-9.]+$ ]]; then awk -v x="$1" 'BEGIN {printf "%.0f%%", 100 * x}'; else echo "?"; fi; }
killed_frac="$(median "$m/resume.killed_frac")"
notes=(
  "medians of $RUNS alternating runs, page cache warm; ratios of medians; peak RSS is the largest of the runs"
  "resume: the first save is killed once it has received half of a full save's bytes (it had received $(pct "$(median "$m/resume.killed_read")"), the registry had served it $(pct "$killed_frac") of them, median); the re-run's bytes are the registry's http.response.written for its GETs; the resumed bundle verifies: $(sort -u "$m/resume.verify" 2>/dev/null | paste -sd/ || echo '?')"
  "benchmark time: ${bench_secs} s for $RUNS runs (fixtures not counted); load average $load_start at the start, $load_end at the end (the benchmark itself accounts for about 1 to 2 on this 2-core machine; more means something else competed for the CPU)"
)

printf '%s\n' "${rows[@]}" >"$work/rows.txt"
printf '%s\n' "${notes[@]}" >"$work/notes.txt"
python3 - "$work" "machine: $machine; $os" "tools: $ver" <<'PY'
import sys
work, machine, tools = sys.argv[1:4]
rows = [l.rstrip("\n").split("|") for l in open(f"{work}/rows.txt", encoding="utf-8") if l.strip()]
notes = [l.strip() for l in open(f"{work}/notes.txt", encoding="utf-8") if l.strip()]
head = ["what", "ferry", "peer", "ratio", "goal", ""]
w = [max(len(r[i].strip()) for r in rows + [head]) for i in range(6)]
def line(r):
    return "  ".join(c.strip().ljust(w[i]) if i == 0 else c.strip().rjust(w[i]) for i, c in enumerate(r)).rstrip()
txt = [machine, tools, "", line(head)] + [line(r) for r in rows] + [""] + ["- " + n for n in notes]
md = [machine + "  ", tools, "", "| what | ferry | peer | ratio | goal | |", "| --- | --: | --: | --: | --- | --- |"]
md += ["| " + " | ".join(c.strip() for c in r) + " |" for r in rows] + [""] + ["- " + n for n in notes]
open(f"{work}/results.txt", "w", encoding="utf-8").write("\n".join(txt) + "\n")
open(f"{work}/results.md", "w", encoding="utf-8").write("\n".join(md) + "\n")
print("\n".join(txt))
PY
rm -f "$work/rows.txt" "$work/notes.txt"
note "results: $work/results.md (markdown), $work/results.txt; logs: $logs"
