#!/usr/bin/env python3
"""End-to-end: an interrupted save resumes (issue 5).

ferry save is SIGKILLed at several points (before any blob, after the first, half-way, one
blob before the end, and twice in a row) while it downloads through a rate-limited proxy in
front of a real docker-registry; re-running the same command must reuse every finished blob,
download only the rest, and end byte-identical to an uninterrupted save, for .tar, .tar.zst
and directory bundles. A blob GET cut off mid-body resumes with a Range request.

Run: python3 tests/e2e/test_resume.py [Class]   (FERRY=/abs/path/ferry to override)
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402

R.skip_module_unless(__name__)

LAYERS = 8
LAYER_SIZE = 2 << 20
RATE = 12 << 20  # bytes/s per response through the proxy: a save takes about a second
FORMATS = {"tar": ".tar", "tar.zst": ".tar.zst", "dir": ""}


def tree(path):
    """Bytes of a file, or {relative path: bytes} of a directory."""
    if os.path.isfile(path):
        with open(path, "rb") as f:
            return f.read()
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            p = os.path.join(root, name)
            with open(p, "rb") as f:
                out[os.path.relpath(p, path)] = f.read()
    return out


class Resume(unittest.TestCase):
    maxDiff = 2000

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ferry-e2e-resume-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.reg = R.Registry("src").start()
        cls.addClassCleanup(cls.reg.stop)
        layers = [R.seeded_bytes(f"resume-layer-{i}", LAYER_SIZE + i * 1000) for i in range(LAYERS)]
        cls.layers = [R.sha256_digest(l) for l in layers]
        image = R.push_image(cls.reg, "big/app", "v1", layers)
        R.push_signature(cls.reg, "big/app", image, "resume-sig")
        cls.proxy = FaultProxy(cls.reg.host, rate=RATE).start()
        cls.addClassCleanup(cls.proxy.stop)
        cls.ref = f"{cls.proxy.host}/big/app:v1"
        cls.whole = {}
        for fmt, ext in FORMATS.items():
            out = os.path.join(cls.tmp, "whole" + (ext or "-dir"))
            proc = R.run_ferry("save", "--plain-http", "--json", cls.ref, "-o", out)
            assert proc.returncode == 0, R.describe(proc)
            cls.whole[fmt] = tree(out)
            cls.total_blobs = json.loads(proc.stdout)["blobs"]
            cls.total_bytes = json.loads(proc.stdout)["bytes"]

    # -- helpers -----------------------------------------------------------
    def out(self, name, fmt):
        return os.path.join(self.tmp, name + (FORMATS[fmt] or "-dir"))

    @staticmethod
    def finished(out):
        """Blobs the sidecar records as finished."""
        try:
            with open(out + ".partial.resume") as f:
                return max(0, len(f.read().splitlines()) - 1)
        except FileNotFoundError:
            return 0

    def kill_after(self, out, blobs, *extra):
        """Starts the save and SIGKILLs it once `blobs` blobs are finished (0: as soon as it
        started). Returns the number finished at the kill."""
        cmd = [R.ferry_binary(), "save", "--plain-http", "--concurrency", "2", self.ref, "-o", out, *extra]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=R.child_env())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if (blobs == 0 and time.monotonic() > deadline - 59.95) or (blobs and self.finished(out) >= blobs):
                break
            time.sleep(0.002)
        if proc.poll() is not None:
            self.fail(f"save ended before the kill point ({blobs} blobs): {proc.stderr.read().decode()}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()
        self.assertEqual(proc.returncode, -signal.SIGKILL)
        self.assertFalse(os.path.exists(out), "a killed save left a bundle at the output path")
        self.assertTrue(self.proxy.wait_idle(), "the proxy still serves the killed save")
        return self.finished(out)

    def assert_resumed(self, doc, fmt, done):
        """All `done` finished blobs were reused. A directory may reuse up to --concurrency
        more: a blob file renamed into place just before the kill, not yet in the sidecar."""
        got = doc["resumed"]["blobs"]
        if fmt == "dir":
            self.assertTrue(done <= got <= done + 2, f"resumed {got}, {done} finished")
        else:
            self.assertEqual(got, done, doc)

    def rerun(self, out, *extra):
        self.proxy.reset_counters()
        proc = R.run_ferry("save", "--plain-http", "--json", self.ref, "-o", out, *extra)
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        return json.loads(proc.stdout), self.proxy.served_blob_bytes()

    def check_identical(self, out, fmt):
        self.assertTrue(tree(out) == self.whole[fmt], f"{out} differs from an uninterrupted save")
        leftovers = [p for p in os.listdir(self.tmp) if p.startswith(os.path.basename(out) + ".partial")]
        self.assertEqual(leftovers, [])

    # -- tests -------------------------------------------------------------
    def test_kill_at_several_points(self):
        for fmt in FORMATS:
            for point in (0, 1, self.total_blobs // 2, self.total_blobs - 1):
                with self.subTest(format=fmt, kill_after=point):
                    out = self.out(f"kill-{point}", fmt)
                    done = self.kill_after(out, point)
                    self.assertGreaterEqual(done, point)
                    if done:
                        self.assertTrue(os.path.exists(out + ".partial"))
                    doc, fetched = self.rerun(out)
                    self.assert_resumed(doc, fmt, done)
                    missing = self.total_bytes - doc["resumed"]["bytes"]
                    # Everything missing was fetched, nothing finished was fetched again
                    # (slack: save reads signature envelopes once more to look for CRLs).
                    self.assertGreaterEqual(fetched, missing - (self.total_bytes - LAYERS * LAYER_SIZE))
                    self.assertLessEqual(fetched, missing + (64 << 10))
                    self.check_identical(out, fmt)

    def test_killed_twice(self):
        for fmt in FORMATS:
            with self.subTest(format=fmt):
                out = self.out("twice", fmt)
                first = self.kill_after(out, 2)
                second = self.kill_after(out, first + 3)
                self.assertGreater(second, first)
                doc, _ = self.rerun(out)
                self.assert_resumed(doc, fmt, second)
                self.check_identical(out, fmt)

    def test_no_resume_starts_afresh(self):
        for fmt in FORMATS:
            with self.subTest(format=fmt):
                out = self.out("fresh", fmt)
                self.assertGreater(self.kill_after(out, 3), 0)
                doc, fetched = self.rerun(out, "--no-resume")
                self.assertEqual(doc["resumed"], {"blobs": 0, "continuedBlobs": 0, "bytes": 0})
                self.assertGreaterEqual(fetched, LAYERS * LAYER_SIZE)
                self.check_identical(out, fmt)

    def test_other_plan_starts_afresh(self):
        # The partial output of one save is not taken for another's.
        out = self.out("other", "tar")
        self.assertGreater(self.kill_after(out, 3), 0)
        other = f"{self.proxy.host}/big/app@{self.reg.head_manifest('big/app', 'v1')['digest']}"
        self.proxy.reset_counters()
        proc = R.run_ferry("save", "--plain-http", "--json", other, "-o", out)
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        self.assertEqual(json.loads(proc.stdout)["resumed"]["blobs"], 0)
        self.assertFalse(os.path.exists(out + ".partial.resume"))

    def test_killed_inside_a_large_blob(self):
        """A 72 MiB layer: killed after its first 8 MiB checkpoint, the re-run keeps what the
        last checkpoint covers and asks for the rest with a Range request."""
        big = R.seeded_bytes("resume-huge", 72 << 20)
        digest = R.sha256_digest(big)
        R.push_image(self.reg, "huge/app", "v1", [big])
        ref = f"{self.proxy.host}/huge/app:v1"
        for fmt in FORMATS:
            with self.subTest(format=fmt):
                whole = self.out("huge-whole", fmt)
                proc = R.run_ferry("save", "--plain-http", ref, "-o", whole)
                self.assertEqual(proc.returncode, 0, R.describe(proc))
                out = self.out("huge", fmt)
                self.proxy.rate = 48 << 20
                try:
                    proc = subprocess.Popen([R.ferry_binary(), "save", "--plain-http", ref, "-o", out],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=R.child_env())
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline and proc.poll() is None:
                        try:
                            with open(out + ".partial.resume") as f:
                                if any(l.startswith("partial ") for l in f.read().splitlines()):
                                    break
                        except FileNotFoundError:
                            pass
                        time.sleep(0.005)
                    self.assertIsNone(proc.poll(), "save ended before its first checkpoint")
                    proc.kill()
                    proc.wait()
                    self.assertTrue(self.proxy.wait_idle())
                finally:
                    self.proxy.rate = RATE
                doc, fetched = self.rerun_ref(ref, out)
                self.assertGreaterEqual(doc["resumed"]["bytes"], 8 << 20, doc)
                self.assertEqual(doc["resumed"]["continuedBlobs"], 1, doc)
                self.assertLessEqual(fetched, (72 << 20) - doc["resumed"]["bytes"] + (64 << 10))
                ranged = [r for m, p, r, _ in self.proxy.requests if p.endswith(digest) and r]
                self.assertEqual(len(ranged), 1, self.proxy.requests)
                self.assertTrue(tree(out) == tree(whole), f"{out} differs from an uninterrupted save")

    def rerun_ref(self, ref, out):
        self.proxy.reset_counters()
        proc = R.run_ferry("save", "--plain-http", "--json", ref, "-o", out)
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        return json.loads(proc.stdout), self.proxy.served_blob_bytes()

    def test_blob_get_cut_mid_body_resumes_with_range(self):
        self.proxy.rate = None
        try:
            for fmt in FORMATS:
                with self.subTest(format=fmt):
                    out = self.out("range", fmt)
                    self.proxy.reset_counters()
                    self.proxy.cut_once[self.layers[3]] = 700_000
                    proc = R.run_ferry("save", "--plain-http", self.ref, "-o", out)
                    self.assertEqual(proc.returncode, 0, R.describe(proc))
                    ranged = [(p, r, s) for m, p, r, s in self.proxy.requests
                              if m == "GET" and p.endswith(self.layers[3]) and r]
                    self.assertEqual(ranged, [(f"/v2/big/app/blobs/{self.layers[3]}", "bytes=700000-", 206)])
                    self.check_identical(out, fmt)
        finally:
            self.proxy.rate = RATE


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1] + sys.argv[1:], verbosity=2)
