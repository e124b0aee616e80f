#!/usr/bin/env python3
"""Issue 17, ``ferry serve``: a read-only OCI distribution registry (pull side of
distribution-spec v1.1) answering from one or more verified bundles.

Classes (meson: ``e2e-serve-<Class>``):
  Endpoints  the seed fixture (an image with a Notation-style signature and an SBOM that is
             signed too, a multi-arch index with a signed child and an SBOM) plus two more tags
             and a third repository, saved from a docker-registry to a .tar and a directory
             bundle and served with --integrity-only on port 0: /v2/, manifests by tag and
             digest (Accept negotiation, also over several Accept lines as skopeo sends them;
             HEAD, headers), blobs (bytes and digest, Range 206 and ``curl -r``, 416,
             If-None-Match 304), tags/list and _catalog pagination following Link, the referrers
             API (the set pushed, artifactType filter and its header, an unknown subject), every
             error code, writes refused with 405 UNSUPPORTED and nothing changed, paths outside
             /v2/, the access log (stderr and --access-log FILE), --map and several bundles merged.
  Interop    skopeo copy --preserve-digests from the served registry to an oci: layout and to a
             second docker-registry (every digest equal); ``ferry save`` from the served
             registry gets the referrers through the referrers API (no sha256-<hex> tags are
             served; the access log shows the GETs); a .tar.zst with --cache-dir; volume sets
             (.tar and .tar.zst, NAME.001) with --cache-dir; TLS (curl --cacert, python ssl,
             ferry save --ca-file) and --htpasswd (401 without credentials, 200 with).
  Hostile    path traversal and NUL bytes in names and references (400/404, never a file), a
             100 KiB (and 1 MiB) header, a slow client past --timeout, 50 slow clients against
             --threads 1, connections queued past --max-connections, 1,000 concurrent
             connections (all answered, VmRSS/VmHWM < 128 MiB), a bundle (.tar, directory) or
             its --cache-dir copy modified after startup (the new bytes are never served), a
             pre-seeded cache directory (never trusted).
  Startup    no trust flags (exit 2), a corrupted blob (exit 3 or 1, nothing listens), failing
             trust verification (non-zero, nothing listens), a missing or junk bundle (exit 1,
             one error line naming it), .tar.zst (and its volume set) without --cache-dir (one
             error line naming --cache-dir), bad --listen/--map, a port in use, SIGTERM and
             SIGINT (exit 0 promptly), port 0 twice, the startup line for one repository.

Run: python3 tests/e2e/test_serve.py [Class[.test_name]]   (FERRY=/abs/path/ferry)
Exit 77 (skipped) without ferry or docker-registry; skopeo, curl, openssl and htpasswd parts
skip themselves when the program is missing.
"""

import hashlib
import http.client
import json
import os
import re
import resource
import selectors
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402
from seed import seed_fixture  # noqa: E402

R.skip_module_unless(__name__)

CRASH = ("Traceback", "terminate called", "Segmentation fault", "AddressSanitizer", "runtime error:",
         "LeakSanitizer")
# (singular for one: "1 repository", "1 manifest", "1 blob")
STARTUP_RE = re.compile(r"^ferry: serving (\d+) repositor(?:ies|y) \((\d+) manifests?, (\d+) blobs?\) at "
                        r"(https?)://([^/\s]+):(\d+)/ from (.*?)(?:; cache (.*))?$")
ZERO_DIGEST = "sha256:" + "0" * 64
OCTET = "application/octet-stream"
EXTRA_APP_TAGS = ("v1.1", "v2-rc")
TOOL_REPO = "other/tool"


def read(path):
    with open(path, "rb") as f:
        return f.read()


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def port_listening(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def vm_status(pid):
    """{'VmRSS': KiB, 'VmHWM': KiB} of a live process."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0])
    return out


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def json(self):
        return json.loads(self.body)

    def error_codes(self):
        try:
            return [e.get("code") for e in self.json().get("errors", [])]
        except (ValueError, AttributeError):
            return []

    def __repr__(self):
        hdrs = "".join(f"\n  {k}: {v}" for k, v in self.headers.items())
        return f"HTTP {self.status}{hdrs}\n  body: {self.body[:400]!r}"


class Server:
    """``ferry serve ARGS... --listen 127.0.0.1:0`` with stderr in a file; ``start`` waits for the
    one startup line and parses the scheme, host and port from it."""

    def __init__(self, workdir, args, listen="127.0.0.1:0", ca=None, credentials=None):
        self.args = [str(a) for a in args]
        if listen is not None:
            self.args += ["--listen", listen]
        self.workdir = workdir
        self.ca = ca
        self.credentials = credentials
        self.proc = None
        self.startup = None
        self.scheme = self.host = self.port = None
        os.makedirs(workdir, exist_ok=True)
        fd, self.log_path = tempfile.mkstemp(prefix="serve-", suffix=".log", dir=workdir)
        os.close(fd)

    def start(self, timeout=60):
        cmd = [R.ferry_binary()] + self.args
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
                                     env=R.child_env(), preexec_fn=R._die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log().splitlines():
                m = STARTUP_RE.match(line)
                if m:
                    self.startup = m
                    self.scheme, self.host, self.port = m.group(4), m.group(5), int(m.group(6))
                    return self
            if self.proc.poll() is not None:
                raise AssertionError(f"ferry serve exited {self.proc.returncode} before serving:"
                                     f"\n$ {' '.join(cmd)}\n{self.log()}")
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"ferry serve printed no startup line within {timeout}s:\n$ {' '.join(cmd)}\n{self.log()}")

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stops the server; returns its exit status."""
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            rc = self.proc.returncode
            self._log.close()
        return rc

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def base(self):
        return f"{self.scheme}://{self.host}:{self.port}"

    def connection(self, timeout=30):
        if self.scheme == "https":
            ctx = ssl.create_default_context(cafile=self.ca)
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=ctx)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def request(self, method, path, headers=None, body=None, timeout=30, auth=True):
        """One request on a fresh connection; the path is sent as is (no normalization)."""
        headers = dict(headers or {})
        if auth and self.credentials and "Authorization" not in headers:
            import base64
            user, pw = self.credentials
            headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
        conn = self.connection(timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            return Response(r.status, r.headers, data)
        finally:
            conn.close()


class Base(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix=f"ferry-e2e-serve-{cls.__name__}-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.src = R.Registry("src").start()
        cls.addClassCleanup(cls.src.stop)
        cls.fx = seed_fixture(cls.src)
        fx = cls.fx
        # Two more tags in demo/app and a third repository, for the pagination checks.
        cls.extra = {}
        for tag in EXTRA_APP_TAGS:
            cls.extra[tag] = R.push_image(cls.src, fx["app_repo"], tag,
                                          [R.seeded_bytes(f"extra-{tag}", 4096 + len(tag))])["digest"]
        cls.extra[TOOL_REPO] = R.push_image(cls.src, TOOL_REPO, "1.0", [R.seeded_bytes("tool", 3000)])["digest"]
        h = cls.src.host
        cls.refs = [f"{h}/{fx['app_repo']}:v1", *(f"{h}/{fx['app_repo']}:{t}" for t in EXTRA_APP_TAGS),
                    f"{h}/{fx['multi_repo']}:v2", f"{h}/{TOOL_REPO}:1.0"]
        cls.repos = sorted([fx["app_repo"], fx["multi_repo"], TOOL_REPO])
        cls.tags = {fx["app_repo"]: sorted(["v1", *EXTRA_APP_TAGS]), fx["multi_repo"]: ["v2"], TOOL_REPO: ["1.0"]}
        cls.bundles = {}
        for fmt in cls.formats():
            out = os.path.join(cls.tmp, "bundle" if fmt == "dir" else f"bundle.{fmt}")
            p = R.run_ferry("save", "-q", "--plain-http", *cls.refs, "-o", out, "--format", fmt)
            if p.returncode != 0:
                raise AssertionError("save failed" + R.describe(p))
            cls.bundles[fmt] = out

    @classmethod
    def formats(cls):
        return ("tar",)

    def setUp(self):
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop()
            self.assert_no_crash(s.log())
        self.servers = []

    def path(self, *names):
        return os.path.join(self.tmp, *names)

    def assert_no_crash(self, text):
        for bad in CRASH:
            self.assertNotIn(bad, text)

    def serve(self, *args, integrity=True, listen="127.0.0.1:0", ca=None, credentials=None, bundle=None):
        if bundle is None:
            bundle = self.bundles["tar"]
        bundles = bundle if isinstance(bundle, (list, tuple)) else [bundle]
        argv = ["serve", *bundles, *(["--integrity-only"] if integrity else []), *args]
        s = Server(self.path("logs"), argv, listen=listen, ca=ca, credentials=credentials)
        self.servers.append(s)
        return s.start()

    def ferry(self, *args, expect=0, timeout=300):
        proc = R.run_ferry(*args, timeout=timeout)
        self.assert_no_crash(proc.stderr)
        if expect is not None:
            self.assertEqual(proc.returncode, expect, R.describe(proc))
        return proc

    def assert_error(self, r, status, code):
        self.assertEqual(r.status, status, r)
        self.assertIn(code, r.error_codes(), r)
        for e in r.json()["errors"]:
            self.assertIsInstance(e.get("message"), str, r)

    def src_referrers(self, repo, subject):
        """The referrer descriptors pushed for ``subject`` (the source's fallback index)."""
        return sorted(({"digest": d["digest"], "mediaType": d["mediaType"], "size": d["size"],
                        "artifactType": d.get("artifactType"), "annotations": d.get("annotations") or {}}
                       for d in self.src.referrers(repo, subject)), key=lambda d: d["digest"])

    @staticmethod
    def norm_referrers(manifests):
        return sorted(({"digest": d.get("digest"), "mediaType": d.get("mediaType"), "size": d.get("size"),
                        "artifactType": d.get("artifactType"), "annotations": d.get("annotations") or {}}
                       for d in manifests), key=lambda d: d["digest"])


# ---------------------------------------------------------------------------

class Endpoints(Base):
    @classmethod
    def formats(cls):
        return ("tar", "dir")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bundle_sha = file_sha256(cls.bundles["tar"])

    def setUp(self):
        super().setUp()
        self.s = self.serve()

    def app_layer(self):
        return R.seeded_bytes("app-layer-1", 1024 * 1024), self.fx["app_layers"][1]

    def test_startup_line(self):
        m = self.s.startup
        self.assertEqual(int(m.group(1)), len(self.repos), m.group(0))
        self.assertEqual(m.group(4), "http")
        self.assertEqual(m.group(5), "127.0.0.1")
        self.assertNotEqual(self.s.port, 0)
        self.assertIn(self.bundles["tar"], m.group(7))
        self.assertIsNone(m.group(8))
        # ONE line for the startup: nothing else before it but perhaps access log lines later.
        lines = [l for l in self.s.log().splitlines() if l.startswith("ferry: serving")]
        self.assertEqual(len(lines), 1, self.s.log())

    def test_base(self):
        for method in ("GET", "HEAD"):
            r = self.s.request(method, "/v2/")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("Docker-Distribution-API-Version"), "registry/2.0", r)
            if method == "GET":
                self.assertEqual(json.loads(r.body), {}, r)
            else:
                self.assertEqual(r.body, b"", r)

    def check_manifest(self, r, digest, media_type, head=False):
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type", "").split(";")[0].strip(), media_type, r)
        self.assertEqual(r.header("Docker-Content-Digest"), digest, r)
        self.assertEqual(r.header("ETag"), f'"{digest}"', r)
        if head:
            self.assertEqual(r.body, b"", r)
        else:
            self.assertEqual(R.sha256_digest(r.body), digest, r)
            self.assertEqual(int(r.header("Content-Length")), len(r.body), r)

    def test_manifests_by_tag_and_digest(self):
        fx = self.fx
        cases = [(fx["app_repo"], "v1", fx["app"], R.OCI_MANIFEST),
                 (fx["multi_repo"], "v2", fx["multi"], R.OCI_INDEX),
                 (fx["multi_repo"], fx["multi_arm64"], fx["multi_arm64"], R.OCI_MANIFEST),
                 (fx["app_repo"], fx["app_sig"], fx["app_sig"], R.OCI_MANIFEST),
                 (TOOL_REPO, "1.0", self.extra[TOOL_REPO], R.OCI_MANIFEST)]
        cases += [(fx["app_repo"], t, self.extra[t], R.OCI_MANIFEST) for t in EXTRA_APP_TAGS]
        for repo, ref, digest, mt in cases:
            with self.subTest(repo=repo, ref=ref):
                want, _, _ = self.src.get_manifest(repo, digest)
                r = self.s.request("GET", f"/v2/{repo}/manifests/{ref}", {"Accept": R.ACCEPT})
                self.check_manifest(r, digest, mt)
                self.assertEqual(r.body, want)
                size = len(r.body)
                r = self.s.request("GET", f"/v2/{repo}/manifests/{digest}", {"Accept": R.ACCEPT})
                self.check_manifest(r, digest, mt)
                h = self.s.request("HEAD", f"/v2/{repo}/manifests/{ref}", {"Accept": R.ACCEPT})
                self.check_manifest(h, digest, mt, head=True)
                self.assertEqual(int(h.header("Content-Length")), size, h)
                # No Accept: served as is; */*: served; exactly its type: served.
                for accept in (None, "*/*", mt):
                    r = self.s.request("GET", f"/v2/{repo}/manifests/{ref}", {"Accept": accept} if accept else {})
                    self.check_manifest(r, digest, mt)

    def test_accept_negotiation_refuses(self):
        fx = self.fx
        # An index asked for by a client accepting only image manifests: 404 MANIFEST_UNKNOWN.
        for method in ("GET", "HEAD"):
            r = self.s.request(method, f"/v2/{fx['multi_repo']}/manifests/v2",
                               {"Accept": f"{R.OCI_MANIFEST}, {R.DOCKER_MANIFEST}"})
            self.assertEqual(r.status, 404, r)
            if method == "GET":
                self.assert_error(r, 404, "MANIFEST_UNKNOWN")
        # An OCI image manifest to a client accepting only Docker types.
        r = self.s.request("GET", f"/v2/{fx['app_repo']}/manifests/v1", {"Accept": f"{R.DOCKER_MANIFEST}, {R.DOCKER_LIST}"})
        self.assert_error(r, 404, "MANIFEST_UNKNOWN")
        # Several Accept header lines (skopeo and containers/image send one per type): the types
        # of all of them count, whatever their order.
        for repo, ref, digest, mt in ((fx["multi_repo"], "v2", fx["multi"], R.OCI_INDEX),
                                      (fx["app_repo"], "v1", fx["app"], R.OCI_MANIFEST)):
            others = [t for t in (R.OCI_MANIFEST, R.DOCKER_MANIFEST, R.DOCKER_LIST, R.OCI_INDEX) if t != mt]
            for accepts in ([mt] + others, others + [mt], others[:1] + [mt] + others[1:]):
                with self.subTest(ref=ref, accept_lines=accepts):
                    conn = self.s.connection()
                    try:
                        conn.putrequest("GET", f"/v2/{repo}/manifests/{ref}", skip_accept_encoding=True)
                        for a in accepts:
                            conn.putheader("Accept", a)
                        conn.endheaders()
                        resp = conn.getresponse()
                        body = resp.read()
                        self.assertEqual(resp.status, 200, f"Accept lines {accepts}: {body[:300]!r}")
                        self.assertEqual(R.sha256_digest(body), digest)
                    finally:
                        conn.close()

    def test_blobs(self):
        data, digest = self.app_layer()
        repo = self.fx["app_repo"]
        r = self.s.request("GET", f"/v2/{repo}/blobs/{digest}")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, data)
        self.assertEqual(R.sha256_digest(r.body), digest)
        self.assertEqual(int(r.header("Content-Length")), len(data), r)
        self.assertEqual(r.header("Docker-Content-Digest"), digest, r)
        self.assertEqual(r.header("ETag"), f'"{digest}"', r)
        self.assertEqual(r.header("Accept-Ranges"), "bytes", r)
        self.assertEqual(r.header("Content-Type"), OCTET, r)
        h = self.s.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        self.assertEqual(h.status, 200, h)
        self.assertEqual(h.body, b"")
        self.assertEqual(int(h.header("Content-Length")), len(data), h)
        self.assertEqual(h.header("Docker-Content-Digest"), digest, h)
        # Every config and layer of every repository, by its own repository.
        fx = self.fx
        for repo, mdigest in ((fx["app_repo"], fx["app"]), (fx["multi_repo"], fx["multi_amd64"]),
                              (fx["multi_repo"], fx["multi_arm64"]), (TOOL_REPO, self.extra[TOOL_REPO])):
            doc = json.loads(self.src.get_manifest(repo, mdigest)[0])
            for d in [doc["config"]] + doc["layers"]:
                with self.subTest(repo=repo, blob=d["digest"]):
                    r = self.s.request("GET", f"/v2/{repo}/blobs/{d['digest']}")
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(R.sha256_digest(r.body), d["digest"])
                    self.assertEqual(len(r.body), d["size"])

    def test_range(self):
        data, digest = self.app_layer()
        path = f"/v2/{self.fx['app_repo']}/blobs/{digest}"
        n = len(data)
        for rng, a, b in (("bytes=100-199", 100, 199), ("bytes=0-0", 0, 0), (f"bytes={n - 10}-", n - 10, n - 1),
                          ("bytes=-16", n - 16, n - 1), (f"bytes=1000-{n + 5000}", 1000, n - 1)):
            with self.subTest(range=rng):
                r = self.s.request("GET", path, {"Range": rng})
                self.assertEqual(r.status, 206, r)
                self.assertEqual(r.header("Content-Range"), f"bytes {a}-{b}/{n}", r)
                self.assertEqual(r.body, data[a:b + 1])
                self.assertEqual(int(r.header("Content-Length")), b - a + 1, r)
        for rng in (f"bytes={n}-", f"bytes={n + 100}-{n + 200}"):
            with self.subTest(range=rng):
                r = self.s.request("GET", path, {"Range": rng})
                self.assertEqual(r.status, 416, r)
                self.assertNotEqual(r.body[:16], data[:16])
        # The curl binary, as a client would.
        if shutil.which("curl") is None:
            self.skipTest("curl not installed")
        out = self.path("curl-range.bin")
        p = subprocess.run(["curl", "-sS", "--noproxy", "*", "-r", "4096-8191", "-o", out, "-w", "%{http_code}",
                            self.s.base() + path], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.stdout.strip(), "206", p.stderr)
        self.assertEqual(read(out), data[4096:8192])

    def test_if_none_match(self):
        data, digest = self.app_layer()
        path = f"/v2/{self.fx['app_repo']}/blobs/{digest}"
        r = self.s.request("GET", path, {"If-None-Match": f'"{digest}"'})
        self.assertEqual(r.status, 304, r)
        self.assertEqual(r.body, b"")
        r = self.s.request("GET", path, {"If-None-Match": f'"{ZERO_DIGEST}"'})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, data)

    def paginate(self, first, key):
        """Follows Link rel=next from ``first``; returns the list of pages (lists)."""
        pages, url = [], first
        while url:
            self.assertLess(len(pages), 50, "pagination does not end")
            r = self.s.request("GET", url)
            self.assertEqual(r.status, 200, r)
            pages.append(r.json().get(key) or [])
            link = r.header("Link")
            url = None
            if link:
                m = re.match(r'^<([^>]+)>;\s*rel="next"$', link.strip())
                self.assertIsNotNone(m, f"Link header {link!r}")
                url = m.group(1)
                self.assertTrue(url.startswith("/v2/"), link)
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
                self.assertEqual(q.get("n"), ["1"], link)
                self.assertEqual(q.get("last"), [pages[-1][-1]], link)
        return pages

    def test_tags_list(self):
        for repo, tags in self.tags.items():
            with self.subTest(repo=repo):
                r = self.s.request("GET", f"/v2/{repo}/tags/list")
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json(), {"name": repo, "tags": tags})
                self.assertIsNone(r.header("Link"), r)
                pages = self.paginate(f"/v2/{repo}/tags/list?n=1", "tags")
                # n=1 pages of one tag each; a last empty page is allowed (distribution sends
                # Link on a full page).
                full = [p for p in pages if p]
                self.assertTrue(all(len(p) == 1 for p in full), pages)
                self.assertTrue(all(pages[:len(full)]), pages)
                self.assertEqual([t for p in pages for t in p], tags)
        app = self.fx["app_repo"]
        r = self.s.request("GET", f"/v2/{app}/tags/list?n=2")
        self.assertEqual(r.json()["tags"], self.tags[app][:2], r)
        self.assertEqual(r.header("Link"), f'</v2/{app}/tags/list?n=2&last={self.tags[app][1]}>; rel="next"', r)
        r = self.s.request("GET", f"/v2/{app}/tags/list?last=v1")
        self.assertEqual(r.json()["tags"], [t for t in self.tags[app] if t > "v1"], r)
        # No fallback tags (sha256-<hex>) are served: the referrers API carries the referrers.
        for repo in self.repos:
            tags = self.s.request("GET", f"/v2/{repo}/tags/list").json()["tags"]
            self.assertFalse([t for t in tags if R.is_fallback_tag(t)], tags)

    def test_catalog(self):
        r = self.s.request("GET", "/v2/_catalog")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"repositories": self.repos})
        pages = self.paginate("/v2/_catalog?n=1", "repositories")
        full = [p for p in pages if p]
        self.assertTrue(all(len(p) == 1 for p in full), pages)
        self.assertEqual([x for p in pages for x in p], self.repos)
        r = self.s.request("GET", "/v2/_catalog?n=2")
        self.assertEqual(r.json()["repositories"], self.repos[:2], r)
        self.assertEqual(r.header("Link"), f'</v2/_catalog?n=2&last={self.repos[1]}>; rel="next"', r)
        r = self.s.request("GET", f"/v2/_catalog?n=5&last={self.repos[0]}")
        self.assertEqual(r.json()["repositories"], self.repos[1:], r)

    def referrers(self, repo, subject, artifact_type=None):
        q = f"?artifactType={urllib.parse.quote(artifact_type, safe='')}" if artifact_type else ""
        r = self.s.request("GET", f"/v2/{repo}/referrers/{subject}{q}")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type", "").split(";")[0].strip(), R.OCI_INDEX, r)
        doc = r.json()
        self.assertEqual(doc.get("schemaVersion"), 2, r)
        self.assertEqual(doc.get("mediaType"), R.OCI_INDEX, r)
        self.assertIsInstance(doc.get("manifests"), list, r)
        return r, doc["manifests"]

    def test_referrers(self):
        fx = self.fx
        subjects = [(fx["app_repo"], fx["app"], 2), (fx["app_repo"], fx["app_sbom"], 1),
                    (fx["multi_repo"], fx["multi"], 1), (fx["multi_repo"], fx["multi_arm64"], 1),
                    (fx["multi_repo"], fx["multi_amd64"], 0)]
        for repo, subject, count in subjects:
            with self.subTest(repo=repo, subject=subject):
                r, got = self.referrers(repo, subject)
                want = self.src_referrers(repo, subject)
                self.assertEqual(len(want), count)
                self.assertEqual(self.norm_referrers(got), want)
                self.assertIsNone(r.header("OCI-Filters-Applied"), r)
                for d in got:  # each one is served, and points back at the subject
                    m = self.s.request("GET", f"/v2/{repo}/manifests/{d['digest']}", {"Accept": R.ACCEPT})
                    self.assertEqual(m.status, 200, m)
                    self.assertEqual(m.json()["subject"]["digest"], subject)
        # The artifactType filter.
        for at, want in ((R.NOTATION_SIGNATURE, [fx["app_sig"]]), (R.SPDX, [fx["app_sbom"]]),
                         ("application/x-nothing", [])):
            with self.subTest(artifactType=at):
                r, got = self.referrers(fx["app_repo"], fx["app"], at)
                self.assertEqual(sorted(d["digest"] for d in got), want)
                self.assertEqual(r.header("OCI-Filters-Applied"), "artifactType", r)
        # An unknown subject: 200 and an empty list (spec).
        r, got = self.referrers(fx["app_repo"], ZERO_DIGEST)
        self.assertEqual(got, [])
        # A subject of another repository is not a subject here.
        r, got = self.referrers(fx["app_repo"], fx["multi"])
        self.assertEqual(got, [])

    def test_errors(self):
        fx = self.fx
        app = fx["app_repo"]
        other_blob = fx["multi_amd64_layers"][0]
        cases = [
            ("GET", "/v2/no/such/manifests/v1", 404, "NAME_UNKNOWN"),
            ("GET", "/v2/nosuch/tags/list", 404, "NAME_UNKNOWN"),
            ("GET", f"/v2/no/such/blobs/{fx['app_layers'][0]}", 404, "NAME_UNKNOWN"),
            ("GET", f"/v2/{app}/manifests/nope", 404, "MANIFEST_UNKNOWN"),
            ("GET", f"/v2/{app}/manifests/{ZERO_DIGEST}", 404, "MANIFEST_UNKNOWN"),
            ("GET", f"/v2/{app}/manifests/v2", 404, "MANIFEST_UNKNOWN"),   # a tag of demo/multi
            ("GET", f"/v2/{app}/manifests/{fx['multi']}", 404, "MANIFEST_UNKNOWN"),  # another repo's
            ("GET", f"/v2/{app}/blobs/{ZERO_DIGEST}", 404, "BLOB_UNKNOWN"),
            ("GET", f"/v2/{app}/blobs/{other_blob}", 404, "BLOB_UNKNOWN"),  # another repo's blob
            ("GET", f"/v2/{app}/blobs/sha256:abc", 400, "DIGEST_INVALID"),
            ("GET", f"/v2/{app}/blobs/sha256:{'z' * 64}", 400, "DIGEST_INVALID"),
            ("GET", f"/v2/{app}/blobs/md5:{'0' * 32}", 400, "DIGEST_INVALID"),
            ("GET", f"/v2/{app}/referrers/sha256:xyz", 400, "DIGEST_INVALID"),
            ("GET", "/v2/Demo/App/manifests/v1", 400, "NAME_INVALID"),
            ("GET", "/v2/demo/-app/tags/list", 400, "NAME_INVALID"),
            ("GET", "/v2/demo/app_/manifests/v1", 400, "NAME_INVALID"),
        ]
        for method, path, status, code in cases:
            with self.subTest(method=method, path=path):
                r = self.s.request(method, path, {"Accept": R.ACCEPT})
                self.assert_error(r, status, code)
                self.assertTrue(r.header("Content-Type", "").startswith("application/json"), r)
        # HEAD: the status, no body.
        for path, status in ((f"/v2/{app}/blobs/{other_blob}", 404), (f"/v2/{app}/manifests/nope", 404),
                             ("/v2/no/such/manifests/v1", 404)):
            r = self.s.request("HEAD", path)
            self.assertEqual(r.status, status, r)
            self.assertEqual(r.body, b"")
        # Another repository's blob is served from its own repository.
        self.assertEqual(self.s.request("GET", f"/v2/{fx['multi_repo']}/blobs/{other_blob}").status, 200)

    def test_writes_unsupported(self):
        fx = self.fx
        app = fx["app_repo"]
        before = {p: self.s.request("GET", p, {"Accept": R.ACCEPT}).body
                  for p in ("/v2/_catalog", f"/v2/{app}/tags/list", f"/v2/{app}/manifests/v1",
                            f"/v2/{app}/blobs/{fx['app_layers'][0]}")}
        other, _, _ = self.src.get_manifest(TOOL_REPO, "1.0")
        writes = [
            ("POST", f"/v2/{app}/blobs/uploads/", b"", {}),
            ("POST", f"/v2/{app}/blobs/uploads/?digest={fx['app_layers'][0]}", b"xx", {}),
            ("POST", f"/v2/{app}/blobs/uploads/?mount={fx['multi_amd64_layers'][0]}&from={fx['multi_repo']}", b"", {}),
            ("PUT", f"/v2/{app}/manifests/v1", other, {"Content-Type": R.OCI_MANIFEST}),
            ("PUT", f"/v2/{app}/manifests/new", other, {"Content-Type": R.OCI_MANIFEST}),
            ("PUT", f"/v2/{app}/blobs/uploads/x?digest={R.sha256_digest(b'x')}", b"x", {}),
            ("PATCH", f"/v2/{app}/blobs/uploads/x", b"data", {"Content-Type": OCTET}),
            ("DELETE", f"/v2/{app}/manifests/{fx['app']}", None, {}),
            ("DELETE", f"/v2/{app}/manifests/v1", None, {}),
            ("DELETE", f"/v2/{app}/blobs/{fx['app_layers'][0]}", None, {}),
        ]
        for method, path, body, headers in writes:
            with self.subTest(method=method, path=path):
                r = self.s.request(method, path, headers, body)
                self.assert_error(r, 405, "UNSUPPORTED")
        after = {p: self.s.request("GET", p, {"Accept": R.ACCEPT}).body for p in before}
        self.assertEqual(after, before)
        self.assertEqual(self.s.request("GET", f"/v2/{app}/manifests/new", {"Accept": R.ACCEPT}).status, 404)
        self.assertEqual(file_sha256(self.bundles["tar"]), self.bundle_sha)
        self.assertTrue(self.s.alive())

    def test_outside_v2(self):
        for path in ("/", "/index.html", "/v1/_ping", "/v3/", "/etc/passwd", "/health", "/v2x/"):
            with self.subTest(path=path):
                r = self.s.request("GET", path)
                self.assertEqual(r.status, 404, r)
                self.assertNotIn(b"root:", r.body)

    def test_access_log(self):
        self.s.request("GET", "/v2/")
        self.s.request("HEAD", f"/v2/{self.fx['app_repo']}/manifests/nope")
        deadline = time.monotonic() + 5
        want = [re.compile(r'^127\.0\.0\.1 "GET /v2/" 200 \d+\s*$', re.M),
                re.compile(r'^127\.0\.0\.1 "HEAD /v2/' + re.escape(self.fx["app_repo"]) + r'/manifests/nope" 404 \d+\s*$', re.M)]
        while time.monotonic() < deadline and not all(w.search(self.s.log()) for w in want):
            time.sleep(0.1)
        for w in want:
            self.assertRegex(self.s.log(), w)

    def test_access_log_file(self):
        log = self.path("access.log")
        s = self.serve("--access-log", log)
        s.request("GET", "/v2/")
        s.request("GET", f"/v2/{self.fx['app_repo']}/blobs/{ZERO_DIGEST}")
        s.stop()
        text = read(log).decode()
        self.assertRegex(text, re.compile(r'^127\.0\.0\.1 "GET /v2/" 200 \d+\s*$', re.M))
        self.assertRegex(text, re.compile(r'^127\.0\.0\.1 "GET /v2/' + re.escape(self.fx["app_repo"])
                                          + r'/blobs/' + ZERO_DIGEST + r'" 404 \d+\s*$', re.M))
        self.assertNotIn('"GET /v2/"', s.log())

    def test_directory_bundle(self):
        d = self.serve(bundle=self.bundles["dir"])
        self.assertEqual(int(d.startup.group(1)), len(self.repos))
        for path in ("/v2/_catalog", f"/v2/{self.fx['app_repo']}/tags/list",
                     f"/v2/{self.fx['app_repo']}/manifests/v1", f"/v2/{self.fx['multi_repo']}/manifests/v2",
                     f"/v2/{self.fx['app_repo']}/blobs/{self.fx['app_layers'][1]}",
                     f"/v2/{self.fx['app_repo']}/referrers/{self.fx['app']}"):
            with self.subTest(path=path):
                a = self.s.request("GET", path, {"Accept": R.ACCEPT})
                b = d.request("GET", path, {"Accept": R.ACCEPT})
                self.assertEqual(a.status, 200, a)
                self.assertEqual((b.status, b.body), (a.status, a.body))
                self.assertEqual(b.header("Docker-Content-Digest"), a.header("Docker-Content-Digest"))

    def test_map_and_merged_bundles(self):
        fx = self.fx
        # Two bundles, one per repository, merged; demo/app renamed by --map.
        a, b = self.path("only-app.tar"), self.path("only-multi.tar")
        if not os.path.exists(a):
            self.ferry("save", "-q", "--plain-http", f"{self.src.host}/{fx['app_repo']}:v1", "-o", a)
            self.ferry("save", "-q", "--plain-http", f"{self.src.host}/{fx['multi_repo']}:v2", "-o", b)
        s = self.serve("--map", f"{fx['app_repo']}=mirror/app", bundle=[a, b])
        self.assertEqual(int(s.startup.group(1)), 2, s.startup.group(0))
        self.assertEqual(s.request("GET", "/v2/_catalog").json()["repositories"], sorted(["mirror/app", fx["multi_repo"]]))
        r = s.request("GET", "/v2/mirror/app/manifests/v1", {"Accept": R.ACCEPT})
        self.assertEqual(r.header("Docker-Content-Digest"), fx["app"], r)
        self.assertEqual(s.request("GET", f"/v2/mirror/app/blobs/{fx['app_layers'][0]}").status, 200)
        _, got = (lambda r: (r, r.json()["manifests"]))(s.request("GET", f"/v2/mirror/app/referrers/{fx['app']}"))
        self.assertEqual(sorted(d["digest"] for d in got), sorted([fx["app_sig"], fx["app_sbom"]]))
        self.assert_error(s.request("GET", f"/v2/{fx['app_repo']}/manifests/v1"), 404, "NAME_UNKNOWN")
        r = s.request("GET", f"/v2/{fx['multi_repo']}/manifests/v2", {"Accept": R.ACCEPT})
        self.assertEqual(r.header("Docker-Content-Digest"), fx["multi"], r)


# ---------------------------------------------------------------------------

def skopeo(*args, timeout=600):
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=timeout, env=R.child_env())


class Interop(Base):
    @classmethod
    def formats(cls):
        return ("tar", "tar.zst")

    def oci_layout_digests(self, layout):
        """index.json's first manifest digest, and every blob file digest-checked."""
        index = R.read_layout_index(layout)
        bdir = os.path.join(layout, "blobs", "sha256")
        for name in os.listdir(bdir):
            self.assertEqual(file_sha256(os.path.join(bdir, name)), name, f"{layout}: blob {name}")
        return index, set("sha256:" + n for n in os.listdir(bdir))

    def expected_blobs(self, repo, digest):
        """Every manifest, config and layer digest reachable from ``digest`` (no referrers)."""
        out, todo = set(), [digest]
        while todo:
            d = todo.pop()
            out.add(d)
            doc = json.loads(self.src.get_manifest(repo, d)[0])
            if doc.get("mediaType") in R.INDEX_TYPES:
                todo.extend(c["digest"] for c in doc["manifests"])
            else:
                out.update(x["digest"] for x in [doc["config"]] + doc["layers"])
        return out

    @unittest.skipUnless(shutil.which("skopeo"), "skopeo not installed")
    def test_skopeo_copy(self):
        s = self.serve()
        fx = self.fx
        with R.Registry("dst") as dst:
            for repo, tag, digest in ((fx["app_repo"], "v1", fx["app"]), (fx["multi_repo"], "v2", fx["multi"]),
                                      (TOOL_REPO, "1.0", self.extra[TOOL_REPO])):
                with self.subTest(repo=repo, tag=tag):
                    src_ref = f"docker://127.0.0.1:{s.port}/{repo}:{tag}"
                    os.makedirs(self.path("skopeo-oci"), exist_ok=True)
                    layout = self.path("skopeo-oci", repo.replace("/", "_"))
                    p = skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false", src_ref,
                               f"oci:{layout}:{tag}")
                    self.assertEqual(p.returncode, 0, R.describe(p) + s.log()[-3000:])
                    index, blobs = self.oci_layout_digests(layout)
                    self.assertEqual([m["digest"] for m in index["manifests"]], [digest])
                    self.assertEqual(blobs, self.expected_blobs(repo, digest))
                    p = skopeo("copy", "--all", "--preserve-digests", "--src-tls-verify=false",
                               "--dest-tls-verify=false", src_ref, f"docker://{dst.host}/{repo}:{tag}")
                    self.assertEqual(p.returncode, 0, R.describe(p) + s.log()[-3000:])
                    _, _, got = dst.get_manifest(repo, tag)
                    self.assertEqual(got, digest)
                    g = R.graph_of(dst, repo, tag)
                    self.assertEqual(g["missing"], [])
                    self.assertEqual(set(g["manifests"]) | set(g["blobs"]), self.expected_blobs(repo, digest))
                    # skopeo inspect reads the same digest through the served registry.
                    p = skopeo("inspect", "--raw", "--tls-verify=false", src_ref)
                    self.assertEqual(p.returncode, 0, R.describe(p))
                    self.assertEqual(R.sha256_digest(p.stdout.encode()), digest)

    def test_ferry_save_from_served_uses_referrers_api(self):
        s = self.serve()
        fx = self.fx
        # Nothing to fall back on: no sha256-<hex> tags served.
        for repo in (fx["app_repo"], fx["multi_repo"]):
            tags = s.request("GET", f"/v2/{repo}/tags/list").json()["tags"]
            self.assertFalse([t for t in tags if R.is_fallback_tag(t)], tags)
        out = self.path("resaved.tar")
        self.ferry("save", "-q", "--plain-http", f"127.0.0.1:{s.port}/{fx['app_repo']}:v1",
                   f"127.0.0.1:{s.port}/{fx['multi_repo']}:v2", "-o", out)
        new = R.read_bundle(out)
        old = R.read_bundle(self.bundles["tar"])
        for subject in (fx["app"], fx["app_sbom"], fx["multi"], fx["multi_arm64"]):
            with self.subTest(subject=subject):
                self.assertTrue(new.referrers_of(subject), f"no referrers of {subject} in the new bundle")
                self.assertEqual(new.referrers_of(subject), old.referrers_of(subject))
        for d in fx["referrers"]:
            self.assertTrue(new.has_blob(d), d)
        w = new.walk()
        self.assertEqual(w["missing"], [])
        self.assertEqual(w["size_mismatch"], [])
        self.ferry("verify", "--integrity-only", out)
        log = s.log()
        for repo, subject in ((fx["app_repo"], fx["app"]), (fx["multi_repo"], fx["multi"])):
            self.assertRegex(log, re.compile(r'^\S+ "GET /v2/' + re.escape(repo) + r'/referrers/'
                                             + re.escape(subject) + r'[^"]*" 200 \d+', re.M))

    def test_tar_zst_with_cache_dir(self):
        cache = self.path("cache")
        s = self.serve("--cache-dir", cache, bundle=self.bundles["tar.zst"])
        self.assertEqual(s.startup.group(8), cache, s.startup.group(0))
        self.assertIn(self.bundles["tar.zst"], s.startup.group(7))
        self.assertEqual(int(s.startup.group(1)), len(self.repos))
        fx = self.fx
        r = s.request("GET", f"/v2/{fx['app_repo']}/manifests/v1", {"Accept": R.ACCEPT})
        self.assertEqual(r.header("Docker-Content-Digest"), fx["app"], r)
        data = R.seeded_bytes("app-layer-1", 1024 * 1024)
        r = s.request("GET", f"/v2/{fx['app_repo']}/blobs/{fx['app_layers'][1]}")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, data)
        r = s.request("GET", f"/v2/{fx['app_repo']}/blobs/{fx['app_layers'][1]}", {"Range": "bytes=10-19"})
        self.assertEqual((r.status, r.body), (206, data[10:20]))
        _, got = None, s.request("GET", f"/v2/{fx['app_repo']}/referrers/{fx['app']}").json()["manifests"]
        self.assertEqual(sorted(d["digest"] for d in got), sorted([fx["app_sig"], fx["app_sbom"]]))
        self.assertTrue(os.path.isdir(cache) and os.listdir(cache), "nothing in the cache directory")

    def test_volume_sets(self):
        fx = self.fx
        for fmt in ("tar", "tar.zst"):
            with self.subTest(format=fmt):
                os.makedirs(self.path(f"vol-{fmt}"), exist_ok=True)
                name = self.path(f"vol-{fmt}", f"bundle.{fmt}")
                size = (os.path.getsize(self.bundles[fmt]) + 2) // 3 + 512
                self.ferry("save", "-q", "--plain-http", *self.refs, "-o", name, "--max-size", str(size))
                self.assertTrue(os.path.exists(name + ".003"))
                cache = self.path(f"vol-cache-{fmt}")
                s = self.serve("--cache-dir", cache, bundle=name + ".001")
                self.assertEqual(int(s.startup.group(1)), len(self.repos), s.startup.group(0))
                r = s.request("GET", "/v2/_catalog")
                self.assertEqual(r.json()["repositories"], self.repos)
                r = s.request("GET", f"/v2/{fx['multi_repo']}/manifests/v2", {"Accept": R.ACCEPT})
                self.assertEqual(r.header("Docker-Content-Digest"), fx["multi"], r)
                for repo, digest in ((fx["app_repo"], fx["app_layers"][1]), (fx["multi_repo"], fx["multi_arm64_layers"][1])):
                    r = s.request("GET", f"/v2/{repo}/blobs/{digest}")
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(R.sha256_digest(r.body), digest)
                r = s.request("GET", f"/v2/{fx['app_repo']}/blobs/{fx['app_layers'][1]}", {"Range": "bytes=5-9"})
                self.assertEqual((r.status, r.body), (206, R.seeded_bytes("app-layer-1", 1024 * 1024)[5:10]))
                got = s.request("GET", f"/v2/{fx['multi_repo']}/referrers/{fx['multi_arm64']}").json()["manifests"]
                self.assertEqual([d["digest"] for d in got], [fx["multi_arm64_sig"]])

    @unittest.skipUnless(shutil.which("openssl") and shutil.which("curl"), "openssl or curl not installed")
    def test_tls(self):
        pki = R.make_test_pki(self.path("pki"))
        s = self.serve("--tls-cert", pki.cert, "--tls-key", pki.key, ca=pki.ca)
        self.assertEqual(s.scheme, "https", s.startup.group(0))
        url = f"https://127.0.0.1:{s.port}"
        p = subprocess.run(["curl", "-sS", "--noproxy", "*", "--cacert", pki.ca, "-o", self.path("tls-v2"),
                            "-w", "%{http_code}", f"{url}/v2/"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.stdout.strip(), "200", p.stderr)
        self.assertEqual(json.loads(read(self.path("tls-v2"))), {})
        fx = self.fx
        p = subprocess.run(["curl", "-sS", "--noproxy", "*", "--cacert", pki.ca, "-o", self.path("tls-blob"),
                            "-w", "%{http_code}", f"{url}/v2/{fx['app_repo']}/blobs/{fx['app_layers'][1]}"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.stdout.strip(), "200", p.stderr)
        self.assertEqual(R.sha256_digest(read(self.path("tls-blob"))), fx["app_layers"][1])
        r = s.request("GET", f"/v2/{fx['app_repo']}/manifests/v1", {"Accept": R.ACCEPT})
        self.assertEqual(r.header("Docker-Content-Digest"), fx["app"], r)
        # Without the CA: refused by the client; plain http to the TLS port: no 200.
        p = subprocess.run(["curl", "-sS", "--noproxy", "*", "-o", "/dev/null", "-w", "%{http_code}", f"{url}/v2/"],
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10)
            conn.request("GET", "/v2/")
            st = conn.getresponse().status
            conn.close()
        except (OSError, http.client.HTTPException):
            st = None
        self.assertNotEqual(st, 200)
        self.assertTrue(s.alive())
        # ferry itself pulls through it (--ca-file).
        out = self.path("tls-save.tar")
        self.ferry("save", "-q", "--ca-file", pki.ca, f"127.0.0.1:{s.port}/{fx['app_repo']}:v1", "-o", out)
        self.assertEqual(R.read_bundle(out).referrers_of(fx["app"]), sorted([fx["app_sig"], fx["app_sbom"]]))

    @unittest.skipUnless(shutil.which("htpasswd"), "htpasswd not installed (apache2-utils)")
    def test_htpasswd(self):
        hp = R.make_htpasswd(self.path("htpasswd"), {"alice": "s3cret-pw", "bob": "other"})
        s = self.serve("--htpasswd", hp)
        fx = self.fx
        paths = ["/v2/", f"/v2/{fx['app_repo']}/manifests/v1", f"/v2/{fx['app_repo']}/blobs/{fx['app_layers'][0]}",
                 "/v2/_catalog", f"/v2/{fx['app_repo']}/tags/list", f"/v2/{fx['app_repo']}/referrers/{fx['app']}",
                 "/v2/no/such/manifests/v1"]
        import base64
        bad = "Basic " + base64.b64encode(b"alice:wrong").decode()
        good = "Basic " + base64.b64encode(b"alice:s3cret-pw").decode()
        for path in paths:
            with self.subTest(path=path):
                for hdrs in ({}, {"Authorization": bad}, {"Authorization": "Basic !!!"},
                             {"Authorization": "Bearer abc"}):
                    r = s.request("GET", path, dict(hdrs, Accept=R.ACCEPT))
                    self.assert_error(r, 401, "UNAUTHORIZED")
                    self.assertEqual(r.header("WWW-Authenticate"), 'Basic realm="ferry"', r)
                    self.assertNotIn(b"spdx", r.body.lower())
                r = s.request("GET", path, {"Authorization": good, "Accept": R.ACCEPT})
                self.assertEqual(r.status, 404 if "no/such" in path else 200, r)
        r = s.request("HEAD", "/v2/")
        self.assertEqual(r.status, 401, r)
        r = s.request("GET", f"/v2/{fx['app_repo']}/manifests/v1",
                      {"Authorization": "Basic " + base64.b64encode(b"bob:other").decode(), "Accept": R.ACCEPT})
        self.assertEqual(r.header("Docker-Content-Digest"), fx["app"], r)
        if shutil.which("skopeo"):
            p = skopeo("inspect", "--raw", "--tls-verify=false", "--creds", "alice:s3cret-pw",
                       f"docker://127.0.0.1:{s.port}/{fx['app_repo']}:v1")
            self.assertEqual(p.returncode, 0, R.describe(p))
            self.assertEqual(R.sha256_digest(p.stdout.encode()), fx["app"])


# ---------------------------------------------------------------------------

def raw_exchange(port, data, read_timeout=10):
    """Sends ``data`` on a new connection; returns what the server sent until it closed, or
    the exception that ended the exchange."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    out = b""
    try:
        try:
            s.sendall(data)
        except OSError as e:
            return out, e
        s.settimeout(read_timeout)
        while True:
            try:
                chunk = s.recv(65536)
            except OSError as e:
                return out, e
            if not chunk:
                return out, None
            out += chunk
    finally:
        s.close()


class Hostile(Base):
    @classmethod
    def formats(cls):
        return ("tar", "tar.zst")

    def assert_up(self, s):
        self.assertTrue(s.alive(), s.log()[-3000:])
        r = s.request("GET", "/v2/", timeout=15)
        self.assertEqual(r.status, 200, r)

    def test_path_traversal(self):
        s = self.serve()
        app = self.fx["app_repo"]
        paths = [
            "/v2/../../etc/passwd/manifests/x",
            "/v2/../../../../etc/passwd",
            "/v2/%2e%2e/%2e%2e/etc/passwd/manifests/x",
            "/v2/%2E%2E/%2E%2E/%2E%2E/etc/passwd/blobs/x",
            "/v2/demo/../../../etc/passwd/manifests/latest",
            f"/v2/{app}/manifests/../../../../etc/passwd",
            f"/v2/{app}/manifests/..%2f..%2f..%2f..%2fetc%2fpasswd",
            f"/v2/{app}/manifests/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
            f"/v2/{app}/blobs/..%2f..%2f..%2f..%2fetc%2fpasswd",
            f"/v2/{app}/blobs/sha256:..%2f..%2f..%2fetc%2fpasswd",
            f"/v2/{app}/blobs/sha256/../../../../etc/passwd",
            "/v2/%2fetc%2fpasswd/manifests/x",
            "/v2//etc/passwd/manifests/x",
            "/v2/demo//app/manifests/v1",
            "/v2/demo/app//manifests/v1",
            "/v2/Demo/app/manifests/v1",
            "/v2/DEMO/APP/tags/list",
            "/v2/demo/app%00/manifests/v1",
            f"/v2/{app}/manifests/v1%00.json",
            f"/v2/{app}/blobs/{{}}%00/../../../../etc/passwd",
            f"/v2/{app}/tags/list%00x",
            "/v2/./demo/app/manifests/v1",
            "/v2/demo/./app/manifests/v1",
            f"/v2/{app}/tags/list/../../../../../etc/passwd",
            "/v2/_catalog/../../etc/passwd",
            "/..%2f..%2fetc%2fpasswd",
            "/v2/..%5c..%5cetc%5cpasswd/manifests/x",
        ]
        passwd = read("/etc/passwd")
        paths = [p.replace("{}", self.fx["app_layers"][0]) for p in paths]
        for path in paths:
            with self.subTest(path=path):
                r = s.request("GET", path, {"Accept": R.ACCEPT})
                self.assertIn(r.status, (400, 404), r)
                self.assertNotIn(b"root:", r.body)
                self.assertNotEqual(r.body, passwd)
                r = s.request("HEAD", path)
                self.assertIn(r.status, (400, 404), r)
        # A name of the bundle's own files is no repository: index.json, blobs, oci-layout.
        for path in ("/v2/blobs/sha256/manifests/x", f"/v2/index.json/manifests/v1", "/v2/oci-layout/tags/list"):
            with self.subTest(path=path):
                r = s.request("GET", path)
                self.assertIn(r.status, (400, 404), r)
        # The absolute form and a bogus Host change nothing.
        r = s.request("GET", "http://evil.example/../etc/passwd")
        self.assertIn(r.status, (400, 404), r)
        self.assertNotIn(b"root:", r.body)
        self.assert_up(s)

    def test_huge_header(self):
        s = self.serve()
        for size in (100 * 1024, 1024 * 1024):
            with self.subTest(size=size):
                req = (b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * size + b"\r\n\r\n")
                out, err = raw_exchange(s.port, req)
                if out:
                    m = re.match(rb"HTTP/1\.[01] (\d{3})", out)
                    self.assertIsNotNone(m, out[:200])
                    self.assertTrue(400 <= int(m.group(1)) < 500, out[:200])
                # else: the connection was closed (or reset): fine.
                self.assert_up(s)
        # Many headers, a huge request line, a huge URL.
        many = b"GET /v2/ HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(20000)) + b"\r\n"
        line = b"GET /v2/" + b"a" * (200 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        for req in (many, line):
            out, err = raw_exchange(s.port, req)
            if out:
                m = re.match(rb"HTTP/1\.[01] (\d{3})", out)
                self.assertIsNotNone(m, out[:200])
                self.assertTrue(400 <= int(m.group(1)) < 500, out[:200])
            self.assert_up(s)
        # Garbage and a bad method do not kill it either.
        for junk in (b"\x00\x01\x02garbage\r\n\r\n", b"GET\r\n\r\n", b"BREW /v2/ HTTP/1.1\r\nHost: x\r\n\r\n",
                     b"GET /v2/ HTTP/9.9\r\nHost: x\r\n\r\n",
                     b"GET /v2/ HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
                     b"GET /v2/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"):
            out, err = raw_exchange(s.port, junk, read_timeout=5)
            self.assert_up(s)

    def test_slowloris_and_connection_queue(self):
        # One answering thread, 50 clients each holding half a request line: others are served.
        s = self.serve("--timeout", "3", "--threads", "1")
        slow = []
        try:
            for _ in range(50):
                c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
                c.sendall(b"GET /v2/ HT")
                slow.append(c)
            t0 = time.monotonic()
            self.assert_up(s)
            self.assertLess(time.monotonic() - t0, 2.5, "a normal request waited for the slow clients")
        finally:
            for c in slow:
                c.close()
        s.stop()
        # --max-connections 4: 10 idle connections; a request queued behind them is answered
        # once --timeout drops them.
        s = self.serve("--timeout", "2", "--max-connections", "4")
        idle = []
        try:
            for _ in range(10):
                idle.append(socket.create_connection(("127.0.0.1", s.port), timeout=10))
            time.sleep(0.3)
            r = s.request("GET", "/v2/", timeout=20)
            self.assertEqual(r.status, 200, r)
        finally:
            for c in idle:
                c.close()
        self.assert_up(s)

    def test_slow_client_dropped(self):
        s = self.serve("--timeout", "2")
        slow = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        try:
            start = time.monotonic()
            slow.sendall(b"GET /v2/ HT")
            # Others are served meanwhile.
            time.sleep(0.5)
            self.assert_up(s)
            slow.settimeout(15)
            got, closed_at = b"", None
            try:
                while True:
                    chunk = slow.recv(4096)
                    if not chunk:
                        closed_at = time.monotonic()
                        break
                    got += chunk
            except (ConnectionResetError, BrokenPipeError):
                closed_at = time.monotonic()
            except socket.timeout:
                self.fail("the slow client was not dropped within 15 s (--timeout 2)")
            waited = closed_at - start
            self.assertGreaterEqual(waited, 1.5, "dropped before --timeout")
            self.assertLess(waited, 10, "dropped long after --timeout 2")
            if got:
                self.assertRegex(got[:40], rb"^HTTP/1\.[01] (408|400) ")
        finally:
            slow.close()
        # Idle after a complete request on a keep-alive connection: dropped too.
        idle = socket.create_connection(("127.0.0.1", s.port), timeout=15)
        try:
            idle.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
            start = time.monotonic()
            data = b""
            try:
                while True:
                    chunk = idle.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
            except socket.timeout:
                self.fail("an idle keep-alive connection was not dropped within 15 s (--timeout 2)")
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:100])
            self.assertLess(time.monotonic() - start, 10)
        finally:
            idle.close()
        # A body trickled one byte a second: dropped, as the timeout is of the whole request, or
        # of each read; either way the server stays up.
        self.assert_up(s)

    def test_thousand_connections(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 1200:
            want = min(hard, 4096)
            if want < 1200:
                self.skipTest(f"open files limit {soft}/{hard} < 1200")
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        s = self.serve()
        base_rss = vm_status(s.pid)["VmRSS"]
        n = 1000
        sel = selectors.DefaultSelector()
        socks = []
        req = b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        try:
            for _ in range(n):
                c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                c.setblocking(False)
                c.connect_ex(("127.0.0.1", s.port))
                socks.append(c)
                sel.register(c, selectors.EVENT_WRITE, {"sent": False, "buf": b""})
            peak = base_rss
            responses, errors = {}, 0
            deadline = time.monotonic() + 120
            pending = n
            while pending and time.monotonic() < deadline:
                for key, ev in sel.select(timeout=1):
                    c, st = key.fileobj, key.data
                    if not st["sent"]:
                        err = c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                        if err:
                            errors += 1
                            sel.unregister(c)
                            pending -= 1
                            continue
                        try:
                            c.send(req)
                        except OSError:
                            errors += 1
                            sel.unregister(c)
                            pending -= 1
                            continue
                        st["sent"] = True
                        sel.modify(c, selectors.EVENT_READ, st)
                        continue
                    try:
                        chunk = c.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        chunk = b""
                    if chunk:
                        st["buf"] += chunk
                        continue
                    responses[c.fileno()] = st["buf"]
                    sel.unregister(c)
                    pending -= 1
                try:
                    peak = max(peak, vm_status(s.pid)["VmRSS"])
                except OSError:
                    break
            ok = sum(1 for b in responses.values() if b.startswith(b"HTTP/1.1 200") or b.startswith(b"HTTP/1.0 200"))
        finally:
            sel.close()
            for c in socks:
                c.close()
        self.assert_up(s)
        st = vm_status(s.pid)
        msg = (f"{n} connections: {ok} answered 200, {len(responses) - ok} other answers, {errors} errors, "
               f"{pending} unanswered; VmRSS {base_rss} KiB before, peak sampled {peak} KiB, "
               f"VmHWM {st['VmHWM']} KiB")
        print(msg, file=sys.stderr)
        # What the connections cost, bounded; and the whole process under 128 MiB, unless it
        # runs under AddressSanitizer, whose shadow memory alone is larger before any request.
        self.assertLess(peak - base_rss, 96 * 1024, msg)
        if base_rss < 64 * 1024:
            self.assertLess(peak, 128 * 1024, msg)
            self.assertLess(st["VmHWM"], 128 * 1024, msg)
        self.assertEqual(ok, n, msg)
        # Afterwards, still fine for a real client, many times over.
        for _ in range(20):
            self.assertEqual(s.request("GET", f"/v2/{self.fx['app_repo']}/manifests/v1",
                                       {"Accept": R.ACCEPT}).status, 200)

    def tar_member_offset(self, tar_path, digest):
        alg, _, hexpart = digest.partition(":")
        with tarfile.open(tar_path) as tf:
            for m in tf:
                if m.name.rstrip("/").lstrip("./").endswith(f"blobs/{alg}/{hexpart}"):
                    return m.offset_data, m.size
        raise AssertionError(f"{digest} not in {tar_path}")

    def get_blob_outcome(self, s, path):
        """('status', code, body) or ('error', exception, partial body)."""
        conn = s.connection(timeout=30)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            try:
                body = r.read()
            except http.client.IncompleteRead as e:
                return "error", e, e.partial
            except OSError as e:
                return "error", e, b""
            return "status", r.status, body
        except (OSError, http.client.HTTPException) as e:
            return "error", e, b""
        finally:
            conn.close()

    def find_cached(self, cache, digest):
        hexpart = digest.split(":")[1]
        for dirpath, _dirs, files in os.walk(cache):
            if hexpart in files and "tmp" not in os.path.relpath(dirpath, cache).split(os.sep):
                return os.path.join(dirpath, hexpart)
        self.fail(f"{digest} not found under {cache}: {list(os.walk(cache))[:5]}")

    def test_cache_modified_after_startup(self):
        fx = self.fx
        cache = self.path("cache-mod")
        s = self.serve("--cache-dir", cache, bundle=self.bundles["tar.zst"])
        digest, orig = fx["app_layers"][0], R.seeded_bytes("app-layer-0", 100 * 1024)
        target = self.find_cached(cache, digest)
        with open(target, "r+b") as f:
            f.seek(len(orig) // 2)
            f.write(bytes([orig[len(orig) // 2] ^ 0xFF]))
        new = bytearray(orig)
        new[len(orig) // 2] ^= 0xFF
        kind, code, body = self.get_blob_outcome(s, f"/v2/{fx['app_repo']}/blobs/{digest}")
        detail = f"{kind} {code!r}, {len(body)} bytes; log:\n{s.log()[-2000:]}"
        self.assertNotEqual(body, bytes(new), "modified cache bytes served: " + detail)
        if kind == "status" and code < 500:
            self.assertEqual(body, orig, detail)
        # Replaced by another file (a new inode, same size): never its bytes either.
        digest, orig = fx["app_layers"][1], R.seeded_bytes("app-layer-1", 1024 * 1024)
        target = self.find_cached(cache, digest)
        other = R.seeded_bytes("intruder", len(orig))
        with open(target + ".new", "wb") as f:
            f.write(other)
        os.replace(target + ".new", target)
        kind, code, body = self.get_blob_outcome(s, f"/v2/{fx['app_repo']}/blobs/{digest}")
        detail = f"{kind} {code!r}, {len(body)} bytes; log:\n{s.log()[-2000:]}"
        self.assertNotEqual(body, other, "a replaced cache file was served: " + detail)
        if kind == "status" and code < 500:
            self.assertEqual(body, orig, detail)
        self.assert_up(s)

    def test_cache_preseeded_is_not_trusted(self):
        """A cache directory holding a wrong blob and a symlink where blobs go: re-extracted,
        never served as found."""
        fx = self.fx
        cache = self.path("cache-pre")
        index = R.read_bundle(self.bundles["tar.zst"]).files["index.json"]
        layout = os.path.join(cache, R.fallback_tag(R.sha256_digest(index)), "layout")
        bdir = os.path.join(layout, "blobs", "sha256")
        os.makedirs(bdir, exist_ok=True)
        d0, d1 = fx["app_layers"]
        with open(os.path.join(bdir, d0.split(":")[1]), "wb") as f:
            f.write(b"not the blob")
        os.symlink("/etc/passwd", os.path.join(bdir, d1.split(":")[1]))
        s = self.serve("--cache-dir", cache, bundle=self.bundles["tar.zst"])
        for digest in (d0, d1):
            r = s.request("GET", f"/v2/{fx['app_repo']}/blobs/{digest}")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(R.sha256_digest(r.body), digest)
        self.assertEqual(read("/etc/passwd")[:4], read("/etc/passwd")[:4])  # untouched, readable

    def test_bundle_modified_after_startup(self):
        fx = self.fx
        for kind in ("tar", "dir"):
            with self.subTest(bundle=kind):
                if kind == "tar":
                    bundle = self.path("modified.tar")
                    shutil.copyfile(self.bundles["tar"], bundle)
                else:
                    bundle = self.path("modified-dir")
                    p = R.run_ferry("save", "-q", "--plain-http", *self.refs, "-o", bundle, "--format", "dir")
                    self.assertEqual(p.returncode, 0, R.describe(p))
                s = self.serve(bundle=bundle)
                cases = [(fx["app_layers"][1], R.seeded_bytes("app-layer-1", 1024 * 1024)),
                         (fx["app_layers"][0], R.seeded_bytes("app-layer-0", 100 * 1024))]
                # The first blob is fetched once before (a server caching nothing stale must still
                # not serve the new bytes), the second never before.
                first = s.request("GET", f"/v2/{fx['app_repo']}/blobs/{cases[0][0]}")
                self.assertEqual(first.body, cases[0][1])
                for digest, orig in cases:
                    if kind == "tar":
                        off, size = self.tar_member_offset(bundle, digest)
                        target = bundle
                    else:
                        off, size = 0, len(orig)
                        target = os.path.join(bundle, "blobs", "sha256", digest.split(":")[1])
                    at = off + size // 2
                    with open(target, "r+b") as f:
                        f.seek(at)
                        b = f.read(1)
                        f.seek(at)
                        f.write(bytes([b[0] ^ 0xFF]))
                    new = bytearray(orig)
                    new[size // 2] ^= 0xFF
                    new = bytes(new)
                    path = f"/v2/{fx['app_repo']}/blobs/{digest}"
                    kind_, code, body = self.get_blob_outcome(s, path)
                    detail = f"{kind_} {code!r}, {len(body)} bytes; log:\n{s.log()[-2000:]}"
                    self.assertNotEqual(body, new, "the modified bytes were served: " + detail)
                    if kind_ == "status":
                        self.assertTrue(code >= 500 or body == orig, detail)
                        if code < 500:
                            self.assertEqual(body, orig, detail)
                    else:
                        self.assertLess(len(body), len(orig), detail)
                    # A range inside the modified byte: never the new byte either.
                    conn = s.connection(timeout=30)
                    try:
                        conn.request("GET", path, headers={"Range": f"bytes={size // 2 - 8}-{size // 2 + 8}"})
                        resp = conn.getresponse()
                        try:
                            rb = resp.read()
                        except http.client.IncompleteRead as e:
                            rb = None
                        if resp.status == 206 and rb is not None:
                            self.assertNotEqual(rb, new[size // 2 - 8:size // 2 + 9],
                                                "the modified bytes were served by a range request")
                    except (OSError, http.client.HTTPException):
                        pass
                    finally:
                        conn.close()
                self.assert_up(s)
                s.stop()


# ---------------------------------------------------------------------------

class Startup(Base):
    @classmethod
    def formats(cls):
        return ("tar", "dir", "tar.zst")

    def run_serve(self, *args, timeout=60):
        """Runs ``ferry serve ARGS`` on a fixed free port, expecting it to exit by itself;
        returns (CompletedProcess-like, port). Fails if it is still running after ``timeout``."""
        port = R.free_port()
        cmd = [R.ferry_binary(), "serve", *[str(a) for a in args], "--listen", f"127.0.0.1:{port}"]
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=R.child_env(), preexec_fn=R._die_with_parent)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            listening = port_listening(port)
            p.kill()
            out, err = p.communicate()
            self.fail(f"ferry serve still running after {timeout}s (listening: {listening}):\n$ {' '.join(cmd)}\n{err}")
        proc = subprocess.CompletedProcess(cmd, p.returncode, out, err)
        self.assert_no_crash(err)
        self.assertFalse(port_listening(port), f"something listens on {port} after the exit" + R.describe(proc))
        self.assertNotIn("ferry: serving", err, R.describe(proc))
        return proc, port

    def test_no_trust_flags(self):
        for fmt in ("tar", "dir"):
            with self.subTest(format=fmt):
                proc, _ = self.run_serve(self.bundles[fmt])
                self.assertEqual(proc.returncode, 2, R.describe(proc))
                self.assertIn("--integrity-only", proc.stderr, R.describe(proc))

    def corrupt_copy(self, fmt):
        fx = self.fx
        digest = fx["app_layers"][0]
        if fmt == "dir":
            bundle = self.path("corrupt-dir")
            if os.path.exists(bundle):
                shutil.rmtree(bundle)
            shutil.copytree(self.bundles["dir"], bundle)
            target, off = os.path.join(bundle, "blobs", "sha256", digest.split(":")[1]), 0
            size = os.path.getsize(target)
        else:
            bundle = self.path("corrupt.tar")
            shutil.copyfile(self.bundles["tar"], bundle)
            with tarfile.open(bundle) as tf:
                m = next(m for m in tf if m.name.endswith(digest.split(":")[1]))
                off, size = m.offset_data, m.size
            target = bundle
        with open(target, "r+b") as f:
            f.seek(off + size // 3)
            b = f.read(1)
            f.seek(off + size // 3)
            f.write(bytes([b[0] ^ 0x01]))
        return bundle

    def test_corrupted_blob(self):
        for fmt in ("dir", "tar"):
            with self.subTest(format=fmt):
                bundle = self.corrupt_copy(fmt)
                proc, _ = self.run_serve(bundle, "--integrity-only")
                self.assertIn(proc.returncode, (3, 1), R.describe(proc))
                self.assertIn("ferry: error", proc.stderr, R.describe(proc))

    def test_trust_verification_fails(self):
        cases = [["--trust-pin", ZERO_DIGEST]]
        policy = self.path("policy.json")
        with open(policy, "w") as f:
            json.dump({"version": "1.0", "trustPolicies": [{
                "name": "all", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
                "trustStores": ["ca:none"], "trustedIdentities": ["*"]}]}, f)
        store = self.path("truststore")
        os.makedirs(os.path.join(store, "x509", "ca", "none"), exist_ok=True)
        cases.append(["--trust-policy", policy, "--trust-store", store])
        for extra in cases:
            with self.subTest(flags=extra[0]):
                proc, _ = self.run_serve(self.bundles["tar"], *extra)
                self.assertNotEqual(proc.returncode, 0, R.describe(proc))
                self.assertIn("ferry: error", proc.stderr, R.describe(proc))

    def test_bad_bundle_path(self):
        missing = self.path("no-such-bundle.tar")
        proc, _ = self.run_serve(missing, "--integrity-only")
        self.assertEqual(proc.returncode, 1, R.describe(proc))
        R.one_error_line(self, proc, missing)
        # Not a bundle at all.
        junk = self.path("junk.tar")
        with open(junk, "wb") as f:
            f.write(b"not a tar" * 100)
        proc, _ = self.run_serve(junk, "--integrity-only")
        self.assertEqual(proc.returncode, 1, R.describe(proc))
        R.one_error_line(self, proc, junk)
        # A good bundle and a missing one: nothing served, the missing one named.
        proc, _ = self.run_serve(self.bundles["tar"], missing, "--integrity-only")
        self.assertEqual(proc.returncode, 1, R.describe(proc))
        R.one_error_line(self, proc, missing)

    def test_tar_zst_without_cache_dir(self):
        proc, _ = self.run_serve(self.bundles["tar.zst"], "--integrity-only")
        self.assertNotEqual(proc.returncode, 0, R.describe(proc))
        R.one_error_line(self, proc, "--cache-dir")

    def test_volume_set_without_cache_dir(self):
        for fmt in ("tar.zst", "tar"):
            with self.subTest(format=fmt):
                os.makedirs(self.path(f"vol-{fmt}"), exist_ok=True)
                name = self.path(f"vol-{fmt}", f"bundle.{fmt}")
                size = (os.path.getsize(self.bundles[fmt]) + 2) // 3 + 512
                self.ferry("save", "-q", "--plain-http", *self.refs, "-o", name, "--max-size", str(size))
                if fmt == "tar.zst":
                    proc, _ = self.run_serve(name + ".001", "--integrity-only")
                    self.assertNotEqual(proc.returncode, 0, R.describe(proc))
                    R.one_error_line(self, proc, "--cache-dir", name + ".001")
                    continue
                # A plain .tar volume set: served in place, or refused the same way.
                port = R.free_port()
                s = Server(self.path("logs"), ["serve", name + ".001", "--integrity-only"], listen=f"127.0.0.1:{port}")
                self.servers.append(s)
                try:
                    s.start()
                except AssertionError:
                    s.stop()
                    self.assertIn("--cache-dir", s.log())
                    self.assertFalse(port_listening(port))
                    continue
                r = s.request("GET", f"/v2/{self.fx['app_repo']}/blobs/{self.fx['app_layers'][1]}")
                self.assertEqual(r.status, 200, r)
                self.assertEqual(R.sha256_digest(r.body), self.fx["app_layers"][1])

    def test_bad_listen_and_options(self):
        for args in (["--listen", "127.0.0.1:notaport"], ["--listen", "127.0.0.1:99999"], ["--map", "noequals"]):
            with self.subTest(args=args):
                port = R.free_port()
                cmd = [R.ferry_binary(), "serve", self.bundles["tar"], "--integrity-only", *args]
                if args[0] != "--listen":
                    cmd += ["--listen", f"127.0.0.1:{port}"]
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=R.child_env())
                self.assertEqual(p.returncode, 2, R.describe(p))
                self.assert_no_crash(p.stderr)
        # The port already taken: exit non-zero, one error line.
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            p = subprocess.run([R.ferry_binary(), "serve", self.bundles["tar"], "--integrity-only", "--listen",
                                f"127.0.0.1:{port}"], capture_output=True, text=True, timeout=60, env=R.child_env())
            self.assertNotEqual(p.returncode, 0, R.describe(p))
            R.one_error_line(self, p, str(port))

    def test_signals_exit_zero(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            with self.subTest(signal=sig.name):
                s = self.serve()
                self.assertEqual(s.request("GET", "/v2/").status, 200)
                # With a client connected and idle: still prompt.
                idle = socket.create_connection(("127.0.0.1", s.port))
                try:
                    t0 = time.monotonic()
                    rc = s.stop(sig=sig, timeout=10)
                    took = time.monotonic() - t0
                finally:
                    idle.close()
                self.assertEqual(rc, 0, s.log()[-2000:])
                self.assertLess(took, 5, f"exit took {took:.1f}s")
                self.assertFalse(port_listening(s.port))
                self.assert_no_crash(s.log())

    def test_one_repository(self):
        one = self.path("one.tar")
        self.ferry("save", "-q", "--plain-http", f"{self.src.host}/{TOOL_REPO}:1.0", "-o", one)
        s = self.serve(bundle=one)
        self.assertEqual(int(s.startup.group(1)), 1, s.startup.group(0))
        self.assertEqual(s.request("GET", "/v2/_catalog").json(), {"repositories": [TOOL_REPO]})

    def test_port_zero_two_servers(self):
        a, b = self.serve(), self.serve()
        self.assertNotEqual(a.port, b.port)
        for s in (a, b):
            self.assertEqual(s.request("GET", "/v2/").status, 200)


def main():
    loader = unittest.TestLoader()
    names = sys.argv[1:]
    suite = loader.loadTestsFromNames(names, sys.modules[__name__]) if names else \
        loader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    if not result.wasSuccessful():
        return 1
    if result.testsRun and len(result.skipped) == result.testsRun:
        print("SKIP: every test skipped: " + "; ".join(sorted({r for _, r in result.skipped})), file=sys.stderr)
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
