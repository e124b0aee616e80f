#!/usr/bin/env python3
"""End-to-end tests of ``push --verify``, the proof after push, and ``ferry copy``: the real
ferry binary against real docker-registry instances on loopback.

Run: python3 tests/e2e/test_push_copy.py [ClassName[.test_name]]   (FERRY=/abs/path/ferry)
Exit code 77 (meson "skipped") when docker-registry, openssl or the ferry binary is missing.

Contract under test (design.md §1 promises 1 and 3, §2; issue 4):
  ferry push [--verify [trust options]] BUNDLE TARGET
  ferry copy [registry options] [--verify [trust options]] [--platform P]... [--no-referrers]
             [--artifact-type T]... SRC_REF DST_REF
  - push --verify of a bundle that fails verification sends nothing (exit 3, one error line);
  - after every push/copy the destination is re-read; anything missing fails it (exit 1);
    --json carries proof {ok, checked {manifests, tags, referrers}, missing [...]};
  - copy preserves digests, tags and referrers (graph_of equal); a second copy is a no-op.
Test-only hook: FERRY_TEST_HOOK_BEFORE_PROOF=<command> runs between push and proof; this
file doubles as that command (``--drop-fallback HOST REPO SUBJECT`` deletes the subject's
fallback index through the registry API).
"""

import contextlib
import json
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402


def drop_fallback(host, repo, subject):
    """Deletes the fallback index ``sha256-<hex>`` of ``subject`` in ``repo`` (DELETE of the
    index by digest, which also removes its tag)."""
    reg = R.Registry("hook")
    reg.host = host
    head = reg.head_manifest(repo, R.fallback_tag(subject))
    if head is None:
        raise SystemExit(f"no fallback index for {subject} in {host}/{repo}")
    reg.delete_manifest(repo, head["digest"])


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--drop-fallback":
    drop_fallback(*sys.argv[2:])
    sys.exit(0)

import pki as P  # noqa: E402
import notary_sign as N  # noqa: E402

try:
    import test_roundtrip as T  # noqa: E402  (the E2E base class and its skip rules)
    if shutil.which(P.OPENSSL) is None:
        raise unittest.SkipTest("openssl CLI not found")
except unittest.SkipTest as e:
    if __name__ == "__main__":
        print(f"SKIP: {e}", file=sys.stderr)
        sys.exit(77)
    raise


@contextlib.contextmanager
def hook_drop_fallback(reg, repo, subject):
    """Sets FERRY_TEST_HOOK_BEFORE_PROOF (inherited by ferry) to drop a fallback index."""
    os.environ["FERRY_TEST_HOOK_BEFORE_PROOF"] = (
        f"{sys.executable} {os.path.abspath(__file__)} --drop-fallback {reg.host} {repo} {subject}")
    try:
        yield
    finally:
        del os.environ["FERRY_TEST_HOOK_BEFORE_PROOF"]


class Base(T.E2E):
    """test_roundtrip's E2E (a seeded source registry, an empty target) plus failure
    helpers."""

    def run_json(self, *args, expect):
        proc = self.ferry(*args, "--json", expect=expect)
        try:
            return proc, json.loads(proc.stdout)
        except ValueError as e:
            self.fail(f"--json output is not one JSON document ({e}){R.describe(proc)}")

    def assert_untouched(self, reg, before_catalog, before_storage, repo, digests):
        """Nothing arrived: through the API (catalog, tags, blobs and manifests of `repo`)
        and, as a second witness, the registry's storage files."""
        self.assertEqual(reg.catalog(), before_catalog, "catalog changed")
        self.assertEqual(reg.list_tags(repo), [], f"{repo} has tags")
        for d in digests:
            self.assertFalse(reg.blob_exists(repo, d), f"blob {d} reached {repo}")
            self.assertFalse(reg.manifest_exists(repo, d), f"manifest {d} reached {repo}")
        self.assertEqual(R.snapshot_diff(before_storage, R.storage_snapshot(reg.storage)), [],
                         "registry storage changed")


class PushVerify(Base):
    """push --verify and copy --verify: a bundle (or staged copy) that fails verification
    sends nothing; one that passes is pushed with the verification summary."""

    REPO = "signed/app"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = P.shared_pki()
        cls.store = P.write_truststore(os.path.join(cls.tmp, "truststore"), {
            "ca": {"ferry": [cls.pki.root], "untrusted": [cls.pki.untrusted_root]}})
        layers = [R.seeded_bytes("pv-0", 4096), R.seeded_bytes("pv-1", 70000)]
        app = R.push_image(cls.src, cls.REPO, "v1", layers)
        cls.app = app["digest"]
        cls.layers = [R.sha256_digest(l) for l in layers]
        ident = cls.pki["rsa2048"]
        data, mt = N.sign("jws", R.subject_of(app), ident)
        cls.sig = R.push_referrer(cls.src, cls.REPO, app, N.NOTARY_SIGNATURE, data, mt,
                                  {N.THUMBPRINT: json.dumps(ident.thumbprints),
                                   "org.opencontainers.image.created": P.SIGNING_TIME})["digest"]
        cls.sbom = R.push_sbom(cls.src, cls.REPO, app, "pv")["digest"]
        cls.scope = f"{cls.src.host}/{cls.REPO}"
        # push --verify and copy --verify choose the statement by the repository each image
        # lands in (issue 13 §4): the statement names the destinations of these tests.
        scopes = [cls.scope] + [f"{cls.dst.host}/{ns}/{cls.REPO}"
                                for ns in ("okdir", "oktar", "json", "tampered", "untrusted")]
        scopes += [f"{cls.dst.host}/copied/app", f"{cls.dst.host}/copied/untrusted"]
        cls.policy = P.write_trust_policy(os.path.join(cls.tmp, "trustpolicy.json"),
                                          P.statement("app", scopes=scopes))
        cls.untrusted = P.write_trust_policy(
            os.path.join(cls.tmp, "untrusted.json"),
            P.statement("app", scopes=scopes, stores=("ca:untrusted",)))

    def trust(self, policy=None):
        return ["--verify", "--trust-policy", policy or self.policy, "--trust-store", self.store,
                "--verification-time", P.VERIFICATION_TIME]

    def saved(self, name):
        out = self.path(name)
        self.save(out, f"{self.scope}:v1")
        return out

    def all_digests(self):
        return [self.app, self.sig, self.sbom] + self.layers

    def test_verified_push(self):
        for fmt, name in (("dir", "ok-dir"), ("tar", "ok.tar")):
            with self.subTest(fmt=fmt):
                bundle = self.saved(name)
                ns = f"ok{fmt}"
                proc = self.ferry("push", "--plain-http", *self.trust(), bundle, f"{self.dst.host}/{ns}")
                self.assertIn("verification passed", proc.stderr, R.describe(proc))
                self.assertIn(self.app, proc.stderr)
                self.assert_same_graph(self.REPO, self.dst, f"{ns}/{self.REPO}")

    def test_verified_push_json(self):
        bundle = self.saved("json.tar")
        doc = self.ferry_json("push", "--plain-http", *self.trust(), bundle, f"{self.dst.host}/json")
        v = doc["verification"]
        self.assertTrue(v["verified"], doc)
        self.assertTrue(v["integrity"]["ok"])
        self.assertEqual([(a["digest"], a["verified"]) for a in v["artifacts"]], [(self.app, True)])
        self.assertEqual(doc["proof"]["ok"], True)
        self.assertEqual(doc["proof"]["checked"], {"manifests": 3, "tags": 1, "referrers": 2})

    def test_tampered_bundle_pushes_nothing(self):
        bundle = self.saved("tampered-dir")
        layer = os.path.join(bundle, "blobs", "sha256", self.layers[1].split(":")[1])
        with open(layer, "r+b") as f:
            f.seek(1000)
            b = f.read(1)
            f.seek(1000)
            f.write(bytes([b[0] ^ 1]))
        catalog, storage = self.dst.catalog(), R.storage_snapshot(self.dst.storage)
        proc = self.ferry("push", "--plain-http", *self.trust(), bundle, f"{self.dst.host}/tampered",
                          expect=None)
        self.assert_error(proc, 3, "verification failed", self.layers[1])
        self.assertIn("verification FAILED", proc.stderr)
        self.assert_untouched(self.dst, catalog, storage, f"tampered/{self.REPO}", self.all_digests())

        proc, doc = self.run_json("push", "--plain-http", *self.trust(), bundle,
                                  f"{self.dst.host}/tampered", expect=3)
        self.assertFalse(doc["verification"]["verified"])
        self.assertFalse(doc["verification"]["integrity"]["ok"])
        self.assert_untouched(self.dst, catalog, storage, f"tampered/{self.REPO}", self.all_digests())

    def test_untrusted_signature_pushes_nothing(self):
        bundle = self.saved("untrusted.tar")
        catalog, storage = self.dst.catalog(), R.storage_snapshot(self.dst.storage)
        proc = self.ferry("push", "--plain-http", *self.trust(self.untrusted), bundle,
                          f"{self.dst.host}/untrusted", expect=None)
        self.assert_error(proc, 3, "verification failed", bundle)
        self.assert_untouched(self.dst, catalog, storage, f"untrusted/{self.REPO}", self.all_digests())
        # Without --verify the same bundle goes through (verification is opt-in).
        self.ferry("push", "--plain-http", bundle, f"{self.dst.host}/untrusted")
        self.assert_same_graph(self.REPO, self.dst, f"untrusted/{self.REPO}")

    def test_trust_options_need_verify(self):
        bundle = self.saved("usage.tar")
        proc = self.ferry("push", "--plain-http", "--trust-policy", self.policy, bundle,
                          f"{self.dst.host}/usage", expect=None)
        self.assertEqual(proc.returncode, 2, R.describe(proc))
        proc = self.ferry("push", "--plain-http", "--verify", bundle, f"{self.dst.host}/usage",
                          expect=None)
        self.assert_error(proc, 2, "--trust-policy")
        self.assertEqual(self.dst.list_tags(f"usage/{self.REPO}"), [])

    @staticmethod
    def staging_dirs():
        return sorted(n for n in os.listdir(tempfile.gettempdir()) if n.startswith("ferry-copy-"))

    def test_copy_verify(self):
        staging_before = self.staging_dirs()
        doc = self.ferry_json("copy", "--plain-http", *self.trust(), f"{self.scope}:v1",
                              f"{self.dst.host}/copied/app")
        self.assertTrue(doc["verification"]["verified"], doc)
        self.assertTrue(doc["proof"]["ok"])
        self.assert_same_graph(self.REPO, self.dst, "copied/app")

        catalog, storage = self.dst.catalog(), R.storage_snapshot(self.dst.storage)
        proc = self.ferry("copy", "--plain-http", *self.trust(self.untrusted), f"{self.scope}:v1",
                          f"{self.dst.host}/copied/untrusted", expect=None)
        self.assert_error(proc, 3, "verification failed", f"{self.scope}:v1")
        self.assert_untouched(self.dst, catalog, storage, "copied/untrusted", self.all_digests())
        self.assertEqual(self.staging_dirs(), staging_before, "staging directory left behind")


class PushProof(Base):
    """After push, the destination is re-read; a referrer link lost between push and proof
    fails the push (exit 1) naming it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bundle = os.path.join(cls.tmp, "app.tar")
        R.run_ferry("save", "--plain-http", f"{cls.src.host}/demo/app:v1", "-o", cls.bundle)

    def test_proof_reported(self):
        doc = self.ferry_json("push", "--plain-http", self.bundle, f"{self.dst.host}/good")
        self.assertEqual(doc["proof"], {"ok": True, "missing": [],
                                        "checked": {"manifests": 4, "tags": 1, "referrers": 3}})
        self.assertIsNone(doc["verification"])
        proc = self.ferry("push", "--plain-http", self.bundle, f"{self.dst.host}/good")
        self.assertIn("proof: all 4 manifests, 1 tag and 3 referrer links arrived", proc.stderr)
        self.assert_same_graph("demo/app", self.dst, "good/demo/app")
        self.assertIn(self.fx["app"], proc.stdout)

    def test_dropped_referrer_fails_push(self):
        fx = self.fx
        repo = "drop/demo/app"
        with hook_drop_fallback(self.dst, repo, fx["app"]):
            proc = self.ferry("push", "--plain-http", self.bundle, f"{self.dst.host}/drop", expect=None)
            line = self.assert_error(proc, 1, "proof failed", "referrer link", fx["app"])
            self.assertTrue(fx["app_sig"] in line or fx["app_sbom"] in line, line)
            for d in (fx["app_sig"], fx["app_sbom"]):
                self.assertIn(f"missing: referrer link {d} -> subject {fx['app']}", proc.stderr)
            self.assertNotIn(fx["app_sbom_sig"] + " -> subject", proc.stderr)

            proc, doc = self.run_json("push", "--plain-http", self.bundle, f"{self.dst.host}/drop",
                                      expect=1)
        proof = doc["proof"]
        self.assertFalse(proof["ok"])
        self.assertEqual(proof["checked"], {"manifests": 4, "tags": 1, "referrers": 3})
        self.assertEqual(sorted((m["kind"], m["digest"], m["subject"]) for m in proof["missing"]),
                         sorted([("referrer", fx["app_sig"], fx["app"]),
                                 ("referrer", fx["app_sbom"], fx["app"])]))
        for m in proof["missing"]:
            self.assertEqual(m["repository"], f"{self.dst.host}/{repo}")
        self.assert_error(proc, 1, "proof failed")

        # Without the hook, pushing again repairs the destination and proves it.
        self.ferry("push", "--plain-http", self.bundle, f"{self.dst.host}/drop")
        self.assert_same_graph("demo/app", self.dst, repo)

    def test_dropped_referrer_fails_copy(self):
        fx = self.fx
        with hook_drop_fallback(self.dst, "dropcopy/app", fx["app_sbom"]):
            proc = self.ferry("copy", "--plain-http", self.app_ref, f"{self.dst.host}/dropcopy/app",
                              expect=None)
        self.assert_error(proc, 1, "proof failed", fx["app_sbom_sig"], fx["app_sbom"])


class Copy(Base):
    """ferry copy between two real registries."""

    def test_copy_preserves_graph_and_is_idempotent(self):
        for repo, ref in (("demo/app", self.app_ref), ("demo/multi", self.multi_ref)):
            with self.subTest(repo=repo):
                dst_repo = "mirror/" + repo.split("/")[1]
                doc = self.ferry_json("copy", "--plain-http", ref, f"{self.dst.host}/{dst_repo}")
                self.assertTrue(doc["proof"]["ok"], doc)
                self.assertEqual(doc["proof"]["checked"]["tags"], 1)
                self.assertGreater(doc["blobs"]["pushed"], 0)
                self.assert_same_graph(repo, self.dst, dst_repo)

                before = R.storage_snapshot(self.dst.storage)
                doc = self.ferry_json("copy", "--plain-http", ref, f"{self.dst.host}/{dst_repo}")
                self.assertEqual(doc["blobs"]["pushed"], 0, doc)
                self.assertEqual(doc["blobs"]["mounted"], 0)
                self.assertEqual(doc["manifests"]["pushed"], 0)
                self.assertEqual(doc["tags"]["written"], 0)
                self.assertEqual(doc["fallbackIndexesWritten"], 0)
                self.assertTrue(doc["proof"]["ok"])
                self.assertEqual(R.snapshot_diff(before, R.storage_snapshot(self.dst.storage)), [],
                                 "a second copy must not write anything")

    def test_copy_human_output(self):
        fx = self.fx
        proc = self.ferry("copy", "--plain-http", self.app_ref, f"{self.dst.host}/human/app:prod")
        self.assertIn(f"copied {self.dst.host}/human/app:prod {fx['app']}", proc.stdout)
        self.assertIn("proof: all", proc.stderr)
        self.assertEqual(self.dst.list_tags("human/app"),
                         sorted(["prod"] + [R.fallback_tag(d) for d in (fx["app"], fx["app_sbom"])]))

    def test_copy_by_digest_is_untagged(self):
        fx = self.fx
        self.ferry("copy", "--plain-http", self.ref("demo/app", fx["app"]), f"{self.dst.host}/bydigest/app")
        self.assertEqual([t for t in self.dst.list_tags("bydigest/app") if not R.is_fallback_tag(t)], [])
        self.assertEqual(R.graph_of(self.dst, "bydigest/app", fx["app"]),
                         R.graph_of(self.src, "demo/app", fx["app"]))

    def test_copy_within_one_registry_mounts(self):
        fx = self.fx
        doc = self.ferry_json("copy", "--plain-http", self.app_ref, f"{self.src.host}/mounted/app")
        self.assertEqual(doc["blobs"]["pushed"], 0, doc)
        self.assertEqual(doc["blobs"]["mounted"], len(fx["app_layers"]) + 5)  # + config, empty config, 3 payloads
        self.assertTrue(doc["proof"]["ok"])
        self.assertEqual(R.graph_of(self.src, "mounted/app"), self.src_graph("demo/app"))

    def test_copy_platform_and_filters(self):
        fx = self.fx
        self.ferry("copy", "--plain-http", "--platform", "linux/arm64", self.multi_ref,
                   f"{self.dst.host}/arm/multi")
        _, _, digest = self.dst.get_manifest("arm/multi", "v2")
        self.assertEqual(digest, fx["multi_arm64"])
        self.assertEqual([d["digest"] for d in self.dst.referrers("arm/multi", fx["multi_arm64"])],
                         [fx["multi_arm64_sig"]])
        for d in fx["multi_amd64_layers"]:
            self.assertFalse(self.dst.blob_exists("arm/multi", d))

        self.ferry("copy", "--plain-http", "--no-referrers", self.app_ref, f"{self.dst.host}/noref/app")
        self.assertEqual(self.dst.list_tags("noref/app"), ["v1"])

        self.ferry("copy", "--plain-http", "--artifact-type", R.SPDX, self.app_ref,
                   f"{self.dst.host}/sbom/app")
        self.assertEqual([d["digest"] for d in self.dst.referrers("sbom/app", fx["app"])], [fx["app_sbom"]])

    def test_copy_streams_large_blobs(self):
        # Above the 8 MiB replayable-upload limit: the layer streams from GET to PUT once.
        big = R.seeded_bytes("copy-big", 12 * 1024 * 1024 + 5)
        R.push_image(self.src, "big/app", "v1", [big])
        doc = self.ferry_json("copy", "--plain-http", self.ref("big/app", "v1"), f"{self.dst.host}/big/app")
        self.assertEqual(doc["blobs"]["pushed"], 2, doc)
        self.assertGreater(doc["blobs"]["bytes"], len(big))
        self.assert_same_graph("big/app", self.dst, "big/app")
        self.assertEqual(self.dst.get_blob("big/app", R.sha256_digest(big)), big)

    def test_copy_errors(self):
        proc = self.ferry("copy", "--plain-http", self.ref("demo/app", "nope"), f"{self.dst.host}/err/app",
                          expect=None)
        self.assert_error(proc, 1, "demo/app:nope")
        self.assertEqual(self.dst.list_tags("err/app"), [])
        proc = self.ferry("copy", "--plain-http", self.app_ref, f"{self.dst.host}/err/app@{self.fx['app']}",
                          expect=None)
        self.assert_error(proc, 2, "not a digest")
        proc = self.ferry("copy", "--plain-http", self.app_ref, expect=None)
        self.assertEqual(proc.returncode, 2, R.describe(proc))
        proc = self.ferry("copy", "--plain-http", "--trust-pin", "sha256:" + "0" * 64, self.app_ref,
                          f"{self.dst.host}/err/app", expect=None)
        self.assertEqual(proc.returncode, 2, R.describe(proc))


class CrossRepoMounts(Base):
    """Issue 18: across pushes, a blob the destination registry already holds in another
    repository is mounted (?mount=&from=), not uploaded: known from an inventory of the
    destination (push --have) or, for a bundle saved from the target registry itself, from
    its source repositories. What the registry received is counted against the unique bytes."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.base = R.seeded_bytes("mount-base", 3 * 1024 * 1024)
        cls.one = R.seeded_bytes("mount-one", 512 * 1024 + 7)
        cls.two = R.seeded_bytes("mount-two", 256 * 1024 + 3)
        R.push_image(cls.src, "share/one", "v1", [cls.base, cls.one])
        R.push_image(cls.src, "share/two", "v1", [cls.base, cls.two])
        cls.b1, cls.b2 = os.path.join(cls.tmp, "one.tar"), os.path.join(cls.tmp, "two.tar")
        for repo, out in (("share/one", cls.b1), ("share/two", cls.b2)):
            proc = R.run_ferry("save", "--plain-http", f"{cls.src.host}/{repo}:v1", "-o", out)
            assert proc.returncode == 0, R.describe(proc)

    def config_size(self, repo):
        manifest, _, _ = self.src.get_manifest(repo, "v1")
        return json.loads(manifest)["config"]["size"]

    def test_inventory_of_the_destination_turns_uploads_into_mounts(self):
        self.ferry("push", "--plain-http", self.b1, f"{self.dst.host}/inv")
        have = self.path("dst-have.json")
        self.ferry("inventory", "--plain-http", f"{self.dst.host}/inv", "-o", have)

        plan = self.ferry_json("push", "--plain-http", "--have", have, "--dry-run", self.b2, f"{self.dst.host}/inv")
        self.assertEqual(plan["blobs"]["mounted"], 1, plan)
        self.assertEqual(plan["blobs"]["bytes"], len(self.two) + self.config_size("share/two"))

        doc = self.ferry_json("push", "--plain-http", "--have", have, self.b2, f"{self.dst.host}/inv")
        unique = len(self.two) + self.config_size("share/two")  # what inv/share/one lacks
        self.assertEqual(doc["blobs"]["mounted"], 1, doc)
        self.assertEqual(doc["blobs"]["pushed"], 2)
        self.assertEqual(doc["blobs"]["bytes"], unique, "only the blobs the registry lacks are sent")
        self.assertTrue(doc["proof"]["ok"], doc)
        self.assertTrue(self.dst.blob_exists("inv/share/two", R.sha256_digest(self.base)))
        self.assertEqual(R.graph_of(self.dst, "inv/share/two"), R.graph_of(self.src, "share/two"))

        # The same push without the inventory uploads the shared layer again.
        doc = self.ferry_json("push", "--plain-http", "--map", "share/two=again/two", self.b2,
                              f"{self.dst.host}/inv")
        self.assertEqual(doc["blobs"]["mounted"], 0, doc)
        self.assertEqual(doc["blobs"]["bytes"], len(self.base) + unique)

    def test_source_repositories_on_the_target_registry_are_mount_sources(self):
        doc = self.ferry_json("push", "--plain-http", self.b2, f"{self.src.host}/mirror")
        self.assertEqual(doc["blobs"]["pushed"], 0, doc)
        self.assertEqual(doc["blobs"]["mounted"], 3)  # base, two, config: all from share/two
        self.assertEqual(doc["blobs"]["bytes"], 0)
        self.assertTrue(doc["proof"]["ok"], doc)
        self.assertEqual(R.graph_of(self.src, "mirror/share/two"), R.graph_of(self.src, "share/two"))

    def test_a_mount_source_that_lacks_the_blob_falls_back_to_an_upload(self):
        # The inventory says inv2/share/one holds the layers, but that repository was never
        # pushed: every mount is refused (202, session cancelled) and the blobs are uploaded.
        have = self.path("stale-have.json")
        self.ferry("push", "--plain-http", self.b1, f"{self.dst.host}/real")
        self.ferry("inventory", "--plain-http", f"{self.dst.host}/real", "-o", have)
        with open(have) as f:
            inv = json.load(f)
        inv["repositories"] = {k.replace("real/", "gone/"): v for k, v in inv["repositories"].items()}
        with open(have, "w") as f:
            json.dump(inv, f, sort_keys=True, separators=(",", ":"))
        doc = self.ferry_json("push", "--plain-http", "--have", have, self.b2, f"{self.dst.host}/stale")
        self.assertEqual(doc["blobs"]["mounted"], 0, doc)
        self.assertEqual(doc["blobs"]["pushed"], 3)
        self.assertTrue(doc["proof"]["ok"], doc)
        self.assertEqual(R.graph_of(self.dst, "stale/share/two"), R.graph_of(self.src, "share/two"))

    def test_an_inventory_of_something_else_is_refused(self):
        other = self.path("src-have.json")
        self.ferry("inventory", "--plain-http", f"{self.src.host}/share", "-o", other)
        of_bundle = self.path("bundle-have.json")
        self.ferry("inventory", self.b1, "-o", of_bundle)
        for have, needle in ((other, f"of registry {self.src.host}, not of the destination {self.dst.host}"),
                             (of_bundle, "of bundle one.tar")):
            with self.subTest(have=have):
                proc = self.ferry("push", "--plain-http", "--have", have, self.b2, f"{self.dst.host}/refused",
                                  expect=None)
                self.assert_error(proc, (1, 2), "--have", needle)
                self.assertEqual(self.dst.list_tags("refused/share/two"), [])
        proc = self.ferry("push", "--plain-http", "--have", self.path("missing.json"), self.b2,
                          f"{self.dst.host}/refused", expect=None)
        self.assert_error(proc, (1, 2), "missing.json")


if __name__ == "__main__":
    unittest.main(verbosity=2)
