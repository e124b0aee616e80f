#!/usr/bin/env python3
"""``ferry verify`` as users read it (issue 14, "Signed content stays verifiable, or ferry
says why"): every signature in a bundle is checked and reported, honest reports.

Run: python3 tests/e2e/test_users_verify.py [ClassName[.test_name]]   (FERRY=/abs/path/ferry)
Exit 77 (skipped) without the ferry binary or ``openssl``; the classes that need a
registry (PushReferrers, CarriedTrust) skip without docker-registry.

Contract under test:
  - ReferrerSignatures: the signature of an SBOM, of an attestation (a referrer whose
    subject is a referrer) is verified against the trust policy statement of its root's
    scope and reported with its own verdict, nested under its root (human output) and in
    ``artifacts[].referrers[]`` (JSON, HTML); an unsigned or failing referrer is reported,
    not fatal, unless ``--require-referrer-signatures`` (then exit 3, naming it).
  - PushReferrers: ``push --verify`` takes the same flag; a referrer whose own signature
    verified is not an unverified manifest.
  - IntegrityVerdicts: when integrity fails no root is shown as verified (no ✓ line, JSON
    ``verified`` false everywhere), the summary and the lines agree.
  - CarriedTrust: ``verify --trust-pin`` reports the carried trust policy, trust store and
    CRLs by their titles in the bundle's trust artifact and their digests, in JSON and in
    the HTML report; never the temporary directory they were unpacked in.
  - IntegrityOnlyListing: ``--integrity-only`` JSON and HTML reports list every root and
    its digest.
Every verification runs at pki.VERIFICATION_TIME (no dependence on the clock).
"""

import hashlib
import json
import os
import re
import shutil
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402
import pki as P  # noqa: E402
import notary_sign as N  # noqa: E402

R.skip_module_unless(__name__, registry=False, programs=(P.OPENSSL,))

import test_verify as V  # noqa: E402

try:  # the published schemas, when the jsonschema module is there (e2e-JsonSchema needs it)
    import test_json_schema as JS  # noqa: E402
except (unittest.SkipTest, ImportError):
    JS = None

VT = P.VERIFICATION_TIME
INTOTO = "application/vnd.in-toto+json"
NOTE = "application/vnd.example.note"


def start_registry(cls, name):
    """A docker-registry for the class (skips the class when it is not installed)."""
    if shutil.which(R.REGISTRY_BIN) is None:
        raise unittest.SkipTest(f"{R.REGISTRY_BIN} not installed (apt-get install docker-registry)")
    cls.reg = R.Registry(name).start()
    cls.addClassCleanup(cls.reg.stop)


def assert_schema(doc, name):
    """Validates a --json document against src/cli/schema/<name> (skipped without jsonschema)."""
    if JS is not None:
        JS.validator(JS.load_schemas(), name).validate(doc)


def referrer_entry(report, root_digest, digest):
    arts = [a for a in report["artifacts"] if a["digest"] == root_digest]
    assert len(arts) == 1, json.dumps(report, indent=1)
    hits = [r for r in arts[0].get("referrers", []) if r["digest"] == digest]
    return hits[0] if len(hits) == 1 else None


class ReferrerBundle(V.VerifyTest):
    """A signed root with: an SBOM signed by a trusted key, an attestation of that SBOM
    signed by a trusted key (a referrer whose subject is a referrer), an unsigned note and
    a vulnerability report signed by an untrusted key."""

    def referrer_bundle(self, stem="refs", good_only=False):
        lay = self.layout(stem)
        app = lay.image(seed=stem)
        app_sig = lay.sign(app, self.pki["rsa2048"])
        d = {"app": app, "app_sig": app_sig}
        d["sbom"] = lay.referrer(app)
        d["sbom_sig"] = lay.sign(d["sbom"], self.pki["rsa2048"])
        d["att"] = lay.referrer(d["sbom"], artifact_type=INTOTO, payload=b'{"att":1}')
        d["att_sig"] = lay.sign(d["att"], self.pki["ec384"], "cose")
        if not good_only:
            d["note"] = lay.referrer(app, artifact_type=NOTE, payload=b'{"note":"unsigned"}')
            d["vuln"] = lay.referrer(app, artifact_type="application/vnd.example.vuln",
                                     payload=b'{"vuln":0}')
            d["vuln_sig"] = lay.sign(d["vuln"], self.pki["untrusted"])
        return lay, d


class ReferrerSignatures(ReferrerBundle):

    def test_every_referrer_reported_with_its_own_verdict(self):
        lay, d = self.referrer_bundle()
        policy = self.strict_policy()
        for fmt in ("dir", "tar"):
            with self.subTest(fmt=fmt):
                proc, rep = self.verify(lay.pack(fmt), policy=policy, expect=0)
                assert_schema(rep, "verify.schema.json")
                art = self.artifact(rep, d["app"]["digest"], proc)
                self.assertTrue(art["verified"], R.describe(proc))
                refs = {r["digest"]: r for r in art["referrers"]}
                self.assertEqual(set(refs), {d[k]["digest"] for k in ("sbom", "att", "note", "vuln")},
                                 R.describe(proc))
                # The SBOM's signature and the attestation's (subject: the SBOM) verified.
                for k, subject in (("sbom", "app"), ("att", "sbom")):
                    r = refs[d[k]["digest"]]
                    self.assertTrue(r["verified"], R.describe(proc))
                    self.assertEqual(r["subject"], d[subject]["digest"])
                    self.assertEqual(r["reason"], "")
                    self.assert_all_pass(self.signature(r, d[k + "_sig"]["digest"], proc), proc)
                self.assertEqual(refs[d["att"]["digest"]]["artifactType"], INTOTO)
                self.assertEqual(refs[d["sbom"]["digest"]]["artifactType"], "application/spdx+json")
                # Unsigned: reported, not fatal.
                note = refs[d["note"]["digest"]]
                self.assertFalse(note["verified"])
                self.assertEqual(note["signatures"], [])
                self.assertRegex(note["reason"], re.compile(V.R_NO_SIG, re.I))
                # Signed by an untrusted root: failed authenticity, not fatal.
                vuln = refs[d["vuln"]["digest"]]
                self.assertFalse(vuln["verified"])
                sig = self.signature(vuln, d["vuln_sig"]["digest"], proc)
                self.assert_check(sig, "authenticity", "fail", "enforce", V.R_UNTRUSTED, proc)
                # The signatures are not referrers with a verdict of their own.
                for k in ("app_sig", "sbom_sig", "att_sig", "vuln_sig"):
                    self.assertNotIn(d[k]["digest"], refs)

    def test_human_output_nests_referrers_under_their_root(self):
        lay, d = self.referrer_bundle("human")
        proc, _ = self.verify(lay.pack("dir"), policy=self.strict_policy(), expect=0, json_out=False)
        lines = proc.stdout.splitlines()
        root = [i for i, l in enumerate(lines) if l.startswith("✓ ") and d["app"]["digest"] in l]
        self.assertEqual(len(root), 1, R.describe(proc))

        def line_of(key):
            hits = [i for i, l in enumerate(lines) if l.startswith("  ") and "referrer " + d[key]["digest"] in l]
            self.assertEqual(len(hits), 1, f"one line for {key}" + R.describe(proc))
            self.assertGreater(hits[0], root[0], "nested under its root" + R.describe(proc))
            return lines[hits[0]]

        for key in ("sbom", "att"):
            self.assertTrue(line_of(key).startswith("  ✓ referrer "), R.describe(proc))
        for key in ("note", "vuln"):
            line = line_of(key)
            self.assertTrue(line.startswith("  ✗ referrer "), R.describe(proc))
            self.assertIn("not fatal", line)
        self.assertRegex(line_of("att"), re.escape(INTOTO) + ".* of " + re.escape(d["sbom"]["digest"]))
        # The referrers' signatures are listed under them, with their checks.
        self.assertTrue(any(l.startswith("    signature " + d["sbom_sig"]["digest"]) for l in lines),
                        R.describe(proc))
        summary = lines[-1]
        self.assertTrue(summary.startswith("verification passed: 1 artifact, 2 of 4 referrers verified"),
                        R.describe(proc))

    def test_require_referrer_signatures_fails_on_unsigned_or_failing(self):
        lay, d = self.referrer_bundle("require")
        policy = self.strict_policy()
        proc, rep = self.verify(lay.pack("tar"), policy=policy, extra=["--require-referrer-signatures"], expect=3)
        art = self.artifact(rep, d["app"]["digest"], proc)
        self.assertFalse(art["verified"], R.describe(proc))
        self.assertIn("--require-referrer-signatures", art["reason"])
        self.assertEqual(proc.stderr.count("ferry: error:"), 1, R.describe(proc))
        self.assertTrue(d["note"]["digest"] in proc.stderr or d["vuln"]["digest"] in proc.stderr, R.describe(proc))
        # Human output: the root line and the summary agree.
        proc, _ = self.verify(lay.pack("tar"), policy=policy, extra=["--require-referrer-signatures"],
                              expect=3, json_out=False)
        self.assertFalse(any(l.startswith("✓ ") for l in proc.stdout.splitlines()), R.describe(proc))
        self.assertIn("verification FAILED", proc.stdout)
        # Every referrer signed by a trusted key: the flag passes.
        good, _ = self.referrer_bundle("require-good", good_only=True)
        proc, rep = self.verify(good.pack("tar"), policy=policy, extra=["--require-referrer-signatures"], expect=0)
        self.assertTrue(all(r["verified"] for r in rep["artifacts"][0]["referrers"]), R.describe(proc))
        # It asks for signatures to be checked: a usage error with --integrity-only.
        proc = self.ferry("verify", "--integrity-only", "--require-referrer-signatures", good.pack("tar"))
        self.assertEqual(proc.returncode, 2, R.describe(proc))

    def test_referrer_checked_under_its_roots_statement(self):
        """The referrer's signature is judged by the statement chosen for its root's scope:
        a skip statement for the root's scope admits an unsigned referrer; a statement whose
        store lacks the signer's root fails it, whatever another statement says."""
        lay, d = self.referrer_bundle("scope")
        skip = self.policy(P.statement("skip-app", scopes=[V.APP], level="skip", stores=(), identities=()),
                           P.statement("other", scopes=["*"], stores=("ca:untrusted",)))
        proc, rep = self.verify(lay.pack("dir"), policy=skip, extra=["--require-referrer-signatures"], expect=0)
        self.assertTrue(all(r["verified"] for r in rep["artifacts"][0]["referrers"]), R.describe(proc))
        wrong = self.policy(P.statement("app-untrusted", scopes=[V.APP], stores=("ca:untrusted",)),
                            P.statement("other", scopes=["*"]))
        proc, rep = self.verify(lay.pack("dir"), policy=wrong, expect=3)
        r = referrer_entry(rep, d["app"]["digest"], d["sbom"]["digest"])
        self.assertFalse(r["verified"], R.describe(proc))
        self.assert_check(self.signature(r, d["sbom_sig"]["digest"], proc), "authenticity", "fail", "enforce",
                          V.R_UNTRUSTED, proc)

    def test_signed_platform_manifest_of_signed_index(self):
        """A platform manifest signed besides its index has its own verdict (subject null)."""
        lay = self.layout("platform")
        kids = [lay.image(seed=f"plat-{p}", root=False, platform=p) for p in ("linux/amd64", "linux/arm64")]
        idx = lay.image_index(V.APP_REF, kids)
        lay.sign(idx, self.pki["rsa2048"])
        kid_sig = lay.sign(kids[0], self.pki["rsa2048"])
        proc, rep = self.verify(lay.pack("dir"), policy=self.strict_policy(), expect=0)
        r = referrer_entry(rep, idx["digest"], kids[0]["digest"])
        self.assertIsNotNone(r, R.describe(proc))
        self.assertIsNone(r["subject"])
        self.assertTrue(r["verified"], R.describe(proc))
        self.signature(r, kid_sig["digest"], proc)
        self.assertIsNone(referrer_entry(rep, idx["digest"], kids[1]["digest"]), R.describe(proc))

    def test_html_report_shows_referrers(self):
        lay, d = self.referrer_bundle("html")
        out = self.new_path("report.html")
        proc, rep = self.verify(lay.pack("dir"), policy=self.strict_policy(), extra=["--report", out], expect=0)
        with open(out, encoding="utf-8") as f:
            page = f.read()
        for k in ("sbom", "att", "note", "vuln", "sbom_sig", "att_sig", "vuln_sig"):
            self.assertTrue(d[k]["digest"] in page, k)
        self.assertIn("2 of 4 verified", page)


class PushReferrers(ReferrerBundle):
    """push --verify: the flag is shared, and a verified referrer is covered."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        start_registry(cls, "users-verify")

    def push(self, bundle, ns, *extra):
        return self.ferry("push", "--plain-http", "--verify", "--trust-policy", self.strict_policy(),
                          "--trust-store", self.store, "--verification-time", VT, *extra, "--json",
                          bundle, f"{self.reg.host}/{ns}")

    def test_signed_referrer_is_not_unverified(self):
        lay, d = self.referrer_bundle("push")
        proc = self.push(lay.pack("tar"), "covered")
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        doc = json.loads(proc.stdout)
        assert_schema(doc, "push.schema.json")
        listed = {u["digest"] for u in doc["unverifiedManifests"]}
        # Covered now: the SBOM and the attestation, whose own signatures verified (and those
        # signatures). Still listed: the unsigned note, the vuln report and its failed signature.
        self.assertEqual(listed, {d["note"]["digest"], d["vuln"]["digest"], d["vuln_sig"]["digest"]},
                         R.describe(proc))
        refs = doc["verification"]["artifacts"][0]["referrers"]
        self.assertEqual(len(refs), 4, R.describe(proc))

    def test_require_referrer_signatures_refuses_push(self):
        lay, d = self.referrer_bundle("push-require")
        before = self.reg.catalog()
        proc = self.push(lay.pack("tar"), "refused", "--require-referrer-signatures")
        self.assertEqual(proc.returncode, 3, R.describe(proc))
        self.assertIn("--require-referrer-signatures", proc.stderr)
        self.assertEqual(self.reg.catalog(), before, "nothing was sent" + R.describe(proc))
        good, _ = self.referrer_bundle("push-require-good", good_only=True)
        proc = self.push(good.pack("tar"), "accepted", "--require-referrer-signatures")
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        self.assertEqual(json.loads(proc.stdout)["unverifiedManifests"], [], R.describe(proc))

    def test_human_log_lists_referrer_verdicts(self):
        # push --verify's log (stderr) shows each referrer's verdict under its root, as verify does.
        lay, d = self.referrer_bundle("push-human")
        proc = self.ferry("push", "--plain-http", "--verify", "--trust-policy", self.strict_policy(),
                          "--trust-store", self.store, "--verification-time", VT, lay.pack("tar"),
                          f"{self.reg.host}/human")
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        self.assertRegex(proc.stderr, r"verification passed: .*1 of 1 artifact verified, 2 of 4 referrers verified")
        for name, verdict in (("sbom", "✓"), ("note", "✗"), ("vuln", "✗")):
            lines = [l for l in proc.stderr.splitlines()
                     if d[name]["digest"] in l and re.match(r"\s*[✓✗] referrer ", l)]
            self.assertEqual(len(lines), 1, name + R.describe(proc))
            self.assertTrue(lines[0].lstrip().startswith(verdict), lines[0])

    def test_flag_needs_verify(self):
        lay, _ = self.referrer_bundle("push-usage", good_only=True)
        proc = self.ferry("push", "--plain-http", "--require-referrer-signatures", lay.pack("tar"),
                          f"{self.reg.host}/usage")
        self.assertEqual(proc.returncode, 2, R.describe(proc))


class IntegrityVerdicts(V.VerifyTest):
    """A damaged bundle: no root is shown as verified, whatever its signature says."""

    def damaged(self, stem):
        lay = self.layout(stem)
        app = lay.image(seed=stem)
        lay.sign(app, self.pki["rsa2048"])
        other = lay.image(name=f"{V.APP}:v2", seed=stem + "-other")
        lay.sign(other, self.pki["rsa2048"])
        sbom = lay.referrer(app)
        lay.sign(sbom, self.pki["rsa2048"])
        layer = json.loads(lay.read(app["digest"]))["layers"][0]["digest"]
        lay.flip(layer)
        return lay, app, other, sbom

    def test_no_root_verified_when_integrity_fails(self):
        lay, app, other, sbom = self.damaged("damaged")
        policy = self.strict_policy()
        for fmt in ("dir", "tar"):
            with self.subTest(fmt=fmt):
                proc, rep = self.verify(lay.pack(fmt), policy=policy, expect=3)
                assert_schema(rep, "verify.schema.json")
                self.assertFalse(rep["integrity"]["ok"])
                self.assertEqual(len(rep["artifacts"]), 2, R.describe(proc))
                for a in rep["artifacts"]:
                    self.assertFalse(a["verified"], R.describe(proc))
                    self.assertRegex(a["reason"], "integrity", R.describe(proc))
                    for r in a["referrers"]:
                        self.assertFalse(r["verified"], R.describe(proc))
                # The signatures themselves verified: the report still says so.
                self.assertTrue(all(s["verified"] for a in rep["artifacts"] for s in a["signatures"]))
                proc, _ = self.verify(lay.pack(fmt), policy=policy, expect=3, json_out=False)
                lines = proc.stdout.splitlines()
                self.assertFalse([l for l in lines if "✓" in l], R.describe(proc))
                for d in (app["digest"], other["digest"]):
                    self.assertTrue(any(l.startswith("✗ ") and d in l for l in lines), R.describe(proc))
                self.assertTrue(lines[-1].startswith("verification FAILED"), R.describe(proc))


class CarriedTrust(V.VerifyTest):
    """verify --trust-pin: the report names the carried trust material by title and digest."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        start_registry(cls, "users-trust")
        app = R.push_image(cls.reg, "demo/app", "v1", [R.seeded_bytes("uv-ct-0", 4096)])
        cls.app = R.subject_of(app)
        ident = cls.pki["cdp"]
        data, mt = N.sign("jws", cls.app, ident)
        R.push_referrer(cls.reg, "demo/app", app, N.NOTARY_SIGNATURE, data, mt,
                        {N.THUMBPRINT: json.dumps(ident.thumbprints)})
        cls.scope = f"{cls.reg.host}/demo/app"
        cls.policy_file = P.write_trust_policy(os.path.join(cls.tmp, "trustpolicy.json"),
                                               P.statement("carried", scopes=[cls.scope]))

    def save(self, fmt):
        out = self.new_path(f"trusted.{fmt}")
        proc = self.ferry("save", "--plain-http", f"{self.scope}:v1", "-o", out,
                          "--trust-policy", self.policy_file, "--trust-store", self.store,
                          "--crl", self.pki.crls["fresh"], "--json", expect=0)
        return out, json.loads(proc.stdout)["trustPin"]

    def assert_no_temp_path(self, text, proc):
        self.assertNotIn("ferry-trust-", text, "a temporary extraction path in the report" + R.describe(proc))

    def test_json_and_html_name_carried_material(self):
        b, pin = self.save("tar")
        html = self.new_path("carried.html")
        proc, rep = self.verify(b, extra=["--trust-pin", pin, "--report", html], expect=0)
        assert_schema(rep, "verify.schema.json")
        trust = rep["trust"]
        with open(self.policy_file, "rb") as f:
            policy_digest = "sha256:" + hashlib.sha256(f.read()).hexdigest()
        self.assertEqual(trust["source"], "bundle")
        self.assertEqual(trust["pin"], pin)
        self.assertEqual(trust["trustPolicy"], "trustpolicy.json", R.describe(proc))
        self.assertEqual(trust["trustPolicyDigest"], policy_digest, R.describe(proc))
        self.assertEqual(trust["trustStore"], "truststore", R.describe(proc))
        self.assertEqual(len(trust["crls"]), 1, R.describe(proc))
        self.assertTrue(trust["crls"][0].startswith("crl/"), R.describe(proc))
        with open(self.pki.crls["fresh"], "rb") as f:
            crl_bytes = f.read()
        carried = {f["title"]: f for f in trust["carried"]}
        self.assertEqual(carried["trustpolicy.json"]["digest"], policy_digest)
        self.assertTrue(any(t.startswith("truststore/x509/ca/ferry/") for t in carried), carried)
        self.assertIn(trust["crls"][0], carried)
        self.assertEqual(carried[trust["crls"][0]]["digest"], "sha256:" + hashlib.sha256(crl_bytes).hexdigest())
        # The CRL section names the carried CRL by its title, too.
        self.assertEqual([c["source"] for c in rep["crls"]], trust["crls"], R.describe(proc))
        self.assert_no_temp_path(proc.stdout, proc)
        with open(html, encoding="utf-8") as f:
            page = f.read()
        self.assert_no_temp_path(page, proc)
        for title, f in carried.items():
            self.assertIn(title, page)
            self.assertIn(f["digest"], page)
        self.assertIn(policy_digest, page)
        # Human output names no temporary path either.
        proc = self.ferry("verify", b, "--trust-pin", pin, "--verification-time", VT, expect=0)
        self.assert_no_temp_path(proc.stdout + proc.stderr, proc)

    def test_local_policy_overrides_carried_one(self):
        b, pin = self.save("dir")
        local = self.policy(P.statement("local", scopes=[self.scope], level="audit"))
        proc, rep = self.verify(b, extra=["--trust-pin", pin, "--trust-policy", local], expect=0)
        trust = rep["trust"]
        self.assertEqual(trust["trustPolicy"], local)
        with open(local, "rb") as f:
            self.assertEqual(trust["trustPolicyDigest"], "sha256:" + hashlib.sha256(f.read()).hexdigest())
        self.assertNotIn("trustpolicy.json", {f["title"] for f in trust["carried"]})
        self.assertEqual(trust["trustStore"], "truststore")


class IntegrityOnlyListing(V.VerifyTest):
    """--integrity-only: the JSON and HTML reports list every root and its digest."""

    def test_every_root_listed(self):
        lay = self.layout("listing")
        roots = [lay.image(seed="list-a"), lay.image(name=f"{V.APP}:v2", seed="list-b")]
        lay.sign(roots[0], self.pki["rsa2048"])
        lay.referrer(roots[0])
        for damaged in (False, True):
            with self.subTest(damaged=damaged):
                if damaged:
                    lay.flip(json.loads(lay.read(roots[1]["digest"]))["layers"][0]["digest"])
                html = self.new_path("listing.html")
                proc, rep = self.verify(lay.pack("tar"), integrity_only=True, extra=["--report", html],
                                        expect=3 if damaged else 0)
                assert_schema(rep, "verify.schema.json")
                self.assertEqual([a["digest"] for a in rep["artifacts"]], [r["digest"] for r in roots],
                                 R.describe(proc))
                self.assertEqual([a["reference"] for a in rep["artifacts"]], [V.APP_REF, f"{V.APP}:v2"])
                for a in rep["artifacts"]:
                    self.assertFalse(a["signaturesChecked"])
                    self.assertIsNone(a["level"])
                    self.assertEqual(a["signatures"], [])
                    self.assertEqual(a["verified"], not damaged, R.describe(proc))
                with open(html, encoding="utf-8") as f:
                    page = f.read()
                for r in roots:
                    self.assertIn(r["digest"], page)
                self.assertIn(V.APP_REF, page)
                self.assertIn("signatures not checked", page)
                if damaged:
                    self.assertNotIn("✓ " + V.APP_REF, page)


if __name__ == "__main__":
    unittest.main()
