#!/usr/bin/env bash
# ferry demo: two loopback registries, a signed image with an SBOM, save -> inspect -> push,
# then proof that digests, tags and referrer links match. Needs docker-registry and zstd.
# Usage: demo/demo.sh            (ferry from $FERRY, else build/ferry)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FERRY="${FERRY:-$root/build/ferry}"
case "$FERRY" in /*) ;; *) FERRY="$PWD/$FERRY" ;; esac
if [[ ! -x "$FERRY" ]]; then
    echo "demo: ferry binary not found at $FERRY (build first: meson setup build && meson compile -C build)" >&2
    exit 1
fi
if ! command -v docker-registry >/dev/null; then
    echo "demo: docker-registry not installed (apt-get install docker-registry)" >&2
    exit 1
fi
export FERRY
# demo.py owns the registries and stops them on exit, error, Ctrl-C or SIGTERM.
exec python3 "$root/tests/e2e/demo.py" "$@"
