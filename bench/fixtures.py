#!/usr/bin/env python3
"""Benchmark fixtures for bench/bench.sh, written straight into the storage of a (stopped)
CNCF distribution registry (docker-registry 2.x, filesystem driver), which is the quickest way
to seed it: no HTTP, no tool under test, one copy of the data on disk.

  fixtures.py ROOTDIR big   [--repo big]   [--tag v1] [--layers 4]   [--kib 262144]
  fixtures.py ROOTDIR small [--repo small] [--tag v1] [--layers 200] [--kib 64]
  fixtures.py ROOTDIR scale [--repos 20] [--tags 50] [--layers 18] [--min-kib 1] [--max-kib 4]
  fixtures.py ROOTDIR family [--repos 8] [--layers 4] [--kib 16384] [--unique-kib 4096]

ROOTDIR is the registry's `storage.filesystem.rootdirectory`. Every layer is incompressible
(os.urandom), every image distinct (no shared blobs) except in `family`: one image per
repository `family/appNN`, all on the same base (--layers x --kib) plus one layer of their own
(--unique-kib), as a team's images on one base image are. Each image is an OCI image manifest with
an OCI config and uncompressed-tar-typed layers, tagged in its repository.

Writes, next to nothing else, two lists into OUT (--out, default ROOTDIR/..):
  NAME.refs   one "repo:tag" per image
  NAME.blobs  one "repo digest size kind" per blob (kind: manifest, config, layer)

The storage layout (distribution 2.x, registry/storage/paths.go):
  docker/registry/v2/blobs/sha256/<hh>/<hex>/data
  docker/registry/v2/repositories/<repo>/_layers/sha256/<hex>/link
  docker/registry/v2/repositories/<repo>/_manifests/revisions/sha256/<hex>/link
  docker/registry/v2/repositories/<repo>/_manifests/tags/<tag>/current/link
  docker/registry/v2/repositories/<repo>/_manifests/tags/<tag>/index/sha256/<hex>/link
"""
import argparse, hashlib, json, os, sys

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"


class Storage:
    def __init__(self, root):
        self.v2 = os.path.join(root, "docker", "registry", "v2")
        os.makedirs(os.path.join(self.v2, "blobs", "sha256"), exist_ok=True)
        self.tmp = os.path.join(self.v2, "blobs", ".tmp-fixture")

    def _blob_path(self, hexd):
        return os.path.join(self.v2, "blobs", "sha256", hexd[:2], hexd, "data")

    def _link(self, path, hexd):
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "link"), "w") as f:
            f.write("sha256:" + hexd)

    def put_bytes(self, data):
        hexd = hashlib.sha256(data).hexdigest()
        p = self._blob_path(hexd)
        if not os.path.exists(p):
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)
        return hexd, len(data)

    def put_random(self, size):
        """A random blob of `size` bytes, written in chunks (never all in memory)."""
        if size <= (8 << 20):
            return self.put_bytes(os.urandom(size))
        h = hashlib.sha256()
        with open(self.tmp, "wb") as f:
            left = size
            while left:
                chunk = os.urandom(min(left, 8 << 20))
                h.update(chunk)
                f.write(chunk)
                left -= len(chunk)
        hexd = h.hexdigest()
        p = self._blob_path(hexd)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        os.replace(self.tmp, p)
        return hexd, size

    def link_layer(self, repo, hexd):
        self._link(os.path.join(self.v2, "repositories", repo, "_layers", "sha256", hexd), hexd)

    def link_manifest(self, repo, tag, hexd):
        m = os.path.join(self.v2, "repositories", repo, "_manifests")
        self._link(os.path.join(m, "revisions", "sha256", hexd), hexd)
        self._link(os.path.join(m, "tags", tag, "current"), hexd)
        self._link(os.path.join(m, "tags", tag, "index", "sha256", hexd), hexd)


def put_image(st, repo, tag, layer_sizes, blobs_out, label, shared=()):
    layers = []
    for hexd, n in shared:  # layers already in the storage (a common base)
        st.link_layer(repo, hexd)
        layers.append({"mediaType": LAYER, "digest": "sha256:" + hexd, "size": n})
        blobs_out.append((repo, "sha256:" + hexd, n, "layer"))
    for size in layer_sizes:
        hexd, n = st.put_random(size)
        st.link_layer(repo, hexd)
        layers.append({"mediaType": LAYER, "digest": "sha256:" + hexd, "size": n})
        blobs_out.append((repo, "sha256:" + hexd, n, "layer"))
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "config": {"Labels": {"bench": label}},
                      "rootfs": {"type": "layers", "diff_ids": [l["digest"] for l in layers]}},
                     separators=(",", ":")).encode()
    chex, cn = st.put_bytes(cfg)
    st.link_layer(repo, chex)
    blobs_out.append((repo, "sha256:" + chex, cn, "config"))
    man = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST,
                      "config": {"mediaType": CONFIG, "digest": "sha256:" + chex, "size": cn},
                      "layers": layers}, separators=(",", ":")).encode()
    mhex, mn = st.put_bytes(man)
    st.link_manifest(repo, tag, mhex)
    blobs_out.append((repo, "sha256:" + mhex, mn, "manifest"))
    return f"{repo}:{tag}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root")
    ap.add_argument("name", choices=["big", "small", "scale", "family"])
    ap.add_argument("--out")
    ap.add_argument("--repo")
    ap.add_argument("--tag", default="v1")
    ap.add_argument("--layers", type=int)
    ap.add_argument("--kib", type=int)
    ap.add_argument("--repos", type=int)  # scale: 20, family: 8
    ap.add_argument("--tags", type=int, default=50)
    ap.add_argument("--min-kib", type=int, default=1)
    ap.add_argument("--max-kib", type=int, default=4)
    ap.add_argument("--unique-kib", type=int, default=4096)
    a = ap.parse_args()
    out = a.out or os.path.dirname(os.path.abspath(a.root))
    os.makedirs(out, exist_ok=True)
    st = Storage(a.root)
    refs, blobs = [], []
    if a.name in ("big", "small"):
        layers = a.layers or (4 if a.name == "big" else 200)
        kib = a.kib or (256 * 1024 if a.name == "big" else 64)
        refs.append(put_image(st, a.repo or a.name, a.tag, [kib << 10] * layers, blobs, a.name))
    elif a.name == "family":
        base = [st.put_random((a.kib or 16384) << 10) for _ in range(a.layers or 4)]
        for r in range(a.repos or 8):
            refs.append(put_image(st, f"{a.repo or 'family'}/app{r:02d}", a.tag, [a.unique_kib << 10], blobs,
                                  f"family-{r}", shared=base))
    else:
        layers = a.layers or 18
        rnd = __import__("random").Random(1)  # sizes only; the content is os.urandom
        for r in range(a.repos or 20):
            for t in range(a.tags):
                sizes = [rnd.randint(a.min_kib << 10, a.max_kib << 10) for _ in range(layers)]
                refs.append(put_image(st, f"{a.repo or 'scale'}/r{r:02d}", f"t{t:03d}", sizes,
                                      blobs, f"scale-{r}-{t}"))
    with open(os.path.join(out, a.name + ".refs"), "w") as f:
        f.writelines(r + "\n" for r in refs)
    with open(os.path.join(out, a.name + ".blobs"), "w") as f:
        f.writelines(f"{r} {d} {n} {k}\n" for r, d, n, k in blobs)
    print(f"{a.name}: {len(refs)} images, {len(blobs)} blobs, "
          f"{sum(b[2] for b in blobs)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
