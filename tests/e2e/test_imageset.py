#!/usr/bin/env python3
"""End-to-end tests of image sets (issue 16): ``save -f`` and ``copy -f`` reading the YAML file
``skopeo sync --src yaml`` reads, against real docker-registry instances on loopback and
against skopeo itself.

Run: python3 tests/e2e/test_imageset.py [ClassName[.test_name]]   (FERRY=/abs/path/ferry)
Exit code 77 (meson "skipped") when docker-registry, openssl or the ferry binary is missing;
a test needing skopeo or the jsonschema module skips itself.

docker-registry 2.8 ignores ``n`` on the tags list (it answers every tag, unsorted, without
``Link``), so the source registry is reached through a proxy (fault_proxy.FaultProxy) that
pages the tags list the way the distribution spec says: sorted, ``n`` (400 when not given)
and ``last``, a ``Link: <...>; rel="next"`` to the next page. Both ferry and skopeo list tags
through it.

Contract under test:
  ImageSetSave    a skopeo sync YAML (``tls-verify: false`` for the plain-HTTP source, no
                  --plain-http; a whole repository of 1013 tags, more than one page of n=1000;
                  a tag regex searched unanchored, as skopeo does) — ``save --dry-run``
                  shows the expansion (human and --json, the JSON valid against
                  save.schema.json); the tags list was read page by page;
                  ``save`` writes exactly the expected references (index.json) and the
                  expansion in its ferry.record artifact, and verify passes; ``skopeo sync --src yaml`` given the same file selects the same
                  images.
  ImageSetCopy    ``copy -f FILE DEST/ns`` from a TLS registry that needs Basic auth, reached
                  with the YAML's ``cert-dir`` and ``credentials`` only (the destination's CA
                  is --ca-file): every selected tag lands at DEST/ns/<repo>:<tag> with the
                  source's digest, the referrer of a signed image comes along, --json is one
                  document with one result per reference (valid against copy.schema.json);
                  a real ``skopeo sync --src yaml --dest dir`` of the same file copies the
                  same images; the YAML's credentials never reach another registry (one
                  named in the YAML with only ``tls-verify: false``, behind a recording proxy).
  ImageSetErrors  an unknown key, a regex that does not compile, a semver constraint that
                  does not parse: save -f and copy -f exit 1 (bad input file, as an unreadable
                  -f file and a bad trust policy file) with one error line naming FILE:LINE; the
                  plain list still works and names the line of a bad reference.
"""

import base64
import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402
import pki as P  # noqa: E402

R.skip_module_unless(__name__, registry=True, programs=(P.OPENSSL,))

from fault_proxy import Fault, FaultProxy  # noqa: E402

try:
    import jsonschema  # noqa: E402
except ImportError:
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import jsonschema  # noqa: E402,F811
    except ImportError:
        jsonschema = None

IMAGE_NAME = "io.containerd.image.name"
SCHEMA_DIR = os.path.join(HERE, "..", "..", "src", "cli", "schema")
BIG_TAGS = [f"t{i:04d}" for i in range(1011)] + ["release-1", "release-2"]  # 1013 tags


def paging_fault(upstream, served):
    """A Fault answering GET /v2/<repo>/tags/list from ``upstream``'s full list, one page at
    a time (distribution-spec §Listing Tags); every page served is appended to ``served``
    as (n, last, count)."""
    def respond(h):
        path, _, query = h.path.partition("?")
        q = urllib.parse.parse_qs(query)
        repo = path[len("/v2/"):-len("/tags/list")]
        headers = {}
        if h.headers.get("Authorization"):
            headers["Authorization"] = h.headers["Authorization"]
        status, hdrs, body = upstream.request("GET", f"/v2/{repo}/tags/list", headers=headers,
                                              ok=tuple(range(200, 600)), anonymous=True)
        if status == 200:
            tags = sorted(json.loads(body).get("tags") or [])
            n = int(q.get("n", ["400"])[0])
            last = q.get("last", [""])[0]
            rest = [t for t in tags if t > last] if last else tags
            page = rest[:n]
            served.append((n, last, len(page)))
            body = json.dumps({"name": repo, "tags": page}).encode()
        h.send_response(status)
        for k in ("Content-Type", "WWW-Authenticate", "Docker-Distribution-Api-Version"):
            if hdrs.get(k):
                h.send_header(k, hdrs[k])
        if status == 200 and len(rest) > n:
            h.send_header("Link", f'</v2/{repo}/tags/list?n={n}&last={urllib.parse.quote(page[-1])}>; rel="next"')
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
    return Fault("GET", lambda p: p.split("?")[0].endswith("/tags/list"), respond=respond)


@contextlib.contextmanager
def real_clock():
    """Children started meanwhile do without libfaketime (LD_PRELOAD, FAKETIME)."""
    saved = {k: os.environ.pop(k) for k in ("LD_PRELOAD", "FAKETIME") if k in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def load_schemas():
    out = {}
    for name in sorted(os.listdir(SCHEMA_DIR)):
        if name.endswith(".schema.json"):
            with open(os.path.join(SCHEMA_DIR, name)) as f:
                out[name] = json.load(f)
    return out


def schema_errors(doc, name):
    """Errors of ``doc`` against src/cli/schema/``name`` (None when jsonschema is missing)."""
    if jsonschema is None:
        return None
    schemas = load_schemas()
    cls = jsonschema.Draft202012Validator
    try:
        from referencing import Registry, Resource
        reg = Registry().with_resources([(s["$id"], Resource.from_contents(s)) for s in schemas.values()])
        v = cls(schemas[name], registry=reg)
    except ImportError:
        store = {s["$id"]: s for s in schemas.values()}
        v = cls(schemas[name], resolver=jsonschema.RefResolver.from_schema(schemas[name], store=store))
    return [f"{'/'.join(map(str, e.path))}: {e.message[:300]}" for e in v.iter_errors(doc)]


def skopeo_dry_run(yaml_path, workdir, *extra):
    """The source references ``skopeo sync --src yaml --dry-run`` would copy."""
    out = os.path.join(workdir, "skopeo-dry")
    proc = subprocess.run(["skopeo", "sync", "--src", "yaml", "--dest", "dir", "--dry-run", *extra,
                           yaml_path, out], capture_output=True, text=True, timeout=600,
                          env=R.child_env())
    if proc.returncode != 0:
        raise AssertionError(f"skopeo sync failed:{R.describe(proc)}")
    return sorted(re.findall(r'from="docker://([^"]+)"', proc.stderr))


class Base(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix=f"ferry-e2e-{cls.__name__}-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write(self, name, text):
        p = self.path(name)
        with open(p, "w") as f:
            f.write(text)
        return p

    def ferry(self, *args, expect=0, env=None):
        proc = R.run_ferry(*args, timeout=900, env=env)
        if expect is not None:
            self.assertEqual(proc.returncode, expect, R.describe(proc))
        return proc

    def ferry_json(self, *args, expect=0):
        proc = self.ferry(*args, "--json", expect=expect)
        try:
            return json.loads(proc.stdout)
        except ValueError as e:
            self.fail(f"--json output is not one JSON document ({e}){R.describe(proc)}")

    def check_schema(self, doc, name):
        errors = schema_errors(doc, name)
        if errors is not None:
            self.assertEqual(errors, [], f"--json does not match {name}")


class ImageSetSave(Base):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.src = R.Registry("src").start()
        cls.addClassCleanup(cls.src.stop)
        # big/app: 1013 tags — t0000…t1010 on one image, release-1/2 on another. One manifest
        # PUT per tag (the blobs are there once).
        cls.img_t = R.push_image(cls.src, "big/app", "t0000", [b"big layer"])
        cls.img_r = R.push_image(cls.src, "big/app", "release-1", [b"release layer"])
        _, _, body_t = cls.src.request("GET", "/v2/big/app/manifests/t0000", headers={"Accept": R.OCI_MANIFEST})
        _, _, body_r = cls.src.request("GET", "/v2/big/app/manifests/release-1", headers={"Accept": R.OCI_MANIFEST})
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            jobs = [pool.submit(cls.src.put_manifest, "big/app", t, body_t, R.OCI_MANIFEST) for t in BIG_TAGS[1:1011]]
            jobs.append(pool.submit(cls.src.put_manifest, "big/app", "release-2", body_r, R.OCI_MANIFEST))
            for j in jobs:
                j.result()
        # tools/sel: the regex v[0-9]+$ is searched, not matched whole (Go's MatchString, as
        # skopeo does): it picks v1, v2, v10 and rc-v3, and leaves dev and v1-debug.
        cls.sel = {t: R.push_image(cls.src, "tools/sel", t, [f"sel {t}".encode()])
                   for t in ("v1", "v2", "v10", "rc-v3", "dev", "v1-debug")}
        cls.served = []
        cls.proxy = FaultProxy(cls.src.host).start()
        cls.addClassCleanup(cls.proxy.stop)
        cls.proxy.add(paging_fault(cls.src, cls.served))
        host = cls.proxy.host
        cls.yaml = os.path.join(cls.tmp, "sync.yaml")
        with open(cls.yaml, "w") as f:
            f.write(f"""# skopeo sync --src yaml
{host}:
  tls-verify: false
  images:
    big/app: []
  images-by-tag-regex:
    tools/sel: 'v[0-9]+$'
""")
        cls.expected = sorted([f"{host}/big/app:{t}" for t in BIG_TAGS] +
                              [f"{host}/tools/sel:{t}" for t in ("rc-v3", "v1", "v10", "v2")])

    def test_1_dry_run_shows_the_expansion(self):
        self.served.clear()
        out = self.path("dry.tar")
        proc = self.ferry("save", "-f", self.yaml, "--dry-run", "-o", out)
        self.assertFalse(os.path.exists(out))
        host = self.proxy.host
        lines = proc.stdout.splitlines()
        self.assertIn(f"image set {self.yaml} (skopeo-sync-yaml): 1017 references", lines)
        self.assertIn(f"  line 5: all-tags {host}/big/app: 1013 references of 1013 listed", lines)
        self.assertIn(f'  line 7: tag-regex "v[0-9]+$" {host}/tools/sel: 4 references of 6 listed', lines)
        self.assertIn(f"    {host}/big/app:t1010", lines)
        self.assertIn(f"    {host}/tools/sel:v10", lines)
        self.assertIn(f"    {host}/tools/sel:rc-v3", lines)
        self.assertNotIn(f"    {host}/tools/sel:v1-debug", lines)
        # The expansion is logged too, one line per entry.
        self.assertIn(f"{self.yaml}:5: all-tags every tag in {host}/big/app: 1013 tags of 1013 listed", proc.stderr)
        # The expansion read big/app's tags in two pages of n=1000 (sorted: release-1,
        # release-2, t0000 ... t0997 on the first; the second after t0997), then tools/sel's;
        # and only then: the graph walk looks for cosign's tags of each of the 1017 images in
        # the same lists, not read again.
        self.assertEqual(self.served, [(1000, "", 1000), (1000, "t0997", 13), (1000, "", 6)],
                         self.served[:10])

        doc = self.ferry_json("save", "-f", self.yaml, "--dry-run", "-o", out)
        self.check_schema(doc, "save.schema.json")
        s = doc["imageSet"]
        self.assertEqual(s["file"], self.yaml)
        self.assertEqual(s["format"], "skopeo-sync-yaml")
        self.assertEqual([(e["line"], e["rule"], e["repository"], e.get("pattern"), e["listed"]) for e in s["entries"]],
                         [(5, "all-tags", "big/app", None, 1013), (7, "tag-regex", "tools/sel", "v[0-9]+$", 6)])
        got = sorted(r for e in s["entries"] for r in e["references"])
        self.assertEqual(got, self.expected)
        self.assertEqual(len(doc["roots"]), 1017)

    def test_2_save_writes_exactly_the_set_and_verifies(self):
        out = self.path("set.tar")
        self.ferry("save", "-f", self.yaml, "-o", out)
        b = R.read_bundle(out)
        roots = [m for m in b.index["manifests"] if IMAGE_NAME in m.get("annotations", {})]
        self.assertEqual(sorted(m["annotations"][IMAGE_NAME] for m in roots), self.expected)
        host = self.proxy.host
        by_name = {m["annotations"][IMAGE_NAME]: m["digest"] for m in roots}
        self.assertEqual(by_name[f"{host}/big/app:t0500"], self.img_t["digest"])
        self.assertEqual(by_name[f"{host}/big/app:release-2"], self.img_r["digest"])
        self.assertEqual(by_name[f"{host}/tools/sel:v10"], self.sel["v10"]["digest"])
        # The bundle records the expansion: index.json's ferry.record entry, its imageset layer.
        records = [m for m in b.index["manifests"]
                   if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "ferry.record"]
        self.assertEqual(len(records), 1, b.index["manifests"][-3:])
        self.assertNotIn(IMAGE_NAME, records[0].get("annotations", {}))  # never a root
        layers = [l for l in b.manifest(records[0]["digest"])["layers"]
                  if l["mediaType"] == "application/vnd.ferry.imageset.v1+json"]
        self.assertEqual(len(layers), 1)
        rec = json.loads(b.blob(layers[0]["digest"]))
        self.assertEqual(rec["file"], self.yaml)
        with open(self.yaml, "rb") as f:
            self.assertEqual(rec["digest"], R.sha256_digest(f.read()))
        self.assertEqual([(e["line"], e["rule"], e.get("pattern")) for e in rec["entries"]],
                         [(5, "all-tags", None), (7, "tag-regex", "v[0-9]+$")])
        self.assertEqual(sorted(r for e in rec["entries"] for r in e["references"]), self.expected)
        self.ferry("verify", "--integrity-only", out)

    @unittest.skipUnless(shutil.which("skopeo"), "skopeo not installed")
    def test_3_skopeo_selects_the_same_images(self):
        self.assertEqual(skopeo_dry_run(self.yaml, self.tmp), self.expected)
        # skopeo asked without n: it followed Link through pages of 400.
        self.assertIn((400, "t0797", 213), self.served)


class ImageSetCopy(Base):
    USER, PASSWORD = "mirror", "s3cret-pw"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # skopeo (Go) keeps the real clock under .ci/run's libfaketime run while ferry and
        # openssl see it 1,000 days ahead: the certificates are made on the real clock and
        # valid from now on for longer than that, so that both accept them.
        with real_clock():
            cls.src_pki = R.make_test_pki(os.path.join(cls.tmp, "src-pki"), days=3000)
            cls.dst_pki = R.make_test_pki(os.path.join(cls.tmp, "dst-pki"), days=3000)
        htpasswd = R.make_htpasswd(os.path.join(cls.tmp, "htpasswd"), {cls.USER: cls.PASSWORD})
        cls.src = R.Registry("src", tls=cls.src_pki, htpasswd=htpasswd,
                             credentials=(cls.USER, cls.PASSWORD)).start()
        cls.addClassCleanup(cls.src.stop)
        cls.dst = R.Registry("dst", tls=cls.dst_pki).start()
        cls.addClassCleanup(cls.dst.stop)
        cls.whole = {t: R.push_image(cls.src, "small/whole", t, [f"whole {t}".encode()]) for t in ("a", "b", "c")}
        cls.sel = {t: R.push_image(cls.src, "tools/sel", t, [f"sel {t}".encode()]) for t in ("v1", "v2", "dev")}
        cls.sig = R.push_signature(cls.src, "tools/sel", cls.sel["v1"], "imageset-sig")
        certs = os.path.join(cls.tmp, "certs.d")
        os.makedirs(certs)
        shutil.copy(cls.src_pki.ca, os.path.join(certs, "ca.crt"))
        cls.yaml = os.path.join(cls.tmp, "copy.yaml")
        with open(cls.yaml, "w") as f:
            f.write(f"""{cls.src.host}:
  cert-dir: {certs}
  credentials:
    username: {cls.USER}
    password: {cls.PASSWORD}
  images:
    small/whole: []
  images-by-tag-regex:
    tools/sel: ^v
""")
        cls.expected = [("small/whole", t) for t in ("a", "b", "c")] + [("tools/sel", t) for t in ("v1", "v2")]

    def test_1_copy_set_to_a_namespace(self):
        dest = f"{self.dst.host}/mirror"
        # No docker config: the source's credentials come from the YAML alone.
        env = {"DOCKER_CONFIG": self.path("no-docker-config"), "HOME": self.tmp}
        proc = self.ferry("copy", "-f", self.yaml, "--ca-file", self.dst_pki.ca, dest, "--json", env=env)
        doc = json.loads(proc.stdout)
        self.check_schema(doc, "copy.schema.json")
        self.assertEqual(doc["command"], "copy")
        self.assertEqual(doc["destination"], dest)
        self.assertEqual([(r["source"], r["destination"]) for r in doc["results"]],
                         [(f"{self.src.host}/{repo}:{t}", f"{dest}/{repo}:{t}") for repo, t in self.expected])
        for r in doc["results"]:
            self.assertTrue(r["proof"]["ok"], r)
        # Tags and digests as in the source; the regex left dev out.
        self.assertEqual([t for t in self.dst.list_tags("mirror/small/whole") if not R.is_fallback_tag(t)], ["a", "b", "c"])
        self.assertEqual([t for t in self.dst.list_tags("mirror/tools/sel") if not R.is_fallback_tag(t)], ["v1", "v2"])
        for repo, t in self.expected:
            want = (self.whole if repo == "small/whole" else self.sel)[t]["digest"]
            _, _, digest = self.dst.get_manifest(f"mirror/{repo}", t)
            self.assertEqual(digest, want, f"{repo}:{t}")
        # The signature came along as a referrer of v1.
        self.assertEqual([d["digest"] for d in self.dst.referrers("mirror/tools/sel", self.sel["v1"]["digest"])],
                         [self.sig["digest"]])
        self.assertEqual(R.graph_of(self.dst, "mirror/tools/sel", "v1"), R.graph_of(self.src, "tools/sel", "v1"))

    def test_2_human_output_and_idempotence(self):
        dest = f"{self.dst.host}/again"
        env = {"DOCKER_CONFIG": self.path("no-docker-config"), "HOME": self.tmp}
        proc = self.ferry("copy", "-f", self.yaml, "--ca-file", self.dst_pki.ca, dest, env=env)
        for repo, t in self.expected:
            self.assertRegex(proc.stdout, re.escape(f"copied {dest}/{repo}:{t} sha256:"))
        self.assertIn(f"copied 5 images from {self.yaml} to {dest}", proc.stdout)
        again = self.ferry("copy", "-f", self.yaml, "--ca-file", self.dst_pki.ca, dest, "--json", env=env)
        for r in json.loads(again.stdout)["results"]:
            self.assertEqual(r["blobs"]["pushed"], 0, r)

    @unittest.skipUnless(shutil.which("skopeo"), "skopeo not installed")
    def test_3_skopeo_sync_copies_the_same_images(self):
        out = self.path("skopeo-dir")
        env = R.child_env({"DOCKER_CONFIG": self.path("no-docker-config"), "HOME": self.tmp})
        proc = subprocess.run(["skopeo", "sync", "--src", "yaml", "--dest", "dir", "--scoped", self.yaml, out],
                              capture_output=True, text=True, timeout=600, env=env)
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        # --scoped: one directory per image, named after the full source reference.
        got = []
        for dirpath, dirs, files in os.walk(out):
            if "manifest.json" in files:
                ref = os.path.relpath(dirpath, out)
                repo, tag = ref.rsplit(":", 1)
                got.append((repo.split("/", 1)[1], tag))
                with open(os.path.join(dirpath, "manifest.json"), "rb") as f:
                    want = (self.whole if repo.endswith("small/whole") else self.sel)[tag]["digest"]
                    self.assertEqual(R.sha256_digest(f.read()), want)
        self.assertEqual(sorted(got), self.expected)

    def test_4_credentials_stay_with_their_registry(self):
        # Another destination that wants a password (another user's), plain HTTP behind a
        # recording proxy, named in the YAML with tls-verify: false and no images. The YAML's
        # credentials are the source's: they must never reach it.
        htpasswd = R.make_htpasswd(self.path("htpasswd-other"), {"other": "other-pw"})
        other = R.Registry("other", htpasswd=htpasswd, credentials=("other", "other-pw")).start()
        self.addCleanup(other.stop)
        proxy = FaultProxy(other.host).start()
        self.addCleanup(proxy.stop)
        with open(self.yaml) as f:
            text = f.read()
        y = self.write("copy-other.yaml", text + f"{proxy.host}:\n  tls-verify: false\n")
        env = {"DOCKER_CONFIG": self.path("no-docker-config"), "HOME": self.tmp}
        proc = self.ferry("copy", "-f", y, f"{proxy.host}/mirror", expect=None, env=env)
        self.assertEqual(proc.returncode, 1, R.describe(proc))
        self.assertIn(f"{proxy.host}: authentication required, and there are no credentials for it", proc.stderr)
        self.assertTrue(proxy.log, "the destination was never reached")
        secret = base64.b64encode(f"{self.USER}:{self.PASSWORD}".encode()).decode()
        for e in proxy.log:
            self.assertNotIn(secret, e["headers"].get("authorization", ""), e)
            self.assertNotIn(self.PASSWORD, e["path"], e)
        self.assertEqual(other.catalog(), [])  # nothing was written there


class ImageSetErrors(Base):
    def assert_one_error(self, proc, code, needle):
        self.assertEqual(proc.returncode, code, R.describe(proc))
        errors = [l for l in proc.stderr.splitlines() if l.strip()]
        self.assertEqual(len(errors), 1, R.describe(proc))
        self.assertIn(needle, errors[0])
        self.assertTrue(errors[0].startswith("ferry: error: "), errors[0])

    def test_bad_files_name_the_line(self):
        cases = {
            "unknown-key.yaml": ("reg.test:\n  images:\n    app: [v1]\n  image-by-tag-regex:\n    app: v\n",
                                 ':4: unknown key "image-by-tag-regex" under reg.test'),
            "bad-regex.yaml": ("reg.test:\n  images-by-tag-regex:\n    app: 'v(1'\n",
                               ':3: tag regex "v(1" does not compile'),
            "bad-semver.yaml": ("reg.test:\n  images-by-semver:\n    app: '>= 1.x.y'\n",
                                ':3: semver constraint ">= 1.x.y" does not parse'),
            "bad-line.txt": ("reg.test/app:v1\nreg.test/App:v1\n", ":2: "),
        }
        for name, (text, needle) in cases.items():
            f = self.write(name, text)
            with self.subTest(name=name, command="save"):
                proc = self.ferry("save", "-f", f, "-o", self.path("never.tar"), expect=None)
                self.assert_one_error(proc, 1, f + needle)
                self.assertFalse(os.path.exists(self.path("never.tar")))
            with self.subTest(name=name, command="copy"):
                proc = self.ferry("copy", "-f", f, "127.0.0.1:9/x", expect=None)
                self.assert_one_error(proc, 1, f + needle)
        # As an unreadable file is.
        proc = self.ferry("save", "-f", self.path("missing.yaml"), "-o", self.path("never.tar"), expect=None)
        self.assert_one_error(proc, 1, "missing.yaml: cannot read the images file")

    def test_copy_usage(self):
        f = self.write("ok.txt", "reg.test/app:v1\n")
        proc = self.ferry("copy", "-f", f, "127.0.0.1:9/x", "127.0.0.1:9/y", expect=None)
        self.assert_one_error(proc, 2, "copy -f FILE: give one destination")
        proc = self.ferry("copy", "127.0.0.1:9/x:v1", expect=None)
        self.assertEqual(proc.returncode, 2, R.describe(proc))


if __name__ == "__main__":
    unittest.main(verbosity=2)
