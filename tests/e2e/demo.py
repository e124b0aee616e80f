#!/usr/bin/env python3
"""ferry walkthrough: two throwaway registries, a signed image with an SBOM, save -> inspect -> push,
then proof that every digest, tag and referrer link arrived.

Run via demo/demo.sh (uses $FERRY or build/ferry). Exit status: 0 when the graphs match."""

import json
import os
import shlex
import signal
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402
from seed import seed_fixture  # noqa: E402

BOLD, DIM, GREEN, RED, RESET = (("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m")
                                if sys.stdout.isatty() else ("",) * 5)


def step(text):
    print(f"\n{BOLD}== {text}{RESET}", flush=True)


def run(*args):
    shown = ["ferry"] + [str(a) for a in args]
    print(f"{DIM}$ {' '.join(shlex.quote(a) for a in shown)}{RESET}", flush=True)
    proc = R.run_ferry(*args)
    if proc.stdout:
        print(proc.stdout.rstrip(), flush=True)
    if proc.stderr:
        print(proc.stderr.rstrip(), file=sys.stderr, flush=True)
    if proc.returncode != 0:
        print(f"{RED}ferry exited with {proc.returncode}{RESET}", flush=True)
        sys.exit(1)
    return proc


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ferry = R.ferry_binary()
    if not os.access(ferry, os.X_OK):
        print(f"demo: ferry binary not found at {ferry} (build it, or set FERRY)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="ferry-demo-") as tmp, \
            R.Registry("source") as src, R.Registry("target") as dst:
        step(f"Two registries: source {src.host}, target {dst.host} (docker-registry, no referrers API)")
        fx = seed_fixture(src)
        ref = f"{src.host}/demo/app:v1"
        print(f"Seeded {ref} = {fx['app']}")
        print(f"  <- notation signature {fx['app_sig']}")
        print(f"  <- SPDX SBOM          {fx['app_sbom']}")
        print(f"       <- its signature {fx['app_sbom_sig']}")
        print("Referrers live in the source's fallback tags (sha256-<hex>): "
              + ", ".join(t for t in src.list_tags("demo/app") if R.is_fallback_tag(t)))

        bundle = os.path.join(tmp, "app.tar.zst")
        step("Save the image and all its referrers into one bundle")
        run("save", "--plain-http", ref, "-o", bundle)
        print(f"bundle: {bundle} ({os.path.getsize(bundle)} bytes)")

        step("Inspect the bundle (offline)")
        run("inspect", bundle)

        step(f"Push the bundle into the target under the namespace 'mirror'")
        run("push", "--plain-http", bundle, f"{dst.host}/mirror")

        step("Compare what is reachable in both registries")
        want = R.graph_of(src, "demo/app")
        got = R.graph_of(dst, "mirror/demo/app")
        print(f"source {src.host}/demo/app:")
        print(R.format_graph(want))
        print(f"target {dst.host}/mirror/demo/app:")
        print(R.format_graph(got))
        if want == got and not got["missing"]:
            print(f"\n{GREEN}{BOLD}MATCH{RESET}: {len(want['manifests'])} manifests, "
                  f"{len(want['blobs'])} blobs, {sum(len(v) for v in want['referrers'].values())} "
                  f"referrer links, tags {list(want['tags'])}")
            return 0
        print(f"\n{RED}{BOLD}MISMATCH{RESET}")
        print("source:", json.dumps(want, indent=1))
        print("target:", json.dumps(got, indent=1))
        return 1


if __name__ == "__main__":
    sys.exit(main())
