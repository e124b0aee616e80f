#!/usr/bin/env python3
"""Every command's ``--json`` output against its published schema (issue 7):
``src/cli/schema/<command>.schema.json`` (JSON Schema 2020-12, schemaVersion 1).

Runs save (also --dry-run and --keep-going), push (also --dry-run and a failed --verify),
copy (with --verify), inspect, sign, verify (integrity only, passing and failing with a
policy) against real docker-registry instances on loopback, and validates each document.
The schemas are strict (``additionalProperties: false``): a field added to the output
without its schema fails here.

Run: python3 tests/e2e/test_json_schema.py [JsonSchema]   (FERRY=/abs/path/ferry)
Exit 77 (skipped) without ferry, docker-registry, openssl or the ``jsonschema`` module
(Debian: python3-jsonschema).
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
import pki as P  # noqa: E402

try:
    import jsonschema  # noqa: E402
except ImportError:  # Debian's module, for a python3 that is not Debian's own
    sys.path.append("/usr/lib/python3/dist-packages")
    try:
        import jsonschema  # noqa: E402,F811
    except ImportError:
        jsonschema = None

if jsonschema is None:
    if __name__ == "__main__":
        print("SKIP: the jsonschema module is not installed (apt-get install python3-jsonschema)",
              file=sys.stderr)
        sys.exit(77)
    raise unittest.SkipTest("jsonschema not installed")

R.skip_module_unless(__name__, registry=True, programs=(P.OPENSSL,))

from seed import seed_fixture  # noqa: E402

SCHEMA_DIR = os.path.join(HERE, "..", "..", "src", "cli", "schema")


def load_schemas():
    out = {}
    for name in sorted(os.listdir(SCHEMA_DIR)):
        if name.endswith(".schema.json"):
            with open(os.path.join(SCHEMA_DIR, name)) as f:
                out[name] = json.load(f)
    return out


def validator(schemas, name):
    """A 2020-12 validator for ``name`` that resolves the cross-file ``$ref``s (push and
    copy embed verify's report): ``referencing`` (jsonschema ≥ 4.18) or RefResolver
    (Debian bookworm's 4.10)."""
    cls = jsonschema.Draft202012Validator
    cls.check_schema(schemas[name])
    try:
        from referencing import Registry, Resource
        reg = Registry().with_resources(
            [(s["$id"], Resource.from_contents(s)) for s in schemas.values()])
        return cls(schemas[name], registry=reg)
    except ImportError:
        store = {s["$id"]: s for s in schemas.values()}
        resolver = jsonschema.RefResolver.from_schema(schemas[name], store=store)
        return cls(schemas[name], resolver=resolver)


class JsonSchema(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="ferry-e2e-JsonSchema-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.src = R.Registry("src").start()
        cls.addClassCleanup(cls.src.stop)
        cls.dst = R.Registry("dst").start()
        cls.addClassCleanup(cls.dst.stop)
        cls.fx = seed_fixture(cls.src)
        cls.schemas = load_schemas()
        cls.pki = P.shared_pki()
        cls.store = P.write_truststore(os.path.join(cls.tmp, "truststore"),
                                       {"ca": {"ferry": [cls.pki.root]}})
        cls.policy = P.write_trust_policy(os.path.join(cls.tmp, "trustpolicy.json"),
                                          P.trust_policy(P.statement()))
        cls.seen = set()

    def path(self, name):
        return os.path.join(self.tmp, name)

    def ref(self, repo, tag):
        return f"{self.src.host}/{repo}:{tag}"

    def run_json(self, *args, expect=0):
        proc = R.run_ferry(*args, "--json")
        self.assertEqual(proc.returncode, expect, R.describe(proc))
        try:
            doc = json.loads(proc.stdout)
        except ValueError as e:
            self.fail(f"--json output is not one JSON document ({e}){R.describe(proc)}")
        return doc

    def check(self, doc, command=None):
        """Validates ``doc`` against the schema its ``command`` names."""
        command = command or doc.get("command")
        name = f"{command}.schema.json"
        self.assertIn(name, self.schemas, f"no schema for command {command!r}")
        errors = sorted(validator(self.schemas, name).iter_errors(doc), key=lambda e: list(e.path))
        self.assertEqual([f"{'/'.join(map(str, e.path))}: {e.message[:300]}" for e in errors], [],
                         f"{command} --json does not match {name}")
        type(self).seen.add(command)
        return doc

    def test_1_save_push_copy_inspect(self):
        app, multi = self.ref("demo/app", "v1"), self.ref("demo/multi", "v2")
        bundle = self.path("b.tar")
        doc = self.check(self.run_json("save", "--plain-http", app, multi, "-o", bundle))
        self.assertIs(doc["dryRun"], False)
        dry = self.check(self.run_json("save", "--plain-http", "--dry-run", app, "-o", self.path("dry.tar")))
        self.assertTrue(dry["plan"])
        kept = self.check(self.run_json("save", "--plain-http", "--keep-going", app,
                                        self.ref("demo/nope", "v9"), "-o", self.path("kg.tar"), expect=1))
        self.assertEqual(len(kept["failures"]), 1)
        self.check(self.run_json("inspect", bundle))
        self.check(self.run_json("push", "--plain-http", bundle, self.dst.host + "/p"))
        self.check(self.run_json("push", "--plain-http", "--dry-run", bundle, self.dst.host + "/q"))
        # A failed --verify: verification is verify's report, nothing else happened.
        failed = self.check(self.run_json("push", "--plain-http", "--verify", "--trust-policy", self.policy,
                                          "--trust-store", self.store, "--verification-time",
                                          P.VERIFICATION_TIME, bundle, self.dst.host + "/r", expect=3))
        self.assertFalse(failed["verification"]["verified"])
        self.check(self.run_json("copy", "--plain-http", app, self.dst.host + "/c/app:v1"))
        # Issue 16: an inventory's summary, a delta saved against it, inspected and verified.
        have = self.path("have.json")
        inv = self.check(self.run_json("inventory", "--plain-http", self.dst.host + "/p", "-o", have))
        self.assertGreater(inv["blobs"], 0)
        delta = self.path("delta.tar")
        saved = self.check(self.run_json("save", "--plain-http", app, multi, "--have", have, "-o", delta))
        self.assertGreater(saved["delta"]["leftOutBlobs"], 0)
        self.assertIsNotNone(self.check(self.run_json("inspect", delta))["delta"])
        checked = self.check(self.run_json("verify", "--integrity-only", delta, "--base-inventory", have))
        self.assertTrue(checked["verified"])

    def test_2_sign_and_verify(self):
        bundle = self.path("signed.tar")
        self.run_json("save", "--plain-http", self.ref("demo/app", "v1"), "-o", bundle)
        ident = self.pki["rsa2048"]
        # Signed and verified on the PKI's pinned clock (pki.py), not the wall clock.
        self.check(self.run_json("sign", "--key", ident.key, "--cert", ident.chain_pem,
                                 "--signing-time", P.SIGNING_TIME, bundle))
        ok = self.check(self.run_json("verify", bundle, "--trust-policy", self.policy, "--trust-store",
                                      self.store, "--verification-time", P.VERIFICATION_TIME))
        self.assertTrue(ok["verified"])
        self.assertRegex(ok["bundleDigest"], r"^sha256:[0-9a-f]{64}$")
        self.assertEqual(ok["trust"]["source"], "files")
        self.check(self.run_json("verify", "--integrity-only", bundle))
        # The seed's own signatures are not real ones: a failing report must match too.
        fake = self.path("fake-signed.tar")
        self.run_json("save", "--plain-http", self.ref("demo/app", "v1"), "-o", fake)
        failing = self.check(self.run_json("verify", fake, "--trust-policy", self.policy, "--trust-store",
                                           self.store, "--verification-time", P.VERIFICATION_TIME,
                                           expect=3))
        self.assertFalse(failing["verified"])

    def test_3_every_schema_was_exercised(self):
        """Runs last (by name): each published schema validated at least one document."""
        published = {n[:-len(".schema.json")] for n in self.schemas}
        self.assertEqual(published - self.seen, set(), "schemas no test document was checked against")


if __name__ == "__main__":
    unittest.main(verbosity=2)
