#!/usr/bin/env python3
"""End-to-end tests of what operators expect from ``ferry push`` and ``ferry copy`` (issue 14):
the real ferry binary against real docker-registry instances on loopback.

Run: python3 tests/e2e/test_users_push.py [ClassName[.test_name]]   (FERRY=/abs/path/ferry)
Exit code 77 (meson "skipped") when docker-registry or the ferry binary is missing.

Contract under test:
  - TagMoves: a push (or copy) that moves an existing destination tag to another digest says
    so — old and new digest — in the dry run's plan (action ``move``, ``previousDigest``),
    in the report (``pushed … (tag moved from …)``, ``tags.moved``) and on stderr;
    ``--no-clobber`` refuses any move before the first request that writes (exit 1, one
    error line naming the tag and both digests, the registry's storage unchanged), and lets
    new and unchanged tags through.
  - TagMap: ``--map SRC_REPO:TAG=DST_REPO:TAG`` sends one tag to another repository and tag
    (its referrers follow it, the repository's other tags stay), beside repository maps and
    under a target namespace; a tag on one side only, an invalid tag or repository, a
    digest and a source mapped twice are usage errors (exit 2), a tag map matching no root
    is an error (exit 1); nothing is sent in either case.
  - Referrers: ``referrers: {pushed, skipped}`` counts the referrer manifests actually put
    into the destination and those already there (a re-push: 0 pushed; one deleted: 1
    pushed); a bundle with two images in two repositories, each with referrers, puts each
    referrer manifest and fallback tag (docker-registry has no referrers API: the
    ``sha256-<hex>`` tag schema) only into the repository of its subject.
Every --json document is validated against src/cli/schema when ``jsonschema`` is installed.
"""

import json
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402

R.skip_module_unless(__name__)

import test_roundtrip as T  # noqa: E402

try:  # the published schemas, when the jsonschema module is there
    import test_json_schema as JS  # noqa: E402
    SCHEMAS = JS.load_schemas()
except unittest.SkipTest:
    JS = SCHEMAS = None


class Base(T.E2E):
    """test_roundtrip's E2E (a seeded source registry, an empty destination) with a JSON
    runner that validates against the schema."""

    @classmethod
    def save_bundle(cls, name, *refs):
        out = os.path.join(cls.tmp, name)
        proc = R.run_ferry("save", "--plain-http", *[f"{cls.src.host}/{r}" for r in refs], "-o", out)
        if proc.returncode != 0:
            raise AssertionError("save failed" + R.describe(proc))
        return out

    def run_json(self, *args, expect=0):
        proc = self.ferry(*args, "--json", expect=expect)
        try:
            doc = json.loads(proc.stdout)
        except ValueError as e:
            self.fail(f"--json output is not one JSON document ({e}){R.describe(proc)}")
        if SCHEMAS is not None:
            name = f"{doc['command']}.schema.json"
            errors = [f"{'/'.join(map(str, e.path))}: {e.message[:300]}"
                      for e in JS.validator(SCHEMAS, name).iter_errors(doc)]
            self.assertEqual(errors, [], f"--json does not match {name}")
        return proc, doc

    def assert_nothing_sent(self, before, *repos):
        self.assertEqual(R.snapshot_diff(before, R.storage_snapshot(self.dst.storage)), [],
                         "the destination registry's storage changed")
        for repo in repos:
            self.assertEqual(self.dst.list_tags(repo), [], f"{repo} has tags")


class TagMoves(Base):
    """A destination tag moved to another digest: said in plan and report, refused with
    --no-clobber."""

    REPO = "team/app"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Two versions of team/app:v1 (the tag moved in the source between two saves), and
        # team/app:v2, new.
        cls.old = R.push_image(cls.src, cls.REPO, "v1", [R.seeded_bytes("tm-old", 5000)])
        cls.old_bundle = cls.save_bundle("old.tar", f"{cls.REPO}:v1")
        cls.new = R.push_image(cls.src, cls.REPO, "v1", [R.seeded_bytes("tm-new", 6000)])
        cls.v2 = R.push_image(cls.src, cls.REPO, "v2", [R.seeded_bytes("tm-v2", 7000)])
        cls.new_bundle = cls.save_bundle("new.tar", f"{cls.REPO}:v1", f"{cls.REPO}:v2")

    def target(self, ns):
        """A destination namespace where team/app:v1 is the old image."""
        self.ferry("push", "--plain-http", self.old_bundle, f"{self.dst.host}/{ns}")
        repo = f"{ns}/{self.REPO}"
        self.assertEqual(self.dst.head_manifest(repo, "v1")["digest"], self.old["digest"])
        return f"{self.dst.host}/{ns}", repo

    def test_dry_run_says_which_tag_moves(self):
        target, repo = self.target("dry")
        before = R.storage_snapshot(self.dst.storage)
        proc = self.ferry("push", "--plain-http", "--dry-run", self.new_bundle, target)
        old, new, v2 = self.old["digest"], self.new["digest"], self.v2["digest"]
        where = f"{self.dst.host}/{repo}"
        moves = [l for l in proc.stdout.splitlines() if l.startswith("move ")]
        self.assertEqual(len(moves), 1, R.describe(proc))
        self.assertIn(f"{where} {new} as :v1, moved from {old}", moves[0])
        self.assertTrue(any(l.startswith("tag ") and f"{v2} as :v2" in l for l in proc.stdout.splitlines()),
                        R.describe(proc))
        self.assertIn("tags: 2 to write (1 moved), 0 unchanged", proc.stdout)

        _, doc = self.run_json("push", "--plain-http", "--dry-run", self.new_bundle, target)
        tags = [(s["action"], s.get("tag"), s["digest"], s.get("previousDigest"))
                for s in doc["plan"] if s["action"] in ("tag", "move", "unchanged")]
        self.assertEqual(sorted(tags, key=str), sorted([("move", "v1", new, old), ("tag", "v2", v2, None)], key=str))
        self.assertEqual(doc["tags"]["moved"], [{"repository": where, "tag": "v1", "previousDigest": old,
                                                 "digest": new, "mediaType": R.OCI_MANIFEST}])
        self.assertEqual(doc["tags"]["written"], 2)
        self.assert_nothing_sent(before)
        self.assertEqual(self.dst.head_manifest(repo, "v1")["digest"], old)

    def test_push_reports_the_move(self):
        target, repo = self.target("moved")
        old, new = self.old["digest"], self.new["digest"]
        proc = self.ferry("push", "--plain-http", self.new_bundle, target)
        where = f"{self.dst.host}/{repo}"
        self.assertIn(f"pushed {where}:v1 {new} (tag moved from {old})", proc.stdout.splitlines())
        self.assertIn(f"pushed {where}:v2 {self.v2['digest']}", proc.stdout.splitlines())
        self.assertIn("tags: 2 written (1 moved), 0 unchanged", proc.stdout)
        self.assertIn(f"moved tag {where}:v1 from {old} to {new}", proc.stderr)
        self.assertEqual(self.dst.head_manifest(repo, "v1")["digest"], new)

        # Pushed again: nothing moves; the old bundle moves it back, in JSON.
        _, doc = self.run_json("push", "--plain-http", self.new_bundle, target)
        self.assertEqual(doc["tags"], {"written": 0, "unchanged": 2, "moved": []})
        _, doc = self.run_json("push", "--plain-http", self.old_bundle, target)
        self.assertEqual(doc["tags"]["moved"], [{"repository": where, "tag": "v1", "previousDigest": new,
                                                 "digest": old, "mediaType": R.OCI_MANIFEST}])
        self.assertTrue(doc["proof"]["ok"])
        self.assertEqual(self.dst.head_manifest(repo, "v1")["digest"], old)

    def test_no_clobber_refuses_a_move_and_sends_nothing(self):
        target, repo = self.target("noclobber")
        old, new = self.old["digest"], self.new["digest"]
        before = R.storage_snapshot(self.dst.storage)
        for extra in ((), ("--dry-run",), ("--json",)):
            with self.subTest(extra=extra):
                proc = self.ferry("push", "--plain-http", "--no-clobber", *extra, self.new_bundle, target,
                                  expect=None)
                self.assert_error(proc, 1, "--no-clobber", f"{self.dst.host}/{repo}", "tag v1", old, new,
                                  "nothing was sent")
                self.assertEqual(proc.stdout, "")
                # Nothing was sent: not v2's blobs or manifest either (the check comes before the
                # first upload).
                self.assert_nothing_sent(before)
                self.assertFalse(self.dst.manifest_exists(repo, self.v2["digest"]))
                self.assertEqual(self.dst.list_tags(repo), ["v1"])
        # Two tags that would move (v2 made the old image too, through a tag map): the first
        # is named, the other counted.
        self.ferry("push", "--plain-http", "--map", "team/app:v1=team/app:v2", self.old_bundle, target)
        before = R.storage_snapshot(self.dst.storage)
        proc = self.ferry("push", "--plain-http", "--no-clobber", self.new_bundle, target, expect=None)
        self.assert_error(proc, 1, "tag v1", old, new, "(and 1 more tag)")
        self.assert_nothing_sent(before)

    def test_no_clobber_lets_new_and_unchanged_tags_through(self):
        target, repo = self.target("fresh")
        proc = self.ferry("push", "--plain-http", "--no-clobber", self.old_bundle, target)
        self.assertIn("tags: 0 written, 1 unchanged", proc.stdout)
        # A fresh namespace: every tag is new.
        _, doc = self.run_json("push", "--plain-http", "--no-clobber", self.new_bundle, f"{self.dst.host}/fresh2")
        self.assertEqual(doc["tags"], {"written": 2, "unchanged": 0, "moved": []})
        self.assertEqual(self.dst.head_manifest(f"fresh2/{self.REPO}", "v1")["digest"], self.new["digest"])

    def test_copy_moves_and_no_clobber(self):
        """copy shares push's tag step: the same report, the same refusal."""
        _, repo = self.target("copy")
        old, new = self.old["digest"], self.new["digest"]
        where = f"{self.dst.host}/{repo}"
        src = f"{self.src.host}/{self.REPO}:v1"  # the new image now
        before = R.storage_snapshot(self.dst.storage)
        proc = self.ferry("copy", "--plain-http", "--no-clobber", src, where, expect=None)
        self.assert_error(proc, 1, "--no-clobber", "tag v1", old, new)
        self.assert_nothing_sent(before)
        self.assertEqual(self.dst.head_manifest(repo, "v1")["digest"], old)

        _, doc = self.run_json("copy", "--plain-http", src, where)
        self.assertEqual(doc["tags"]["moved"], [{"repository": where, "tag": "v1", "previousDigest": old,
                                                 "digest": new, "mediaType": R.OCI_MANIFEST}])
        self.assertEqual(self.dst.head_manifest(repo, "v1")["digest"], new)
        proc = self.ferry("copy", "--plain-http", "--no-clobber", src, where)
        self.assertIn("tags: 0 written, 1 unchanged", proc.stdout)


class TagMap(Base):
    """--map SRC_REPO:TAG=DST_REPO:TAG: one tag renamed, its referrers with it."""

    REPO = "team/app"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.v1 = R.push_image(cls.src, cls.REPO, "v1", [R.seeded_bytes("map-v1", 4000)])
        cls.v1_sig = R.push_signature(cls.src, cls.REPO, cls.v1, "map-v1-sig")["digest"]
        cls.v1_sbom = R.push_sbom(cls.src, cls.REPO, cls.v1, "map-v1")["digest"]
        cls.v2 = R.push_image(cls.src, cls.REPO, "v2", [R.seeded_bytes("map-v2", 4100)])
        cls.v2_sig = R.push_signature(cls.src, cls.REPO, cls.v2, "map-v2-sig")["digest"]
        cls.bundle = cls.save_bundle("app.tar", f"{cls.REPO}:v1", f"{cls.REPO}:v2")

    def non_fallback_tags(self, repo):
        return [t for t in self.dst.list_tags(repo) if not R.is_fallback_tag(t)]

    def assert_v1_at(self, repo, tag):
        """team/app:v1 with its two referrers is at repo:tag, and nothing of v2 is there."""
        self.assertEqual(self.dst.head_manifest(repo, tag)["digest"], self.v1["digest"])
        self.assertEqual(sorted(d["digest"] for d in self.dst.referrers(repo, self.v1["digest"])),
                         sorted([self.v1_sig, self.v1_sbom]))
        self.assertEqual(self.non_fallback_tags(repo), [tag])
        self.assertEqual(self.dst.list_tags(repo), sorted([tag, R.fallback_tag(self.v1["digest"])]))
        for d in (self.v2["digest"], self.v2_sig):
            self.assertFalse(self.dst.manifest_exists(repo, d), f"{d} reached {repo}")

    def assert_v2_at(self, repo):
        """team/app:v2 and its signature are at repo:v2, and nothing of v1 is there."""
        self.assertEqual(self.dst.head_manifest(repo, "v2")["digest"], self.v2["digest"])
        self.assertEqual([d["digest"] for d in self.dst.referrers(repo, self.v2["digest"])], [self.v2_sig])
        self.assertEqual(self.dst.list_tags(repo), sorted(["v2", R.fallback_tag(self.v2["digest"])]))
        for d in (self.v1["digest"], self.v1_sig, self.v1_sbom):
            self.assertFalse(self.dst.manifest_exists(repo, d), f"{d} reached {repo}")

    def test_tag_map(self):
        _, doc = self.run_json("push", "--plain-http", "--map", "team/app:v1=prod/app:1.0", self.bundle,
                               self.dst.host)
        self.assertTrue(doc["proof"]["ok"], doc)
        self.assertEqual(sorted((r["destination"], r["digest"]) for r in doc["roots"]),
                         sorted([(f"{self.dst.host}/prod/app:1.0", self.v1["digest"]),
                                 (f"{self.dst.host}/team/app:v2", self.v2["digest"])]))
        self.assert_v1_at("prod/app", "1.0")
        self.assert_v2_at("team/app")
        self.assertEqual(R.graph_of(self.dst, "prod/app", "1.0")["referrers"],
                         R.graph_of(self.src, self.REPO, "v1")["referrers"])

    def test_tag_map_within_the_repository_and_namespace(self):
        """Renaming only the tag (same repository), under a target namespace; dry run first."""
        args = ("push", "--plain-http", "--map", "team/app:v1=team/app:stable", self.bundle, f"{self.dst.host}/ns")
        proc = self.ferry(*args, "--dry-run")
        self.assertIn(f"{self.dst.host}/ns/team/app {self.v1['digest']} as :stable", proc.stdout)
        self.assertEqual(self.dst.list_tags("ns/team/app"), [])
        self.ferry(*args)
        self.assertEqual(self.non_fallback_tags("ns/team/app"), ["stable", "v2"])
        self.assertEqual(self.dst.head_manifest("ns/team/app", "stable")["digest"], self.v1["digest"])

    def test_tag_map_beside_repository_map(self):
        """The tag's map wins over its repository's; the other tags follow the repository map."""
        self.ferry("push", "--plain-http", "--map", "team/app=mirror/app", "--map", "team/app:v1=prod2/app:1.0",
                   self.bundle, self.dst.host)
        self.assert_v1_at("prod2/app", "1.0")
        self.assert_v2_at("mirror/app")

    def test_usage_errors_send_nothing(self):
        before = R.storage_snapshot(self.dst.storage)
        for bad, needle in (("team/app:v1=prod/app", "a tag on one side only"),
                            ("team/app=prod/app:1.0", "a tag on one side only"),
                            ("team/app:v1=prod/app:-bad", "not a valid tag"),
                            ("team/app:v1=prod/app:", "not a valid tag"),
                            ("team/app:v1=prod/App:1.0", "not a valid repository"),
                            ("team/app@sha256:" + "a" * 64 + "=prod/app", "digest"),
                            ("team/app:v1", "SRC_REPO:TAG=DST_REPO:TAG")):
            with self.subTest(map=bad):
                proc = self.ferry("push", "--plain-http", "--map", bad, self.bundle, f"{self.dst.host}/bad",
                                  expect=None)
                self.assert_error(proc, 2, "--map", needle)
        proc = self.ferry("push", "--plain-http", "--map", "team/app:v1=a/b:1", "--map", "team/app:v1=c/d:2",
                          self.bundle, f"{self.dst.host}/bad", expect=None)
        self.assert_error(proc, 2, "team/app:v1", "twice")
        # A tag map that matches no root: a typo must not push under the old name.
        proc = self.ferry("push", "--plain-http", "--map", "team/app:v9=prod/app:9", self.bundle,
                          f"{self.dst.host}/bad", expect=None)
        self.assert_error(proc, 1, "team/app:v9", "no root", "nothing was sent")
        self.assert_nothing_sent(before)
        self.assertNotIn("bad/team/app", self.dst.catalog())


class Referrers(Base):
    """The referrer count is what was pushed; referrers land with their subject only."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Two images in two repositories, each with referrers (a: signature, SBOM, the SBOM's
        # signature; b: a signature).
        cls.a = R.push_image(cls.src, "team/a", "v1", [R.seeded_bytes("ref-a", 3000)])
        a_sig = R.push_signature(cls.src, "team/a", cls.a, "ref-a-sig")
        a_sbom = R.push_sbom(cls.src, "team/a", cls.a, "ref-a")
        a_sbom_sig = R.push_signature(cls.src, "team/a", a_sbom, "ref-a-sbom-sig")
        cls.b = R.push_image(cls.src, "team/b", "v1", [R.seeded_bytes("ref-b", 3100)])
        b_sig = R.push_signature(cls.src, "team/b", cls.b, "ref-b-sig")
        cls.a_refs = [a_sig["digest"], a_sbom["digest"], a_sbom_sig["digest"]]
        cls.b_refs = [b_sig["digest"]]
        cls.a_subjects = [cls.a["digest"], a_sbom["digest"]]
        cls.bundle = cls.save_bundle("ab.tar", "team/a:v1", "team/b:v1")

    def assert_local(self, ns):
        """Each referrer manifest and fallback tag in the repository of its subject only,
        read through the registry API (docker-registry: no referrers API, the tag schema)."""
        a, b = f"{ns}/team/a", f"{ns}/team/b"
        self.assertEqual(self.dst.referrers_api_status(a, self.a["digest"]), 404)
        self.assertEqual([r for r in self.dst.catalog() if r.startswith(ns + "/")], [a, b])
        self.assertEqual(self.dst.list_tags(a), sorted(["v1"] + [R.fallback_tag(d) for d in self.a_subjects]))
        self.assertEqual(self.dst.list_tags(b), sorted(["v1", R.fallback_tag(self.b["digest"])]))
        for repo, here, there in ((a, self.a_refs, self.b_refs), (b, self.b_refs, self.a_refs)):
            for d in here:
                self.assertTrue(self.dst.manifest_exists(repo, d), f"{d} missing from {repo}")
            for d in there:
                self.assertFalse(self.dst.manifest_exists(repo, d), f"{d} leaked into {repo}")
        self.assertEqual(self.dst.referrers(a, self.b["digest"]), [])
        self.assertEqual(self.dst.referrers(b, self.a["digest"]), [])
        self.assertEqual([d["digest"] for d in self.dst.referrers(b, self.b["digest"])], self.b_refs)
        self.assert_same_graph("team/a", self.dst, a)
        self.assert_same_graph("team/b", self.dst, b)

    def test_counts_what_was_pushed(self):
        target = f"{self.dst.host}/count"
        # Dry run: what would be pushed, and nothing arrives.
        _, doc = self.run_json("push", "--plain-http", "--dry-run", self.bundle, target)
        self.assertEqual(doc["referrers"], {"pushed": 4, "skipped": 0})
        self.assertEqual(self.dst.list_tags("count/team/a"), [])

        proc = self.ferry("push", "--plain-http", self.bundle, target)
        self.assertIn("referrers: 4 pushed, 0 already there (3 fallback indexes written)", proc.stdout)
        self.assert_local("count")

        # Pushed again: every referrer is already there, none is pushed.
        _, doc = self.run_json("push", "--plain-http", self.bundle, target)
        self.assertEqual(doc["referrers"], {"pushed": 0, "skipped": 4})
        self.assertEqual(doc["manifests"], {"pushed": 0, "skipped": 6})
        self.assertEqual(doc["fallbackIndexesWritten"], 0)

        # One referrer lost at the destination: exactly that one is pushed again.
        self.dst.delete_manifest("count/team/b", self.b_refs[0])
        _, doc = self.run_json("push", "--plain-http", self.bundle, target)
        self.assertEqual(doc["referrers"], {"pushed": 1, "skipped": 3})
        self.assertEqual(doc["manifests"], {"pushed": 1, "skipped": 5})
        self.assertTrue(doc["proof"]["ok"])
        self.assert_local("count")

    def test_referrers_follow_a_mapped_subject(self):
        """team/a:v1 mapped elsewhere takes its referrers along; team/b's stay in team/b."""
        _, doc = self.run_json("push", "--plain-http", "--map", "team/a:v1=moved/a:1", self.bundle,
                               f"{self.dst.host}/m")
        self.assertEqual(doc["referrers"], {"pushed": 4, "skipped": 0})
        self.assertEqual(sorted(r for r in self.dst.catalog() if r.startswith("m/")), ["m/moved/a", "m/team/b"])
        self.assertEqual(self.dst.list_tags("m/moved/a"), sorted(["1"] + [R.fallback_tag(d) for d in self.a_subjects]))
        for d in self.a_refs:
            self.assertTrue(self.dst.manifest_exists("m/moved/a", d))
            self.assertFalse(self.dst.manifest_exists("m/team/b", d))
        self.assertEqual(self.dst.list_tags("m/team/b"), sorted(["v1", R.fallback_tag(self.b["digest"])]))

    def test_copy_counts_referrers(self):
        where = f"{self.dst.host}/copied/a"
        _, doc = self.run_json("copy", "--plain-http", f"{self.src.host}/team/a:v1", where)
        self.assertEqual(doc["referrers"], {"pushed": 3, "skipped": 0})
        proc = self.ferry("copy", "--plain-http", f"{self.src.host}/team/a:v1", where)
        self.assertIn("referrers: 0 pushed, 3 already there", proc.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
