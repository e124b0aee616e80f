#!/usr/bin/env python3
"""Progress on a terminal and the summary line (issue 7), captured through a pseudo-terminal.

save and push run with stderr on a pty (Python's ``pty.openpty``) against docker-registry
behind a rate-limited proxy (``fault_proxy.py``), so the transfer lasts long enough to draw
several frames. Asserted:
  - on a terminal: per-blob bars (digest prefix, bytes) and a total bar with percentage,
    bytes, rate and ETA, redrawn in place (cursor-up + clear sequences), ending at 100%, and
    erased before the summary; log lines are not garbled by the bars;
  - with ``-q``, or when stderr is not a terminal (a pipe), not one escape sequence;
  - every command's human summary line ends with the time and the rate.

Run: python3 tests/e2e/test_progress.py [Progress]   (FERRY=/abs/path/ferry)
Exit 77 (skipped) without ferry or docker-registry.
"""

import fcntl
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402
from fault_proxy import FaultProxy  # noqa: E402

R.skip_module_unless(__name__, registry=True)

ESC = "\x1b["
REDRAW = re.compile(r"\x1b\[\d+F\x1b\[J")
TOTAL = re.compile(r"(saving|pushing to \S+) \[[#> ]+\] (\d+)%  ([\d.]+ [KMG]?i?B) / ([\d.]+ [KMG]?i?B)  "
                   r"([\d.]+ [KMG]?i?B)/s(  ETA \d+m\d\ds)?  (\d+)/(\d+) blobs")
SUMMARY_TIME = re.compile(r" in \d+\.\d s( \([\d.]+ [KMG]?i?B/s\))?$")
LAYER = 24 << 20


def run_on_pty(args, timeout=120, env=None):
    """Runs ferry with stderr on a pseudo-terminal (stdout a pipe); returns (exit code,
    stdout text, everything written to the terminal)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 132, 0, 0))  # 132 columns
    proc = subprocess.Popen([R.ferry_binary()] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave, env=R.child_env(env))
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    while True:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            # Drain what is left, then stop.
            try:
                while select.select([master], [], [], 0.1)[0]:
                    data = os.read(master, 65536)
                    if not data:
                        break
                    chunks.append(data)
            except OSError:
                pass
            break
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"ferry {' '.join(map(str, args))} did not finish in {timeout} s")
    out = proc.stdout.read().decode()
    proc.wait()
    os.close(master)
    return proc.returncode, out, b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


class Progress(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ferry-e2e-Progress-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.src = R.Registry("src").start()
        cls.addClassCleanup(cls.src.stop)
        cls.dst = R.Registry("dst").start()
        cls.addClassCleanup(cls.dst.stop)
        cls.image = R.push_image(cls.src, "demo/big", "v1",
                                 [R.seeded_bytes("progress-layer", LAYER), R.seeded_bytes("small", 4096)])
        # 12 MiB/s: the 24 MiB layer takes about two seconds, about twenty frames.
        cls.proxy = FaultProxy(cls.src.host, rate=12 << 20).start()
        cls.addClassCleanup(cls.proxy.stop)
        cls.n = 0

    def out(self, ext):
        type(self).n += 1
        return os.path.join(self.tmp, f"b{self.n}.{ext}")

    def ref(self):
        return f"{self.proxy.host}/demo/big:v1"

    def assert_bars(self, term, what):
        frames = REDRAW.split(term)
        self.assertGreaterEqual(len(frames), 5, f"want several redraws, got {len(frames)}:\n{term[:3000]!r}")
        totals = TOTAL.findall(term)
        self.assertTrue(totals, f"no total bar in the terminal output:\n{term[:3000]!r}")
        self.assertTrue(all(t[0].startswith(what) for t in totals), totals[:3])
        percents = [int(t[1]) for t in totals]
        self.assertEqual(percents, sorted(percents), "the total never goes backwards")
        self.assertEqual(percents[-1], 100, "the last frame is complete")
        self.assertTrue(any(0 < p < 100 for p in percents), f"no frame mid-way: {percents}")
        self.assertTrue(any(t[5] for t in totals), "an ETA is shown while it runs")
        rates = [t[4] for t in totals if not t[4].startswith("0 ")]
        self.assertTrue(rates, "a rate is shown")
        # A per-blob bar for the big layer, with its digest prefix and size.
        self.assertRegex(term, r"  sha256:[0-9a-f]{12}\.\.\. \[[#> ]+\] [\d.]+ [KMG]?i?B / 24\.0 MiB")
        # Erased at the end: after the last frame comes a clear, then only whole lines.
        last = max(m.end() for m in TOTAL.finditer(term))
        erase = REDRAW.search(term, last)
        self.assertIsNotNone(erase, f"the bars are not erased at the end: {term[-300:]!r}")
        self.assertNotIn(ESC, term[erase.end():], "nothing drawn after the bars were erased")

    def test_save_on_a_terminal(self):
        for ext in ("tar", "tar.zst"):
            with self.subTest(fmt=ext):
                out = self.out(ext)
                rc, stdout, term = run_on_pty(["save", "--plain-http", self.ref(), "-o", out])
                self.assertEqual(rc, 0, term[-2000:])
                self.assert_bars(term, "saving")
                # Log lines are whole lines, above the bars.
                clean = REDRAW.sub("", term)
                self.assertRegex(clean, r"(?m)^resolved \S+ -> sha256:[0-9a-f]{64}$")
                summary = stdout.strip().splitlines()[-1]
                self.assertRegex(summary, SUMMARY_TIME, stdout)
                self.assertIn("1 image,", summary)

    def test_push_on_a_terminal(self):
        bundle = self.out("tar")
        subprocess.run([R.ferry_binary(), "save", "-q", "--plain-http", f"{self.src.host}/demo/big:v1",
                        "-o", bundle], check=True, capture_output=True)
        slow_dst = FaultProxy(self.dst.host, upload_rate=12 << 20).start()
        self.addCleanup(slow_dst.stop)
        rc, stdout, term = run_on_pty(["push", "--plain-http", bundle, slow_dst.host + "/p"])
        self.assertEqual(rc, 0, term[-2000:])
        self.assert_bars(term, "pushing to")
        self.assertRegex(stdout.strip().splitlines()[-1], SUMMARY_TIME)

    def test_quiet_and_not_a_terminal_draw_nothing(self):
        out = self.out("tar")
        rc, stdout, term = run_on_pty(["save", "-q", "--plain-http", self.ref(), "-o", out])
        self.assertEqual(rc, 0, term)
        self.assertNotIn(ESC, term, "-q on a terminal must draw nothing")
        self.assertEqual(term.strip(), "", "-q prints nothing on stderr")
        out = self.out("tar")
        proc = R.run_ferry("save", "--plain-http", self.ref(), "-o", out)  # stderr is a pipe
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        self.assertNotIn(ESC, proc.stderr, "no escape sequences when stderr is not a terminal")
        self.assertIn("resolved", proc.stderr)
        self.assertRegex(proc.stdout.strip().splitlines()[-1], SUMMARY_TIME)

    def test_error_after_bars_is_one_clean_line(self):
        # The layer is cut off after 8 MiB and the proxy is gone by then: the resume fails,
        # and the error line after the bars stands alone (the bars are erased first).
        proxy = FaultProxy(self.src.host, rate=12 << 20).start()
        layer_digest = R.sha256_digest(R.seeded_bytes("progress-layer", LAYER))
        proxy.cut_once[layer_digest] = 8 << 20

        def stop_soon():
            # Once 3 MiB of the layer have gone out (a quarter of a second at the proxy's rate,
            # so the bars, redrawn at 10 Hz, are up whatever the build's speed or the discovery
            # before it took), the proxy goes away mid-layer. Plain sleeps, not threading.Timer:
            # a timed wait on a lock or condition takes an absolute CLOCK_MONOTONIC deadline,
            # which libfaketime shifts along with the wall clock (.ci/run's run 1,000 days
            # ahead), so a Timer would never fire there.
            for _ in range(3000):
                if proxy.served_blob_bytes() >= 3 << 20:
                    break
                time.sleep(0.02)
            proxy.stop()

        stopper = threading.Thread(target=stop_soon, daemon=True)
        stopper.start()
        self.addCleanup(stopper.join)
        out = self.out("tar")
        rc, stdout, term = run_on_pty(["save", "--plain-http", f"{proxy.host}/demo/big:v1", "-o", out,
                                       "--timeout", "2"], timeout=180)
        self.assertEqual(rc, 1, term[-2000:])
        self.assertTrue(TOTAL.search(term), "bars were drawn before the failure")
        lines = [l for l in REDRAW.sub("", term).split("\n") if l.strip()]
        self.assertTrue(lines[-1].startswith("ferry: error: "), lines[-3:])
        self.assertNotIn("[", lines[-1].split("ferry: error: ")[0])

    def test_summary_lines(self):
        bundle = self.out("tar")
        R.run_ferry("save", "-q", "--plain-http", f"{self.src.host}/demo/big:v1", "-o", bundle)
        for args in (["verify", "--integrity-only", bundle],
                     ["push", "--plain-http", bundle, self.dst.host + "/s"],
                     ["copy", "--plain-http", f"{self.src.host}/demo/big:v1", self.dst.host + "/c/big:v1"]):
            with self.subTest(command=args[0]):
                proc = R.run_ferry(*args)
                self.assertEqual(proc.returncode, 0, R.describe(proc))
                self.assertRegex(proc.stdout.strip().splitlines()[-1], SUMMARY_TIME, R.describe(proc))


if __name__ == "__main__":
    unittest.main(verbosity=2)
