#!/usr/bin/env python3
"""ferry walkthrough: two throwaway registries, an image with an SBOM, both signed (Notary Project
JWS and COSE, made with a throwaway PKI), save with the trust material carried -> inspect ->
verify offline -> push, then proof that every digest, tag and referrer link arrived.

Run via demo/demo.sh (uses $FERRY or build/ferry). Exit status: 0 when the graphs match."""

import json
import os
import shlex
import shutil
import signal
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402
import pki as P  # noqa: E402
import notary_sign as N  # noqa: E402

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


def now_rfc3339():
    return P.rfc3339(P.datetime.datetime.now(P.datetime.timezone.utc).replace(microsecond=0))


def push_notation_signature(reg, repo, subject, identity, envelope):
    """A real Notary Project signature of ``subject`` (signed now), pushed as its referrer."""
    when = now_rfc3339()
    env, media_type = N.sign(envelope, subject, identity, signing_time=when)
    ann = {R.NOTATION_THUMBPRINT: json.dumps(identity.thumbprints),
           "org.opencontainers.image.created": when}
    return R.push_referrer(reg, repo, subject, R.NOTATION_SIGNATURE, env, media_type, ann)


def seed_signed(reg, pki):
    """demo/app:v1 <- JWS signature, <- SPDX SBOM <- COSE signature. Returns the digests."""
    signer = pki["ec256"]
    layers = [R.seeded_bytes("app-layer-0", 100 * 1024), R.seeded_bytes("app-layer-1", 1024 * 1024)]
    app = R.push_image(reg, "demo/app", "v1", layers, platform="linux/amd64")
    sig = push_notation_signature(reg, "demo/app", app, signer, "jws")
    sbom = R.push_sbom(reg, "demo/app", app, "demo-app")
    sbom_sig = push_notation_signature(reg, "demo/app", sbom, signer, "cose")
    return {"app": app["digest"], "app_sig": sig["digest"], "app_sbom": sbom["digest"],
            "app_sbom_sig": sbom_sig["digest"], "signer": signer.subject}


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ferry = R.ferry_binary()
    if not os.access(ferry, os.X_OK):
        print(f"demo: ferry binary not found at {ferry} (build it, or set FERRY)", file=sys.stderr)
        return 1
    if not P.OPENSSL or not shutil.which(P.OPENSSL):
        print("demo: openssl not found (apt-get install openssl)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="ferry-demo-") as tmp, \
            R.Registry("source") as src, R.Registry("target") as dst:
        step("A throwaway PKI (root CA, intermediate, ECDSA P-256 signing certificate) with openssl")
        pki = P.make_pki(os.path.join(tmp, "pki"), ["ec256"])
        store = P.write_truststore(os.path.join(tmp, "truststore"), {"ca": {"demo": [pki.root]}})
        policy = P.write_trust_policy(os.path.join(tmp, "trustpolicy.json"),
                                      P.statement(name="demo", stores=("ca:demo",)))
        print(f"trust store {store} (x509/ca/demo: {pki.root.subject})")
        print(f"trust policy {policy} (every repository, level strict)")

        step(f"Two registries: source {src.host}, target {dst.host} (docker-registry, no referrers API)")
        fx = seed_signed(src, pki)
        ref = f"{src.host}/demo/app:v1"
        print(f"Seeded {ref} = {fx['app']}")
        print(f"  <- Notation signature (JWS)  {fx['app_sig']}")
        print(f"  <- SPDX SBOM                 {fx['app_sbom']}")
        print(f"       <- its signature (COSE) {fx['app_sbom_sig']}")
        print(f"signed by {fx['signer']}")
        print("Referrers live in the source's fallback tags (sha256-<hex>): "
              + ", ".join(t for t in src.list_tags("demo/app") if R.is_fallback_tag(t)))

        bundle = os.path.join(tmp, "app.tar.zst")
        step("Save the image, all its referrers and the trust material into one bundle")
        saved = run("save", "--plain-http", ref, "-o", bundle,
                    "--trust-policy", policy, "--trust-store", store)
        print(f"bundle: {bundle} ({os.path.getsize(bundle)} bytes)")
        pin = trust_pin(saved.stdout + saved.stderr)

        step("Inspect the bundle (offline)")
        run("inspect", bundle)

        step("Verify offline with the trust material the bundle carries, pinned by its digest")
        run("verify", "--trust-pin", pin, "--require-referrer-signatures", bundle)

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


def trust_pin(save_output):
    """The trust material's digest, as ``ferry save`` prints it (handed over out of band)."""
    for line in save_output.splitlines():
        if line.startswith("trust pin: sha256:"):
            return "sha256:" + line.split("sha256:", 1)[1].split()[0].rstrip(").,")
    print(f"{RED}ferry save did not print the trust material's digest{RESET}")
    sys.exit(1)


if __name__ == "__main__":
    sys.exit(main())
