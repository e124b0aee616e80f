#!/usr/bin/env python3
"""Issue 16, "Volumes for removable media": ``save --max-size`` splits an archive bundle into
``NAME.001``, ``NAME.002``, …; verify, inspect and push take the first volume and read across
all of them; a missing, reordered, truncated, foreign or corrupted volume is refused in one
line naming it.

Classes (meson: ``e2e-Volumes-<Class>``):
  RoundTrip  two images (one a multi-platform index) with signatures and SBOMs saved from a
             docker-registry as exactly 3 volumes (.tar and .tar.zst): the payloads are the
             bundle a plain save writes; verify passes, inspect works, push into a second
             registry gives the digests, tags and referrers a push of the plain bundle gives.
  Damage     each damaged-volume case refused by verify (and push) with ONE error line naming
             the volume, exit 1: .002 missing, .002 and .003 swapped, .003 truncated, .002
             from another save of the same name, one byte of .002 changed; the second volume
             given first; usage errors (a directory, too small a size, sign of a volume).

Run: python3 tests/e2e/test_volumes.py [Class[.test_name]]   (FERRY=/abs/path/ferry)
Exit 77 (skipped) without ferry or docker-registry.
"""

import json
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402
from seed import seed_fixture  # noqa: E402

R.skip_module_unless(__name__)

CRASH = ("Traceback", "terminate called", "Segmentation fault", "AddressSanitizer", "runtime error:")
HEADER = 512
FORMATS = ("tar", "tar.zst")


def read(path):
    with open(path, "rb") as f:
        return f.read()


def volumes_of(name):
    """The volume files NAME.001, NAME.002, … that exist, in order."""
    out = []
    while os.path.exists(f"{name}.{len(out) + 1:03d}"):
        out.append(f"{name}.{len(out) + 1:03d}")
    return out


class Base(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix=f"ferry-e2e-volumes-{cls.__name__}-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.src = R.Registry("src").start()
        cls.addClassCleanup(cls.src.stop)
        cls.dst = R.Registry("dst").start()
        cls.addClassCleanup(cls.dst.stop)
        cls.fx = seed_fixture(cls.src)
        cls.refs = [f"{cls.src.host}/{cls.fx['app_repo']}:v1", f"{cls.src.host}/{cls.fx['multi_repo']}:v2"]
        cls.plain = {}
        cls.max_size = {}
        for fmt in FORMATS:
            out = os.path.join(cls.tmp, f"plain.{fmt}")
            p = R.run_ferry("save", "-q", "--plain-http", *cls.refs, "-o", out)
            if p.returncode != 0:
                raise AssertionError("save failed" + R.describe(p))
            cls.plain[fmt] = out
            size = os.path.getsize(out)
            # Exactly three volumes: two full ones of a third (rounded up), the rest in the last.
            cls.max_size[fmt] = (size + 2) // 3 + HEADER
        cls.counter = 0

    def path(self, *names):
        return os.path.join(self.tmp, *names)

    def new_ns(self):
        type(self).counter += 1
        return f"t{type(self).counter}"

    def ferry(self, *args, expect=0):
        proc = R.run_ferry(*args)
        for bad in CRASH:
            self.assertNotIn(bad, proc.stderr, R.describe(proc))
        if expect is not None:
            self.assertEqual(proc.returncode, expect, R.describe(proc))
        return proc

    def json_of(self, proc):
        try:
            return json.loads(proc.stdout)
        except ValueError as e:
            self.fail(f"not one JSON document ({e})" + R.describe(proc))

    def assert_one_error(self, proc, code, needles):
        self.assertEqual(proc.returncode, code, R.describe(proc))
        return R.one_error_line(self, proc, *needles)

    def save_volumes(self, fmt, where, size=None, refs=None):
        os.makedirs(self.path(where), exist_ok=True)
        name = self.path(where, f"bundle.{fmt}")
        self.ferry("save", "-q", "--plain-http", *(refs or self.refs), "-o", name,
                   "--max-size", str(size or self.max_size[fmt]))
        return name


class RoundTrip(Base):
    def pushed(self, ns):
        """tags → manifest digest, and referrers of each root, of both repositories under ns."""
        out = {}
        for repo in (self.fx["app_repo"], self.fx["multi_repo"]):
            full = f"{ns}/{repo}"
            for tag in sorted(self.dst.list_tags(full)):
                _, _, digest = self.dst.get_manifest(full, tag)
                out[f"{repo}:{tag}"] = digest
            for root in (self.fx["app"], self.fx["multi"]):
                if self.dst.manifest_exists(full, root):
                    out[f"{repo}@{root} referrers"] = sorted(d["digest"] for d in self.dst.referrers(full, root))
            self.assertEqual(R.graph_of(self.dst, full)["missing"], [], full)
        return out

    def test_three_volumes_verify_inspect_push(self):
        for fmt in FORMATS:
            with self.subTest(format=fmt):
                name = self.save_volumes(fmt, f"rt-{fmt}")
                vols = volumes_of(name)
                self.assertEqual(len(vols), 3, vols)
                self.assertFalse(os.path.exists(name))
                self.assertEqual(sorted(os.listdir(os.path.dirname(name))), [os.path.basename(v) for v in vols])
                for v in vols:
                    self.assertLessEqual(os.path.getsize(v), self.max_size[fmt])
                # The payloads concatenated are the bundle a plain save writes.
                self.assertEqual(b"".join(read(v)[HEADER:] for v in vols), read(self.plain[fmt]))

                v = self.json_of(self.ferry("verify", "--integrity-only", vols[0], "--json"))
                self.assertTrue(v["verified"])
                self.assertEqual(v["format"], fmt)
                plain_v = self.json_of(self.ferry("verify", "--integrity-only", self.plain[fmt], "--json"))
                self.assertEqual(v["bundleDigest"], plain_v["bundleDigest"])

                i = self.json_of(self.ferry("inspect", vols[0], "--json"))
                self.assertEqual(i["format"], fmt)
                self.assertEqual(sorted(r["digest"] for r in i["roots"]), sorted([self.fx["app"], self.fx["multi"]]))
                human = self.ferry("inspect", vols[0])
                self.assertIn(vols[0], human.stdout + human.stderr)

                ns_vol, ns_plain = self.new_ns(), self.new_ns()
                self.ferry("push", "--plain-http", vols[0], f"{self.dst.host}/{ns_vol}")
                self.ferry("push", "--plain-http", self.plain[fmt], f"{self.dst.host}/{ns_plain}")
                got, want = self.pushed(ns_vol), self.pushed(ns_plain)
                self.assertEqual(got, want)
                self.assertEqual(got[f"{self.fx['app_repo']}:v1"], self.fx["app"])
                self.assertEqual(got[f"{self.fx['multi_repo']}:v2"], self.fx["multi"])

    def test_resave_with_fewer_volumes_removes_stale_ones(self):
        name = self.save_volumes("tar", "fewer", size=(os.path.getsize(self.plain["tar"]) + 4) // 5 + HEADER)
        self.assertEqual(len(volumes_of(name)), 5)
        self.save_volumes("tar", "fewer")
        self.assertEqual(len(volumes_of(name)), 3)
        self.assertFalse(os.path.exists(name + ".004"))
        self.ferry("verify", "--integrity-only", name + ".001")


class Damage(Base):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A second save under the same name (another image set): its volumes are foreign.
        cls.foreign = {}
        for fmt in FORMATS:
            os.makedirs(os.path.join(cls.tmp, f"other-{fmt}"))
            name = os.path.join(cls.tmp, f"other-{fmt}", f"bundle.{fmt}")
            p = R.run_ferry("save", "-q", "--plain-http", cls.refs[1], cls.refs[0], "--no-referrers", "-o", name,
                            "--max-size", str(cls.max_size[fmt] // 2))
            if p.returncode != 0:
                raise AssertionError("save failed" + R.describe(p))
            cls.foreign[fmt] = name
        cls.good = {}

    def fresh(self, fmt, case):
        """A copy of a good 3-volume save of `fmt` in its own directory: NAME."""
        if fmt not in self.good:
            self.good[fmt] = self.save_volumes(fmt, f"good-{fmt}")
        where = self.path(f"{case}-{fmt}")
        shutil.copytree(os.path.dirname(self.good[fmt]), where)
        return os.path.join(where, f"bundle.{fmt}")

    def refused(self, first, volume, needle, push=True):
        """verify (and push) refuse the set in one line naming `volume`."""
        commands = [["verify", "--integrity-only", first]]
        if push:
            commands.append(["push", "--plain-http", first, f"{self.dst.host}/{self.new_ns()}"])
        for args in commands:
            proc = self.ferry(*args, expect=None)
            self.assert_one_error(proc, 1, [volume, needle])

    def test_missing(self):
        for fmt in FORMATS:
            with self.subTest(format=fmt):
                name = self.fresh(fmt, "missing")
                os.remove(name + ".002")
                self.refused(name + ".001", name + ".002", "missing")
                inspect = self.ferry("inspect", name + ".001", expect=None)
                self.assert_one_error(inspect, 1, [name + ".002", "missing"])

    def test_reordered(self):
        for fmt in FORMATS:
            with self.subTest(format=fmt):
                name = self.fresh(fmt, "reordered")
                os.rename(name + ".002", name + ".tmp")
                os.rename(name + ".003", name + ".002")
                os.rename(name + ".tmp", name + ".003")
                self.refused(name + ".001", name + ".002", "holds volume 3 of 3, not volume 2")

    def test_truncated(self):
        for fmt in FORMATS:
            with self.subTest(format=fmt):
                name = self.fresh(fmt, "truncated")
                with open(name + ".003", "r+b") as f:
                    f.truncate(os.path.getsize(name + ".003") - 1000)
                self.refused(name + ".001", name + ".003", "truncated")

    def test_foreign(self):
        for fmt in FORMATS:
            with self.subTest(format=fmt):
                name = self.fresh(fmt, "foreign")
                shutil.copyfile(self.foreign[fmt] + ".002", name + ".002")
                self.refused(name + ".001", name + ".002", "belongs to another save")

    def test_one_corrupted_byte(self):
        for fmt in FORMATS:
            with self.subTest(format=fmt):
                name = self.fresh(fmt, "corrupt")
                vol = name + ".002"
                with open(vol, "r+b") as f:
                    at = HEADER + (os.path.getsize(vol) - HEADER) // 2
                    f.seek(at)
                    byte = f.read(1)
                    f.seek(at)
                    f.write(bytes([byte[0] ^ 0x01]))
                # verify checks every volume; push names the volume too (a plain tar's blob read
                # in place that fails its digest, a compressed one read through).
                self.refused(name + ".001", vol, "volume 2 of 3 is damaged")
                v = self.ferry("verify", "--integrity-only", name + ".001", "--json", expect=1)
                self.assertNotIn('"verified": true', v.stdout)

    def test_second_volume_given_first(self):
        name = self.fresh("tar.zst", "second")
        proc = self.ferry("verify", "--integrity-only", name + ".002", expect=None)
        self.assert_one_error(proc, 1, [name + ".002", "give the first volume", name + ".001"])

    def test_usage_errors(self):
        out = self.path("usage-dir")
        proc = self.ferry("save", "--plain-http", self.refs[0], "-o", out, "--max-size", "4G", expect=None)
        self.assert_one_error(proc, 2, ["--max-size", "directory"])
        self.assertFalse(os.path.exists(out))
        for size, needle in (("100", "too small"), ("4X", "invalid size"), ("1K", "more than 500 volumes")):
            with self.subTest(size=size):
                os.makedirs(self.path("usage"), exist_ok=True)
                out = self.path("usage", "b.tar")
                proc = self.ferry("save", "--plain-http", self.refs[0], "-o", out, "--volume-size", size, expect=None)
                self.assert_one_error(proc, 2, [needle])
                self.assertEqual(os.listdir(self.path("usage")), [])
        name = self.fresh("tar", "sign")
        proc = self.ferry("sign", "--key", "nokey", "--cert", "nocert", name + ".001", expect=None)
        self.assert_one_error(proc, 2, [name + ".001", "volumes"])


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
