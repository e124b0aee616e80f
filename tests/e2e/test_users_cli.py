#!/usr/bin/env python3
"""Issue 14, "Operators' expectations": what a newcomer meets first — the command line and
the README's first command.

Classes (meson: ``e2e-users-cli-<Class>``):
  DidYouMean  an unknown command is a usage error (exit 2, one ``ferry: error:`` line) that
              names the closest commands; known commands, aliases and options still parse.
  Counts      every count in human output agrees with its noun ("1 blob", "2 blobs", never
              "1 blobs"), and no line is printed twice: save, inspect, verify and push of a
              bundle with one image of one blob (a config and no layer).
  Readme      the README's first command installs through ``sudo`` only when not root (no
              bare ``sudo``), builds ferry without the test suites (``-Dtests=false``, checked
              by configuring the source tree that way and asking meson what it would build)
              and runs the demo; its second command is the one ``.ci/run`` runs and builds
              the suites.

Run: python3 tests/e2e/test_users_cli.py [Class[.test_name]]   (FERRY=/abs/path/ferry)
Exit 77 (skipped) without the ferry binary; Readme's build checks skip without meson.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402

R.skip_module_unless(__name__, registry=False)
NOUNS = r"(?:image|blob|manifest|referrer|tag|artifact|signature|referrer link|check|repository|entry|problem)"

SOURCE = os.path.dirname(os.path.dirname(HERE))


class DidYouMean(unittest.TestCase):
    def usage_error(self, *args):
        proc = R.run_ferry(*args)
        self.assertEqual(proc.returncode, 2, R.describe(proc))
        self.assertEqual(proc.stdout, "", R.describe(proc))
        lines = proc.stderr.splitlines()
        self.assertEqual(len(lines), 1, R.describe(proc))
        self.assertTrue(lines[0].startswith("ferry: error: "), R.describe(proc))
        return lines[0]

    def test_typos_name_the_command(self):
        for typo, meant in (("pusj", "push"), ("psuh", "push"), ("verfy", "verify"), ("sav", "save"),
                            ("inspcet", "inspect"), ("Sign", "sign"), ("cpy", "copy")):
            with self.subTest(typo=typo):
                line = self.usage_error(typo, "bundle.tar")
                self.assertIn(f'unknown command "{typo}"', line)
                self.assertIn(f"did you mean '{meant}'?", line)

    def test_after_a_global_flag(self):
        line = self.usage_error("-q", "pusj")
        self.assertIn("did you mean 'push'?", line)

    def test_far_from_every_command(self):
        line = self.usage_error("frobnicate")
        self.assertIn('unknown command "frobnicate"', line)
        self.assertNotIn("did you mean", line)

    def test_hostile_word_is_escaped(self):
        line = self.usage_error("\x1b[2Jpush")
        self.assertNotIn("\x1b", line)

    def test_known_commands_still_parse(self):
        for cmd in ("save", "push", "verify", "inspect", "sign", "copy"):
            with self.subTest(cmd=cmd):
                proc = R.run_ferry(cmd, "--help")
                self.assertEqual(proc.returncode, 0, R.describe(proc))
        proc = R.run_ferry("--version")
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        # Issue 19: the commit and the libraries it runs with, as text and as JSON.
        lines = proc.stdout.splitlines()
        self.assertRegex(lines[0], r"^ferry \d+\.\d+\.\d+ \(commit [0-9a-f]{7,}(-dirty)?|unknown\)")
        for lib in ("OpenSSL", "libcurl", "libarchive", "libzstd", "libmicrohttpd"):
            self.assertTrue(any(re.match(lib + r" \d+\.\d+", l) for l in lines[1:]), proc.stdout)
        proc = R.run_ferry("--version", "--json")
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        doc = json.loads(proc.stdout)
        self.assertEqual(sorted(doc), ["commit", "libraries", "version"])
        self.assertEqual(sorted(doc["libraries"]), ["OpenSSL", "libarchive", "libcurl", "libmicrohttpd", "libzstd"])
        self.assertIn(doc["version"], lines[0])
        # An option before the command, and an unknown option: CLI11's own message, still exit 2.
        proc = R.run_ferry("inspect", "--no-such-flag", "x.tar")
        self.assertEqual(proc.returncode, 2, R.describe(proc))
        self.assertNotIn("unknown command", proc.stderr)


class Counts(unittest.TestCase):
    def setUp(self):
        if not shutil.which("docker-registry") and not shutil.which("registry"):
            self.skipTest("docker-registry not installed")
        self.tmp = tempfile.mkdtemp(prefix="ferry-counts-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.reg = R.Registry()
        self.reg.start()
        self.addCleanup(self.reg.stop)

    def assert_counts(self, proc):
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        text = proc.stdout + proc.stderr
        self.assertEqual(re.findall(r"\b1 " + NOUNS + r"(?:s|es)\b", text), [], text)
        self.assertEqual(re.findall(r"(?<![/.\d])\b(?:0|[2-9]|[1-9]\d+) (?:image|blob|manifest|referrer|tag|artifact)\b(?![s\w]| link)",
                                    text), [], text)
        lines = [l for l in text.splitlines() if l.strip()]
        self.assertEqual(len(lines), len(set(lines)), "a line printed twice:\n" + text)
        return text

    def test_one_of_each(self):
        R.push_image(self.reg, "counts/app", "v1", [])
        bundle = os.path.join(self.tmp, "b.tar")
        text = self.assert_counts(R.run_ferry("save", "--plain-http", f"{self.reg.host}/counts/app:v1", "-o", bundle))
        self.assertIn("1 image, 0 referrers, 1 manifest, 1 blob", text)
        text = self.assert_counts(R.run_ferry("inspect", bundle))
        self.assertIn("1 image, 1 manifest, 1 blob", text)
        text = self.assert_counts(R.run_ferry("verify", "--integrity-only", bundle))
        # verify hashes every blob file of the layout, the manifest's too: 2, where save and
        # inspect count 1 manifest and 1 blob.
        self.assertIn("integrity ok (2 blobs,", text)
        self.assertIn("verification passed: 1 artifact, 2 blobs", text)
        text = self.assert_counts(R.run_ferry("push", "--plain-http", bundle, f"{self.reg.host}/mirror"))
        self.assertIn("1 manifest, 1 tag and 0 referrer links arrived", text)


def readme_blocks():
    with open(os.path.join(SOURCE, "README.md"), encoding="utf-8") as f:
        text = f.read()
    return re.findall(r"```sh\n(.*?)```", text, re.S)


class Readme(unittest.TestCase):
    def setUp(self):
        blocks = readme_blocks()
        self.assertGreaterEqual(len(blocks), 2)
        self.first, self.second = blocks[0].strip(), blocks[1].strip()

    def test_no_bare_sudo(self):
        # Every apt-get goes through $S, which is empty for root and "sudo" for a user.
        self.assertNotRegex(self.first, r"(^|[;&|]\s*)sudo\b")
        prefix, _, rest = self.first.partition(";")
        self.assertTrue(prefix.startswith("S="), self.first)
        for word in re.findall(r"(\S+) apt-get", rest):
            self.assertEqual(word, "$S", self.first)
        as_root = subprocess.run(["sh", "-c", prefix + '; printf %s "$S"'], capture_output=True, text=True)
        self.assertEqual(as_root.stdout, "" if os.getuid() == 0 else "sudo")
        if os.getuid() == 0 and shutil.which("setpriv"):
            as_user = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                      "sh", "-c", prefix + '; printf %s "$S"'], capture_output=True, text=True)
            self.assertEqual(as_user.stdout, "sudo", as_user.stderr)

    def test_first_builds_ferry_alone_then_the_demo(self):
        m = re.search(r"meson setup (\S+) -Dtests=false && meson compile -C (\S+) && FERRY=(\S+) demo/demo.sh$",
                      self.first)
        self.assertTrue(m, self.first)
        self.assertEqual(m.group(1), m.group(2))
        self.assertEqual(m.group(3), m.group(1) + "/ferry")
        self.assertNotEqual(m.group(1), "build", "the test command's build directory must keep its suites")

    def test_second_is_what_ci_runs(self):
        self.assertEqual(self.second, "meson setup build && meson test -C build --print-errorlogs")
        with open(os.path.join(SOURCE, ".ci", "run"), encoding="utf-8") as f:
            ci = f.read().replace(" >/dev/null", "")  # CI keeps meson setup's chatter out of its log
        self.assertIn(self.second, ci)

    def configured_targets(self, *options):
        if not shutil.which("meson"):
            self.skipTest("meson not installed")
        with tempfile.TemporaryDirectory(prefix="ferry-readme-") as tmp:
            build = os.path.join(tmp, "b")
            p = subprocess.run(["meson", "setup", build, *options], cwd=SOURCE, capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            targets = json.loads(subprocess.run(["meson", "introspect", "--targets", build],
                                                capture_output=True, text=True, check=True).stdout)
            tests = json.loads(subprocess.run(["meson", "introspect", "--tests", build],
                                              capture_output=True, text=True, check=True).stdout)
            return {t["name"] for t in targets}, tests

    def test_without_tests_builds_only_ferry(self):
        names, tests = self.configured_targets("-Dtests=false")
        self.assertIn("ferry", names)
        self.assertEqual(tests, [])
        self.assertFalse([n for n in names if "test" in n], names)
        names, tests = self.configured_targets()
        self.assertTrue(any(t["name"].startswith("unit-") for t in tests))
        self.assertTrue(any(t["name"].startswith("e2e-") for t in tests))


if __name__ == "__main__":
    unittest.main()
