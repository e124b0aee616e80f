#!/usr/bin/env python3
"""Issue 16, "Delta bundles: carry only what the far side lacks": the real ferry binary against
real docker-registry instances on loopback.

Classes (meson: ``e2e-delta-<Class>``):
  Delta  Week 1: ``save`` a full bundle of two repositories (a signed image with an SBOM and a
         signed SBOM, and a library image sharing a layer) and ``push`` it to the far side.
         ``ferry inventory FAR/ns -o have.json`` (and ``ferry inventory full.tar``) lists what
         is there. Week 2: one layer of one image changed (a new tag, signed).
         ``save --have have.json`` and ``save --since full.tar`` carry exactly the changed
         layer, the new config and every manifest and signature (``leave out`` in the dry
         run; the record in index.json names the base and each left-out blob); its push onto
         the far side yields the same tags, digests and referrers as a full push of the same
         references onto an empty registry; onto a registry lacking one base blob it fails
         before writing anything (storage unchanged), naming the blob. ``verify`` of a delta
         fails without a base (exit 3), passes with ``--base full.tar``, ``--base-inventory``
         and ``--against FAR``, and fails naming the blob with a base that lacks or corrupts
         one; ``inspect`` shows the base. Every --json document is validated against
         src/cli/schema when ``jsonschema`` is installed.

Run: python3 tests/e2e/test_delta.py [Class[.test_name]]   (FERRY=/abs/path/ferry)
Exit 77 (skipped) without ferry or docker-registry.
"""

import json
import os
import shutil
import sys
import tarfile
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402

R.skip_module_unless(__name__)

try:  # the published schemas, when the jsonschema module is there
    import test_json_schema as JS  # noqa: E402
    SCHEMAS = JS.load_schemas()
except unittest.SkipTest:
    JS = SCHEMAS = None

RECORD_TYPE = "application/vnd.ferry.record.v1+json"
DELTA_LAYER = "application/vnd.ferry.delta.v1+json"
CRASH = ("Traceback", "terminate called", "Segmentation fault", "AddressSanitizer", "runtime error:")


def bundle_blobs(path):
    """{digest: size} of the blobs a .tar bundle carries."""
    out = {}
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            name = m.name[2:] if m.name.startswith("./") else m.name
            if m.isfile() and name.startswith("blobs/sha256/"):
                out["sha256:" + name.rsplit("/", 1)[1]] = m.size
    return out


def bundle_file(path, name):
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            if (m.name[2:] if m.name.startswith("./") else m.name) == name:
                return tf.extractfile(m).read()
    raise KeyError(name)


def read_record(path):
    """(index entry, delta record dict) of a .tar bundle's ferry.record."""
    index = json.loads(bundle_file(path, "index.json"))
    entries = [e for e in index["manifests"] if e.get("artifactType") == RECORD_TYPE]
    if len(entries) != 1:
        raise AssertionError(f"{path}: want one record entry in index.json, got {entries}")
    entry = entries[0]
    manifest = json.loads(bundle_file(path, "blobs/sha256/" + entry["digest"].split(":")[1]))
    layers = [l for l in manifest["layers"] if l["mediaType"] == DELTA_LAYER]
    delta = json.loads(bundle_file(path, "blobs/sha256/" + layers[0]["digest"].split(":")[1])) if layers else None
    return entry, delta


class Delta(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ferry-e2e-delta-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.src = R.Registry("src").start()
        cls.addClassCleanup(cls.src.stop)
        cls.far = R.Registry("far").start()
        cls.addClassCleanup(cls.far.stop)
        src = cls.src
        # Week 1.
        cls.l1 = R.seeded_bytes("delta-l1", 400_000)
        cls.l2 = R.seeded_bytes("delta-l2", 300_000)
        cls.l3 = R.seeded_bytes("delta-l3", 200_000)
        cls.app1 = R.push_image(src, "ns/app", "v1", [cls.l1, cls.l2])
        R.push_signature(src, "ns/app", cls.app1, "app-v1")
        sbom = R.push_sbom(src, "ns/app", cls.app1, "app-v1-sbom")
        R.push_signature(src, "ns/app", sbom, "app-v1-sbom")
        cls.lib = R.push_image(src, "ns/lib", "1.0", [cls.l1, cls.l3])
        R.push_signature(src, "ns/lib", cls.lib, "lib-1.0")
        cls.week1 = [f"{src.host}/ns/app:v1", f"{src.host}/ns/lib:1.0"]
        cls.full = cls.path("full.tar")
        cls.run_ok("save", "--plain-http", *cls.week1, "-o", cls.full)
        cls.run_ok("push", "--plain-http", cls.full, cls.far.host)
        cls.have = cls.path("have.json")
        cls.run_ok("inventory", "--plain-http", f"{cls.far.host}/ns", "-o", cls.have)
        # Week 2: one layer of one image changed, signed.
        cls.l4 = R.seeded_bytes("delta-l4", 350_000)
        cls.app2 = R.push_image(src, "ns/app", "v2", [cls.l1, cls.l4])
        R.push_signature(src, "ns/app", cls.app2, "app-v2")
        cls.week2 = cls.week1 + [f"{src.host}/ns/app:v2"]
        cls.delta = cls.path("delta.tar")
        cls.run_ok("save", "--plain-http", *cls.week2, "--have", cls.have, "-o", cls.delta)
        cls.full2 = cls.path("full2.tar")
        cls.run_ok("save", "--plain-http", *cls.week2, "-o", cls.full2)

    @classmethod
    def path(cls, name):
        return os.path.join(cls.tmp, name)

    @classmethod
    def run_ok(cls, *args):
        proc = R.run_ferry(*args)
        if proc.returncode != 0:
            raise AssertionError("setup step failed" + R.describe(proc))
        return proc

    def ferry(self, *args, expect=0):
        proc = R.run_ferry(*args)
        if expect is not None:
            self.assertEqual(proc.returncode, expect, R.describe(proc))
        for bad in CRASH:
            self.assertNotIn(bad, proc.stderr, R.describe(proc))
        return proc

    def ferry_json(self, schema, *args, expect=0):
        proc = self.ferry(*args, "--json", expect=expect)
        doc = json.loads(proc.stdout)
        if SCHEMAS is not None:
            name = f"{schema}.schema.json"
            errors = [f"{'/'.join(map(str, e.path))}: {e.message[:300]}"
                      for e in JS.validator(SCHEMAS, name).iter_errors(doc)]
            self.assertEqual(errors, [], f"--json does not match {name}")
        return doc

    def error_line(self, proc, *needles):
        return R.one_error_line(self, proc, *needles)

    def digest(self, data):
        return R.sha256_digest(data)

    # -- what a delta carries ------------------------------------------------
    def test_carries_the_changed_layer_and_the_manifests(self):
        full = bundle_blobs(self.full2)
        delta = bundle_blobs(self.delta)
        _entry, record = read_record(self.delta)
        left_out = {b["digest"]: b["size"] for b in record["leftOut"]}
        # Everything the full bundle holds is carried or left out, with its size.
        for d, size in full.items():
            self.assertTrue(d in delta or left_out.get(d) == size, d)
        # Left out: exactly week 1's layers and configs (signature envelopes are always carried).
        week1 = bundle_blobs(self.full)
        for l in (self.l1, self.l2, self.l3):
            self.assertIn(self.digest(l), left_out)
        self.assertNotIn(self.digest(self.l4), left_out)
        self.assertIn(self.digest(self.l4), delta)
        self.assertTrue(set(left_out) <= set(week1))
        for d in left_out:
            self.assertNotIn(d, delta)
        # Every manifest of the full bundle is carried.
        index = json.loads(bundle_file(self.full2, "index.json"))
        for e in index["manifests"]:
            self.assertIn(e["digest"], delta)
        # The size: the changed layer plus manifests and small blobs.
        carried_payload = sum(delta.values())
        self.assertLess(carried_payload, len(self.l4) + 64 * 1024)
        self.assertLess(os.path.getsize(self.delta), os.path.getsize(self.full2) / 3)
        # The record: the base is the inventory the delta was made against.
        with open(self.have, "rb") as f:
            have_doc = f.read().rstrip(b"\n")
        self.assertEqual(record["base"], self.digest(have_doc))
        self.assertEqual(record["baseKind"], "registry")
        self.assertEqual(record["baseSource"], f"{self.far.host}/ns")
        self.assertEqual([b["digest"] for b in record["leftOut"]], sorted(left_out))
        b1 = next(b for b in record["leftOut"] if b["digest"] == self.digest(self.l1))
        self.assertEqual(b1["repositories"], ["ns/app", "ns/lib"])

    def test_since_a_bundle_leaves_out_the_same_blobs(self):
        since = self.path("since.tar")
        self.ferry("save", "--plain-http", *self.week2, "--since", self.full, "-o", since)
        _e, by_have = read_record(self.delta)
        _e, by_since = read_record(since)
        self.assertEqual([b["digest"] for b in by_since["leftOut"]], [b["digest"] for b in by_have["leftOut"]])
        self.assertEqual(by_since["baseKind"], "bundle")
        # The bundle's own inventory is what --since is made against.
        inv = self.path("full-inventory.json")
        self.ferry("inventory", self.full, "-o", inv)
        with open(inv, "rb") as f:
            self.assertEqual(by_since["base"], self.digest(f.read().rstrip(b"\n")))
        # The same blobs carried, but for the record (its base differs).
        def carried(path):
            entry, _d = read_record(path)
            manifest = json.loads(bundle_file(path, "blobs/sha256/" + entry["digest"].split(":")[1]))
            record = {entry["digest"]} | {l["digest"] for l in manifest["layers"]}
            return set(bundle_blobs(path)) - record
        self.assertEqual(carried(since), carried(self.delta))

    def test_dry_run_shows_what_is_left_out(self):
        out = self.path("dry.tar")
        proc = self.ferry("save", "--plain-http", *self.week2, "--have", self.have, "-o", out, "--dry-run")
        self.assertFalse(os.path.exists(out))
        plan = [l for l in proc.stdout.splitlines() if l.startswith("leave out")]
        self.assertEqual(len(plan), len(read_record(self.delta)[1]["leftOut"]), proc.stdout)
        self.assertIn(self.digest(self.l1), proc.stdout)
        doc = self.ferry_json("save", "save", "--plain-http", *self.week2, "--have", self.have, "-o", out, "--dry-run")
        self.assertEqual(doc["delta"]["baseKind"], "registry")
        self.assertEqual(doc["delta"]["leftOutBlobs"], len(plan))
        self.assertEqual(sum(1 for s in doc["plan"] if s["action"] == "leave out"), len(plan))

    def test_inventory(self):
        inv = json.loads(open(self.have).read())
        self.assertEqual(inv["kind"], "registry")
        self.assertEqual(sorted(inv["repositories"]), ["ns/app", "ns/lib"])
        app = inv["repositories"]["ns/app"]
        self.assertEqual(app["tags"]["v1"], self.app1["digest"])
        self.assertIn(self.digest(self.l2), app["blobs"])
        self.assertEqual(app["blobs"][self.digest(self.l2)], len(self.l2))
        # Every referrer manifest (signature, SBOM, signature of the SBOM) is listed, and the
        # tag schema's fallback indexes, which are manifests of the registry too.
        self.assertGreaterEqual(len(app["manifests"]), 4)
        self.assertIn(self.app1["digest"], app["manifests"])
        for t, d in app["tags"].items():
            self.assertIn(d, app["manifests"], t)
        doc = self.ferry_json("inventory", "inventory", "--plain-http", f"{self.far.host}/ns", "-o", self.path("again.json"))
        self.assertEqual(doc["repositories"], 2)
        with open(self.path("again.json"), "rb") as f:
            self.assertEqual(f.read(), open(self.have, "rb").read())  # deterministic
        # A prefix matching no repository lists nothing; a hostile inventory is refused in one line.
        with open(self.path("bad.json"), "w") as f:
            f.write('{"mediaType": "application/vnd.ferry.inventory.v1+json", "kind": "registry", '
                    '"source": "x", "repositories": {"ns/app": {"blobs": {"sha256:zz": 1}}}}')
        proc = self.ferry("save", "--plain-http", *self.week2, "--have", self.path("bad.json"),
                          "-o", self.path("never.tar"), expect=None)
        self.assertNotEqual(proc.returncode, 0)
        self.error_line(proc, "bad.json")
        self.assertFalse(os.path.exists(self.path("never.tar")))

    def test_inspect_shows_the_base(self):
        proc = self.ferry("inspect", self.delta)
        self.assertIn("delta of registry " + f"{self.far.host}/ns", proc.stdout)
        doc = self.ferry_json("inspect", "inspect", self.delta)
        _e, record = read_record(self.delta)
        self.assertEqual(doc["delta"]["leftOutBlobs"], len(record["leftOut"]))
        self.assertEqual(doc["blobs"] + len(record["leftOut"]), self.ferry_json("inspect", "inspect", self.full2)["blobs"])

    # -- verify ------------------------------------------------------------
    def test_verify_needs_a_base(self):
        proc = self.ferry("verify", self.delta, "--integrity-only", expect=3)
        self.error_line(proc, "delta bundle", "--base")
        doc = self.ferry_json("verify", "verify", self.delta, "--integrity-only", expect=3)
        self.assertIsNone(doc["delta"]["checkedAgainst"])
        self.assertFalse(doc["verified"])

    def test_verify_with_a_base_bundle_inventory_or_registry(self):
        for args, what in ((["--base", self.full], "base bundle"),
                           (["--base-inventory", self.have], "base inventory"),
                           (["--against", self.far.host, "--plain-http"], "registry " + self.far.host)):
            with self.subTest(args=args):
                proc = self.ferry("verify", self.delta, "--integrity-only", *args)
                self.assertIn("checked against the " + what, proc.stdout)
                doc = self.ferry_json("verify", "verify", self.delta, "--integrity-only", *args)
                self.assertTrue(doc["verified"])
                self.assertIn(what, doc["delta"]["checkedAgainst"])

    def test_verify_with_a_base_that_lacks_or_corrupts_a_blob(self):
        l2 = self.digest(self.l2)
        # A bundle of only ns/lib lacks l2.
        partial = self.path("lib-only.tar")
        self.ferry("save", "--plain-http", self.week1[1], "-o", partial)
        proc = self.ferry("verify", self.delta, "--integrity-only", "--base", partial, expect=3)
        self.assertIn(f"problem: blob {l2} ({len(self.l2) / 1024:.1f} KiB) left out of the delta is not in the base bundle",
                      proc.stdout)
        self.error_line(proc, "verification failed", "left out of the delta is not in the base bundle " + partial)
        # A base whose copy of l2 is corrupted (same size): its bytes are hashed.
        corrupt = self.path("corrupt.tar")
        with tarfile.open(self.full) as tin, tarfile.open(corrupt, "w") as tout:
            for m in tin.getmembers():
                data = tin.extractfile(m).read() if m.isfile() else None
                if m.name.endswith(l2.split(":")[1]):
                    data = bytes([data[0] ^ 1]) + data[1:]
                tout.addfile(m, None if data is None else __import__("io").BytesIO(data))
        proc = self.ferry("verify", self.delta, "--integrity-only", "--base", corrupt, expect=3)
        self.assertIn(l2, proc.stdout + proc.stderr)
        # A registry without the base: every left-out blob named.
        with R.Registry("empty") as empty:
            proc = self.ferry("verify", self.delta, "--integrity-only", "--against", empty.host, "--plain-http", expect=3)
            for b in read_record(self.delta)[1]["leftOut"]:
                self.assertIn(b["digest"], proc.stdout)
        # The registry flags are for --against only.
        proc = self.ferry("verify", self.delta, "--integrity-only", "--plain-http", expect=2)
        self.assertIn("--against", proc.stderr)

    # -- push --------------------------------------------------------------
    def test_push_onto_the_far_side_equals_a_full_push(self):
        far = R.Registry("far2").start()
        self.addCleanup(far.stop)
        self.ferry("push", "--plain-http", self.full, far.host)
        doc = self.ferry_json("push", "push", "--plain-http", self.delta, far.host)
        # Only the changed layer, the new config and the new signature's envelope travel.
        self.assertEqual(doc["blobs"]["pushed"], 3, doc["blobs"])
        with R.Registry("reference") as ref:
            self.ferry("push", "--plain-http", self.full2, ref.host)
            for repo in ("ns/app", "ns/lib"):
                with self.subTest(repo=repo):
                    got = R.graph_of(far, repo)
                    want = R.graph_of(ref, repo)
                    self.assertEqual(got["missing"], [])
                    self.assertEqual(got, want)
        self.assertEqual(R.graph_of(far, "ns/app")["tags"]["v2"], self.app2["digest"])

    def test_push_onto_a_registry_missing_a_base_blob_writes_nothing(self):
        reg = R.Registry("partial").start()
        self.addCleanup(reg.stop)
        self.ferry("push", "--plain-http", self.full, reg.host)
        l2 = self.digest(self.l2)
        reg.request("DELETE", f"/v2/ns/app/blobs/{l2}", ok=(202,))
        self.assertFalse(reg.blob_exists("ns/app", l2))
        before = R.storage_snapshot(reg.storage)
        proc = self.ferry("push", "--plain-http", self.delta, reg.host, expect=1)
        self.error_line(proc, "nothing was sent", l2, "ns/app")
        self.assertEqual(R.snapshot_diff(before, R.storage_snapshot(reg.storage)), [])
        self.assertNotIn("v2", reg.list_tags("ns/app"))
        # An empty registry: every left-out blob is named on stderr, nothing written.
        with R.Registry("empty") as empty:
            proc = self.ferry("push", "--plain-http", self.delta, empty.host, expect=1)
            self.error_line(proc, "nothing was sent")
            for b in read_record(self.delta)[1]["leftOut"]:
                self.assertIn(b["digest"], proc.stderr)
            self.assertEqual(R.storage_snapshot(empty.storage), {})

    def test_push_mounts_a_left_out_blob_from_another_base_repository(self):
        # A new repository whose image shares a layer with ns/lib: the delta leaves that layer
        # out (the base holds it, in ns/lib), and push mounts it from there.
        l5 = R.seeded_bytes("delta-l5", 1000)
        new = R.push_image(self.src, "ns/new", "1", [self.l3, l5])
        reg = R.Registry("mount").start()
        self.addCleanup(reg.stop)
        self.ferry("push", "--plain-http", self.full, reg.host)
        for flag, base in (("--since", self.full), ("--have", self.have)):
            with self.subTest(flag=flag):
                delta = self.path(f"new{flag}.tar")
                self.ferry("save", "--plain-http", f"{self.src.host}/ns/new:1", flag, base, "-o", delta)
                _e, record = read_record(delta)
                l3 = next(b for b in record["leftOut"] if b["digest"] == self.digest(self.l3))
                self.assertEqual(l3["repositories"], ["ns/lib"])
        doc = self.ferry_json("push", "push", "--plain-http", self.path("new--since.tar"), reg.host)
        self.assertEqual(doc["blobs"]["mounted"], 1, doc["blobs"])
        got = R.graph_of(reg, "ns/new")
        self.assertEqual(got["missing"], [])
        self.assertEqual(got["tags"]["1"], new["digest"])


if __name__ == "__main__":
    unittest.main()
