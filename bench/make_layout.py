#!/usr/bin/env python3
"""Writes a benchmark OCI layout: one image with N incompressible layers of SIZE MiB, as a
directory and as a metadata-first .tar (the order ferry writes). Usage:
  make_layout.py OUTDIR [--layers 4] [--mib 256]"""
import argparse, hashlib, io, json, os, tarfile

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--mib", type=int, default=256)
    a = ap.parse_args()
    d = os.path.join(a.out, "layout")
    os.makedirs(os.path.join(d, "blobs", "sha256"), exist_ok=True)
    blobs = []  # (digest, size, path)
    def put(data=None, path_src=None):
        dg = hashlib.sha256(data).hexdigest()
        p = os.path.join(d, "blobs", "sha256", dg)
        with open(p, "wb") as f:
            f.write(data)
        return dg, len(data)
    layers = []
    for i in range(a.layers):
        h = hashlib.sha256()
        tmp = os.path.join(d, "blobs", "sha256", f"tmp{i}")
        with open(tmp, "wb") as f:
            left = a.mib << 20
            while left:
                chunk = os.urandom(min(left, 8 << 20))
                h.update(chunk)
                f.write(chunk)
                left -= len(chunk)
        dg = h.hexdigest()
        os.replace(tmp, os.path.join(d, "blobs", "sha256", dg))
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + dg, "size": a.mib << 20})
    cfg = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    cdg, csz = put(cfg)
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + cdg, "size": csz},
                      "layers": layers}).encode()
    mdg, msz = put(man)
    index = json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + mdg, "size": msz, "annotations": {"io.containerd.image.name": "bench.local/big:v1",
        "org.opencontainers.image.ref.name": "v1"}}]}).encode()
    with open(os.path.join(d, "index.json"), "wb") as f:
        f.write(index)
    with open(os.path.join(d, "oci-layout"), "wb") as f:
        f.write(b'{"imageLayoutVersion":"1.0.0"}')
    order = ["oci-layout", "index.json", "blobs/sha256/" + mdg, "blobs/sha256/" + cdg] + \
            ["blobs/sha256/" + l["digest"][7:] for l in layers]
    with tarfile.open(os.path.join(a.out, "bundle.tar"), "w", format=tarfile.PAX_FORMAT) as t:
        for name in order:
            t.add(os.path.join(d, name), arcname=name)
    print(os.path.join(a.out, "bundle.tar"))

if __name__ == "__main__":
    main()
