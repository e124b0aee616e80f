#!/usr/bin/env python3
"""End-to-end: ferry against hostile and broken registries.

A real docker-registry sits behind tests/e2e/fault_proxy.py, which lies on purpose (wrong
bytes, wrong digests and lengths, cut and dripping bodies, 5xx/429 storms, endless referrers
pages, cross-host redirects, foreign token realms, media types that do not match); small
StaticServers stand in for a redirect target, a token realm and a decoy that must never hear
from ferry. Every case checks the exit code, the one-line `ferry: error: ...` naming what
failed, and what is left on disk or in the registry: a failed save leaves nothing at the
output path, and what it keeps for a resume is re-hashed before it is trusted (a clean re-run
gives a bundle `ferry verify --integrity-only` accepts).

Run: python3 tests/e2e/test_hostile_registry.py HostileRegistry   (FERRY=/abs/path/ferry)
     FERRY_E2E_VERBOSE=1 prints each error line ferry gave, its exit code and time.
Exit code 77 (meson "skipped") when docker-registry or the ferry binary is missing.
Connection resets mid-blob are covered by test_resume.py (cut_once, test_blob_get_cut_mid_body_resumes_with_range);
one case here (test_05) goes through the same proxy API.
"""

import base64
import glob
import json
import os
import shutil
import sys
import tempfile
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402
from fault_proxy import Fault, FaultProxy, StaticServer  # noqa: E402

R.skip_module_unless(__name__)

WRONG = "sha256:" + "0" * 63 + "1"     # a well-formed digest nothing hashes to
USER = "hostile-user"
PASSWORD = "Hostile-7c1e-pw"
TIMEOUT = "1"                          # --timeout for the stall cases (seconds)


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class HostileRegistry(unittest.TestCase):
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        cls.t0 = time.monotonic()
        cls.tmp = tempfile.mkdtemp(prefix="ferry-e2e-hostile-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.home = os.path.join(cls.tmp, "home")
        os.makedirs(cls.home)
        # Source: an image (a small layer, a middle one, a 3 MiB one) with a signature, and a
        # two-platform index.
        cls.src = R.Registry("hostile-src").start()
        cls.addClassCleanup(cls.src.stop)
        blobs = [R.seeded_bytes("hostile-small", 40_000), R.seeded_bytes("hostile-mid", 300_000),
                 R.seeded_bytes("hostile-big", 3 << 20)]
        cls.layers = [R.sha256_digest(b) for b in blobs]
        cls.layer_bytes = dict(zip(cls.layers, blobs))
        cls.image = R.push_image(cls.src, "team/app", "v1", blobs)
        cls.sig = R.push_signature(cls.src, "team/app", cls.image, "hostile-sig")
        amd = R.push_image(cls.src, "multi/app", None, [R.seeded_bytes("m-amd", 5000)], platform="linux/amd64")
        arm = R.push_image(cls.src, "multi/app", None, [R.seeded_bytes("m-arm", 5000)], platform="linux/arm64")
        cls.children = [amd, arm]
        cls.index = R.push_index(cls.src, "multi/app", "v1", cls.children)
        cls.proxy = FaultProxy(cls.src.host).start()
        cls.addClassCleanup(cls.proxy.stop)
        cls.ref = f"{cls.proxy.host}/team/app:v1"
        # Destination for the push cases.
        cls.dst = R.Registry("hostile-dst").start()
        cls.addClassCleanup(cls.dst.stop)
        cls.dproxy = FaultProxy(cls.dst.host).start()
        cls.addClassCleanup(cls.dproxy.stop)
        # A decoy that must never be contacted, a blob store and a token realm.
        cls.decoy = StaticServer(lambda m, p, h: (401, {"WWW-Authenticate": 'Basic realm="decoy"'}, b"")).start()
        cls.addClassCleanup(cls.decoy.stop)
        cls.store = StaticServer(cls.store_route).start()
        cls.addClassCleanup(cls.store.stop)
        cls.realm = StaticServer(cls.realm_route).start()
        cls.addClassCleanup(cls.realm.stop)
        cls.bundle = os.path.join(cls.tmp, "clean.tar")
        proc = R.run_ferry("save", "--plain-http", cls.ref, "-o", cls.bundle, env={"HOME": cls.home})
        assert proc.returncode == 0, R.describe(proc)

    @classmethod
    def tearDownClass(cls):
        print(f"\nHostileRegistry: {time.monotonic() - cls.t0:.1f} s", file=sys.stderr)

    def setUp(self):
        self._t = getattr(self, "_t", None) or time.monotonic()
        for p in (self.proxy, self.dproxy):
            p.clear_faults()
            p.reset_counters()
        for s in (self.decoy, self.store, self.realm):
            with s.lock:
                s.log.clear()

    def tearDown(self):
        if os.environ.get("FERRY_E2E_VERBOSE"):
            print(f" [{time.monotonic() - self._t:.1f} s]", end=" ", file=sys.stderr)

    # -- servers -----------------------------------------------------------
    @classmethod
    def store_route(cls, method, path, headers):
        """A blob store answering /blob/<digest> without auth (like a pre-signed URL);
        /locked/... asks for Basic auth."""
        if path.startswith("/locked/"):
            return 401, {"WWW-Authenticate": 'Basic realm="store"'}, b""
        digest = path.rsplit("/", 1)[-1].split("?")[0]
        data = cls.layer_bytes.get(digest)
        if data is None:
            return 404, {}, b""
        return 200, {"Content-Type": "application/octet-stream"}, data

    @classmethod
    def realm_route(cls, method, path, headers):
        """The token endpoint: a token for the right Basic credentials; /moved redirects to
        the decoy."""
        if path.startswith("/moved"):
            return 307, {"Location": f"http://127.0.0.1:{cls.decoy.port}/token"}, b""
        if headers.get("authorization") != basic(USER, PASSWORD):
            return 401, {}, b""
        return 200, {"Content-Type": "application/json"}, json.dumps({"token": "tok-ok", "expires_in": 300}).encode()

    # -- helpers -----------------------------------------------------------
    def ferry(self, *args, input=None, timeout=120):
        start = time.monotonic()
        proc = R.run_ferry(*args, input=input, timeout=timeout, env={"HOME": self.home, "DOCKER_CONFIG": None})
        proc.elapsed = time.monotonic() - start
        for bad in ("Traceback", "terminate called", "Segmentation fault", "AddressSanitizer", "runtime error:"):
            self.assertNotIn(bad, proc.stderr, R.describe(proc))
        return proc

    def save(self, out, *args, ref=None, input=None):
        return self.ferry("save", "--plain-http", ref or self.ref, "-o", out, *args, input=input)

    def out(self, name):
        return os.path.join(self.tmp, name)

    def note(self, text):
        if os.environ.get("FERRY_E2E_VERBOSE"):
            print(f"\n    {text}", file=sys.stderr)

    def assert_error(self, proc, code, *needles):
        """Exit `code`; exactly one `ferry: error: ` line, the last on stderr, naming every needle."""
        self.assertEqual(proc.returncode, code, R.describe(proc))
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        errors = [l for l in lines if l.startswith("ferry: error: ")]
        self.assertEqual(len(errors), 1, "want exactly one 'ferry: error: ' line" + R.describe(proc))
        self.assertEqual(lines[-1], errors[0], "the error line must be the last stderr line" + R.describe(proc))
        for n in needles:
            self.assertIn(n, errors[0], R.describe(proc))
        if os.environ.get("FERRY_E2E_VERBOSE"):
            print(f"\n    exit {proc.returncode} in {proc.elapsed:.1f} s: {errors[0]}", file=sys.stderr)
        return errors[0]

    def assert_failed_save(self, proc, out, *needles):
        line = self.assert_error(proc, 1, *needles)
        self.assertFalse(os.path.exists(out), f"a failed save left {out}" + R.describe(proc))
        return line

    def assert_verifies(self, out):
        proc = self.ferry("verify", "--integrity-only", out)
        self.assertEqual(proc.returncode, 0, R.describe(proc))

    def assert_clean_rerun(self, out, ref=None):
        """Without faults, the same save succeeds (re-hashing or dropping whatever the failed
        run kept) and its bundle verifies, byte for byte the blobs of the registry."""
        self.proxy.clear_faults()
        proc = self.save(out, ref=ref)
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        self.assert_verifies(out)
        self.assertEqual([p for p in glob.glob(out + ".partial*")], [])
        b = R.read_bundle(out)
        for d, data in self.layer_bytes.items():
            if b.has_blob(d):
                self.assertEqual(b.blob(d), data)

    def blob_gets(self, digest, proxy=None):
        return (proxy or self.proxy).logged("GET", "/blobs/" + digest)

    # -- 1. wrong bytes ----------------------------------------------------
    def test_01_blob_with_wrong_bytes(self):
        """The proxy serves other bytes of the same length for a layer, every time: the save
        fails naming the digest, leaves no bundle, and a clean re-run verifies."""
        d = self.layers[1]
        for ext in (".tar", ".tar.zst", "-dir"):
            with self.subTest(format=ext):
                self.setUp()
                out = self.out("wrong-bytes" + ext)
                self.proxy.add(Fault("GET", "/blobs/" + d, corrupt=True))
                proc = self.save(out)
                self.assert_failed_save(proc, out, d)
                self.assertGreaterEqual(len(self.blob_gets(d)), 1)
                self.assert_clean_rerun(out)

    def test_01b_blob_with_wrong_bytes_once(self):
        """Wrong bytes once: ferry either fails as above or fetches again; a bundle it writes
        verifies."""
        d = self.layers[0]
        out = self.out("wrong-once.tar")
        self.proxy.add(Fault("GET", "/blobs/" + d, times=1, corrupt=True))
        proc = self.save(out)
        if proc.returncode == 0:
            self.assert_verifies(out)
        else:
            self.assert_failed_save(proc, out, d)
            self.assert_clean_rerun(out)

    def test_01c_range_continuation_with_wrong_bytes(self):
        """A cut body whose Range continuation carries wrong bytes: the blob as a whole does not
        hash to its digest, so the save fails; the kept bytes are not trusted by the re-run."""
        d = self.layers[2]
        out = self.out("wrong-range.tar")
        self.proxy.add(Fault("GET", "/blobs/" + d, times=1, when=lambda h: "range" not in h, cut=1 << 20))
        self.proxy.add(Fault("GET", "/blobs/" + d, when=lambda h: "range" in h, corrupt=True))
        proc = self.save(out)
        self.assert_failed_save(proc, out, d)
        self.assertTrue(any(e["headers"].get("range") for e in self.blob_gets(d)), self.proxy.log)
        self.assert_clean_rerun(out)

    def test_01d_wrong_bytes_past_a_resume_checkpoint(self):
        """A 20 MiB layer served wrong every time gets past the 8 MiB resume checkpoints before
        its digest fails: the failed run keeps no checkpoint of those bytes, so the clean re-run
        fetches the layer from its first byte (before the fix, a .tar.zst re-run continued from
        the wrong bytes' 16 MiB checkpoint with a Range request, found the blob damaged at its
        end and fetched it a third time)."""
        big = R.seeded_bytes("hostile-huge", 20 << 20)
        d = R.sha256_digest(big)
        if not self.src.blob_exists("huge/app", d):
            R.push_image(self.src, "huge/app", "v1", [big])
        ref = f"{self.proxy.host}/huge/app:v1"
        for ext in (".tar", ".tar.zst", "-dir"):
            with self.subTest(format=ext):
                self.setUp()
                out = self.out("wrong-huge" + ext)
                self.proxy.add(Fault("GET", "/blobs/" + d, corrupt=True))
                proc = self.save(out, ref=ref)
                self.assert_failed_save(proc, out, d)
                self.proxy.clear_faults()
                self.proxy.reset_counters()
                proc = self.ferry("save", "--plain-http", "--json", ref, "-o", out)
                self.assertEqual(proc.returncode, 0, R.describe(proc))
                self.assert_verifies(out)
                self.assertEqual(R.read_bundle(out).blob(d), big)
                self.assertEqual(json.loads(proc.stdout)["resumed"]["continuedBlobs"], 0, proc.stdout)
                self.assertEqual([e["headers"].get("range") for e in self.blob_gets(d)], [None])

    # -- 2. Docker-Content-Digest ------------------------------------------
    def test_02_manifest_lying_digest_header_by_tag(self):
        """By tag: a Docker-Content-Digest the body does not hash to is refused (ferry hashes
        what it got and never files it under the header's digest)."""
        out = self.out("dcd-tag.tar")
        self.proxy.add(Fault("GET", "/manifests/v1", headers={"Docker-Content-Digest": WRONG}))
        proc = self.save(out)
        self.assert_failed_save(proc, out, "team/app:v1", WRONG, self.image["digest"])

    def test_02b_manifest_lying_digest_header_by_digest(self):
        """By digest: the body is verified against the requested digest; a header naming
        another digest is refused too."""
        out = self.out("dcd-digest.tar")
        ref = f"{self.proxy.host}/team/app@{self.image['digest']}"
        self.proxy.add(Fault("GET", "/manifests/" + self.image["digest"], headers={"Docker-Content-Digest": WRONG}))
        proc = self.save(out, ref=ref)
        self.assert_failed_save(proc, out, self.image["digest"], WRONG)

    def test_02c_other_manifest_by_digest_with_matching_header(self):
        """By digest, the registry answers another manifest's bytes with that manifest's
        (true) Docker-Content-Digest: refused, the body does not hash to what was asked."""
        out = self.out("dcd-swap.tar")
        other_bytes, _, other = self.src.get_manifest("multi/app", self.children[0]["digest"])
        ref = f"{self.proxy.host}/team/app@{self.image['digest']}"
        self.proxy.add(Fault("GET", "/manifests/" + self.image["digest"], body=other_bytes,
                             headers={"Docker-Content-Digest": other}))
        proc = self.save(out, ref=ref)
        self.assert_failed_save(proc, out, self.image["digest"], other)

    # -- 3. truncated bodies -------------------------------------------------
    def test_03_truncated_once_resumes(self):
        d = self.layers[2]
        out = self.out("cut-once.tar")
        self.proxy.add(Fault("GET", "/blobs/" + d, times=1, cut=500_000))
        proc = self.save(out)
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        ranges = [e["headers"].get("range") for e in self.blob_gets(d)]
        self.assertEqual(ranges, [None, "bytes=500000-"])
        self.assert_verifies(out)

    def test_03b_truncated_every_time(self):
        """Every response for the layer stops after 100 kB: a bounded number of Range
        continuations, then an error naming the digest."""
        d = self.layers[2]
        out = self.out("cut-always.tar")
        self.proxy.add(Fault("GET", "/blobs/" + d, cut=100_000))
        proc = self.save(out)
        self.assert_failed_save(proc, out, d, "cut off 6 times, the last at byte 600000 of 3145728")
        gets = len(self.blob_gets(d))
        self.note(f"{gets} GETs of the layer")
        self.assertLessEqual(gets, 30, f"{gets} GETs of {d}")
        self.assertLess(proc.elapsed, 60)
        self.assert_clean_rerun(out)

    def test_03c_manifest_truncated(self):
        out = self.out("cut-manifest.tar")
        self.proxy.add(Fault("GET", "/manifests/v1", cut=50))
        proc = self.save(out)
        self.assert_failed_save(proc, out, "team/app:v1")

    # -- 4. Content-Length lies ----------------------------------------------
    def test_04_content_length_longer_than_body(self):
        """The header promises 1000 bytes more than the blob has; the connection closes after
        the blob."""
        d = self.layers[1]
        out = self.out("cl-long.tar")
        self.proxy.add(Fault("GET", "/blobs/" + d, content_length=len(self.layer_bytes[d]) + 1000))
        proc = self.save(out)
        if proc.returncode == 0:
            self.assert_verifies(out)
        else:
            self.assert_failed_save(proc, out, d)
            self.assert_clean_rerun(out)

    def test_04b_content_length_shorter_than_blob(self):
        """The header says 1000 bytes fewer than the blob has (and that is what arrives): never
        a bundle with a short blob."""
        d = self.layers[1]
        out = self.out("cl-short.tar")
        self.proxy.add(Fault("GET", "/blobs/" + d, content_length=len(self.layer_bytes[d]) - 1000))
        proc = self.save(out)
        self.assert_failed_save(proc, out, d)
        self.assert_clean_rerun(out)

    def test_04c_manifest_content_length_short(self):
        """A manifest cut short by its Content-Length: by tag (the header digest no longer
        matches) and by digest (a referrer, fetched by the digest its subject's index names)."""
        sig = self.sig["digest"]
        for path, needle in (("/manifests/v1", "team/app:v1"), ("/manifests/" + sig, sig)):
            with self.subTest(path=path):
                self.setUp()
                out = self.out("cl-manifest.tar")
                self.proxy.add(Fault("GET", path, content_length=100))
                proc = self.save(out)
                self.assert_failed_save(proc, out, needle)
                self.assertTrue(self.proxy.logged("GET", path))

    # -- 5. connection reset mid-blob -----------------------------------------
    def test_05_reset_mid_blob_resumes(self):
        """test_resume.py covers this at length; here through the legacy cut_once API."""
        d = self.layers[2]
        out = self.out("reset.tar")
        self.proxy.cut_once[d] = 1_000_000
        proc = self.save(out)
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        self.assertIn(("GET", f"/v2/team/app/blobs/{d}", "bytes=1000000-", 206), self.proxy.requests)
        self.assert_verifies(out)

    # -- 6. 5xx and 429 ------------------------------------------------------
    def test_06_transient_statuses_are_retried(self):
        out = self.out("transient.tar")
        self.proxy.add(Fault("GET", "/manifests/v1", times=2, status=503))
        self.proxy.add(Fault("GET", "/blobs/" + self.layers[0], times=1, status=500))
        self.proxy.add(Fault("GET", "/blobs/" + self.layers[1], times=1, status=429, headers={"Retry-After": "1"}))
        proc = self.save(out)
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        self.assertEqual([e["status"] for e in self.proxy.logged("GET", "/manifests/v1")], [503, 503, 200])
        self.assertEqual([e["status"] for e in self.blob_gets(self.layers[0])], [500, 200])
        gets = [(e["status"], e["time"]) for e in self.blob_gets(self.layers[1])]
        self.assertEqual([g[0] for g in gets], [429, 200])
        self.assertGreaterEqual(gets[1][1] - gets[0][1], 0.9, "Retry-After: 1 was not honoured")
        self.assert_verifies(out)

    def test_06b_persistent_503_is_bounded(self):
        d = self.layers[0]
        out = self.out("503.tar")
        self.proxy.add(Fault("GET", "/blobs/" + d, status=503, headers={"Retry-After": "1"},
                             body=b'{"errors":[{"code":"UNAVAILABLE","message":"down for maintenance"}]}'))
        proc = self.save(out)
        self.assert_failed_save(proc, out, d, "503")
        gets = len(self.blob_gets(d))
        self.note(f"{gets} GETs of the layer")
        self.assertGreaterEqual(gets, 2)
        self.assertLessEqual(gets, 10, f"{gets} GETs of {d}")
        self.assertLess(proc.elapsed, 30)

    def test_06c_huge_retry_after_is_capped(self):
        """Retry-After: 100000 is not slept: ferry waits at most its own bound (here --timeout)."""
        out = self.out("retry-after.tar")
        self.proxy.add(Fault("GET", "/manifests/v1", times=1, status=429, headers={"Retry-After": "100000"}))
        proc = self.save(out, "--timeout", TIMEOUT)
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        self.assertLess(proc.elapsed, 15)
        self.assertEqual([e["status"] for e in self.proxy.logged("GET", "/manifests/v1")], [429, 200])

    # -- 7. slow drip and stalls ----------------------------------------------
    def test_07_slow_drip_times_out(self):
        d = self.layers[1]
        out = self.out("drip.tar")
        self.proxy.add(Fault("GET", "/blobs/" + d, drip=2.5))
        proc = self.save(out, "--timeout", TIMEOUT)
        self.assert_failed_save(proc, out, d)
        self.note(f"{len(self.blob_gets(d))} GETs of the layer")
        self.assertLess(proc.elapsed, 30)
        self.assert_clean_rerun(out)

    def test_07b_stall_after_headers_times_out(self):
        out = self.out("stall.tar")
        self.proxy.add(Fault("GET", "/manifests/v1", stall=True))
        proc = self.save(out, "--timeout", TIMEOUT)
        self.assert_failed_save(proc, out, "team/app:v1")
        self.assertLess(proc.elapsed, 30)

    def test_07c_no_answer_times_out(self):
        out = self.out("silent.tar")
        self.proxy.add(Fault("GET", "/blobs/" + self.layers[0], respond=lambda h: time.sleep(60)))
        proc = self.save(out, "--timeout", TIMEOUT)
        self.assert_failed_save(proc, out, self.layers[0])
        self.note(f"{len(self.blob_gets(self.layers[0]))} GETs of the layer")
        self.assertLess(proc.elapsed, 30)

    # -- 8. referrers pagination ----------------------------------------------
    def referrers_pages(self, next_url):
        """A referrers API answering an empty index and a Link to next_url(page) forever."""
        def respond(h):
            q = urllib.parse.parse_qs(urllib.parse.urlsplit(h.path).query)
            page = int(q.get("page", ["0"])[0])
            body = R.canonical_json({"schemaVersion": 2, "mediaType": R.OCI_INDEX, "manifests": []})
            h.send_response(200)
            h.send_header("Content-Type", R.OCI_INDEX)
            h.send_header("Link", f'<{next_url(h.path.split("?")[0], page + 1)}>; rel="next"')
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        return respond

    def test_08_endless_referrers_pagination(self):
        out = self.out("endless.tar")
        self.proxy.add(Fault("GET", "/referrers/", respond=self.referrers_pages(lambda p, n: f"{p}?page={n}")))
        proc = self.save(out)
        self.assert_failed_save(proc, out, self.image["digest"], "pages")
        pages = len(self.proxy.logged("GET", "/referrers/"))
        self.note(f"{pages} referrers pages")
        self.assertLessEqual(pages, 1001)
        self.assertLess(proc.elapsed, 60)

    def test_08b_referrers_link_to_itself(self):
        """A Link naming the page it is on: a loop, stopped at once rather than at the bound."""
        out = self.out("loop.tar")
        self.proxy.add(Fault("GET", "/referrers/", respond=self.referrers_pages(lambda p, n: p)))
        proc = self.save(out)
        self.assert_failed_save(proc, out, self.image["digest"])
        self.assertLessEqual(len(self.proxy.logged("GET", "/referrers/")), 3)

    # -- 9. redirects to other hosts -------------------------------------------
    @classmethod
    def auth_source(cls):
        """An htpasswd registry behind its own proxy, seeded like the plain one (lazily)."""
        if getattr(cls, "_auth", None) is None:
            htpasswd = R.make_htpasswd(os.path.join(cls.tmp, "htpasswd"), {USER: PASSWORD})
            reg = R.Registry("hostile-auth", htpasswd=htpasswd, credentials=(USER, PASSWORD)).start()
            cls.addClassCleanup(reg.stop)
            R.push_image(reg, "team/app", "v1", [cls.layer_bytes[d] for d in cls.layers])
            proxy = FaultProxy(reg.host).start()
            cls.addClassCleanup(proxy.stop)
            cls._auth = (reg, proxy)
        reg, proxy = cls._auth
        proxy.clear_faults()
        proxy.reset_counters()
        return reg, proxy

    def save_with_credentials(self, out, ref):
        return self.ferry("save", "--plain-http", ref, "-o", out, "-u", USER, "--password-stdin",
                          input=PASSWORD + "\n")

    def test_09_redirect_to_other_host_drops_credentials(self):
        """A blob GET answered 307 to a blob store on another host (localhost, another port):
        the store never sees the Authorization header, the blob still arrives."""
        if shutil.which("htpasswd") is None:
            self.skipTest("htpasswd not installed (apache2-utils)")
        _, proxy = self.auth_source()
        d = self.layers[1]
        out = self.out("redirect.tar")
        proxy.add(Fault("GET", "/blobs/" + d, status=307,
                        headers={"Location": f"http://localhost:{self.store.port}/blob/{d}?X-Amz-Signature=abc"}))
        proc = self.save_with_credentials(out, f"{proxy.host}/team/app:v1")
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        self.assertNotIn(PASSWORD, proc.stderr + proc.stdout)
        got = [e for e in self.store.log if d in e["path"]]
        self.assertEqual(len(got), 1, self.store.log)
        self.assertNotIn("authorization", got[0]["headers"])
        # The registry itself did get credentials (the redirect came from an authenticated GET).
        self.assertTrue(any(e["headers"].get("authorization") == basic(USER, PASSWORD)
                            for e in proxy.logged("GET", "/blobs/" + d)))
        self.assert_verifies(out)

    def test_09b_redirect_target_asking_for_credentials_gets_none(self):
        if shutil.which("htpasswd") is None:
            self.skipTest("htpasswd not installed (apache2-utils)")
        _, proxy = self.auth_source()
        d = self.layers[1]
        out = self.out("redirect-locked.tar")
        proxy.add(Fault("GET", "/blobs/" + d, status=307,
                        headers={"Location": f"http://127.0.0.1:{self.store.port}/locked/{d}"}))
        proc = self.save_with_credentials(out, f"{proxy.host}/team/app:v1")
        self.assert_failed_save(proc, out, d, "401")
        self.assertTrue(self.store.log)
        self.assertFalse([e for e in self.store.log if "authorization" in e["headers"]], self.store.log)

    def test_09c_redirect_to_same_port_other_host_name(self):
        """localhost vs 127.0.0.1 is another origin: credentials are dropped there too (the
        registry then refuses the anonymous GET, and the save fails naming the blob)."""
        if shutil.which("htpasswd") is None:
            self.skipTest("htpasswd not installed (apache2-utils)")
        _, proxy = self.auth_source()
        d = self.layers[0]
        out = self.out("redirect-localhost.tar")
        port = proxy.host.rsplit(":", 1)[1]
        proxy.add(Fault("GET", "/blobs/" + d, times=1, when=lambda h: h.get("host", "").startswith("127.0.0.1"),
                        status=307, headers={"Location": f"http://localhost:{port}/v2/team/app/blobs/{d}"}))
        proc = self.save_with_credentials(out, f"{proxy.host}/team/app:v1")
        self.assert_failed_save(proc, out, d)
        hops = [e for e in proxy.logged("GET", "/blobs/" + d) if e["headers"].get("host", "").startswith("localhost")]
        self.assertTrue(hops, proxy.log)
        self.assertFalse([e for e in hops if "authorization" in e["headers"]])

    # -- 10. token realm on another host ---------------------------------------
    def bearer_proxy(self, realm, extra_challenge=""):
        """The plain source behind a proxy that demands Bearer tok-ok from `realm`."""
        challenge = f'Bearer realm="{realm}",service="hostile"' + extra_challenge
        self.proxy.add(Fault(when=lambda h: h.get("authorization") != "Bearer tok-ok", status=401,
                             headers={"WWW-Authenticate": challenge, "Content-Type": "application/json"},
                             body=b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'))

    def test_10_token_realm_on_other_host(self):
        """Credentials go to the realm the challenge names and nowhere else: the registry only
        ever sees the Bearer token, the decoy (a second challenge's realm) nothing."""
        out = self.out("bearer.tar")
        self.bearer_proxy(f"http://127.0.0.1:{self.realm.port}/token",
                          f', Bearer realm="http://127.0.0.1:{self.decoy.port}/token",service="decoy"')
        proc = self.save_with_credentials(out, self.ref)
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        self.assertTrue(self.realm.log)
        self.assertTrue(all(e["headers"].get("authorization") == basic(USER, PASSWORD) for e in self.realm.log))
        self.assertFalse([e for e in self.proxy.log if e["headers"].get("authorization", "").startswith("Basic")])
        self.assertEqual(self.decoy.log, [])
        self.assert_verifies(out)

    def test_10b_token_realm_redirect_drops_credentials(self):
        """The token endpoint redirects to another host: the credentials stay behind."""
        out = self.out("bearer-moved.tar")
        self.bearer_proxy(f"http://localhost:{self.realm.port}/moved")
        proc = self.save_with_credentials(out, self.ref)
        self.assert_failed_save(proc, out, "token")
        self.assertTrue(self.decoy.log)
        self.assertFalse([e for e in self.decoy.log if "authorization" in e["headers"]], self.decoy.log)

    def test_10c_realm_not_http(self):
        for realm, needle in ((f"ftp://127.0.0.1:{self.decoy.port}/token", "not an http(s) URL"),
                              ("", "without a realm"),
                              (f"file:///etc/passwd", "not an http(s) URL")):
            with self.subTest(realm=realm):
                self.setUp()
                out = self.out("bad-realm.tar")
                self.bearer_proxy(realm)
                proc = self.save_with_credentials(out, self.ref)
                self.assert_failed_save(proc, out, self.proxy.host, needle)
                self.assertEqual(self.decoy.log, [])
                self.assertNotIn(PASSWORD, proc.stderr)

    def test_10d_referrers_link_to_other_host(self):
        """A referrers page whose Link leads to another host that asks for Basic auth: ferry
        does not follow it (before the fix it did, and sent the -u credentials there)."""
        out = self.out("link-decoy.tar")
        decoy = f"http://127.0.0.1:{self.decoy.port}"
        # First match wins: authenticated referrers requests get the pages, the rest the challenge.
        self.proxy.add(Fault("GET", "/referrers/", when=lambda h: h.get("authorization") == "Bearer tok-ok",
                             respond=self.referrers_pages(lambda p, n: f"{decoy}{p}?page={n}")))
        self.bearer_proxy(f"http://127.0.0.1:{self.realm.port}/token")
        proc = self.save_with_credentials(out, self.ref)
        self.assert_failed_save(proc, out, self.image["digest"], "another host")
        self.assertEqual(self.decoy.log, [])

    # -- 11. media types ------------------------------------------------------
    def test_11_child_served_with_other_content_type(self):
        """An index child (fetched by digest) served as text/html or schema 1: the descriptor's
        media type is authoritative and the bytes hash to the digest, so the save succeeds
        and the bundle keeps the descriptor's type."""
        child = self.children[1]["digest"]
        for ctype in ("text/html", "application/vnd.docker.distribution.manifest.v1+json"):
            with self.subTest(content_type=ctype):
                self.setUp()
                out = self.out("ctype-child.tar")
                self.proxy.add(Fault("GET", "/manifests/" + child, headers={"Content-Type": ctype}))
                proc = self.save(out, ref=f"{self.proxy.host}/multi/app:v1")
                self.assertEqual(proc.returncode, 0, R.describe(proc))
                self.assertTrue(self.proxy.logged("GET", "/manifests/" + child))
                b = R.read_bundle(out)
                idx = json.loads(b.blob(self.index["digest"]))
                self.assertEqual([m["mediaType"] for m in idx["manifests"]], [R.OCI_MANIFEST] * 2)
                self.assert_verifies(out)

    def test_11b_root_served_as_html(self):
        """The root by tag with Content-Type text/html but a real OCI manifest body: ferry
        goes by the body's own mediaType."""
        out = self.out("ctype-root.tar")
        self.proxy.add(Fault("GET", "/manifests/v1", headers={"Content-Type": "text/html"}))
        proc = self.save(out)
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        b = R.read_bundle(out)
        roots = [m for m in b.index["manifests"] if m["digest"] == self.image["digest"]]
        self.assertEqual([m["mediaType"] for m in roots], [R.OCI_MANIFEST])

    def test_11c_unsupported_schemas(self):
        """A tag answering a schema 1 manifest or an HTML page: a clear error naming the ref."""
        schema1 = R.canonical_json({"schemaVersion": 1, "name": "team/app", "tag": "v1", "architecture": "amd64",
                                    "fsLayers": [{"blobSum": self.layers[0]}], "history": [{"v1Compatibility": "{}"}]})
        for ctype, body, needle in (
                ("application/vnd.docker.distribution.manifest.v1+prettyjws", schema1, "unsupported manifest schemaVersion 1"),
                ("application/vnd.docker.distribution.manifest.v1+json", schema1, "unsupported manifest schemaVersion 1"),
                ("text/html", b"<html><body>Sign in to continue</body></html>", "not valid JSON (served as text/html)")):
            with self.subTest(content_type=ctype):
                self.setUp()
                out = self.out("schema.tar")
                self.proxy.add(Fault("GET", "/manifests/v1", body=body,
                                     headers={"Content-Type": ctype, "Docker-Content-Digest": None}))
                proc = self.save(out)
                self.assert_failed_save(proc, out, "team/app:v1", needle)

    def test_11d_body_media_type_disagrees_with_descriptor(self):
        """An index lists a child as a Docker manifest whose bytes say OCI manifest: refused
        (a descriptor and the content it names must agree), naming the child."""
        child = R.push_image(self.src, "mixed/app", None, [R.seeded_bytes("m-amd", 5000)], platform="linux/amd64")
        R.push_index(self.src, "mixed/app", "v1", [dict(child, mediaType=R.DOCKER_MANIFEST)])
        out = self.out("mixed.tar")
        proc = self.save(out, ref=f"{self.proxy.host}/mixed/app:v1")
        self.assert_failed_save(proc, out, child["digest"])

    # -- 12. push: the registry's answers ---------------------------------------
    def push(self, target, *args):
        return self.ferry("push", "--plain-http", self.bundle, target, *args)

    def test_12_blob_put_answers_other_digest(self):
        self.dproxy.add(Fault("PUT", "/blobs/uploads/", headers={"Docker-Content-Digest": WRONG}))
        proc = self.push(f"{self.dproxy.host}/p12a")
        line = self.assert_error(proc, 1, WRONG, "registry stored digest")
        blobs = R.read_bundle(self.bundle).blob_digests()
        self.assertTrue(any(d in line for d in blobs), f"names no blob of the bundle: {line}")

    def test_12b_manifest_put_answers_other_digest(self):
        self.dproxy.add(Fault("PUT", "/manifests/", headers={"Docker-Content-Digest": WRONG}))
        proc = self.push(f"{self.dproxy.host}/p12b")
        self.assert_error(proc, 1, WRONG, "p12b/team/app")

    def test_12c_manifest_put_swallowed(self):
        """201 with the right digest, but nothing stored: the proof after the push finds the
        tag missing."""
        self.dproxy.add(Fault("PUT", "/manifests/v1", status=201,
                              headers={"Docker-Content-Digest": self.image["digest"]}))
        proc = self.push(f"{self.dproxy.host}/p12c")
        self.assert_error(proc, 1, "v1")
        self.assertIsNone(self.dst.head_manifest("p12c/team/app", "v1"))

    def test_12d_blob_head_lies(self):
        """HEAD says a layer is there when it is not: the push does not report success."""
        d = self.layers[2]
        self.dproxy.add(Fault("HEAD", "/blobs/" + d, status=200,
                              headers={"Docker-Content-Digest": d, "Content-Length": str(len(self.layer_bytes[d]))}))
        proc = self.push(f"{self.dproxy.host}/p12d")
        self.assert_error(proc, 1)
        self.assertIsNone(self.dst.head_manifest("p12d/team/app", "v1"))

    def test_12e_blob_put_swallowed(self):
        """The final PUT of an upload answered 201 with the right digest, but not stored."""
        d = self.layers[1]
        self.dproxy.add(Fault("PUT", "digest=" + urllib.parse.quote(d), status=201,
                              headers={"Docker-Content-Digest": d}))
        self.dproxy.add(Fault("PUT", "digest=" + d, status=201, headers={"Docker-Content-Digest": d}))
        proc = self.push(f"{self.dproxy.host}/p12e")
        self.assert_error(proc, 1)
        self.assertIsNone(self.dst.head_manifest("p12e/team/app", "v1"))

    def test_12e2_blob_put_swallowed_without_digest(self):
        """201 without Docker-Content-Digest, and nothing stored: ferry asks (HEAD) and fails
        naming the blob, before any manifest goes up."""
        d = self.layers[1]
        self.dproxy.add(Fault("PUT", lambda p: "/blobs/uploads/" in p and d.split(":")[1] in p, status=201))
        proc = self.push(f"{self.dproxy.host}/p12g")
        self.assert_error(proc, 1, d, "does not have the blob")
        self.assertEqual(self.dproxy.logged("PUT", "/manifests/"), [])

    def test_12f_upload_location_on_other_host_gets_no_credentials(self):
        """The registry (asking for Basic auth) answers the upload POST with a Location on
        another host that asks for Basic auth too: the credentials stay with the registry."""
        self.dproxy.add(Fault(when=lambda h: h.get("authorization") != basic(USER, PASSWORD), status=401,
                              headers={"WWW-Authenticate": 'Basic realm="hostile"'}))
        self.dproxy.add(Fault("POST", "/blobs/uploads/", status=202,
                              headers={"Location": f"http://127.0.0.1:{self.decoy.port}/upload/1"}))
        proc = self.ferry("push", "--plain-http", self.bundle, f"{self.dproxy.host}/p12f",
                          "-u", USER, "--password-stdin", input=PASSWORD + "\n")
        self.assert_error(proc, 1, f"127.0.0.1:{self.decoy.port}")
        self.assertTrue(self.decoy.log)
        self.assertFalse([e for e in self.decoy.log if "authorization" in e["headers"]], self.decoy.log)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1] + sys.argv[1:], verbosity=2)
