#!/usr/bin/env python3
"""Seeds the e2e fixture into a registry (deterministic: same digests every run).

  demo/app:v1    image (2 layers: ~100 KiB, ~1 MiB)
                 <- notation signature            (app_sig)
                 <- SPDX SBOM                     (app_sbom)
                      <- notation signature       (app_sbom_sig)
  demo/multi:v2  OCI index  linux/amd64 image     (multi_amd64)
                            linux/arm64 image     (multi_arm64)
                                 <- notation signature (multi_arm64_sig)
                 <- SPDX SBOM of the index        (multi_sbom)

Usage as a script: python3 tests/e2e/seed.py HOST[:PORT]   (prints the digests as JSON)
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import registry as R  # noqa: E402

APP = "demo/app"
MULTI = "demo/multi"


def seed_fixture(reg):
    """Returns a dict of descriptors/digests/blob lists (see module doc)."""
    fx = {"host": reg.host, "app_repo": APP, "multi_repo": MULTI,
          "app_tag": "v1", "multi_tag": "v2"}

    app_layers = [R.seeded_bytes("app-layer-0", 100 * 1024),
                  R.seeded_bytes("app-layer-1", 1024 * 1024)]
    app = R.push_image(reg, APP, "v1", app_layers, platform="linux/amd64")
    fx["app"] = app["digest"]
    fx["app_desc"] = R.subject_of(app)
    fx["app_layers"] = [R.sha256_digest(l) for l in app_layers]
    sig = R.push_signature(reg, APP, app, "app-sig")
    sbom = R.push_sbom(reg, APP, app, "demo-app")
    sbom_sig = R.push_signature(reg, APP, sbom, "app-sbom-sig")
    fx["app_sig"], fx["app_sbom"], fx["app_sbom_sig"] = \
        sig["digest"], sbom["digest"], sbom_sig["digest"]

    amd64_layers = [R.seeded_bytes("multi-amd64-layer-0", 64 * 1024),
                    R.seeded_bytes("multi-amd64-layer-1", 200 * 1024)]
    arm64_layers = [R.seeded_bytes("multi-arm64-layer-0", 64 * 1024),
                    R.seeded_bytes("multi-arm64-layer-1", 150 * 1024)]
    amd64 = R.push_image(reg, MULTI, None, amd64_layers, platform="linux/amd64")
    arm64 = R.push_image(reg, MULTI, None, arm64_layers, platform="linux/arm64")
    index = R.push_index(reg, MULTI, "v2", [amd64, arm64])
    arm64_sig = R.push_signature(reg, MULTI, arm64, "multi-arm64-sig")
    index_sbom = R.push_sbom(reg, MULTI, index, "demo-multi")
    fx.update({
        "multi": index["digest"], "multi_desc": R.subject_of(index),
        "multi_amd64": amd64["digest"], "multi_arm64": arm64["digest"],
        "multi_amd64_layers": [R.sha256_digest(l) for l in amd64_layers],
        "multi_arm64_layers": [R.sha256_digest(l) for l in arm64_layers],
        "multi_arm64_sig": arm64_sig["digest"], "multi_sbom": index_sbom["digest"],
    })
    fx["referrers"] = [fx[k] for k in ("app_sig", "app_sbom", "app_sbom_sig",
                                       "multi_arm64_sig", "multi_sbom")]
    return fx


class _RemoteRegistry(R.Registry):
    """Client-only view of an already running registry."""

    def __init__(self, host):
        super().__init__()
        self.host = host


def seed_signed_index(reg, repo, tag, ident, seed):
    """A multi-arch index (linux/amd64, linux/arm64) at ``repo:tag`` with a Notation JWS
    signature by ``ident`` (a pki.py identity) as its referrer. Returns the descriptors:
    {"index", "amd", "arm", "sig"}."""
    import notary_sign as N  # noqa: E402  (needs openssl; only callers that sign import it)
    import pki as P  # noqa: E402
    amd = R.push_image(reg, repo, None, [R.seeded_bytes(f"{seed}-amd", 20000)], platform="linux/amd64")
    arm = R.push_image(reg, repo, None, [R.seeded_bytes(f"{seed}-arm", 30000)], platform="linux/arm64")
    index = R.push_index(reg, repo, tag, [amd, arm])
    data, mt = N.sign("jws", R.subject_of(index), ident)
    sig = R.push_referrer(reg, repo, index, N.NOTARY_SIGNATURE, data, mt,
                          {N.THUMBPRINT: json.dumps(ident.thumbprints),
                           "org.opencontainers.image.created": P.SIGNING_TIME})
    return {"index": index, "amd": amd, "arm": arm, "sig": sig}


def main(argv):
    if len(argv) != 2:
        print("usage: seed.py HOST[:PORT]", file=sys.stderr)
        return 2
    fx = seed_fixture(_RemoteRegistry(argv[1]))
    print(json.dumps(fx, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
