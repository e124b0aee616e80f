#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into tests/fuzz/corpus/<target>/ (committed; run
again to regenerate). Signatures come from the tests' own PKI and independent signer
(tests/e2e/pki.py, notary_sign.py); nothing is taken from ../shared.

corpus/sigstore_root and corpus/rekor are not written here: they hold a trusted_root.json and
the bundle-good tlog entry, body and checkpoint of the Sigstore vectors generator (public keys
and certificates only), whose log key fuzz_rekor.cpp embeds so that the seeds verify."""
import io
import json
import os
import sys
import tarfile
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import notary_sign as N  # noqa: E402
import pki as P  # noqa: E402

OUT = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def digest(b):
    return N.sha256_digest(b)


H = "a" * 64
put("reference", "tag", "docker.io/library/alpine:3.19")
put("reference", "digest", f"localhost:5000/team/app@sha256:{H}")
put("reference", "both", f"ghcr.io/o/r:v1@sha256:{H}")
put("reference", "short", "alpine")
put("reference", "platform", "linux/arm64/v8")

config = b'{"architecture":"amd64","os":"linux"}'
layer = b"layer bytes"
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": N.descriptor("application/vnd.oci.image.config.v1+json", config),
                       "layers": [N.descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
                       "subject": N.descriptor("application/vnd.oci.image.manifest.v1+json", b"{}"),
                       "annotations": {"a": "b"}}, separators=(",", ":")).encode()
index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": [dict(N.descriptor("application/vnd.oci.image.manifest.v1+json", manifest),
                                       platform={"os": "linux", "architecture": "arm64", "variant": "v8"})]},
                   separators=(",", ":")).encode()
put("manifest", "oci-manifest", b"\x00" + manifest)
put("manifest", "oci-index", b"\x01" + index)
put("manifest", "docker-manifest", b"\x02" + manifest.replace(b"vnd.oci.image.manifest.v1", b"vnd.docker.distribution.manifest.v2"))

put("www_authenticate", "bearer", 'Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:team/app:pull,push"')
put("www_authenticate", "several", 'Basic realm="x", Negotiate abc==, Bearer realm="a\\"b",error="insufficient_scope"')

put("trust_policy", "policy", json.dumps(P.trust_policy(
    P.statement("strict", scopes=("registry.example/app",), level="strict", stores=("ca:ferry",)),
    P.statement("audit", scopes=("*",), level="audit", stores=("ca:ferry", "tsa:tsa")))))

with tempfile.TemporaryDirectory() as d:
    pki = P.make_pki(d, leaf_specs=["rsa2048"])
    leaf = next(iter(pki.leaves.values()))
    target = N.descriptor("application/vnd.oci.image.manifest.v1+json", manifest)
    put("jws", "envelope", N.sign_jws(target, leaf, expiry="2099-01-01T00:00:00Z"))
    put("cose", "envelope", N.sign_cose(target, leaf))

# A small bundle: oci-layout, index.json, the manifest, config and layer.
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
    def add(name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    plain = json.loads(manifest)
    del plain["subject"]
    m = json.dumps(plain, separators=(",", ":")).encode()
    add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add("index.json", json.dumps({"schemaVersion": 2, "manifests": [dict(
        N.descriptor("application/vnd.oci.image.manifest.v1+json", m),
        annotations={"org.opencontainers.image.ref.name": "v1"})]}).encode())
    for b in (m, config, layer):
        add("blobs/sha256/" + digest(b)[7:], b)
put("tar", "bundle.tar", buf.getvalue())
print("corpora written to", OUT)
