#!/usr/bin/env python3
"""The README's demo (demo/demo.sh) run end to end with the ferry under test.

Run: python3 tests/e2e/test_demo.py   (FERRY=/abs/path/ferry to override the binary)
Exit code 77 (meson "skipped") without docker-registry or openssl.

Asserts what the demo promises: the signatures it makes verify offline with the trust material
the bundle carries (pinned), and the target's graph matches the source's."""

import os
import re
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402

R.skip_module_unless(__name__, registry=True, programs=("openssl",))

DEMO = os.path.join(HERE, "..", "..", "demo", "demo.sh")


class Demo(unittest.TestCase):
    def test_demo_saves_verifies_pushes_and_matches(self):
        env = dict(os.environ, FERRY=R.ferry_binary())
        proc = subprocess.run(["bash", DEMO], env=env, capture_output=True, text=True, timeout=600)
        out = proc.stdout + proc.stderr
        self.assertEqual(proc.returncode, 0, out[-4000:])
        self.assertRegex(out, r"\$ ferry verify --trust-pin sha256:[0-9a-f]{64} "
                              r"--require-referrer-signatures ")
        self.assertIn("verification passed: 1 artifact, 1 of 1 referrer verified", out)
        self.assertEqual(len(re.findall(r"\(application/jose\+json\): verified", out)), 1, out)
        self.assertEqual(len(re.findall(r"\(application/cose\): verified", out)), 1, out)
        self.assertNotRegex(out, r"\bfail\b")
        self.assertIn("proof: all 4 manifests, 1 tag and 3 referrer links arrived", out)
        self.assertRegex(out, r"MATCH: 4 manifests, 7 blobs, 3 referrer links, tags \['v1'\]")


if __name__ == "__main__":
    unittest.main()
