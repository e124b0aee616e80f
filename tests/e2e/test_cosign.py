#!/usr/bin/env python3
"""cosign and Sigstore signatures, end to end (issue 15): carried across, verified offline
with cosign's verdicts.

Run: python3 tests/e2e/test_cosign.py [ClassName[.test_name]]   (FERRY=/abs/path/ferry)
Exit 77 (skipped, one line saying why) without the ferry binary, without
``../shared/sigstore-vectors`` (FERRY_SHARED), without node >= 20.17 / npm, or when
``npm ci --offline`` fails (``.ci/run`` fills the npm cache first); RegistryRoundTrip also
without docker-registry. The vectors are generated once per process (sigstore_vectors.py).

Contract under test:
  - Cases: every row of the generator's cases.json (never a hard-coded list) gives cosign's
    verdict through ``ferry verify`` with the row's policy as cosign flags, from the
    layout directory, a ``.tar`` of it and a ``.tar.zst``: exit 0 for pass, 3 for fail; the
    JSON report's root artifact names a signature of kind cosign, a verified one for a pass,
    and for a fail none verified and the check that failed.
  - AllGood: ``layouts/all-good`` (a .sig with a keyed and a keyless layer, a .att, an
    unsigned .sbom, three bundle referrers) passes keyless, keyed and with ``--require
    cosign``; ``inspect`` shows the .sig/.att/.sbom under the image with their tags and the
    three bundle referrers.
  - RegistryRoundTrip: a docker-registry seeded (without ferry) from all-good: the image
    under v1, its ``sha256-<hex>.sig/.att/.sbom`` tags, three bundle referrers in the
    ``sha256-<hex>`` fallback index; ``save`` (dir, .tar, .tar.zst) carrying the cosign trust
    material, ``inspect``, ``verify`` with explicit flags and with ``--trust-pin`` only,
    ``push`` to a second registry and ``copy`` to a third: every tag, manifest digest and
    fallback-index referrer identical.
  - Hostile: a passing layout with one blob replaced (digests fixed, integrity holds): a
    bundle layer that is not JSON, garbage base64 in the DSSE signature, an inclusion proof
    of a million hashes, a proof whose logIndex is beyond its treeSize, a .sig whose
    certificate annotation is garbage: exit 3 within seconds, one ``ferry: error:`` line,
    no crash, no sanitizer report.
"""

import base64
import concurrent.futures
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402
import sigstore_vectors as SV  # noqa: E402

R.skip_module_unless(__name__, registry=False)

try:  # the published schemas, when the jsonschema module is there
    import test_json_schema as JS  # noqa: E402
except (unittest.SkipTest, ImportError, SystemExit):
    JS = None

HAVE_ZSTD = shutil.which("zstd") is not None
FORMATS = ("dir", "tar", "tar.zst")
CRASH_MARKERS = ("Traceback", "terminate called", "Segmentation fault", "AddressSanitizer",
                 "runtime error:", "LeakSanitizer", "core dumped", "type_error")
COSIGN_CHECKS = ("format", "subject", "signature", "tlog", "timestamp", "certificate", "sct", "identity")


def _sanitized():
    try:
        with open(R.ferry_binary(), "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


SCALE = 3 if _sanitized() else 1
HOSTILE_SECONDS = 20 * SCALE  # "within seconds": a healthy run takes well under one

# The checks that may decide each known failing case (cosign.hpp's check names). A case not
# listed here (the generator may add some) only needs some cosign check to fail.
EXPECTED_CHECK = {
    "bundle-wrong-identity": {"identity"},
    "bundle-wrong-issuer": {"identity"},
    "bundle-identity-lookalike": {"identity"},
    "bundle-wrong-subject": {"subject"},
    "bundle-tampered-payload": {"signature", "tlog"},
    "bundle-untrusted-ca": {"certificate"},
    "bundle-retired-ca": {"certificate"},
    "bundle-expired-ca-cert": {"certificate"},
    "bundle-expired-no-timestamp": {"certificate", "timestamp", "tlog"},
    "bundle-time-outside-validity": {"certificate", "tlog"},
    "bundle-no-tlog": {"tlog"},
    "bundle-tlog-untrusted-key": {"tlog"},
    "bundle-bad-set": {"tlog"},
    "bundle-bad-inclusion-proof": {"tlog"},
    "bundle-bad-checkpoint": {"tlog"},
    "bundle-roothash-mismatch": {"tlog"},
    "bundle-tlog-wrong-body": {"tlog"},
    "bundle-no-sct": {"sct"},
    "bundle-untrusted-sct": {"sct"},
    "bundle-untrusted-tsa": {"timestamp", "certificate"},
    "bundle-keyed-wrong-key": {"signature"},
    "sig-keyed-no-tlog": {"tlog"},
    "sig-keyed-wrong-key": {"signature"},
    "sig-keyed-wrong-digest": {"subject"},
    "sig-keyed-wrong-type": {"subject"},
    "sig-keyed-bad-signature": {"signature"},
    "sig-keyed-bad-set": {"tlog"},
    "sig-keyless-wrong-identity": {"identity"},
    "att-keyed-wrong-subject": {"subject"},
}


def _skip(reason):
    if __name__ == "__main__":
        print(f"SKIP: {reason}", file=sys.stderr)
        sys.exit(77)
    raise unittest.SkipTest(reason)


def _selected_classes():
    return [a.split(".")[0] for a in sys.argv[1:] if not a.startswith("-")]


if __name__ == "__main__" and not HAVE_ZSTD:
    _skip("zstd not found (apt-get install zstd): the .tar.zst bundles need it")
if __name__ == "__main__" and "RegistryRoundTrip" in _selected_classes() and shutil.which(R.REGISTRY_BIN) is None:
    _skip(f"{R.REGISTRY_BIN} not installed (apt-get install docker-registry)")
_reason = SV.skip_reason()
if _reason:
    _skip(_reason)
VEC = SV.vectors()
SUBJECT = VEC.subject["digest"]
HEX = SUBJECT.split(":", 1)[1]


def assert_schema(doc, name):
    if JS is not None:
        JS.validator(JS.load_schemas(), name).validate(doc)


def sh(*cmd):
    subprocess.run([str(c) for c in cmd], check=True, capture_output=True, timeout=300)


def pack(layout, dest_stem, fmt):
    """The layout as ``fmt``: itself (dir), ``tar -C layout -cf x.tar .``, or that tar
    through ``zstd`` (ferry cannot write a .tar.zst from a directory)."""
    if fmt == "dir":
        return layout
    tar = dest_stem + ".tar"
    if not os.path.exists(tar):
        sh("tar", "-C", layout, "-cf", tar, ".")
    if fmt == "tar":
        return tar
    zst = dest_stem + ".tar.zst"
    if not os.path.exists(zst):
        sh("zstd", "-q", "-f", tar, "-o", zst)
    return zst


def cosign_signatures(report, digest=SUBJECT):
    arts = [a for a in report.get("artifacts", []) if a.get("digest") == digest]
    if len(arts) != 1:
        return None, []
    return arts[0], [s for s in arts[0].get("signatures", []) if s.get("kind") == "cosign"]


def failed_checks(sig):
    return [c["name"] for c in sig.get("checks", []) if c.get("result") == "fail"]


def summarize(sigs):
    return "; ".join(f"{s.get('format')} {s.get('digest', '')[:19]} layer {s.get('layer')}: "
                     f"{'verified' if s.get('verified') else 'failed'} "
                     f"(failed: {','.join(failed_checks(s)) or '-'}; reason: {s.get('reason', '')})"
                     for s in sigs) or "no cosign signature"


class Base(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix=f"ferry-e2e-cosign-{cls.__name__}-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)

    def path(self, *rel):
        return os.path.join(self.tmp, *rel)

    def ferry(self, *args, expect=None, timeout=300):
        try:
            proc = R.run_ferry(*args, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail(f"ferry {' '.join(map(str, args))} did not finish in {timeout} s")
        for bad in CRASH_MARKERS:
            self.assertNotIn(bad, proc.stderr, R.describe(proc))
        if expect is not None:
            self.assertEqual(proc.returncode, expect, R.describe(proc))
        return proc

    def ferry_json(self, *args, expect=0):
        proc = self.ferry(*args, "--json", expect=expect)
        try:
            return proc, json.loads(proc.stdout)
        except json.JSONDecodeError:
            self.fail("stdout is not JSON" + R.describe(proc))

    def keyless(self):
        return VEC.flags(VEC.keyless_policy())


# ---------------------------------------------------------------------------
# 1-2: every case of cases.json through ferry verify, from dir, .tar and .tar.zst
# ---------------------------------------------------------------------------

class Cases(Base):

    def run_case(self, case, fmt):
        """(ok, message) for one case in one format."""
        layout = VEC.layout(case)
        stem = os.path.join(self.tmp, case["artifact"])
        bundle = pack(layout, stem, fmt)
        try:
            args = ["verify", bundle, *VEC.flags(case["policy"]), "--json"]
        except ValueError as e:  # a policy field this suite cannot map to a flag yet
            return False, f"{case['id']} [{fmt}]: {e}"
        try:
            proc = R.run_ferry(*args, timeout=120 * SCALE)
        except subprocess.TimeoutExpired:
            return False, f"{case['id']} [{fmt}]: ferry verify did not finish"
        want = 0 if case["expect"] == "pass" else 3
        head = f"{case['id']} [{fmt}] expect {case['expect']}"
        for bad in CRASH_MARKERS:
            if bad in proc.stderr:
                return False, f"{head}: crash marker {bad!r}" + R.describe(proc)
        try:
            rep = json.loads(proc.stdout)
        except json.JSONDecodeError:
            return False, f"{head}: exit {proc.returncode}, stdout is not JSON: {proc.stderr.strip()[-300:]}"
        art, sigs = cosign_signatures(rep)
        got = "pass" if proc.returncode == 0 else "fail" if proc.returncode == 3 else f"exit {proc.returncode}"
        if proc.returncode != want:
            return False, (f"{head}, got {got}: {summarize(sigs)}; stderr: "
                           f"{proc.stderr.strip().splitlines()[-1:] if proc.stderr.strip() else ''}")
        if art is None:
            return False, f"{head}: the report has no artifact {SUBJECT}"
        if not sigs:
            return False, f"{head}: the root artifact names no signature of kind cosign"
        if bool(art.get("verified")) != (want == 0):
            return False, f"{head}: artifact verified={art.get('verified')} with exit {proc.returncode}"
        for s in sigs:
            if s.get("format") not in ("sigstore-bundle", "cosign-sig", "cosign-att"):
                return False, f"{head}: signature format {s.get('format')!r}"
            unknown = {c.get("name") for c in s.get("checks", [])} - set(COSIGN_CHECKS)
            if unknown:
                return False, f"{head}: unknown check names {sorted(unknown)}"
        if want == 0:
            good = [s for s in sigs if s.get("verified")]
            if not good:
                return False, f"{head}: exit 0 but no cosign signature verified: {summarize(sigs)}"
            for s in good:
                if failed_checks(s):
                    return False, f"{head}: a verified signature with failed checks: {summarize([s])}"
        else:
            if any(s.get("verified") for s in sigs):
                return False, f"{head}: exit 3 but a cosign signature verified: {summarize(sigs)}"
            failed = {n for s in sigs for n in failed_checks(s)}
            if not failed:
                return False, f"{head}: no check failed: {summarize(sigs)}"
            allowed = EXPECTED_CHECK.get(case["id"])
            if allowed and not (failed & allowed):
                return False, f"{head}: failed {sorted(failed)}, want one of {sorted(allowed)}: {summarize(sigs)}"
            if not all(s.get("reason") for s in sigs):
                return False, f"{head}: a failed signature without a reason: {summarize(sigs)}"
        if JS is not None and fmt == "dir":
            try:
                assert_schema(rep, "verify.schema.json")
            except Exception as e:  # jsonschema.ValidationError
                return False, f"{head}: report does not match verify.schema.json: {str(e)[:500]}"
        return True, f"{head}: {got}"

    def test_every_case_every_format(self):
        cases = VEC.cases
        self.assertGreaterEqual(len(cases), 39, "cases.json lists fewer cases than the issue's 39")
        self.assertEqual(len({c["id"] for c in cases}), len(cases), "duplicate case ids")
        self.assertTrue(any(c["expect"] == "pass" for c in cases) and any(c["expect"] == "fail" for c in cases))
        for c in cases:
            self.assertIn(c["expect"], ("pass", "fail"), c)
        # The archives first (one per layout, shared by the cases using it), then the runs.
        for c in cases:
            for fmt in FORMATS:
                pack(VEC.layout(c), os.path.join(self.tmp, c["artifact"]), fmt)
        jobs = [(c, fmt) for c in cases for fmt in FORMATS]
        with concurrent.futures.ThreadPoolExecutor(max_workers=2 if SCALE > 1 else 4) as pool:
            results = list(pool.map(lambda j: self.run_case(*j), jobs))
        bad = [msg for ok, msg in results if not ok]
        if os.environ.get("FERRY_COSIGN_REPORT") or bad:
            for ok, msg in results:
                print(("ok   " if ok else "FAIL ") + msg, file=sys.stderr)
        self.assertEqual(bad, [], f"{len(bad)} of {len(jobs)} case runs disagree with cosign:\n" + "\n".join(bad))

    def test_human_output_names_cosign_signatures(self):
        """The human report: one line per cosign signature with its verdict, and the failed
        check on a failing case."""
        good = next(c for c in VEC.cases if c["id"] == "bundle-good") if any(
            c["id"] == "bundle-good" for c in VEC.cases) else next(c for c in VEC.cases if c["expect"] == "pass")
        proc = self.ferry("verify", VEC.layout(good), *VEC.flags(good["policy"]), expect=0)
        lines = [l for l in proc.stdout.splitlines() if l.strip().startswith("cosign ")]
        self.assertTrue(lines, R.describe(proc))
        self.assertTrue(any(l.endswith(": verified") for l in lines), R.describe(proc))
        bad = next(c for c in VEC.cases if c["expect"] == "fail")
        proc = self.ferry("verify", VEC.layout(bad), *VEC.flags(bad["policy"]), expect=3)
        self.assertTrue(any(l.strip().startswith("cosign ") and l.endswith(": failed")
                            for l in proc.stdout.splitlines()), R.describe(proc))
        errors = [l for l in proc.stderr.splitlines() if l.startswith("ferry: error: ")]
        self.assertEqual(len(errors), 1, R.describe(proc))
        self.assertIn("verification failed", errors[0])

    def test_usage_errors(self):
        """cosign's own rules: keyless needs an identity and an issuer; an unknown --require."""
        lay = VEC.all_good
        proc = self.ferry("verify", lay, "--trusted-root", VEC.trusted_root, expect=2)
        self.assertIn("--certificate-identity", proc.stderr, R.describe(proc))
        p = VEC.keyless_policy()
        proc = self.ferry("verify", lay, "--trusted-root", VEC.trusted_root, "--certificate-identity", p["identity"],
                          expect=2)
        self.assertIn("--certificate-oidc-issuer", proc.stderr, R.describe(proc))
        proc = self.ferry("verify", lay, *self.keyless(), "--require", "cosgin", expect=2)
        self.assertIn("--require", proc.stderr, R.describe(proc))
        proc = self.ferry("verify", lay, *self.keyless(), "--require", "notation", expect=2)
        self.assertIn("notation", proc.stderr.lower(), R.describe(proc))
        # A trusted root that is not JSON is bad input (exit 1), not a verdict.
        junk = self.path("junk-root.json")
        with open(junk, "w") as f:
            f.write("{not json")
        proc = self.ferry("verify", lay, "--trusted-root", junk, "--certificate-identity", p["identity"],
                          "--certificate-oidc-issuer", p["issuer"], expect=1)
        self.assertIn("junk-root.json", proc.stderr, R.describe(proc))


# ---------------------------------------------------------------------------
# all-good: keyless, keyed, --require cosign; inspect
# ---------------------------------------------------------------------------

class AllGood(Base):

    def verify(self, bundle, *flags, expect=0):
        proc, rep = self.ferry_json("verify", bundle, *flags, expect=expect)
        assert_schema(rep, "verify.schema.json")
        art, sigs = cosign_signatures(rep)
        self.assertIsNotNone(art, R.describe(proc))
        return proc, rep, art, sigs

    def test_keyless_keyed_require(self):
        for fmt in FORMATS:
            bundle = pack(VEC.all_good, self.path("all-good"), fmt)
            with self.subTest(fmt=fmt, mode="keyless"):
                proc, rep, art, sigs = self.verify(bundle, *self.keyless())
                self.assertTrue(art["verified"], R.describe(proc))
                formats = {s["format"] for s in sigs}
                # Every signed kind is checked: the .sig's layers, the .att, the 3 bundles.
                self.assertEqual(formats, {"sigstore-bundle", "cosign-sig", "cosign-att"}, summarize(sigs))
                self.assertEqual(sum(1 for s in sigs if s["format"] == "sigstore-bundle"), 3, summarize(sigs))
                self.assertEqual(sorted(s["layer"] for s in sigs if s["format"] == "cosign-sig"), [0, 1],
                                 summarize(sigs))
                ok = [s for s in sigs if s["verified"]]
                self.assertTrue(ok, summarize(sigs))
                p = VEC.keyless_policy()
                for s in ok:
                    self.assertIn(p["identity"], s["signer"], summarize([s]))
                    self.assertIsNotNone(s["signingTime"], summarize([s]))
                    passed = {c["name"] for c in s["checks"] if c["result"] == "pass"}
                    self.assertTrue(passed >= {"signature", "certificate", "identity", "tlog"}, summarize([s]))
                tr = rep["trust"]["cosign"]
                self.assertEqual(tr["trustedRoot"], VEC.trusted_root)
                self.assertEqual(tr["policySource"], "flags")
                self.assertEqual(tr["policy"].get("certificateIdentity"), p["identity"])
            with self.subTest(fmt=fmt, mode="keyed"):
                key = VEC.path("trust", "cosign.pub")
                proc, rep, art, sigs = self.verify(bundle, "--trusted-root", VEC.trusted_root, "--cosign-key", key)
                self.assertTrue(art["verified"], R.describe(proc))
                ok = [s for s in sigs if s["verified"]]
                # The keyed .sig layer and the keyed bundle (both logged); the .att has no
                # log entry, so it fails while the tlog is required (as cosign).
                self.assertEqual({s["format"] for s in ok}, {"cosign-sig", "sigstore-bundle"}, summarize(sigs))
                self.assertEqual([s["layer"] for s in ok if s["format"] == "cosign-sig"], [0], summarize(sigs))
                atts = [s for s in sigs if s["format"] == "cosign-att"]
                self.assertTrue(atts and all("tlog" in failed_checks(s) for s in atts), summarize(sigs))
                self.assertEqual(rep["trust"]["cosign"]["keys"], [key])
                # With --insecure-ignore-tlog the .att verifies too.
                proc, rep, art, sigs = self.verify(bundle, "--trusted-root", VEC.trusted_root, "--cosign-key", key,
                                                   "--insecure-ignore-tlog")
                self.assertIn("cosign-att", {s["format"] for s in sigs if s["verified"]}, summarize(sigs))
                # With the other key nothing verifies.
                proc, rep, art, sigs = self.verify(bundle, "--trusted-root", VEC.trusted_root, "--cosign-key",
                                                   VEC.path("trust", "other.pub"), expect=3)
                self.assertFalse(art["verified"])
                self.assertFalse(any(s["verified"] for s in sigs), summarize(sigs))
            with self.subTest(fmt=fmt, mode="require cosign"):
                proc, rep, art, sigs = self.verify(bundle, *self.keyless(), "--require", "cosign")
                self.assertTrue(art["verified"], R.describe(proc))
                self.assertEqual(rep["trust"]["require"], "cosign")

    def test_wrong_identity_fails_every_signature(self):
        p = VEC.keyless_policy()
        proc, rep, art, sigs = self.verify(VEC.all_good, "--trusted-root", VEC.trusted_root, "--certificate-identity",
                                           "someone-else@example.test", "--certificate-oidc-issuer", p["issuer"],
                                           expect=3)
        self.assertFalse(art["verified"])
        self.assertTrue(sigs)
        for s in sigs:
            self.assertFalse(s["verified"], summarize([s]))
        # The keyless signatures fail on the identity.
        self.assertTrue(any("identity" in failed_checks(s) for s in sigs), summarize(sigs))

    def test_identity_regexp(self):
        p = VEC.keyless_policy()
        local, _, domain = p["identity"].partition("@")
        proc, rep, art, sigs = self.verify(VEC.all_good, "--trusted-root", VEC.trusted_root,
                                           "--certificate-identity-regexp", "^" + local + "@",
                                           "--certificate-oidc-issuer", p["issuer"])
        self.assertTrue(art["verified"], R.describe(proc))
        self.assertEqual(rep["trust"]["cosign"]["policy"].get("certificateIdentityRegexp"), "^" + local + "@")

    def test_inspect_shows_attachments_and_bundles(self):
        for fmt in FORMATS:
            with self.subTest(fmt=fmt):
                bundle = pack(VEC.all_good, self.path("all-good"), fmt)
                proc, doc = self.ferry_json("inspect", bundle)
                assert_schema(doc, "inspect.schema.json")
                roots = [r for r in doc["roots"] if r["digest"] == SUBJECT]
                self.assertEqual(len(roots), 1, json.dumps(doc, indent=1)[:3000])
                root = roots[0]
                att = {a["kind"]: a for a in root.get("attachments", [])}
                self.assertEqual(set(att), {"cosign-sig", "cosign-att", "cosign-sbom"}, json.dumps(root, indent=1))
                for kind, suffix in (("cosign-sig", "sig"), ("cosign-att", "att"), ("cosign-sbom", "sbom")):
                    self.assertEqual(att[kind]["tag"], f"sha256-{HEX}.{suffix}")
                index = R.read_layout_index(VEC.all_good)
                by_tag = {m.get("annotations", {}).get(R.ANN_REF_NAME): m["digest"] for m in index["manifests"]}
                for a in att.values():
                    self.assertEqual(a["digest"], by_tag[a["tag"]], a)
                bundles = [r for r in root["referrers"] if r.get("kind") == "sigstore-bundle"]
                self.assertEqual(len(bundles), 3, json.dumps(root, indent=1))
                for r in bundles:
                    self.assertEqual(r["artifactType"], SV.BUNDLE_ARTIFACT_TYPE)
                # No attachment is shown as a root of its own.
                self.assertEqual([r["digest"] for r in doc["roots"]], [SUBJECT], json.dumps(doc["roots"], indent=1)[:2000])
                # The human tree names them under the image.
                proc = self.ferry("inspect", bundle, expect=0)
                for suffix in ("sig", "att", "sbom"):
                    self.assertIn(f"sha256-{HEX}.{suffix}", proc.stdout, R.describe(proc))
                self.assertEqual(proc.stdout.count("Sigstore bundle"), 3, R.describe(proc))


# ---------------------------------------------------------------------------
# 3: registry round trip
# ---------------------------------------------------------------------------

def seed_registry(reg, layout, repo=SV.IMAGE_REPO):
    """Seeds ``reg`` from an OCI layout of the generator, without ferry: every tagged
    manifest under its tag (v1 and ``sha256-<hex>.sig/.att/.sbom``), every untagged bundle
    referrer by digest and in the ``sha256-<hex>`` fallback index of its subject (as a
    client writes it when the registry has no referrers API). Returns
    {"tags": {tag: digest}, "referrers": [descriptors]}."""
    def blob(d):
        with open(os.path.join(layout, "blobs", *d.split(":", 1)), "rb") as f:
            data = f.read()
        assert R.sha256_digest(data) == d, d
        return data

    index = R.read_layout_index(layout)
    tags, referrers = {}, []
    for entry in index["manifests"]:
        data = blob(entry["digest"])
        m = json.loads(data)
        for b in [m.get("config")] + list(m.get("layers") or []):
            if b:
                reg.put_blob(repo, blob(b["digest"]))
        tag = (entry.get("annotations") or {}).get(R.ANN_REF_NAME)
        mt = m.get("mediaType") or entry["mediaType"]
        if tag:
            self_digest = reg.put_manifest(repo, tag, data, mt)
            tags[tag] = self_digest
        else:
            reg.put_manifest(repo, entry["digest"], data, mt)
            subject = m["subject"]["digest"]
            desc = {"mediaType": mt, "digest": entry["digest"], "size": len(data)}
            if m.get("artifactType"):
                desc["artifactType"] = m["artifactType"]
            if m.get("annotations"):
                desc["annotations"] = m["annotations"]
            reg.add_referrer(repo, subject, desc)
            referrers.append(desc)
    return {"tags": tags, "referrers": referrers}


class RegistryRoundTrip(Base):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if shutil.which(R.REGISTRY_BIN) is None:
            raise unittest.SkipTest(f"{R.REGISTRY_BIN} not installed (apt-get install docker-registry)")
        cls.src = R.Registry("cosign-src").start()
        cls.addClassCleanup(cls.src.stop)
        cls.seeded = seed_registry(cls.src, VEC.all_good)
        cls.ref = f"{cls.src.host}/{SV.IMAGE_REPO}:v1"
        cls.saved = {}

    def expected_tags(self):
        return {"v1", f"sha256-{HEX}.sig", f"sha256-{HEX}.att", f"sha256-{HEX}.sbom", f"sha256-{HEX}"}

    def test_0_seeded(self):
        self.assertEqual(set(self.src.list_tags(SV.IMAGE_REPO)), self.expected_tags())
        self.assertEqual(len(self.src.referrers(SV.IMAGE_REPO, SUBJECT)), 3)
        self.assertEqual(self.seeded["tags"]["v1"], SUBJECT)

    def save(self, fmt, *extra):
        """ferry save with the keyless cosign flags (carried); returns (bundle, pin)."""
        key = (fmt,) + extra
        if key not in self.saved:
            out = self.path(f"saved-{len(self.saved)}" + ("" if fmt == "dir" else "." + fmt))
            proc, doc = self.ferry_json("save", "--plain-http", self.ref, "-o", out, *self.keyless(), *extra)
            assert_schema(doc, "save.schema.json")
            self.assertTrue(doc.get("trustPin"), R.describe(proc))
            self.saved[key] = (out, doc["trustPin"])
        return self.saved[key]

    def assert_same(self, reg, repo, what):
        """Every tag, manifest digest and fallback-index referrer of ``repo`` in ``reg``
        equals the source's."""
        self.assertEqual(set(reg.list_tags(repo)), self.expected_tags(), what)
        for tag in self.expected_tags() - {f"sha256-{HEX}"}:
            a = self.src.get_manifest(SV.IMAGE_REPO, tag)
            b = reg.get_manifest(repo, tag)
            self.assertEqual(b[2], a[2], f"{what}: tag {tag}")
            self.assertEqual(b[0], a[0], f"{what}: tag {tag} bytes")
        want = {r["digest"]: r for r in self.src.referrers(SV.IMAGE_REPO, SUBJECT)}
        got = {r["digest"]: r for r in reg.referrers(repo, SUBJECT)}
        self.assertEqual(set(got), set(want), f"{what}: fallback index referrers")
        for d, r in want.items():
            for k in ("mediaType", "size", "artifactType"):
                self.assertEqual(got[d].get(k), r.get(k), f"{what}: referrer {d} {k}")
            self.assertEqual(reg.get_manifest(repo, d)[0], self.src.get_manifest(SV.IMAGE_REPO, d)[0],
                             f"{what}: referrer {d} bytes")
        g_src, g_dst = R.graph_of(self.src, SV.IMAGE_REPO), R.graph_of(reg, repo)
        self.assertEqual(g_dst["missing"], [], what)
        self.assertEqual(g_dst, g_src, f"{what}:\n{R.format_graph(g_src)}\n---\n{R.format_graph(g_dst)}")

    def test_1_save_inspect_verify(self):
        for fmt in FORMATS:
            with self.subTest(fmt=fmt):
                bundle, pin = self.save(fmt)
                proc, doc = self.ferry_json("inspect", bundle)
                assert_schema(doc, "inspect.schema.json")
                roots = [r for r in doc["roots"] if r["digest"] == SUBJECT]
                self.assertEqual(len(roots), 1, json.dumps(doc, indent=1)[:3000])
                att = {a["tag"]: a for a in roots[0].get("attachments", [])}
                self.assertEqual(set(att), {f"sha256-{HEX}.{s}" for s in ("sig", "att", "sbom")})
                for tag, a in att.items():
                    self.assertEqual(a["digest"], self.seeded["tags"][tag])
                    self.assertEqual(a["kind"], "cosign-" + tag.rsplit(".", 1)[1])
                bundles = {r["digest"] for r in roots[0]["referrers"] if r.get("kind") == "sigstore-bundle"}
                self.assertEqual(bundles, {r["digest"] for r in self.seeded["referrers"]})
                self.assertEqual(doc["trust"]["digest"], pin, doc["trust"])
                files = set(doc["trust"]["files"])
                self.assertIn("sigstore/trusted_root.json", files)
                self.assertIn("cosign/policy.json", files)
                # The bundle's index.json lists the attachments by their tags; every
                # manifest of the source is in it byte for byte.
                b = R.read_bundle(bundle)
                names = {(m.get("annotations") or {}).get(R.ANN_REF_NAME): m["digest"]
                         for m in b.index["manifests"]}
                for tag, d in self.seeded["tags"].items():
                    if tag != "v1":
                        self.assertEqual(names.get(tag), d, names)
                for d in list(self.seeded["tags"].values()) + [r["digest"] for r in self.seeded["referrers"]]:
                    self.assertTrue(b.has_blob(d), f"{fmt}: {d} not in the bundle")
                    self.assertEqual(b.blob(d), self.src.get_manifest(SV.IMAGE_REPO, d)[0])
                walk = b.walk()
                self.assertEqual(walk["missing"], [], fmt)
                # verify with explicit flags (keyless), and with the pin only.
                proc, rep = self.ferry_json("verify", bundle, *self.keyless())
                art, sigs = cosign_signatures(rep)
                self.assertTrue(art and art["verified"], R.describe(proc))
                self.assertTrue(any(s["verified"] for s in sigs), summarize(sigs))
                proc, rep = self.ferry_json("verify", bundle, "--trust-pin", pin)
                assert_schema(rep, "verify.schema.json")
                art, sigs = cosign_signatures(rep)
                self.assertTrue(art and art["verified"], R.describe(proc))
                tr = rep["trust"]["cosign"]
                self.assertEqual(tr["trustedRoot"], "sigstore/trusted_root.json", tr)
                self.assertEqual(tr["policySource"], "cosign/policy.json", tr)
                self.assertEqual(tr["policy"].get("certificateIdentity"), VEC.keyless_policy()["identity"], tr)
                carried = {f["title"]: f for f in rep["trust"]["carried"]}
                with open(VEC.trusted_root, "rb") as f:
                    self.assertEqual(carried["sigstore/trusted_root.json"]["digest"], R.sha256_digest(f.read()))
                self.assertNotIn("ferry-trust-", proc.stdout)
                # A local flag overrides the carried policy: another identity fails.
                proc, rep = self.ferry_json("verify", bundle, "--trust-pin", pin, "--certificate-identity",
                                            "someone-else@example.test", "--certificate-oidc-issuer",
                                            VEC.keyless_policy()["issuer"], expect=3)
                self.assertEqual(rep["trust"]["cosign"]["policySource"], "flags")

    def test_2_carried_key(self):
        key = VEC.path("trust", "cosign.pub")
        bundle, pin = self.save("dir", "--cosign-key", key)
        proc, rep = self.ferry_json("verify", bundle, "--trust-pin", pin)
        art, sigs = cosign_signatures(rep)
        self.assertTrue(art and art["verified"], R.describe(proc))
        self.assertEqual(rep["trust"]["cosign"]["keys"], ["cosign/keys/cosign.pub"], rep["trust"])
        with open(key, "rb") as f:
            self.assertEqual({f2["title"]: f2["digest"] for f2 in rep["trust"]["carried"]}.get("cosign/keys/cosign.pub"),
                             R.sha256_digest(f.read()))

    def test_3_push_and_copy_keep_everything(self):
        for fmt in FORMATS:
            with self.subTest(fmt=fmt):
                bundle, pin = self.save(fmt)
                with R.Registry(f"cosign-push-{fmt.replace('.', '')}") as dst:
                    proc, doc = self.ferry_json("push", "--plain-http", bundle, dst.host)
                    assert_schema(doc, "push.schema.json")
                    self.assertTrue(doc["proof"]["ok"], json.dumps(doc, indent=1)[:3000])
                    self.assert_same(dst, SV.IMAGE_REPO, f"push {fmt}")
                    # push --verify with the pin, to another namespace.
                    proc, doc = self.ferry_json("push", "--plain-http", "--verify", "--trust-pin", pin, bundle,
                                                f"{dst.host}/verified")
                    self.assertTrue(doc["verification"]["verified"], json.dumps(doc, indent=1)[:3000])
                    self.assert_same(dst, f"verified/{SV.IMAGE_REPO}", f"push --verify {fmt}")
        with self.subTest(op="copy"):
            with R.Registry("cosign-copy") as dst:
                proc, doc = self.ferry_json("copy", "--plain-http", self.ref, f"{dst.host}/{SV.IMAGE_REPO}")
                assert_schema(doc, "copy.schema.json")
                self.assertTrue(doc["proof"]["ok"], json.dumps(doc, indent=1)[:3000])
                self.assert_same(dst, SV.IMAGE_REPO, "copy")
                proc, doc = self.ferry_json("copy", "--plain-http", "--verify", *self.keyless(), self.ref,
                                            f"{dst.host}/verified/app")
                self.assertTrue(doc["verification"]["verified"], json.dumps(doc, indent=1)[:3000])
                self.assert_same(dst, "verified/app", "copy --verify")
                # copy --verify with another identity refuses before anything is written.
                proc = self.ferry("copy", "--plain-http", "--verify", "--trusted-root", VEC.trusted_root,
                                  "--certificate-identity", "someone-else@example.test",
                                  "--certificate-oidc-issuer", VEC.keyless_policy()["issuer"], self.ref,
                                  f"{dst.host}/refused/app", expect=3)
                self.assertEqual(dst.list_tags("refused/app"), [])


# ---------------------------------------------------------------------------
# 4: hostile inputs
# ---------------------------------------------------------------------------

def _blob_path(layout, digest):
    return os.path.join(layout, "blobs", *digest.split(":", 1))


def _read_blob(layout, digest):
    with open(_blob_path(layout, digest), "rb") as f:
        return f.read()


def _write_blob(layout, data):
    d = R.sha256_digest(data)
    with open(_blob_path(layout, d), "wb") as f:
        f.write(data)
    return d


def _rewrite(layout, entry_match, mutate_manifest):
    """Rewrites the manifest of the index.json entry ``entry_match`` picks with
    ``mutate_manifest(manifest dict) -> None`` (which may replace a layer blob through
    ``replace_layer``), stores it and fixes the index entry's digest and size; the old
    manifest blob is removed. Integrity holds afterwards."""
    index = R.read_layout_index(layout)
    hits = [e for e in index["manifests"] if entry_match(e)]
    assert len(hits) == 1, hits
    entry = hits[0]
    old = entry["digest"]
    m = json.loads(_read_blob(layout, old))
    mutate_manifest(m)
    data = json.dumps(m).encode()
    entry["digest"], entry["size"] = _write_blob(layout, data), len(data)
    if entry["digest"] != old:
        os.remove(_blob_path(layout, old))
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f, indent=2)


def replace_layer(layout, m, i, data):
    old = m["layers"][i]["digest"]
    m["layers"][i]["digest"], m["layers"][i]["size"] = _write_blob(layout, data), len(data)
    if m["layers"][i]["digest"] != old and not any(l["digest"] == old for l in m["layers"]):
        os.remove(_blob_path(layout, old))


def _is_bundle(e):
    return e.get("artifactType") == SV.BUNDLE_ARTIFACT_TYPE


def _is_sig(e):
    return (e.get("annotations") or {}).get(R.ANN_REF_NAME, "").endswith(".sig")


def hostile_bundle(layout, mutate_bundle):
    """The bundle layer of the layout's one bundle referrer through ``mutate_bundle``:
    given the parsed bundle, returns the new layer bytes."""
    def f(m):
        b = json.loads(_read_blob(layout, m["layers"][0]["digest"]))
        replace_layer(layout, m, 0, mutate_bundle(b))
    _rewrite(layout, _is_bundle, f)


class Hostile(Base):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        ids = {c["id"]: c for c in VEC.cases}
        for need in ("bundle-good", "sig-keyless-good"):
            if need not in ids or ids[need]["expect"] != "pass":
                raise AssertionError(f"cases.json has no passing {need} to start from")
        cls.bundle_case, cls.sig_case = ids["bundle-good"], ids["sig-keyless-good"]

    def copy_of(self, case, name):
        dst = self.path(name)
        shutil.copytree(VEC.layout(case), dst)
        return dst

    def refused(self, layout, case, what, integrity=True):
        start = time.monotonic()
        proc = self.ferry("verify", layout, *VEC.flags(case["policy"]), "--json", timeout=HOSTILE_SECONDS * 6)
        elapsed = time.monotonic() - start
        self.assertEqual(proc.returncode, 3, f"{what}" + R.describe(proc))
        self.assertLess(elapsed, HOSTILE_SECONDS, f"{what}: ferry verify took {elapsed:.1f} s")
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        errors = [l for l in lines if l.startswith("ferry: error: ")]
        self.assertEqual(len(errors), 1, f"{what}: want one 'ferry: error:' line" + R.describe(proc))
        self.assertEqual(lines[-1], errors[0], f"{what}: the error is the last line" + R.describe(proc))
        self.assertLess(len(errors[0]), 2000, f"{what}: the error line is not short")
        rep = json.loads(proc.stdout)
        self.assertEqual(rep["integrity"]["ok"], integrity, f"{what}: integrity" + R.describe(proc))
        if not integrity:
            return rep
        art, sigs = cosign_signatures(rep)
        self.assertIsNotNone(art, R.describe(proc))
        self.assertFalse(art["verified"])
        self.assertTrue(sigs, f"{what}: the broken signature is not reported" + R.describe(proc))
        self.assertFalse(any(s["verified"] for s in sigs), summarize(sigs))
        self.assertTrue(all(failed_checks(s) for s in sigs), summarize(sigs))
        return sigs

    def test_the_base_layouts_pass(self):
        for case in (self.bundle_case, self.sig_case):
            self.ferry("verify", VEC.layout(case), *VEC.flags(case["policy"]), expect=0)

    def test_bundle_layer_not_json(self):
        lay = self.copy_of(self.bundle_case, "not-json")
        hostile_bundle(lay, lambda b: b"this is not JSON {\"mediaType\":")
        sigs = self.refused(lay, self.bundle_case, "bundle layer not JSON")
        self.assertIn("format", failed_checks(sigs[0]), summarize(sigs))

    def test_dsse_signature_garbage_base64(self):
        lay = self.copy_of(self.bundle_case, "garbage-b64")

        def f(b):
            b["dsseEnvelope"]["signatures"][0]["sig"] = "!!not*base64@@" + "\u00e9" * 3 + "==="
            return json.dumps(b).encode()
        hostile_bundle(lay, f)
        sigs = self.refused(lay, self.bundle_case, "garbage base64 in the DSSE signature")
        self.assertTrue(set(failed_checks(sigs[0])) & {"format", "signature"}, summarize(sigs))

    def test_inclusion_proof_million_hashes(self):
        """A million audit-path hashes. Of full length (32 bytes, 47 MB of JSON) the layer is
        over ferry's limit for signature material (32 MiB) and integrity refuses it before
        any parser sees it; a million short ones ("AA==", 7 MB) are over the bundle parser's
        own limit (4 MiB); 500,000 short ones and 80,000 full-length ones stay under both and
        reach the inclusion-proof code, which must refuse them by its bounds, not walk them."""
        full = base64.b64encode(hashlib.sha256(b"ferry").digest()).decode()
        for name, filler, count, integrity in (("million-full", full, 1_000_000, False),
                                               ("million-short", "AA==", 1_000_000, True),
                                               ("500k-short", "AA==", 500_000, True),
                                               ("80k-full", full, 80_000, True)):
            with self.subTest(hashes=name):
                lay = self.copy_of(self.bundle_case, name)

                def f(b):
                    b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["hashes"] = [filler] * count
                    return json.dumps(b).encode()
                hostile_bundle(lay, f)
                got = self.refused(lay, self.bundle_case, f"an inclusion proof of {count} hashes ({name})",
                                   integrity=integrity)
                if integrity:
                    self.assertTrue(set(failed_checks(got[0])) & {"format", "tlog"}, summarize(got))
                else:
                    self.assertIn("limit", json.dumps(got["integrity"]["problems"]))
                shutil.rmtree(lay)

    def test_log_index_beyond_tree_size(self):
        lay = self.copy_of(self.bundle_case, "index-beyond")

        def f(b):
            p = b["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
            p["logIndex"] = str(int(p["treeSize"]) + 5)
            return json.dumps(b).encode()
        hostile_bundle(lay, f)
        sigs = self.refused(lay, self.bundle_case, "a proof whose logIndex is beyond its treeSize")
        self.assertTrue(set(failed_checks(sigs[0])) & {"format", "tlog"}, summarize(sigs))

    def test_sig_certificate_annotation_garbage(self):
        for name, garbage in (
                ("pem", "-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n"),
                ("text", "\x00\xff not a certificate at all"),
                ("huge", "-----BEGIN CERTIFICATE-----\n" + "QUFB" * 200_000 + "\n-----END CERTIFICATE-----\n")):
            with self.subTest(garbage=name):
                lay = self.copy_of(self.sig_case, f"sig-cert-{name}")

                def f(m):
                    for l in m["layers"]:
                        l.setdefault("annotations", {})["dev.sigstore.cosign/certificate"] = garbage
                _rewrite(lay, _is_sig, f)
                sigs = self.refused(lay, self.sig_case, f"a .sig whose certificate annotation is garbage ({name})")
                self.assertTrue(set(failed_checks(sigs[0])) & {"format", "certificate", "signature"}, summarize(sigs))


if __name__ == "__main__":
    unittest.main()
