# Shared by the bench/*.sh scripts (sourced, after `set -euo pipefail`; bench_serve.sh and
# bench_delta.sh use only start_registry and free_port, with their own work directory and cleanup).
#   bench_init NAME PROGRAM...: checks that PROGRAMs and $FERRY exist, makes the work directory
#     $work (with logs/ and m/), copies ferry to $F, removes $work and stops every pid in
#     $pids at exit;
#   start_registry NAME [STORAGE]: a docker-registry serving STORAGE (default
#     $work/NAME/storage) on 127.0.0.1:<free port>, its log in $work/NAME/registry.log
#     (appended), its address in $REG, its pid added to $pids;
#   measure KEY CMD...: wall seconds to $m/KEY.t and peak RSS (KiB, GNU time) to $m/KEY.rss; a
#     shell function is timed without RSS;
#   median < FILE, die MESSAGE.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FERRY="${FERRY:-$root/build/ferry}"
RUNS="${RUNS:-3}"
pids=()
extra_cleanup=()
die() { echo "bench: $*" >&2; exit 1; }
bench_init() {
  local name="$1" prog; shift
  for prog in docker-registry curl python3 bc /usr/bin/time "$@"; do
    command -v "$prog" >/dev/null || { echo "bench: $prog not installed" >&2; exit 2; }
  done
  [ -x "$FERRY" ] || { echo "bench: no ferry binary at $FERRY (set FERRY)" >&2; exit 2; }
  work="$(mktemp -d "/tmp/ferry-bench-$name.XXXXXX")"
  m="$work/m"
  mkdir -p "$work/logs" "$m"
  cp "$FERRY" "$work/ferry"
  F="$work/ferry"
  trap bench_cleanup EXIT
  export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}" no_proxy="127.0.0.1,localhost${no_proxy:+,$no_proxy}"
}
bench_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work" "${extra_cleanup[@]}"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
start_registry() {
  local dir="$work/$1" storage="${2:-$work/$1/storage}" port
  mkdir -p "$dir" "$storage"
  port="$(free_port)"
  cat >"$dir/config.yml" <<EOC
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: ferry-bench-$1
EOC
  docker-registry serve "$dir/config.yml" </dev/null >>"$dir/registry.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do
    [ "$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/v2/" || true)" = 200 ] && break
    sleep 0.1
  done
  REG="127.0.0.1:$port"
}
measure() {
  local key="$1" s e; shift
  sync
  s=$(date +%s.%N)
  if [ "$(type -t "$1")" = function ]; then
    "$@" >"$work/logs/$key.log" 2>&1 || die "$key failed: $(tail -2 "$work/logs/$key.log")"
  else
    /usr/bin/time -f '%M' -o "$m/$key.rss.tmp" "$@" >"$work/logs/$key.log" 2>&1 || die "$key failed: $(tail -2 "$work/logs/$key.log")"
    tail -1 "$m/$key.rss.tmp" >>"$m/$key.rss"
  fi
  e=$(date +%s.%N)
  echo "$e - $s" | bc -l >>"$m/$key.t"
}
median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
machine_line() {
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
}
