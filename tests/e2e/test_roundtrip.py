#!/usr/bin/env python3
"""End-to-end tests: the real ferry binary against real docker-registry instances.

Run: python3 tests/e2e/test_roundtrip.py [-k pattern]    (FERRY=/abs/path/ferry to override)
Exit code 77 (meson "skipped") when docker-registry or the ferry binary is missing.

CLI/bundle contract under test: /work/shared/design.md §2 and §3. Assumptions beyond
the design are marked ASSUMPTION.
"""

import glob
import hashlib
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
from seed import seed_fixture  # noqa: E402


R.skip_module_unless(__name__)

HAVE_SKOPEO = shutil.which("skopeo") is not None
BLOB_NAME = re.compile(r"^blobs/sha256/[0-9a-f]{64}$")


def find_all(obj, pred):
    """Every dict inside a JSON value satisfying pred."""
    out = []
    if isinstance(obj, dict):
        if pred(obj):
            out.append(obj)
        for v in obj.values():
            out.extend(find_all(v, pred))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(find_all(v, pred))
    return out


def contains_string(obj, s):
    if isinstance(obj, str):
        return s in obj
    if isinstance(obj, dict):
        return any(contains_string(v, s) for v in obj.values())
    if isinstance(obj, list):
        return any(contains_string(v, s) for v in obj)
    return False


def int_fields(obj, pred, prefix=""):
    """[(path, value)] of integer fields whose key satisfies pred."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, int) and not isinstance(v, bool) and pred(k):
                out.append((prefix + k, v))
            out.extend(int_fields(v, pred, prefix + k + "."))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.extend(int_fields(v, pred, f"{prefix}[{i}]."))
    return out


class E2E(unittest.TestCase):
    """One source registry (seeded once) and one target registry per class."""

    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix=f"ferry-e2e-{cls.__name__}-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.src = R.Registry("src").start()
        cls.addClassCleanup(cls.src.stop)
        cls.dst = R.Registry("dst").start()
        cls.addClassCleanup(cls.dst.stop)
        cls.fx = seed_fixture(cls.src)
        cls._src_graphs = {}

    # -- helpers -----------------------------------------------------------
    def ref(self, repo, tag_or_digest):
        sep = "@" if tag_or_digest.startswith("sha256:") else ":"
        return f"{self.src.host}/{repo}{sep}{tag_or_digest}"

    @property
    def app_ref(self):
        return self.ref("demo/app", "v1")

    @property
    def multi_ref(self):
        return self.ref("demo/multi", "v2")

    def path(self, name):
        return os.path.join(self.tmp, name)

    def ferry(self, *args, expect=0, input=None):
        proc = R.run_ferry(*args, input=input)
        if expect is not None:
            self.assertEqual(proc.returncode, expect, R.describe(proc))
        for bad in ("Traceback", "terminate called", "Segmentation fault", "AddressSanitizer"):
            self.assertNotIn(bad, proc.stderr, R.describe(proc))
        return proc

    def ferry_json(self, *args):
        proc = self.ferry(*args, "--json")
        try:
            return json.loads(proc.stdout)
        except ValueError as e:
            self.fail(f"--json output is not one JSON document ({e}){R.describe(proc)}")

    def assert_error(self, proc, codes, *needles):
        """Exit code in codes; exactly one `ferry: error: ` line, last on stderr,
        naming every needle."""
        codes = (codes,) if isinstance(codes, int) else tuple(codes)
        self.assertIn(proc.returncode, codes, R.describe(proc))
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        errors = [l for l in lines if l.startswith("ferry: error: ")]
        self.assertEqual(len(errors), 1, "want exactly one 'ferry: error: ' line" + R.describe(proc))
        self.assertEqual(lines[-1], errors[0], "error line must be the last stderr line" + R.describe(proc))
        for n in needles:
            self.assertIn(n, errors[0], R.describe(proc))
        for bad in ("Traceback", "terminate called", "Segmentation fault"):
            self.assertNotIn(bad, proc.stderr)
        return errors[0]

    def assert_no_partials(self, out_path):
        parent = os.path.dirname(os.path.abspath(out_path))
        leftovers = [p for p in glob.glob(os.path.join(parent, "*")) if ".partial" in os.path.basename(p)]
        self.assertEqual(leftovers, [], "leftover partial output")

    def src_graph(self, repo):
        if repo not in self._src_graphs:
            self._src_graphs[repo] = R.graph_of(self.src, repo)
        return self._src_graphs[repo]

    def assert_same_graph(self, src_repo, dst, dst_repo):
        want = self.src_graph(src_repo)
        got = R.graph_of(dst, dst_repo)
        self.assertEqual(got["missing"], [], f"{dst.host}/{dst_repo} misses content")
        self.assertEqual(got, want, f"graph of {dst.host}/{dst_repo} differs from "
                                    f"{self.src.host}/{src_repo}:\nwant:\n{R.format_graph(want)}\n"
                                    f"got:\n{R.format_graph(got)}")

    def save(self, out, *refs_and_opts):
        proc = self.ferry("save", "--plain-http", *refs_and_opts, "-o", out)
        self.assertTrue(os.path.exists(out), f"no bundle at {out}" + R.describe(proc))
        self.assert_no_partials(out)
        return proc

    # -- bundle checks -----------------------------------------------------
    def check_bundle(self, path, roots, referrers=(), absent=()):
        """Structural checks of a bundle (design §3).

        roots: [(full source ref, tag or None, digest)]; referrers: digests that must be
        listed untagged in index.json; absent: blob digests that must not be there."""
        b = R.read_bundle(path)
        self.assertEqual(b.layout, {"imageLayoutVersion": "1.0.0"}, "oci-layout content")
        self.assertIsNotNone(b.index, "index.json missing")
        self.assertEqual(b.index.get("schemaVersion"), 2)
        if "mediaType" in b.index:
            self.assertEqual(b.index["mediaType"], R.OCI_INDEX)

        # Only oci-layout, index.json, blobs/sha256/<hex>; no links, devices.
        for name in b.files:
            self.assertTrue(name in ("oci-layout", "index.json") or BLOB_NAME.match(name),
                            f"unexpected file {name!r} in {path}")
        if b.entries is not None:
            for name, kind in b.entries:
                self.assertIn(kind, ("file", "dir"), f"tar entry {name!r} is a {kind}")
                if kind == "dir":
                    self.assertIn(name.strip("./").rstrip("/"), ("blobs", "blobs/sha256", ""),
                                  f"unexpected directory entry {name!r}")
                self.assertFalse(name.startswith("/") or ".." in name.split("/"), name)

        # Every blob's sha256 equals its name.
        for name, data in b.files.items():
            if name.startswith("blobs/"):
                self.assertEqual(hashlib.sha256(data).hexdigest(), name.rsplit("/", 1)[1],
                                 f"{name}: content does not match its name")

        # Everything reachable resolves with the right size; nothing unreachable.
        w = b.walk()
        self.assertEqual(w["missing"], [], "descriptors that do not resolve to a blob")
        self.assertEqual(w["size_mismatch"], [], "descriptor sizes that lie")
        reachable = set(w["manifests"]) | w["configs"] | set(w["layers"])
        self.assertEqual(sorted(set(b.blob_digests()) - reachable), [],
                         "blobs not reachable from index.json")
        for d, doc in w["manifests"].items():
            if isinstance(doc.get("subject"), dict):
                self.assertIn(doc["subject"]["digest"], w["manifests"],
                              f"referrer {d}: its subject is not in the bundle")

        # Roots: containerd-style annotations.
        entries = b.index.get("manifests", [])
        for full, tag, digest in roots:
            named = [e for e in entries
                     if (e.get("annotations") or {}).get(R.ANN_IMAGE_NAME) == full]
            self.assertEqual(len(named), 1, f"want one index.json entry named {full}: {entries}")
            e = named[0]
            self.assertEqual(e["digest"], digest, f"root {full}")
            self.assertEqual(e.get("size"), len(b.blob(digest)), f"root {full} size")
            self.assertEqual(e.get("mediaType"), b.manifest(digest).get("mediaType"), f"root {full}")
            self.assertEqual((e.get("annotations") or {}).get(R.ANN_REF_NAME), tag,
                             f"root {full}: {R.ANN_REF_NAME}")

        # Referrers: listed in index.json, untagged.
        by_digest = {}
        for e in entries:
            by_digest.setdefault(e["digest"], []).append(e)
        for d in referrers:
            self.assertIn(d, by_digest, f"referrer {d} not listed in index.json")
            for e in by_digest[d]:
                ann = e.get("annotations") or {}
                self.assertNotIn(R.ANN_REF_NAME, ann, f"referrer {d} must be untagged")
                self.assertIn("subject", b.manifest(d), f"{d} is not a referrer")
                if "artifactType" in e:
                    self.assertEqual(e["artifactType"], b.manifest(d).get("artifactType"))
        # No referrers-tag-schema fallback indexes in bundles (design §3).
        for e in entries:
            self.assertFalse(R.is_fallback_tag((e.get("annotations") or {}).get(R.ANN_REF_NAME, "")),
                             f"fallback tag index written into bundle: {e}")

        for d in absent:
            self.assertFalse(b.has_blob(d), f"{d} must not be in the bundle")

        # Tar order (design §3): oci-layout, index.json, manifests, small blobs, layers.
        if b.order is not None:
            self.assertEqual(b.order[:2], ["oci-layout", "index.json"], f"tar starts {b.order[:4]}")
            pos = {n: i for i, n in enumerate(b.order)}
            blob_pos = lambda d: pos[b.blob_name(d)]
            manifests = set(w["manifests"])
            others = [d for d in b.blob_digests() if d not in manifests]
            if manifests and others:
                last_manifest = max(blob_pos(d) for d in manifests)
                first_other = min(blob_pos(d) for d in others)
                self.assertLess(last_manifest, first_other,
                                "every manifest/index must precede every other blob in the tar")
            image_layers, small = set(), set(w["configs"])
            for d, doc in w["manifests"].items():
                if doc.get("mediaType") in R.INDEX_TYPES:
                    continue
                is_artifact = "artifactType" in doc or "subject" in doc
                for l in doc.get("layers") or []:
                    if not is_artifact:
                        image_layers.add(l["digest"])
                    elif doc.get("artifactType") == R.NOTATION_SIGNATURE:
                        small.add(l["digest"])
            small -= image_layers
            if image_layers and small:
                self.assertLess(max(blob_pos(d) for d in small),
                                min(blob_pos(d) for d in image_layers),
                                "configs and signature envelopes must precede image layers")
        return b

    def fixture_roots(self):
        fx = self.fx
        return [(self.app_ref, "v1", fx["app"]), (self.multi_ref, "v2", fx["multi"])]

    def check_fixture_referrers(self, b):
        fx = self.fx
        self.assertEqual(b.referrers_of(fx["app"]), sorted([fx["app_sig"], fx["app_sbom"]]))
        self.assertEqual(b.referrers_of(fx["app_sbom"]), [fx["app_sbom_sig"]])
        self.assertEqual(b.referrers_of(fx["multi_arm64"]), [fx["multi_arm64_sig"]])
        self.assertEqual(b.referrers_of(fx["multi_amd64"]), [])
        self.assertEqual(b.referrers_of(fx["multi"]), [fx["multi_sbom"]])


class RoundTrip(E2E):
    """a, b, c, d, i: save demo/app:v1 + demo/multi:v2 to .tar/.tar.zst/dir, push back."""

    FORMATS = {"tar": "bundle.tar", "zst": "bundle.tar.zst", "dir": "bundle-dir"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._saved = {}

    def bundle(self, fmt):
        """Saves both fixture refs once per format (lazily) and returns the path."""
        if fmt not in self._saved:
            out = self.path(self.FORMATS[fmt])
            proc = self.save(out, self.app_ref, self.multi_ref, "--json")
            type(self)._saved[fmt] = (out, proc)
        return self._saved[fmt][0]

    # a. bundle structure
    def _check_saved(self, fmt):
        b = self.check_bundle(self.bundle(fmt), self.fixture_roots(), self.fx["referrers"],
                              absent=[])
        self.check_fixture_referrers(b)
        # All layers of both platforms are saved when no --platform is given.
        for d in self.fx["app_layers"] + self.fx["multi_amd64_layers"] + self.fx["multi_arm64_layers"]:
            self.assertTrue(b.has_blob(d), f"layer {d} missing")

    def test_a1_save_tar(self):
        self._check_saved("tar")

    def test_a2_save_tar_zst(self):
        self._check_saved("zst")
        with open(self.bundle("zst"), "rb") as f:
            self.assertEqual(f.read(4), b"\x28\xb5\x2f\xfd", ".tar.zst must be zstd-compressed")

    def test_a3_save_dir(self):
        self._check_saved("dir")
        self.assertTrue(os.path.isdir(self.bundle("dir")))

    def test_a4_save_json_is_one_document(self):
        self.bundle("tar")
        proc = self._saved["tar"][1]
        try:
            doc = json.loads(proc.stdout)
        except ValueError as e:
            self.fail(f"save --json stdout is not one JSON document: {e}{R.describe(proc)}")
        self.assertTrue(contains_string(doc, self.fx["app"]),
                        "save --json should mention the saved root digests")

    def test_a5_tar_formats_carry_same_content(self):
        # Same blobs byte for byte; same index.json entries (order may differ between runs).
        t, z, d = (R.read_bundle(self.bundle(f)) for f in ("tar", "zst", "dir"))
        entries = lambda b: sorted(json.dumps(e, sort_keys=True) for e in b.index["manifests"])
        for other in (z, d):
            self.assertEqual(sorted(t.files), sorted(other.files), other.path)
            for k in t.files:
                if k != "index.json":
                    self.assertEqual(t.files[k], other.files[k], f"{other.path}: {k}")
            self.assertEqual(entries(t), entries(other), other.path)

    # b. push and compare graphs
    def _push_and_compare(self, fmt, target_suffix, prefix):
        target = self.dst.host + target_suffix
        self.ferry("push", "--plain-http", self.bundle(fmt), target)
        self.assert_same_graph("demo/app", self.dst, prefix + "demo/app")
        self.assert_same_graph("demo/multi", self.dst, prefix + "demo/multi")
        repos = [r for r in self.dst.catalog() if r.startswith(prefix)] if prefix else \
            [r for r in self.dst.catalog() if r.startswith("demo/")]
        self.assertEqual(repos, [prefix + "demo/app", prefix + "demo/multi"])

    def test_b1_push_tar(self):
        self._push_and_compare("tar", "", "")

    def test_b2_push_tar_zst_under_namespace(self):
        self._push_and_compare("zst", "/mirror", "mirror/")

    def test_b3_push_dir_under_namespace(self):
        self._push_and_compare("dir", "/fromdir/deep", "fromdir/deep/")

    def test_b4_push_map(self):
        # ASSUMPTION: --map SRC=DST names the repository below TARGET (no namespace here,
        # so DST is the full repository path). A fresh registry so the catalog is exact.
        with R.Registry("map") as reg:
            self.ferry("push", "--plain-http", self.bundle("tar"), reg.host,
                       "--map", "demo/app=other/app")
            self.assertEqual(reg.catalog(), ["demo/multi", "other/app"])
            self.assert_same_graph("demo/app", reg, "other/app")
            self.assert_same_graph("demo/multi", reg, "demo/multi")

    def test_b5_push_json_is_one_document(self):
        with R.Registry("json") as reg:
            doc = self.ferry_json("push", "--plain-http", self.bundle("zst"), reg.host + "/j")
            self.assertIsInstance(doc, dict)
            self.assert_same_graph("demo/app", reg, "j/demo/app")

    # c. second push is a no-op
    def _noop_check(self, ns, snapshot_root):
        target = f"{self.dst.host}/{ns}"
        self.ferry("push", "--plain-http", self.bundle("tar"), target)
        self.assert_same_graph("demo/app", self.dst, f"{ns}/demo/app")
        root = snapshot_root()
        before = R.storage_snapshot(root)
        doc = self.ferry_json("push", "--plain-http", self.bundle("tar"), target)
        after = R.storage_snapshot(root)
        return before, after, doc

    def test_c1_second_push_uploads_no_blob(self):
        before, after, doc = self._noop_check("noop1", lambda: self.dst.blobs_dir)
        self.assertEqual(R.snapshot_diff(before, after), [],
                         "second push of the same bundle wrote to the registry's blob store")
        # ASSUMPTION (loose): integer JSON fields named like '*pushed*'/'*uploaded*' count
        # transfers and must all be 0 on a no-op push.
        counts = int_fields(doc, lambda k: "pushed" in k.lower() or "upload" in k.lower())
        self.assertEqual([c for c in counts if c[1] != 0], [],
                         f"push --json reports transfers on a no-op push: {doc}")

    def test_c2_second_push_rewrites_nothing(self):
        # Stricter: no manifest PUT and no re-tag either (a tag or manifest PUT rewrites the
        # link files under repositories/, even with identical content).
        before, after, _ = self._noop_check(
            "noop2", lambda: os.path.dirname(self.dst.blobs_dir))
        changes = [c for c in R.snapshot_diff(before, after) if "/_uploads/" not in c]
        self.assertEqual(changes, [], "second push re-PUT manifests/tags/fallback indexes")

    # d. skopeo reads the bundles
    @unittest.skipUnless(HAVE_SKOPEO, "skopeo not installed")
    def test_d1_skopeo_reads_tar(self):
        for tag, digest in (("v1", self.fx["app"]), ("v2", self.fx["multi"])):
            p = subprocess.run(["skopeo", "inspect", "--raw", f"oci-archive:{self.bundle('tar')}:{tag}"],
                               capture_output=True, timeout=120, env=R.child_env())
            self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
            self.assertEqual(R.sha256_digest(p.stdout), digest, f"skopeo oci-archive:...:{tag}")

    @unittest.skipUnless(HAVE_SKOPEO, "skopeo not installed")
    def test_d2_skopeo_reads_dir(self):
        d = self.bundle("dir")
        p = subprocess.run(["skopeo", "inspect", "--raw", f"oci:{d}:v1"],
                           capture_output=True, timeout=120, env=R.child_env())
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        self.assertEqual(R.sha256_digest(p.stdout), self.fx["app"])
        p = subprocess.run(["skopeo", "inspect", f"oci:{d}:v1"],
                           capture_output=True, text=True, timeout=120, env=R.child_env())
        self.assertEqual(p.returncode, 0, p.stderr)
        info = json.loads(p.stdout)
        self.assertEqual(info["Digest"], self.fx["app"])
        self.assertEqual(info["Layers"], self.fx["app_layers"])

    # i. inspect
    def test_i1_inspect_json_tree(self):
        fx = self.fx
        doc = self.ferry_json("inspect", self.bundle("tar"))
        self.assertIsInstance(doc.get("roots"), list, doc)
        roots = {r.get("digest"): r for r in doc["roots"]}
        self.assertEqual(sorted(roots), sorted([fx["app"], fx["multi"]]),
                         "roots are exactly the saved references (no referrers)")
        app, multi = roots[fx["app"]], roots[fx["multi"]]
        self.assertEqual(app.get("reference"), self.app_ref)
        self.assertEqual(multi.get("reference"), self.multi_ref)
        self.assertEqual(app.get("mediaType"), R.OCI_MANIFEST)
        self.assertEqual(multi.get("mediaType"), R.OCI_INDEX)

        refs = {r["digest"]: r for r in app.get("referrers", [])}
        self.assertEqual(sorted(refs), sorted([fx["app_sig"], fx["app_sbom"]]))
        self.assertEqual(refs[fx["app_sig"]].get("artifactType"), R.NOTATION_SIGNATURE)
        self.assertEqual(refs[fx["app_sbom"]].get("artifactType"), R.SPDX)
        sbom_refs = [r["digest"] for r in refs[fx["app_sbom"]].get("referrers", [])]
        self.assertEqual(sbom_refs, [fx["app_sbom_sig"]], "the SBOM's signature under the SBOM")
        self.assertEqual(refs[fx["app_sig"]].get("referrers", []), [])

        self.assertEqual([r["digest"] for r in multi.get("referrers", [])], [fx["multi_sbom"]])
        # Where a child's referrers appear (per platform) is not fixed: anywhere under the root.
        self.assertTrue(contains_string(multi, fx["multi_arm64_sig"]),
                        "the arm64 child's signature must appear under demo/multi:v2")
        self.assertFalse(contains_string(app, fx["multi_arm64_sig"]))

    def test_i2_inspect_all_formats(self):
        for fmt in ("tar", "zst", "dir"):
            proc = self.ferry("inspect", self.bundle(fmt))
            out = proc.stdout + proc.stderr
            self.assertIn("demo/app", out, fmt)
            self.assertIn("demo/multi", out, fmt)
            doc = self.ferry_json("inspect", self.bundle(fmt))
            self.assertEqual(sorted(r.get("digest") for r in doc["roots"]),
                             sorted([self.fx["app"], self.fx["multi"]]), fmt)


class SaveOptions(E2E):
    """g, h, -f, references by digest."""

    def test_g1_platform_filter(self):
        # ASSUMPTION (design §2 + brief): with --platform, the matching platform manifests
        # are saved (as roots) with their referrers; other platforms' content is not.
        # Whether the index itself (and its SBOM) is kept is not asserted.
        fx = self.fx
        out = self.path("arm64.tar")
        self.save(out, self.multi_ref, "--platform", "linux/arm64")
        b = R.read_bundle(out)
        self.assertTrue(b.has_blob(fx["multi_arm64"]), "arm64 manifest")
        self.assertTrue(b.has_blob(fx["multi_arm64_sig"]), "arm64 manifest's signature")
        listed = [e["digest"] for e in b.index["manifests"]]
        self.assertIn(fx["multi_arm64_sig"], listed)
        for d in fx["multi_arm64_layers"]:
            self.assertTrue(b.has_blob(d), f"arm64 layer {d}")
        for d in fx["multi_amd64_layers"]:
            self.assertFalse(b.has_blob(d), f"amd64 layer {d} must not be saved")
        w = b.walk()
        self.assertEqual(w["missing"], [])
        self.assertNotIn(fx["multi_amd64"], w["manifests"])
        self.assert_no_partials(out)

    def test_g2_platform_repeatable(self):
        fx = self.fx
        out = self.path("both.tar.zst")
        self.save(out, self.multi_ref, "--platform", "linux/arm64", "--platform", "linux/amd64")
        b = R.read_bundle(out)
        for d in fx["multi_amd64_layers"] + fx["multi_arm64_layers"] + [fx["multi_arm64_sig"]]:
            self.assertTrue(b.has_blob(d), d)
        self.assertEqual(b.walk()["missing"], [])

    def test_h_no_referrers(self):
        fx = self.fx
        out = self.path("noref.tar")
        self.save(out, self.app_ref, self.multi_ref, "--no-referrers")
        b = self.check_bundle(out, self.fixture_roots())
        for d in fx["referrers"]:
            self.assertFalse(b.has_blob(d), f"referrer {d} saved despite --no-referrers")
        subjects = [d for d, doc in b.walk()["manifests"].items() if "subject" in doc]
        self.assertEqual(subjects, [])
        self.assertEqual(len(b.index["manifests"]), 2, b.index)

    def test_images_file_and_digest_reference(self):
        fx = self.fx
        by_digest = self.ref("demo/app", fx["app"])
        listing = self.path("images.txt")
        with open(listing, "w") as f:
            f.write(f"# images to ferry\n\n{by_digest}\n   \n# multi-arch\n{self.multi_ref}\n")
        out = self.path("listed-dir")
        self.save(out, "-f", listing)
        b = self.check_bundle(out, [(by_digest, None, fx["app"]),
                                    (self.multi_ref, "v2", fx["multi"])],
                              fx["referrers"])
        self.check_fixture_referrers(b)
        # Push: the digest-only root lands in demo/app by digest, untagged.
        self.ferry("push", "--plain-http", out, self.dst.host + "/bydigest")
        self.assertEqual([t for t in self.dst.list_tags("bydigest/demo/app")
                          if not R.is_fallback_tag(t)], [])
        self.assertEqual(R.graph_of(self.dst, "bydigest/demo/app", fx["app"]),
                         R.graph_of(self.src, "demo/app", fx["app"]))
        self.assert_same_graph("demo/multi", self.dst, "bydigest/demo/multi")


class DryRun(E2E):
    """save --dry-run and push --dry-run (issue 7): the full plan, nothing written or sent."""

    def test_save_dry_run_plans_exactly_what_save_writes(self):
        fx = self.fx
        for fmt in ("tar", "tar.zst", "dir"):
            with self.subTest(fmt=fmt):
                out = self.path(f"dry.{fmt}" if fmt != "dir" else "dry-dir")
                before = R.storage_snapshot(self.tmp)
                doc = self.ferry_json("save", "--plain-http", "--dry-run", self.app_ref, self.multi_ref,
                                      "-o", out)
                self.assertEqual(R.snapshot_diff(before, R.storage_snapshot(self.tmp)), [],
                                 "a dry run wrote files")
                self.assertFalse(os.path.exists(out))
                self.assertFalse(os.path.exists(out + ".partial"))
                self.assertIs(doc["dryRun"], True)
                plan = doc["plan"]
                # The real save: its bundle holds exactly the planned blobs, in that order.
                real = self.ferry_json("save", "--plain-http", self.app_ref, self.multi_ref, "-o", out)
                self.assertIs(real["dryRun"], False)
                b = R.read_bundle(out)
                self.assertEqual(sorted(p["digest"] for p in plan), sorted(b.blob_digests()))
                self.assertEqual(sum(p["size"] for p in plan if p["action"] == "fetch")
                                 + sum(p["size"] for p in plan if p["action"] == "write"),
                                 sum(len(b.blob(d)) for d in b.blob_digests()))
                for key in ("manifests", "referrers", "blobs", "bytes"):
                    self.assertEqual(doc[key], real[key], key)
                if fmt != "dir":
                    self.assertEqual([p["digest"] for p in plan],
                                     ["sha256:" + n.rsplit("/", 1)[1] for n in b.order
                                      if n.startswith("blobs/")], "the plan is the tar's order")
                fetch = {p["digest"]: p for p in plan if p["action"] == "fetch"}
                for layer in fx["app_layers"]:
                    self.assertEqual(fetch[layer]["repository"], f"{self.src.host}/demo/app")
                for p in plan:
                    self.assertIn(p["action"], ("fetch", "write"))

    def test_save_dry_run_human_and_partial(self):
        out = self.path("human.tar")
        with open(out + ".partial", "wb") as f:
            f.write(b"left by an interrupted save")
        proc = self.ferry("save", "--plain-http", "--dry-run", self.app_ref, "-o", out)
        self.assertIn("dry run, nothing written", proc.stdout)
        self.assertIn(self.fx["app_layers"][1], proc.stdout)
        self.assertIn("a real run resumes from it", proc.stdout)
        with open(out + ".partial", "rb") as f:
            self.assertEqual(f.read(), b"left by an interrupted save")
        self.assertFalse(os.path.exists(out))

    def test_push_dry_run_asks_and_sends_nothing(self):
        fx = self.fx
        bundle = self.path("to-push.tar")
        self.ferry("save", "--plain-http", self.app_ref, self.multi_ref, "-o", bundle)
        target = self.dst.host + "/dry"
        before = R.storage_snapshot(self.dst.storage)
        doc = self.ferry_json("push", "--plain-http", "--dry-run", bundle, target)
        self.assertEqual(R.snapshot_diff(before, R.storage_snapshot(self.dst.storage)), [],
                         "a dry run changed the registry")
        self.assertIs(doc["dryRun"], True)
        self.assertIsNone(doc["proof"])
        plan = doc["plan"]
        b = R.read_bundle(bundle)
        uploads = {p["digest"] for p in plan if p["action"] == "upload"}
        pushes = {p["digest"] for p in plan if p["action"] == "push"}
        tags = {(p["repository"], p["tag"]) for p in plan if p["action"] == "tag"}
        self.assertTrue(set(fx["app_layers"]) <= uploads)
        self.assertIn(fx["app"], pushes)
        self.assertIn(fx["app_sig"], pushes)
        self.assertEqual(tags, {(f"{target}/demo/app", "v1"), (f"{target}/demo/multi", "v2")})
        self.assertEqual(doc["blobs"]["pushed"], len([p for p in plan if p["action"] == "upload"]))
        self.assertEqual(doc["blobs"]["bytes"], sum(p["size"] for p in plan if p["action"] == "upload"))
        self.assertTrue(uploads | pushes <= set(b.blob_digests()))
        # After the real push, the plan is: everything there, tags unchanged.
        self.ferry("push", "--plain-http", bundle, target)
        again = self.ferry_json("push", "--plain-http", "--dry-run", bundle, target)
        actions = {p["action"] for p in again["plan"]}
        self.assertEqual(actions, {"present", "unchanged"}, again["plan"])
        self.assertEqual(again["blobs"]["pushed"], 0)
        self.assertEqual(again["tags"]["unchanged"], 2)
        proc = self.ferry("push", "--plain-http", "--dry-run", bundle, target)
        self.assertIn("dry run, nothing sent", proc.stdout)


class Errors(E2E):
    """f. exit codes and one-line errors."""

    def assert_no_output(self, out):
        self.assertFalse(os.path.exists(out), f"{out} must not exist after a failed save")
        self.assert_no_partials(out)

    def test_f1_missing_tag(self):
        out = self.path("nope.tar")
        missing = self.ref("demo/app", "nope")
        proc = self.ferry("save", "--plain-http", missing, "-o", out, expect=None)
        self.assert_error(proc, 1, "demo/app:nope")
        self.assert_no_output(out)

    def test_f2_missing_tag_among_good_refs_saves_nothing(self):
        for name in ("mixed.tar", "mixed.tar.zst", "mixed-dir"):
            out = self.path(name)
            proc = self.ferry("save", "--plain-http", self.app_ref, self.ref("demo/app", "nope"),
                              "-o", out, expect=None)
            self.assert_error(proc, 1, "demo/app:nope")
            self.assert_no_output(out)

    def test_f2b_keep_going_saves_the_others(self):
        out = self.path("keepgoing.tar")
        proc = self.ferry("save", "--plain-http", "--keep-going", self.app_ref,
                          self.ref("demo/app", "nope"), "-o", out, "--json", expect=None)
        self.assert_error(proc, 1, "demo/app:nope")
        doc = json.loads(proc.stdout)
        self.assertEqual([r["reference"] for r in doc["roots"]], [self.app_ref])
        self.assertEqual(len(doc["failures"]), 1)
        self.assertIn("demo/app:nope", doc["failures"][0])
        b = R.read_bundle(out)
        names = [m.get("annotations", {}).get("io.containerd.image.name")
                 for m in json.loads(b.files["index.json"])["manifests"]]
        self.assertIn(self.app_ref, names)
        self.assert_no_partials(out)

    def test_f3_missing_repository(self):
        out = self.path("norepo.tar")
        proc = self.ferry("save", "--plain-http", self.ref("no/such", "v1"), "-o", out, expect=None)
        self.assert_error(proc, 1, "no/such")
        self.assert_no_output(out)

    def test_f4_invalid_reference(self):
        out = self.path("invalid.tar")
        proc = self.ferry("save", "--plain-http", "UPPER/Case::x", "-o", out, expect=None)
        self.assert_error(proc, (1, 2), "UPPER/Case::x")
        self.assert_no_output(out)

    def test_f5_push_nonexistent_bundle(self):
        missing = self.path("does-not-exist.tar")
        proc = self.ferry("push", "--plain-http", missing, self.dst.host, expect=None)
        self.assert_error(proc, 1, missing)
        self.assertEqual(self.dst.catalog(), [])

    def test_f6_unknown_flag(self):
        proc = self.ferry("save", "--no-such-flag", self.app_ref, "-o", self.path("x.tar"),
                          expect=None)
        self.assertEqual(proc.returncode, 2, R.describe(proc))
        self.assertTrue(any(l.startswith("ferry: error: ") or "no-such-flag" in l
                            for l in proc.stderr.splitlines()), R.describe(proc))
        self.assert_no_output(self.path("x.tar"))

    def test_f7_usage_errors(self):
        # ASSUMPTION: missing -o, a missing TARGET and an unknown subcommand are usage errors.
        for args in (("save", "--plain-http", self.app_ref),
                     ("push", "--plain-http", self.path("whatever.tar")),
                     ("frobnicate",)):
            proc = self.ferry(*args, expect=None)
            self.assertEqual(proc.returncode, 2, R.describe(proc))

    def test_f8_unreachable_target(self):
        out = self.path("good.tar")
        self.save(out, self.app_ref, "--no-referrers")
        dead = f"127.0.0.1:{R.free_port()}"
        proc = self.ferry("push", "--plain-http", out, dead, expect=None)
        self.assert_error(proc, 1, dead)


class Interop(E2E):
    """e. layouts written by skopeo are pushed by ferry to TARGET itself."""

    def skopeo_copy(self, dest):
        src = f"docker://{self.src.host}/demo/app:v1"
        p = subprocess.run(["skopeo", "copy", "--quiet", "--src-tls-verify=false",
                            "--preserve-digests", src, dest],
                           capture_output=True, text=True, timeout=300, env=R.child_env())
        self.assertEqual(p.returncode, 0, p.stderr)

    def check_landed(self, repo):
        fx = self.fx
        self.assertEqual(self.dst.list_tags(repo), ["v1"])
        body, mt, digest = self.dst.get_manifest(repo, "v1")
        self.assertEqual(digest, fx["app"])
        self.assertEqual(mt, R.OCI_MANIFEST)
        for d in fx["app_layers"]:
            self.assertTrue(self.dst.blob_exists(repo, d), d)
        g = R.graph_of(self.dst, repo)
        self.assertEqual(g["missing"], [])
        self.assertEqual(g["referrers"], {}, "skopeo layouts carry no referrers")

    @unittest.skipUnless(HAVE_SKOPEO, "skopeo not installed")
    def test_e1_skopeo_dir_layout(self):
        layout = self.path("skopeo-layout")
        self.skopeo_copy(f"oci:{layout}:v1")
        with open(os.path.join(layout, "index.json")) as f:
            idx = json.load(f)
        self.assertEqual([m["digest"] for m in idx["manifests"]], [self.fx["app"]])
        self.ferry("inspect", layout)
        self.ferry("push", "--plain-http", layout, self.dst.host + "/team/app")
        self.check_landed("team/app")
        self.assertNotIn("team/app/demo/app", self.dst.catalog())

    @unittest.skipUnless(HAVE_SKOPEO, "skopeo not installed")
    def test_e2_skopeo_oci_archive(self):
        archive = self.path("skopeo.tar")
        self.skopeo_copy(f"oci-archive:{archive}:v1")
        self.ferry("push", "--plain-http", archive, self.dst.host + "/team/archive")
        self.check_landed("team/archive")


class FallbackMerge(E2E):
    """Design §1.4/§4: push merges into an existing fallback index, never clobbers,
    and drops entries that point at deleted manifests."""

    def test_merge_keeps_foreign_referrers(self):
        fx = self.fx
        out = self.path("app.tar")
        self.save(out, self.app_ref)
        repo = "pre/demo/app"
        # Target already holds another referrer of the same subject (pushed by another tool).
        foreign = R.push_referrer(self.dst, repo, fx["app_desc"], "application/vnd.example.vex+json",
                                  b'{"vex":true}', "application/vnd.example.vex+json",
                                  {"org.example": "foreign"})
        self.ferry("push", "--plain-http", out, self.dst.host + "/pre")
        got = sorted(d["digest"] for d in self.dst.referrers(repo, fx["app"]))
        self.assertEqual(got, sorted([fx["app_sig"], fx["app_sbom"], foreign["digest"]]))
        entry = [d for d in self.dst.referrers(repo, fx["app"]) if d["digest"] == foreign["digest"]][0]
        self.assertEqual(entry, foreign, "foreign descriptor must be kept byte-for-byte equivalent")
        self.assertEqual(sorted(d["digest"] for d in self.dst.referrers(repo, fx["app_sbom"])),
                         [fx["app_sbom_sig"]])

    def test_merge_drops_stale_entries(self):
        fx = self.fx
        out = self.path("app2.tar.zst")
        self.save(out, self.app_ref)
        repo = "stale/demo/app"
        stale = R.push_referrer(self.dst, repo, fx["app_desc"], "application/vnd.example.old+json",
                                b'{"old":1}', "application/vnd.example.old+json")
        self.dst.delete_manifest(repo, stale["digest"])
        self.assertFalse(self.dst.manifest_exists(repo, stale["digest"]))
        self.ferry("push", "--plain-http", out, self.dst.host + "/stale")
        self.assert_same_graph("demo/app", self.dst, repo)


if __name__ == "__main__":
    unittest.main(verbosity=2)
