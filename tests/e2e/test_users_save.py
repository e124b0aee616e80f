#!/usr/bin/env python3
"""End-to-end tests of what users trip on in ``save`` and ``inspect`` (issue 14): the real
ferry binary against real docker-registry instances on loopback, and against skopeo and
umoci where they are installed.

Run: python3 tests/e2e/test_users_save.py [ClassName[.test_name]]   (FERRY=/abs/path/ferry)
Exit code 77 (meson "skipped") when docker-registry, openssl or the ferry binary is missing;
a test needing skopeo, umoci, root or a tmpfs mount skips itself.

Contract under test:
  SignedIndexPlatform  ``save --platform`` on an index with a signature is refused (exit 1,
                       one error line naming REF@DIGEST of the index and both ways forward),
                       and both ways forward really work (save every platform: the index
                       signature verifies; save the platform image by digest and ``ferry
                       sign`` it: it verifies). Unsigned indexes, and --no-referrers, save
                       the chosen platforms as before.
  RefNames             every org.opencontainers.image.ref.name in a saved bundle is unique:
                       the tag when unique, else registry/repository:tag; several platform
                       images of one index get <tag>-<os>-<arch>[-<variant>]. skopeo and
                       umoci select the intended image by each name; push lands each image
                       in its repository under its tag; inspect warns (stderr line /
                       ``warnings`` in --json) about duplicate names in bundles made
                       elsewhere, and not about ferry's own.
  Platforms            inspect --json and save --json give platforms as OCI objects
                       ({os, architecture[, variant][, os.version]}).
  DiskFull             a save that fills the disk (a 2 MiB tmpfs, root only) fails with exit
                       1 and one error line naming the output, leaves no BUNDLE, no
                       BUNDLE.partial and no resume sidecar, and keeps an existing bundle.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402
import pki as P  # noqa: E402

try:
    import test_roundtrip as T  # noqa: E402  (the E2E base class and its skip rules)
    if shutil.which(P.OPENSSL) is None:
        raise unittest.SkipTest("openssl CLI not found")
except unittest.SkipTest as e:
    if __name__ == "__main__":
        print(f"SKIP: {e}", file=sys.stderr)
        sys.exit(77)
    raise

import notary_sign as N  # noqa: E402
from seed import seed_signed_index  # noqa: E402

REF_NAME = "org.opencontainers.image.ref.name"
IMAGE_NAME = "io.containerd.image.name"


def index_entries(bundle):
    return R.read_bundle(bundle).index["manifests"]


class Base(T.E2E):
    def assert_nothing_at(self, out):
        self.assertFalse(os.path.exists(out), f"{out} must not exist")
        self.assert_no_partials(out)

    def skopeo_digest(self, archive_ref):
        """sha256 of the manifest skopeo selects by ``archive_ref`` (--raw: its bytes)."""
        proc = subprocess.run(["skopeo", "inspect", "--raw", archive_ref], capture_output=True, timeout=120)
        self.assertEqual(proc.returncode, 0, f"skopeo inspect --raw {archive_ref}: {proc.stderr.decode()}")
        return "sha256:" + hashlib.sha256(proc.stdout).hexdigest()


class SignedIndexPlatform(Base):
    """--platform on a signed multi-arch index (issue 14, first point)."""

    REPO = "signed/multi"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = P.shared_pki()
        cls.store = P.write_truststore(os.path.join(cls.tmp, "truststore"), {"ca": {"ferry": [cls.pki.root]}})
        s = seed_signed_index(cls.src, cls.REPO, "v1", cls.pki["rsa2048"], "si")
        cls.sig = s["sig"]["digest"]
        cls.index, cls.amd, cls.arm = s["index"]["digest"], s["amd"]["digest"], s["arm"]["digest"]
        cls.name = f"{cls.src.host}/{cls.REPO}"
        cls.policy = P.write_trust_policy(os.path.join(cls.tmp, "trustpolicy.json"),
                                          P.statement("signed", scopes=[cls.name]))

    def verify(self, bundle):
        proc = self.ferry("verify", "--trust-policy", self.policy, "--trust-store", self.store,
                          "--verification-time", P.VERIFICATION_TIME, "--json", bundle, expect=None)
        return proc, (json.loads(proc.stdout) if proc.returncode in (0, 3) else None)

    def test_platform_on_a_signed_index_is_refused(self):
        for fmt, name in (("tar", "refused.tar"), ("tar.zst", "refused.tar.zst"), ("dir", "refused-dir")):
            with self.subTest(fmt=fmt):
                out = self.path(name)
                proc = self.ferry("save", "--plain-http", "--platform", "linux/arm64", f"{self.name}:v1",
                                  "-o", out, expect=None)
                line = self.assert_error(proc, 1, f"{self.name}@{self.index}", self.sig, "--platform linux/arm64",
                                         "drop --platform", f"ferry save {self.name}@{self.arm}", "ferry sign")
                self.assertNotIn(self.amd, line, "only the chosen platform is named")
                self.assert_nothing_at(out)
        # --json too: the error line, nothing on stdout.
        out = self.path("refused-json.tar")
        proc = self.ferry("save", "--plain-http", "--json", "--platform", "linux/amd64", f"{self.name}:v1",
                          "-o", out, expect=None)
        self.assert_error(proc, 1, f"{self.name}@{self.index}", f"{self.name}@{self.amd}")
        self.assertEqual(proc.stdout.strip(), "")
        self.assert_nothing_at(out)
        # By digest too (the reference names the index itself).
        proc = self.ferry("save", "--plain-http", "--platform", "linux/amd64", f"{self.name}@{self.index}",
                          "-o", out, expect=None)
        self.assert_error(proc, 1, f"{self.name}@{self.index}")
        self.assert_nothing_at(out)

    def test_way_forward_every_platform_keeps_the_signature_verifiable(self):
        out = self.path("whole.tar")
        self.save(out, f"{self.name}:v1")
        b = R.read_bundle(out)
        self.assertTrue(b.has_blob(self.index) and b.has_blob(self.sig) and b.has_blob(self.amd) and b.has_blob(self.arm))
        proc, report = self.verify(out)
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        arts = {a["digest"]: a for a in report["artifacts"]}
        self.assertTrue(arts[self.index]["verified"], R.describe(proc))
        self.assertEqual([s["digest"] for s in arts[self.index]["signatures"] if s["verified"]], [self.sig])

    def test_way_forward_platform_image_by_digest_then_ferry_sign(self):
        out = self.path("arm64-dir")
        self.save(out, f"{self.name}@{self.arm}")
        self.assertEqual([e["digest"] for e in index_entries(out)], [self.arm])
        ident = self.pki["rsa2048"]
        self.ferry("sign", "--key", ident.key, "--cert", ident.chain_pem, "--signing-time", P.SIGNING_TIME, out)
        proc, report = self.verify(out)
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        self.assertEqual([a["digest"] for a in report["artifacts"] if a["verified"]], [self.arm])

    def test_other_signature_forms_are_recognised(self):
        """A Sigstore bundle referrer, and a Notation signature in the older form (no
        artifactType: the config's media type says it), listed without artifactType."""
        for n, kind in enumerate(("sigstore", "old-notation")):
            with self.subTest(kind=kind):
                repo = f"signed/{kind}"
                amd = R.push_image(self.src, repo, None, [R.seeded_bytes(f"sf-{n}", 3000)], platform="linux/amd64")
                index = R.push_index(self.src, repo, "v1", [amd])
                if kind == "sigstore":
                    sig = R.push_referrer(self.src, repo, index, "application/vnd.dev.sigstore.bundle.v0.3+json",
                                          b'{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}',
                                          "application/vnd.dev.sigstore.bundle.v0.3+json")["digest"]
                else:
                    envelope = R.seeded_bytes("sf-env", 300)
                    self.src.put_blob(repo, R.EMPTY_JSON)
                    self.src.put_blob(repo, envelope)
                    m = R.canonical_json({"schemaVersion": 2, "mediaType": R.OCI_MANIFEST,
                                          "config": {"mediaType": N.NOTARY_SIGNATURE, "digest": R.EMPTY_DIGEST, "size": 2},
                                          "layers": [R.descriptor(N.JWS_MEDIA_TYPE, envelope)],
                                          "subject": R.subject_of(index)})
                    sig = self.src.put_manifest(repo, R.sha256_digest(m), m, R.OCI_MANIFEST)
                    self.src.add_referrer(repo, index["digest"], R.descriptor(R.OCI_MANIFEST, m))
                out = self.path(f"{kind}.tar")
                proc = self.ferry("save", "--plain-http", "--platform", "linux/amd64",
                                  f"{self.src.host}/{repo}:v1", "-o", out, expect=None)
                self.assert_error(proc, 1, f"{self.src.host}/{repo}@{index['digest']}", sig)
                self.assert_nothing_at(out)

    def test_no_referrers_and_unsigned_indexes_still_select_platforms(self):
        # --no-referrers: the user asked for no signature at all; nothing is dropped silently.
        out = self.path("noref.tar")
        self.save(out, "--no-referrers", "--platform", "linux/arm64", f"{self.name}:v1")
        self.assertEqual([e["digest"] for e in index_entries(out)], [self.arm])
        # An --artifact-type filter that leaves signatures out: likewise.
        out = self.path("sbom-only.tar")
        self.save(out, "--artifact-type", R.SPDX, "--platform", "linux/arm64", f"{self.name}:v1")
        self.assertEqual([e["digest"] for e in index_entries(out)], [self.arm])
        # The fixture's demo/multi:v2 has an SBOM, no signature: --platform works as before.
        out = self.path("unsigned.tar")
        self.save(out, "--platform", "linux/arm64", self.multi_ref)
        self.assertIn(self.fx["multi_arm64"], [e["digest"] for e in index_entries(out)])


class RefNames(Base):
    """Unique ref.name values (issue 14): skopeo/umoci select by them, push maps them back."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Told apart by their config's architecture too (what umoci shows).
        cls.a = R.push_image(cls.src, "names/a", "v1", [R.seeded_bytes("rn-a", 9000)], "linux/amd64")["digest"]
        cls.b = R.push_image(cls.src, "names/b", "v1", [R.seeded_bytes("rn-b", 9000)], "linux/arm64")["digest"]
        cls.c = R.push_image(cls.src, "names/c", "v2", [R.seeded_bytes("rn-c", 9000)], "linux/ppc64le")["digest"]
        cls.h = cls.src.host

    def names(self, bundle):
        return {e["digest"]: e.get("annotations", {}) for e in index_entries(bundle)}

    def test_same_tag_in_two_repositories(self):
        out = self.path("same-tag.tar")
        proc = self.save(out, "--json", f"{self.h}/names/a:v1", f"{self.h}/names/b:v1", f"{self.h}/names/c:v2")
        names = self.names(out)
        self.assertEqual(names[self.a], {IMAGE_NAME: f"{self.h}/names/a:v1", REF_NAME: f"{self.h}/names/a:v1"})
        self.assertEqual(names[self.b], {IMAGE_NAME: f"{self.h}/names/b:v1", REF_NAME: f"{self.h}/names/b:v1"})
        self.assertEqual(names[self.c], {IMAGE_NAME: f"{self.h}/names/c:v2", REF_NAME: "v2"}, "a unique tag stays")
        doc = json.loads(proc.stdout)
        self.assertEqual({r["digest"]: (r["tag"], r["refName"]) for r in doc["roots"]},
                         {self.a: ("v1", f"{self.h}/names/a:v1"), self.b: ("v1", f"{self.h}/names/b:v1"),
                          self.c: ("v2", "v2")})
        human = self.save(self.path("same-tag-human.tar"), f"{self.h}/names/a:v1", f"{self.h}/names/b:v1")
        self.assertIn(f"saved {self.h}/names/a:v1 {self.a} as {self.h}/names/a:v1", human.stdout)
        # ferry's own bundle: no warning.
        proc = self.ferry("inspect", out)
        self.assertNotIn("warning", proc.stderr)
        self.assertEqual(self.ferry_json("inspect", out)["warnings"], [])
        # inspect and push read the names back: each image in its repository, tagged v1/v2.
        doc = self.ferry_json("inspect", out)
        self.assertEqual({r["digest"]: (r["reference"], r.get("tag")) for r in doc["roots"]},
                         {self.a: (f"{self.h}/names/a:v1", "v1"), self.b: (f"{self.h}/names/b:v1", "v1"),
                          self.c: (f"{self.h}/names/c:v2", "v2")})
        push = json.loads(self.ferry("push", "--plain-http", "--json", out, f"{self.dst.host}/rn").stdout)
        self.assertTrue(push["proof"]["ok"], push)
        for repo, tag, digest in (("a", "v1", self.a), ("b", "v1", self.b), ("c", "v2", self.c)):
            self.assertEqual(self.dst.head_manifest(f"rn/names/{repo}", tag)["digest"], digest, repo)

    @unittest.skipUnless(shutil.which("skopeo"), "skopeo not installed")
    def test_skopeo_selects_each_image_by_its_name(self):
        out = self.path("skopeo.tar")
        self.save(out, f"{self.h}/names/a:v1", f"{self.h}/names/b:v1", f"{self.h}/names/c:v2")
        for name, digest in ((f"{self.h}/names/a:v1", self.a), (f"{self.h}/names/b:v1", self.b), ("v2", self.c)):
            self.assertEqual(self.skopeo_digest(f"oci-archive:{out}:{name}"), digest, name)
        # And reads that image's config, not another's (they differ in architecture).
        for name, arch in ((f"{self.h}/names/a:v1", "amd64"), (f"{self.h}/names/b:v1", "arm64"), ("v2", "ppc64le")):
            proc = subprocess.run(["skopeo", "inspect", f"oci-archive:{out}:{name}"], capture_output=True, text=True,
                                  timeout=120)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(json.loads(proc.stdout)["Architecture"], arch, name)

    @unittest.skipUnless(shutil.which("umoci"), "umoci not installed")
    def test_umoci_lists_and_selects_each_name(self):
        out = self.path("umoci-dir")
        self.save(out, f"{self.h}/names/a:v1", f"{self.h}/names/b:v1", f"{self.h}/names/c:v2")
        proc = subprocess.run(["umoci", "ls", "--layout", out], capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        listed = proc.stdout.split()
        self.assertEqual(sorted(listed), sorted([f"{self.h}/names/a:v1", f"{self.h}/names/b:v1", "v2"]))
        # The images differ in their config's architecture, which umoci's runtime config
        # carries as an annotation: each name selects its own image.
        for name, arch in ((f"{self.h}/names/a:v1", "amd64"), (f"{self.h}/names/b:v1", "arm64"), ("v2", "ppc64le")):
            config = self.path(f"umoci-{arch}.json")
            proc = subprocess.run(["umoci", "raw", "runtime-config", "--image", f"{out}:{name}", config],
                                  capture_output=True, text=True, timeout=60)
            self.assertEqual(proc.returncode, 0, f"umoci raw runtime-config {name}: {proc.stderr}")
            with open(config) as f:
                self.assertEqual(json.load(f)["annotations"]["org.opencontainers.image.architecture"], arch, name)

    def test_several_platforms_of_one_index_get_their_own_tags(self):
        out = self.path("platforms.tar")
        proc = self.save(out, "--platform", "linux/amd64", "--platform", "linux/arm64", self.multi_ref)
        want = {self.fx["multi_amd64"]: "v2-linux-amd64", self.fx["multi_arm64"]: "v2-linux-arm64"}
        names = self.names(out)
        for digest, tag in want.items():
            self.assertEqual(names[digest], {IMAGE_NAME: f"{self.src.host}/demo/multi:{tag}", REF_NAME: tag})
        self.assertIn("v2-linux-arm64", proc.stderr, "save says how it named them")
        push = json.loads(self.ferry("push", "--plain-http", "--json", out, f"{self.dst.host}/plat").stdout)
        self.assertTrue(push["proof"]["ok"], push)
        for digest, tag in want.items():
            self.assertEqual(self.dst.head_manifest("plat/demo/multi", tag)["digest"], digest, tag)
        self.assertNotIn("v2", self.dst.list_tags("plat/demo/multi"))
        # One platform: the tag stays (as before).
        out = self.path("one-platform.tar")
        self.save(out, "--platform", "linux/arm64", self.multi_ref)
        self.assertEqual(self.names(out)[self.fx["multi_arm64"]][REF_NAME], "v2")

    def test_same_reference_twice_is_one_root(self):
        out = self.path("twice.tar")
        self.save(out, f"{self.h}/names/a:v1", f"{self.h}/names/a:v1")
        roots = [e for e in index_entries(out) if e["digest"] == self.a]
        self.assertEqual(len(roots), 1)
        self.assertEqual(roots[0]["annotations"][REF_NAME], "v1")

    def foreign_bundle(self):
        """A layout as another tool may write it: two different images both named v1."""
        out = self.path("foreign-dir")
        self.save(out, f"{self.h}/names/a:v1", f"{self.h}/names/b:v1", f"{self.h}/names/c:v2")
        with open(os.path.join(out, "index.json")) as f:
            index = json.load(f)
        for e in index["manifests"]:
            e.get("annotations", {}).pop(IMAGE_NAME, None)
            if e["digest"] in (self.a, self.b):
                e["annotations"][REF_NAME] = "v1"
        with open(os.path.join(out, "index.json"), "w") as f:
            json.dump(index, f)
        return out

    def test_inspect_warns_about_duplicate_names_made_elsewhere(self):
        out = self.foreign_bundle()
        proc = self.ferry("inspect", out)
        warnings = [l for l in proc.stderr.splitlines() if l.startswith("warning: ")]
        self.assertEqual(len(warnings), 1, R.describe(proc))
        for needle in ('ref.name "v1"', self.a, self.b, "skopeo"):
            self.assertIn(needle, warnings[0])
        self.assertNotIn(self.c, warnings[0])
        doc = self.ferry_json("inspect", out)
        self.assertEqual(len(doc["warnings"]), 1, doc)
        self.assertIn('ref.name "v1"', doc["warnings"][0])
        for fmt in ("tar", "tar.zst"):
            packed = self.path(f"foreign.{fmt}")
            self.pack(out, packed)
            self.assertEqual(len(self.ferry_json("inspect", packed)["warnings"]), 1, fmt)

    def pack(self, layout, out):
        if out.endswith(".zst"):
            tar = out[:-4]
            self.pack(layout, tar)
            subprocess.run(["zstd", "-q", "-f", "--rm", tar, "-o", out], check=True)
            return
        with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as t:
            for name in ["oci-layout", "index.json"] + sorted(
                    f"blobs/sha256/{n}" for n in os.listdir(os.path.join(layout, "blobs", "sha256"))):
                t.add(os.path.join(layout, name), arcname=name)


class Platforms(Base):
    """Platforms as OCI objects in --json (issue 14)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        v7 = R.push_image(cls.src, "plat/arm", None, [R.seeded_bytes("pl-v7", 5000)], platform="linux/arm/v7")
        amd = R.push_image(cls.src, "plat/arm", None, [R.seeded_bytes("pl-amd", 5000)], platform="linux/amd64")
        win = dict(R.push_image(cls.src, "plat/arm", None, [R.seeded_bytes("pl-win", 5000)], platform="windows/amd64"))
        win["platform"] = {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1"}
        cls.index = R.push_index(cls.src, "plat/arm", "v1", [v7, amd, win])["digest"]
        cls.v7, cls.amd, cls.win = v7["digest"], amd["digest"], win["digest"]

    def test_inspect_json_platforms_are_objects(self):
        out = self.path("plat.tar")
        self.save(out, f"{self.src.host}/plat/arm:v1", self.multi_ref)
        doc = self.ferry_json("inspect", out)
        kids = {}
        for root in doc["roots"]:
            for m in root.get("manifests", []):
                kids[m["digest"]] = m.get("platform")
        self.assertEqual(kids[self.v7], {"os": "linux", "architecture": "arm", "variant": "v7"})
        self.assertEqual(kids[self.amd], {"os": "linux", "architecture": "amd64"})
        self.assertEqual(kids[self.win], {"os": "windows", "architecture": "amd64", "os.version": "10.0.17763.1"})
        self.assertEqual(kids[self.fx["multi_arm64"]], {"os": "linux", "architecture": "arm64"})
        # Human output keeps the os/arch/variant label.
        proc = self.ferry("inspect", out)
        self.assertIn(f"linux/arm/v7 {self.v7}", proc.stdout)

    def test_save_json_platforms_are_objects(self):
        out = self.path("v7.tar")
        doc = json.loads(self.save(out, "--json", "--platform", "linux/arm/v7", f"{self.src.host}/plat/arm:v1").stdout)
        self.assertEqual([(r["digest"], r["platform"]) for r in doc["roots"]],
                         [(self.v7, {"os": "linux", "architecture": "arm", "variant": "v7"})])
        inspected = self.ferry_json("inspect", out)
        self.assertEqual(inspected["roots"][0]["platform"], {"os": "linux", "architecture": "arm", "variant": "v7"})


class DiskFull(Base):
    """ENOSPC during save (issue 14): a 2 MiB tmpfs, an image of about 3 MiB."""

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("needs root to mount a tmpfs")
        super().setUpClass()
        cls.mnt = os.path.join(cls.tmp, "small")
        os.mkdir(cls.mnt)
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", cls.mnt], capture_output=True, text=True)
        if proc.returncode != 0:
            raise unittest.SkipTest(f"cannot mount a tmpfs: {proc.stderr.strip()}")
        cls.addClassCleanup(subprocess.run, ["umount", "-l", cls.mnt])
        cls.big = R.push_image(cls.src, "big/app", "v1", [R.seeded_bytes("df-0", 1536 * 1024),
                                                            R.seeded_bytes("df-1", 1536 * 1024)])["digest"]
        cls.small = R.push_image(cls.src, "small/app", "v1", [R.seeded_bytes("df-s", 200 * 1024)])["digest"]

    def free(self):
        st = os.statvfs(self.mnt)
        return st.f_bavail * st.f_frsize

    def test_disk_full_every_format(self):
        before = self.free()
        for name in ("big.tar", "big.tar.zst", "big-dir"):
            with self.subTest(name=name):
                out = os.path.join(self.mnt, name)
                proc = self.ferry("save", "--plain-http", f"{self.src.host}/big/app:v1", "-o", out, expect=None)
                self.assert_error(proc, 1, out, "no space left on device", f"removed the partial output {out}.partial")
                self.assertEqual(os.listdir(self.mnt), [], "nothing left on the full disk")
                self.assertGreaterEqual(self.free(), before - 64 * 1024, "the space is given back")
                # With --json: the same error, nothing on stdout.
                proc = self.ferry("save", "--plain-http", "--json", f"{self.src.host}/big/app:v1", "-o", out, expect=None)
                self.assert_error(proc, 1, out, "no space left on device")
                self.assertEqual(proc.stdout.strip(), "")
                self.assertEqual(os.listdir(self.mnt), [])

    def test_disk_full_keeps_an_existing_bundle(self):
        for name in ("kept.tar", "kept.tar.zst", "kept-dir"):
            with self.subTest(name=name):
                out = os.path.join(self.mnt, name)
                self.save(out, f"{self.src.host}/small/app:v1")
                before = R.read_bundle(out).files
                proc = self.ferry("save", "--plain-http", f"{self.src.host}/big/app:v1", "-o", out, expect=None)
                self.assert_error(proc, 1, out, "no space left on device")
                self.assertEqual(R.read_bundle(out).files, before, "the bundle that was there is unchanged")
                self.assertEqual(sorted(os.listdir(self.mnt)), [name], "no partial output beside it")
                self.ferry("verify", "--integrity-only", out)
                shutil.rmtree(out) if os.path.isdir(out) else os.remove(out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
