#!/usr/bin/env python3
"""``ferry copy --platform`` as users meet it (issue 14), against two real docker-registry
instances.

Classes (each its own meson test, e2e-users-copy-<Class>):

  SignedIndexPlatform  ``copy --platform`` on an index with a signature is refused (exit 1,
                       one error line naming REF@DIGEST of the index, its signature and both
                       ways forward), before anything reaches the destination: its catalog
                       and its storage files are unchanged, also with --verify and --json.
                       Both ways forward really work (copy every platform: the index
                       signature verifies through copy --verify; copy the platform image by
                       digest). --no-referrers and an --artifact-type filter that leaves the
                       signature out copy the chosen platform as before, without signature.
  PlatformTags         several platforms of one tagged index land as
                       <tag>-<os>-<arch>[-<variant>] (the names save gives them), each on its
                       platform image's digest, the plain tag not written; the output says so
                       (stderr note, one ``copied`` line and one JSON root per tag); the same
                       with a destination tag and through copy --verify; one platform keeps
                       the tag.
"""

import json
import os
import shutil
import sys
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


class Base(T.E2E):
    def copy(self, *args, expect=0):
        return self.ferry("copy", "--plain-http", *args, expect=expect)

    def copy_json(self, *args):
        proc = self.copy("--json", *args)
        return json.loads(proc.stdout), proc

    def tags(self, repo):
        return sorted(t for t in self.dst.list_tags(repo) if not R.is_fallback_tag(t))

    def dst_state(self):
        return self.dst.catalog(), R.storage_snapshot(self.dst.storage)

    def assert_dst_unchanged(self, before):
        catalog, storage = before
        self.assertEqual(self.dst.catalog(), catalog, "destination catalog changed")
        self.assertEqual(R.snapshot_diff(storage, R.storage_snapshot(self.dst.storage)), [],
                         "destination registry storage changed")


class SignedIndexPlatform(Base):
    """--platform on a signed multi-arch index (issue 14, first point), for copy."""

    REPO = "signed/multi"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = P.shared_pki()
        cls.store = P.write_truststore(os.path.join(cls.tmp, "truststore"), {"ca": {"ferry": [cls.pki.root]}})
        s = seed_signed_index(cls.src, cls.REPO, "v1", cls.pki["rsa2048"], "ci")
        cls.sig = s["sig"]["digest"]
        cls.sbom = R.push_sbom(cls.src, cls.REPO, s["index"], "ci-index")["digest"]
        cls.index, cls.amd, cls.arm = s["index"]["digest"], s["amd"]["digest"], s["arm"]["digest"]
        cls.name = f"{cls.src.host}/{cls.REPO}"
        # copy --verify chooses the statement by the destination repository.
        cls.policy = P.write_trust_policy(os.path.join(cls.tmp, "trustpolicy.json"),
                                          P.statement("signed", scopes=[f"{cls.dst.host}/whole/multi"]))

    def trust_args(self):
        return ["--trust-policy", self.policy, "--trust-store", self.store,
                "--verification-time", P.VERIFICATION_TIME]

    def test_platform_on_a_signed_index_is_refused_and_nothing_is_sent(self):
        dest = f"{self.dst.host}/refused/multi"
        before = self.dst_state()
        proc = self.copy("--platform", "linux/arm64", f"{self.name}:v1", dest, expect=None)
        line = self.assert_error(proc, 1, f"{self.name}@{self.index}", self.sig, "--platform linux/arm64",
                                 "would copy", "drop --platform", f"ferry copy {self.name}@{self.arm} {dest}:v1")
        self.assertNotIn(self.amd, line, "only the chosen platform is named")
        self.assertNotIn("ferry save", line, "copy names copy's ways forward")
        self.assertEqual(proc.stdout.strip(), "")
        self.assert_dst_unchanged(before)
        # Two platforms: each by digest, to the tag it would get.
        proc = self.copy("--platform", "linux/amd64", "--platform", "linux/arm64", f"{self.name}:v1", dest, expect=None)
        self.assert_error(proc, 1, f"{self.name}@{self.index}", self.sig,
                          f"ferry copy {self.name}@{self.amd} {dest}:v1-linux-amd64",
                          f"ferry copy {self.name}@{self.arm} {dest}:v1-linux-arm64")
        # --json: the error line, nothing on stdout; by digest; with a destination tag.
        proc = self.copy("--json", "--platform", "linux/amd64", f"{self.name}@{self.index}", f"{dest}:prod", expect=None)
        self.assert_error(proc, 1, f"{self.name}@{self.index}", f"{self.name}@{self.amd} {dest}:prod")
        self.assertEqual(proc.stdout.strip(), "")
        # --verify: refused before anything is staged or verified.
        proc = self.copy("--verify", *self.trust_args(), "--platform", "linux/arm64", f"{self.name}:v1", dest,
                         expect=None)
        line = self.assert_error(proc, 1, f"{self.name}@{self.index}", self.sig)
        self.assertNotIn("staging", proc.stderr)
        self.assertNotIn("ferry save", line)
        self.assert_dst_unchanged(before)

    def test_way_forward_every_platform_keeps_the_signature_verifiable(self):
        dest = f"{self.dst.host}/whole/multi"
        doc, proc = self.copy_json("--verify", *self.trust_args(), f"{self.name}:v1", dest)
        self.assertTrue(doc["verification"]["verified"], R.describe(proc))
        arts = {a["digest"]: a for a in doc["verification"]["artifacts"]}
        self.assertEqual([s["digest"] for s in arts[self.index]["signatures"] if s["verified"]], [self.sig])
        self.assertTrue(doc["proof"]["ok"], doc)
        self.assertEqual(self.dst.head_manifest("whole/multi", "v1")["digest"], self.index)
        self.assertIn(self.sig, [d["digest"] for d in self.dst.referrers("whole/multi", self.index)])

    def test_way_forward_platform_image_by_digest(self):
        dest = f"{self.dst.host}/bydigest/multi"
        doc, proc = self.copy_json(f"{self.name}@{self.arm}", f"{dest}:v1")
        self.assertTrue(doc["proof"]["ok"], doc)
        self.assertEqual(self.dst.head_manifest("bydigest/multi", "v1")["digest"], self.arm)
        self.assertFalse(self.dst.manifest_exists("bydigest/multi", self.index))

    def test_no_referrers_and_filters_without_signatures_still_select_platforms(self):
        # --no-referrers: the user asked for no signature at all; nothing is dropped silently.
        doc, proc = self.copy_json("--no-referrers", "--platform", "linux/arm64", f"{self.name}:v1",
                                   f"{self.dst.host}/noref/multi")
        self.assertTrue(doc["proof"]["ok"], doc)
        self.assertEqual([(r["destination"], r["digest"]) for r in doc["roots"]],
                         [(f"{self.dst.host}/noref/multi:v1", self.arm)])
        self.assertEqual(self.dst.head_manifest("noref/multi", "v1")["digest"], self.arm)
        self.assertEqual(self.tags("noref/multi"), ["v1"])
        self.assertFalse(self.dst.manifest_exists("noref/multi", self.index))
        self.assertFalse(self.dst.manifest_exists("noref/multi", self.sig))
        # An --artifact-type filter that leaves signatures out: likewise.
        doc, proc = self.copy_json("--artifact-type", R.SPDX, "--platform", "linux/arm64", f"{self.name}:v1",
                                   f"{self.dst.host}/sbom-only/multi")
        self.assertTrue(doc["proof"]["ok"], doc)
        self.assertEqual(self.dst.head_manifest("sbom-only/multi", "v1")["digest"], self.arm)
        self.assertFalse(self.dst.manifest_exists("sbom-only/multi", self.sig))
        # A filter that keeps the signature is refused like no filter.
        before = self.dst_state()
        proc = self.copy("--artifact-type", N.NOTARY_SIGNATURE, "--platform", "linux/arm64", f"{self.name}:v1",
                         f"{self.dst.host}/sig-only/multi", expect=None)
        self.assert_error(proc, 1, f"{self.name}@{self.index}", self.sig)
        self.assert_dst_unchanged(before)


class PlatformTags(Base):
    """Several platforms of one tagged index get a tag each (issue 14), as save names them."""

    def want(self, tag):
        return {f"{tag}-linux-amd64": self.fx["multi_amd64"], f"{tag}-linux-arm64": self.fx["multi_arm64"]}

    def assert_landed(self, repo, want):
        for tag, digest in want.items():
            self.assertEqual(self.dst.head_manifest(repo, tag)["digest"], digest, tag)
        self.assertEqual(self.tags(repo), sorted(want), "only the platform tags, not the index's")

    def test_two_platforms_land_as_two_tags(self):
        dest = f"{self.dst.host}/two/multi"
        proc = self.copy("--platform", "linux/amd64", "--platform", "linux/arm64", self.multi_ref, dest)
        want = self.want("v2")
        self.assert_landed("two/multi", want)
        for tag, digest in want.items():
            self.assertIn(f"copied {dest}:{tag} {digest}", proc.stdout)
            self.assertIn(f"is tagged {dest}:{tag}", proc.stderr, "copy says how it named them")
        # Each platform's own referrers follow it (the arm64 image's signature).
        self.assertEqual([d["digest"] for d in self.dst.referrers("two/multi", self.fx["multi_arm64"])],
                         [self.fx["multi_arm64_sig"]])
        # Again, --json: the same roots, nothing new to send.
        doc, _ = self.copy_json("--platform", "linux/amd64", "--platform", "linux/arm64", self.multi_ref, dest)
        self.assertTrue(doc["proof"]["ok"], doc)
        self.assertEqual({r["destination"]: r["digest"] for r in doc["roots"]},
                         {f"{dest}:{t}": d for t, d in want.items()})
        self.assertEqual(doc["tags"]["written"], 0, doc)
        self.assertEqual(doc["tags"]["moved"], [], doc)

    def test_destination_tag_is_the_base(self):
        doc, _ = self.copy_json("--platform", "linux/arm64", "--platform", "linux/amd64", self.multi_ref,
                                f"{self.dst.host}/prod/multi:prod")
        self.assertTrue(doc["proof"]["ok"], doc)
        self.assert_landed("prod/multi", self.want("prod"))

    def test_through_copy_verify(self):
        # The fixture's signatures are not real ones: a policy that skips verification for
        # this test, which is about where the staged, verified images land.
        policy = P.write_trust_policy(self.path("skip-policy.json"),
                                      P.statement("anything", scopes=["*"], level="skip", stores=(), identities=()))
        store = P.write_truststore(self.path("truststore"), {"ca": {"ferry": [P.shared_pki().root]}})
        doc, proc = self.copy_json("--verify", "--trust-policy", policy, "--trust-store", store,
                                   "--verification-time", P.VERIFICATION_TIME, "--platform", "linux/amd64",
                                   "--platform", "linux/arm64", self.multi_ref, f"{self.dst.host}/verified/multi")
        self.assertTrue(doc["proof"]["ok"], R.describe(proc))
        self.assert_landed("verified/multi", self.want("v2"))

    def test_one_platform_keeps_the_tag(self):
        dest = f"{self.dst.host}/one/multi"
        proc = self.copy("--platform", "linux/arm64", self.multi_ref, dest)
        self.assertEqual(self.dst.head_manifest("one/multi", "v2")["digest"], self.fx["multi_arm64"])
        self.assertEqual(self.tags("one/multi"), ["v2"])
        self.assertNotIn("is tagged", proc.stderr)
        # A source by digest alone stays untagged, however many platforms.
        self.copy("--platform", "linux/amd64", "--platform", "linux/arm64", self.ref("demo/multi", self.fx["multi"]),
                  f"{self.dst.host}/untagged/multi")
        self.assertEqual(self.tags("untagged/multi"), [])
        for d in (self.fx["multi_amd64"], self.fx["multi_arm64"]):
            self.assertTrue(self.dst.manifest_exists("untagged/multi", d))


if __name__ == "__main__":
    unittest.main(verbosity=2)
