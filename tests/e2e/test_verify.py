#!/usr/bin/env python3
"""End-to-end tests of ``ferry verify``: bundle integrity and Notary Project signatures.

Run: python3 tests/e2e/test_verify.py [ClassName[.test_name]] [-k pattern]
     (FERRY=/abs/path/ferry to override the binary; FERRY_SHARED=/path/to/shared for
     the upstream corpus, default: the first ``shared/notation`` found walking up from
     the repository).
Exit code 77 (meson "skipped") when the ferry binary or ``openssl`` is missing.

Contract under test (design.md §2/§3 and the verify contract of the issue):
  ferry verify BUNDLE [--trust-policy FILE] [--trust-store DIR] [--crl FILE|DIR]...
               [--scope REPO] [--integrity-only] [--verification-time RFC3339] [--json]
  exit 0 verified, 3 verification failed, 1 error, 2 usage.
Semantics: ../shared/notation/SPEC.md (notation-go's behaviour, except that ferry fails
unknown critical headers as the spec requires). Everything is generated at test time:
the PKI by tests/e2e/pki.py (openssl CLI), signatures by tests/e2e/notary_sign.py (an
independent signer), bundles by ``Layout`` below (or ``ferry save`` from a registry).

Classes: Integrity, Signatures, Revocation, SavedBundle (needs docker-registry),
Upstream (needs ../shared/notation; CASES.md §1, §2, §11.1, §13).

Each verification runs at a fixed ``--verification-time`` (pki.VERIFICATION_TIME =
2026-11-23T10:00:00Z unless a test says otherwise) so outcomes do not depend on the
clock. The exceptions are relative to the clock of the run instead, on both sides: an
RFC 3161 token's genTime is the time of the run (``openssl ts`` has no way to fake
it), so the ``short`` leaf is valid around the run time and a timestamped signature is
verified 10 days later; and BundledTrust's ``--fetch-crls`` test issues its leaf and CRL
now and verifies at the default clock. .ci/run runs them all again 1,000 days ahead.
"""

import base64
import datetime
import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402
import pki as P  # noqa: E402
import notary_sign as N  # noqa: E402


R.skip_module_unless(__name__, registry=False, programs=(P.OPENSSL,))

VT = P.VERIFICATION_TIME
HAVE_ZSTD = shutil.which("zstd") is not None
CHECKS = ("integrity", "authenticity", "trustedIdentity", "expiry", "authenticTimestamp",
          "revocation")
REG = "reg.ferry.test"
APP = f"{REG}/team/app"
APP_REF = f"{APP}:v1"

# Reason patterns (case-insensitive regexes). They name the cause the way notation
# does (SPEC.md quotes), loosely enough to allow other wording of the same fact.
R_UNTRUSTED = r"trusted certificate|not trusted|untrusted"
R_IDENTITY = r"trusted identit"
R_SIG_EXPIRED = r"has expired|signature.*expired"
R_CERT_EXPIRED = r"after certificate|expired"
R_NOT_YET = r"before certificate|not yet valid"
R_TS_WINDOW = r"timestamp can be (before|after)|validity period|not within|outside"
R_TS_MISSING = r"no timestamp|countersignature|timestamp.*(missing|not found|absent)"
R_TS_UNTRUSTED = r"unknown authority|not trusted|untrusted|trust|verif"
R_REVOKED = r"revoked"
R_UNKNOWN = r"unknown"
R_TARGET = r"mismatch|does not match|target|descriptor"
R_ALG = r"alg"
R_B64 = r"base64|padding|illegal"
R_BAD_SIG = r"invalid|verif"
R_EKU = r"serverauth|extended key usage|eku"
R_CHAIN = r"root|self-signed|chain|issuer"
R_NO_SIG = r"no signature"
R_NO_POLICY = r"no applicable|trust policy|scope"


# ---------------------------------------------------------------------------
# Bundles written by hand (design §3)
# ---------------------------------------------------------------------------

class Layout:
    """A ferry-style bundle written as an OCI layout directory.

    Roots carry ``io.containerd.image.name`` (full reference) and
    ``org.opencontainers.image.ref.name`` (tag); referrers (signatures, SBOMs) are
    listed untagged. ``pack(fmt)`` writes it as dir / .tar / .tar.zst in ferry's tar
    order. Tampering: ``flip``, ``remove``, ``set_index_bytes``, ``patch_index_entry``.
    index.json lives on disk and is re-read on every change (notary_sign's
    add_signature_to_layout writes it too)."""

    def __init__(self, path):
        self.path = path
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "wb") as f:
            f.write(R.canonical_json({"imageLayoutVersion": "1.0.0"}))
        self._write_index({"schemaVersion": 2, "mediaType": R.OCI_INDEX, "manifests": []})

    # -- index.json ----------------------------------------------------------
    @property
    def index_path(self):
        return os.path.join(self.path, "index.json")

    def index(self):
        with open(self.index_path, "rb") as f:
            return json.load(f)

    def _write_index(self, index):
        with open(self.index_path, "wb") as f:
            f.write(R.canonical_json(index))

    def _add_entry(self, entry):
        index = self.index()
        index["manifests"].append(entry)
        self._write_index(index)

    def set_index_bytes(self, data):
        with open(self.index_path, "wb") as f:
            f.write(data)

    def patch_index_entry(self, digest, **changes):
        index = self.index()
        for e in index["manifests"]:
            if e["digest"] == digest:
                e.update(changes)
        self._write_index(index)

    # -- blobs -----------------------------------------------------------------
    def blob_path(self, digest):
        return os.path.join(self.path, "blobs", "sha256", digest.split(":", 1)[1])

    def put(self, data):
        return N.write_blob(self.path, data)

    def read(self, digest):
        with open(self.blob_path(digest), "rb") as f:
            return f.read()

    def blob_digests(self):
        return sorted("sha256:" + n for n in os.listdir(os.path.join(self.path, "blobs", "sha256")))

    def total_bytes(self):
        return sum(os.path.getsize(self.blob_path(d)) for d in self.blob_digests())

    # -- content -----------------------------------------------------------------
    def image(self, name=APP_REF, seed="app", layer_sizes=(2048, 8192), root=True,
              platform="linux/amd64", lie_layer_size=False):
        """An OCI image (config + layers + manifest with an annotation); listed as a
        root named ``name`` when ``root``. Returns its descriptor (with platform when
        not a root, for use in an index)."""
        plat = R.parse_platform(platform)
        layers = [R.seeded_bytes(f"{seed}-layer-{i}", n) for i, n in enumerate(layer_sizes)]
        config = R.canonical_json({"architecture": plat["architecture"], "os": plat["os"],
                                   "rootfs": {"type": "layers",
                                              "diff_ids": [R.sha256_digest(l) for l in layers]},
                                   "config": {}})
        self.put(config)
        ldescs = []
        for l in layers:
            self.put(l)
            ldescs.append(R.descriptor(R.OCI_LAYER_GZIP, l))
        if lie_layer_size:
            ldescs[0]["size"] += 1
        manifest = R.canonical_json({"schemaVersion": 2, "mediaType": R.OCI_MANIFEST,
                                     "config": R.descriptor(R.OCI_CONFIG, config),
                                     "layers": ldescs,
                                     "annotations": {"org.example.note": f"hello {seed}"}})
        self.put(manifest)
        desc = R.descriptor(R.OCI_MANIFEST, manifest)
        if root:
            self.add_root(desc, name)
            return desc
        desc["platform"] = plat
        return desc

    def image_index(self, name, children):
        data = R.canonical_json({"schemaVersion": 2, "mediaType": R.OCI_INDEX,
                                 "manifests": list(children)})
        self.put(data)
        desc = R.descriptor(R.OCI_INDEX, data)
        self.add_root(desc, name)
        return desc

    def add_root(self, desc, name):
        entry = {"mediaType": desc["mediaType"], "digest": desc["digest"], "size": desc["size"]}
        ann = {R.ANN_IMAGE_NAME: name}
        last = name.rsplit("/", 1)[-1]
        if "@" not in name and ":" in last:
            ann[R.ANN_REF_NAME] = last.split(":", 1)[1]
        entry["annotations"] = ann
        self._add_entry(entry)

    def sign(self, subject, identity, envelope="jws", form="new", target=None, **kw):
        """Signs ``target`` (default: subject) with notary_sign and attaches the
        signature to ``subject`` (keyword arguments go to notary_sign.sign). Returns the
        signature manifest descriptor plus ``_envelope`` (the envelope blob's digest) and
        ``_media_type`` (its layer media type)."""
        env, mt = N.sign(envelope, R.subject_of(target or subject), identity, **kw)
        desc = N.add_signature_to_layout(self.path, R.subject_of(subject), env, mt, form=form,
                                         identity=identity)
        desc = dict(desc)
        desc["_envelope"] = R.sha256_digest(env)
        desc["_media_type"] = mt
        return desc

    def referrer(self, subject, artifact_type="application/spdx+json", payload=b'{"sbom":1}'):
        """A non-signature referrer (new-form artifact manifest), listed untagged."""
        self.put(R.EMPTY_JSON)
        self.put(payload)
        m = R.canonical_json({"schemaVersion": 2, "mediaType": R.OCI_MANIFEST,
                              "artifactType": artifact_type,
                              "config": {"mediaType": R.OCI_EMPTY, "digest": R.EMPTY_DIGEST,
                                         "size": 2},
                              "layers": [R.descriptor(artifact_type, payload)],
                              "subject": R.subject_of(subject)})
        self.put(m)
        desc = R.descriptor(R.OCI_MANIFEST, m, artifactType=artifact_type)
        self._add_entry(dict(desc))
        return desc

    # -- tampering ---------------------------------------------------------------
    def flip(self, digest, old=None, new=None):
        """Changes a blob's content (not its name): replaces ``old`` by ``new`` (same
        length, keeps JSON valid) or XORs its middle byte."""
        data = bytearray(self.read(digest))
        if old is not None:
            i = data.find(old)
            assert i >= 0 and len(old) == len(new), (old, new)
            data[i:i + len(old)] = new
        else:
            data[len(data) // 2] ^= 0x01
        with open(self.blob_path(digest), "wb") as f:
            f.write(bytes(data))

    def remove(self, digest):
        os.remove(self.blob_path(digest))

    # -- output ------------------------------------------------------------------
    def pack(self, fmt="dir", out=None):
        """The bundle as ``dir`` (this directory), ``tar`` or ``tar.zst``."""
        if fmt == "dir":
            return self.path
        out = out or f"{self.path}.{fmt}"
        pack_layout(self.path, out)
        return out


def _is_manifest(data):
    if len(data) > 4 * 1024 * 1024:
        return False
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and doc.get("schemaVersion") == 2 and (
        doc.get("mediaType") in R.MANIFEST_TYPES or "layers" in doc or "manifests" in doc)


def layout_order(layout_dir):
    """The layout's files in ferry's tar order (design §3): oci-layout, index.json, every
    manifest/index, then the other blobs smallest first; as (arcname, path) pairs."""
    blob_dir = os.path.join(layout_dir, "blobs", "sha256")
    names = sorted(os.listdir(blob_dir))
    data = {}
    for n in names:
        with open(os.path.join(blob_dir, n), "rb") as f:
            data[n] = f.read()
    manifests = [n for n in names if _is_manifest(data[n])]
    others = sorted((n for n in names if n not in manifests), key=lambda n: (len(data[n]), n))
    return ([(name, os.path.join(layout_dir, name)) for name in ("oci-layout", "index.json")] +
            [(f"blobs/sha256/{n}", os.path.join(blob_dir, n)) for n in manifests + others])


def pack_layout(layout_dir, out):
    """Tars a layout in ferry's entry order (``layout_order``); ``*.tar.zst`` is
    compressed with the zstd CLI."""
    tar_path = out[:-4] if out.endswith(".zst") else out
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tf:
        for arcname, path in layout_order(layout_dir):
            tf.add(path, arcname=arcname, recursive=False)
    if out.endswith(".zst"):
        P.run(["zstd", "-q", "-f", "--rm", "-o", out, tar_path])
    return out


# ---------------------------------------------------------------------------
# Base class
# ---------------------------------------------------------------------------

class VerifyTest(unittest.TestCase):
    """Shared PKI (one per process), a temp dir per class, a trust store with:
    ca:ferry (root), ca:untrusted (untrusted_root), tsa:tsa (tsa_root),
    tsa:wrongtsa (untrusted_root), signingAuthority:sa (root)."""

    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.pki = P.shared_pki()
        cls.tmp = tempfile.mkdtemp(prefix=f"ferry-verify-{cls.__name__}-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.store = P.write_truststore(os.path.join(cls.tmp, "truststore"), {
            "ca": {"ferry": [cls.pki.root], "untrusted": [cls.pki.untrusted_root]},
            "tsa": {"tsa": [cls.pki.tsa_root], "wrongtsa": [cls.pki.untrusted_root]},
            "signingAuthority": {"sa": [cls.pki.root]},
        })
        cls._n = 0

    # -- files ---------------------------------------------------------------------
    def new_path(self, stem):
        type(self)._n += 1
        return os.path.join(self.tmp, f"{type(self)._n:03d}-{stem}")

    def layout(self, stem="bundle"):
        return Layout(self.new_path(stem))

    def policy(self, *statements, doc=None):
        return P.write_trust_policy(self.new_path("trustpolicy.json"),
                                    doc if doc is not None else P.trust_policy(*statements))

    def strict_policy(self, **kw):
        return self.policy(P.statement(**kw))

    def signed_app(self, identity="rsa2048", envelope="jws", form="new", stem="bundle", **kw):
        """A bundle with one root APP_REF signed once; returns (layout, app desc, sig desc)."""
        lay = self.layout(stem)
        app = lay.image()
        ident = self.pki[identity] if isinstance(identity, str) else identity
        sig = lay.sign(app, ident, envelope, form, **kw)
        return lay, app, sig

    # -- running ferry --------------------------------------------------------------
    def ferry(self, *args, expect=None):
        proc = R.run_ferry(*args, timeout=180)
        if expect is not None:
            codes = (expect,) if isinstance(expect, int) else tuple(expect)
            self.assertIn(proc.returncode, codes, R.describe(proc))
        for bad in ("Traceback", "terminate called", "Segmentation fault", "AddressSanitizer",
                    "runtime error:"):
            self.assertNotIn(bad, proc.stderr, R.describe(proc))
        return proc

    def verify(self, bundle, policy=None, store=None, crls=(), scope=None, vt=VT,
               integrity_only=False, extra=(), expect=None, json_out=True):
        """Runs ferry verify; returns (proc, report or None). ``store`` defaults to the
        class trust store when a policy is given."""
        args = ["verify", bundle]
        if policy is not None:
            args += ["--trust-policy", policy, "--trust-store", store or self.store]
        elif store is not None:
            args += ["--trust-store", store]
        for c in crls:
            args += ["--crl", c]
        if scope:
            args += ["--scope", scope]
        if integrity_only:
            args.append("--integrity-only")
        if vt:
            args += ["--verification-time", vt]
        args += list(extra)
        if json_out:
            args.append("--json")
        proc = self.ferry(*args, expect=expect)
        report = None
        if json_out and proc.returncode in (0, 3):
            try:
                report = json.loads(proc.stdout)
            except ValueError as e:
                self.fail(f"--json output is not one JSON document ({e}){R.describe(proc)}")
            self.assertEqual(report.get("schemaVersion"), 1, R.describe(proc))
            self.assertEqual(report.get("command"), "verify", R.describe(proc))
            self.assertEqual(report.get("verified"), proc.returncode == 0,
                             "report.verified must agree with the exit code" + R.describe(proc))
        return proc, report

    # -- report assertions -------------------------------------------------------------
    def artifact(self, report, digest, proc=None):
        arts = [a for a in report.get("artifacts", []) if a.get("digest") == digest]
        self.assertEqual(len(arts), 1, f"want one artifact {digest} in the report"
                         + (R.describe(proc) if proc else json.dumps(report, indent=1)))
        return arts[0]

    def signature(self, art, digest, proc=None):
        sigs = [s for s in art.get("signatures", []) if s.get("digest") == digest]
        self.assertEqual(len(sigs), 1, f"want signature {digest} under {art.get('digest')}"
                         + (R.describe(proc) if proc else json.dumps(art, indent=1)))
        return sigs[0]

    @staticmethod
    def check(sig, name):
        for c in sig.get("checks", []):
            if c.get("name") == name:
                return c
        return None

    def assert_check(self, sig, name, result, action=None, reason=None, proc=None):
        c = self.check(sig, name)
        ctx = R.describe(proc) if proc else json.dumps(sig, indent=1)
        self.assertIsNotNone(c, f"no check {name!r} in signature {sig.get('digest')}" + ctx)
        self.assertEqual(c.get("result"), result, f"check {name}" + ctx)
        if action is not None:
            self.assertEqual(c.get("action"), action, f"check {name} action" + ctx)
        if reason is not None:
            self.assertRegex(c.get("reason") or "", re.compile(reason, re.I),
                             f"check {name} reason" + ctx)
        return c

    def assert_all_pass(self, sig, proc=None, action="enforce"):
        ctx = R.describe(proc) if proc else json.dumps(sig, indent=1)
        names = [c.get("name") for c in sig.get("checks", [])]
        self.assertEqual(sorted(names), sorted(CHECKS), "every check reported once" + ctx)
        for c in sig["checks"]:
            self.assertEqual(c.get("result"), "pass", f"check {c.get('name')}" + ctx)
            if action:
                self.assertEqual(c.get("action"), action, f"check {c.get('name')} action" + ctx)
        self.assertTrue(sig.get("verified"), ctx)

    def assert_sig_fails(self, bundle, digest, sig_digest, check, reason, action="enforce",
                         **verify_kw):
        """Exit 3; artifact and signature not verified; ``check`` failed (enforced) with
        a reason matching ``reason``. Returns (proc, report, signature)."""
        proc, rep = self.verify(bundle, expect=3, **verify_kw)
        art = self.artifact(rep, digest, proc)
        self.assertFalse(art.get("verified"), R.describe(proc))
        sig = self.signature(art, sig_digest, proc)
        self.assertFalse(sig.get("verified"), R.describe(proc))
        self.assert_check(sig, check, "fail", action, reason, proc)
        return proc, rep, sig

    def assert_sig_passes(self, bundle, digest, sig_digest, **verify_kw):
        proc, rep = self.verify(bundle, expect=0, **verify_kw)
        art = self.artifact(rep, digest, proc)
        self.assertTrue(art.get("verified"), R.describe(proc))
        sig = self.signature(art, sig_digest, proc)
        self.assertTrue(sig.get("verified"), R.describe(proc))
        return proc, rep, sig

    def assert_error(self, proc, codes, *needles):
        """Exit code in codes; exactly one `ferry: error: ` line, the last on stderr,
        containing every needle (case-insensitive)."""
        codes = (codes,) if isinstance(codes, int) else tuple(codes)
        self.assertIn(proc.returncode, codes, R.describe(proc))
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        errors = [l for l in lines if l.startswith("ferry: error: ")]
        self.assertEqual(len(errors), 1, "want exactly one 'ferry: error: ' line" + R.describe(proc))
        self.assertEqual(lines[-1], errors[0], "the error line must be last" + R.describe(proc))
        for n in needles:
            self.assertIn(n.lower(), errors[0].lower(), R.describe(proc))
        return errors[0]


# ---------------------------------------------------------------------------
# Integrity
# ---------------------------------------------------------------------------

FORMATS = ("dir", "tar", "tar.zst") if HAVE_ZSTD else ("dir", "tar")


class Integrity(VerifyTest):
    """--integrity-only (and the integrity part of a full verify): every blob hashed
    against its name and every descriptor, the graph complete, every problem reported."""

    def build(self, stem="integ", signed=True):
        lay = self.layout(stem)
        app = lay.image(seed=stem)
        sig = lay.sign(app, self.pki["rsa2048"]) if signed else None
        sbom = lay.referrer(app)
        return lay, app, sig, sbom

    def problems(self, rep):
        integ = rep.get("integrity") or {}
        self.assertFalse(integ.get("ok"), json.dumps(rep, indent=1))
        return integ.get("problems") or []

    def assert_problem_names(self, proc, rep, digest):
        probs = self.problems(rep)
        hits = [p for p in probs if digest in (p.get("digest") or "") + " " + (p.get("message") or "")]
        self.assertTrue(hits, f"no integrity problem names {digest}" + R.describe(proc))
        for p in hits:
            self.assertTrue(p.get("message"), f"problem without a message: {p}")
        return hits

    def test_clean_bundle_all_formats(self):
        lay, app, sig, sbom = self.build("clean")
        for fmt in FORMATS:
            with self.subTest(fmt=fmt):
                bundle = lay.pack(fmt)
                proc, rep = self.verify(bundle, integrity_only=True, expect=0)
                integ = rep["integrity"]
                self.assertTrue(integ["ok"], R.describe(proc))
                self.assertEqual(integ["problems"], [], R.describe(proc))
                self.assertEqual(integ["blobs"], len(lay.blob_digests()), R.describe(proc))
                self.assertEqual(integ["bytes"], lay.total_bytes(), R.describe(proc))
                self.assertTrue(rep["bundle"].endswith(os.path.basename(bundle)), R.describe(proc))

    def test_integrity_only_needs_no_trust_material(self):
        lay, *_ = self.build("notrust")
        proc = self.ferry("verify", "--integrity-only", lay.pack("tar"), expect=0)
        self.assertNotIn("ferry: error", proc.stderr)

    def test_flipped_byte(self):
        """A changed layer / config / manifest / envelope blob → exit 3 naming it."""
        for what in ("layer", "config", "manifest", "envelope"):
            for fmt in FORMATS:
                with self.subTest(blob=what, fmt=fmt):
                    lay, app, sig, _ = self.build(f"flip-{what}")
                    m = json.loads(lay.read(app["digest"]))
                    if what == "layer":
                        target = m["layers"][1]["digest"]
                        lay.flip(target)
                    elif what == "config":
                        target = m["config"]["digest"]
                        lay.flip(target, b'"linux"', b'"linuy"')
                    elif what == "manifest":
                        target = app["digest"]
                        lay.flip(target, b"hello", b"hellp")
                    else:
                        target = sig["_envelope"]
                        lay.flip(target, b"ferry-tests", b"ferry-tesus")
                    proc, rep = self.verify(lay.pack(fmt), integrity_only=True, expect=3)
                    self.assert_problem_names(proc, rep, target)

    def test_flipped_layer_fails_full_verify(self):
        lay, app, sig, _ = self.build("flip-full")
        layer = json.loads(lay.read(app["digest"]))["layers"][0]["digest"]
        lay.flip(layer)
        proc, rep = self.verify(lay.pack("tar"), policy=self.strict_policy(), expect=3)
        self.assert_problem_names(proc, rep, layer)

    def test_missing_blob(self):
        for fmt in FORMATS:
            with self.subTest(fmt=fmt):
                lay, app, _, _ = self.build("missing")
                layer = json.loads(lay.read(app["digest"]))["layers"][0]["digest"]
                lay.remove(layer)
                proc, rep = self.verify(lay.pack(fmt), integrity_only=True, expect=3)
                self.assert_problem_names(proc, rep, layer)

    def test_missing_signature_manifest_listed_in_index(self):
        lay, app, sig, _ = self.build("missing-sig")
        lay.remove(sig["digest"])
        proc, rep = self.verify(lay.pack("dir"), integrity_only=True, expect=3)
        self.assert_problem_names(proc, rep, sig["digest"])

    def test_lying_size_in_index(self):
        lay, app, _, _ = self.build("liesize-index")
        lay.patch_index_entry(app["digest"], size=app["size"] + 1)
        proc, rep = self.verify(lay.pack("tar"), integrity_only=True, expect=3)
        self.assert_problem_names(proc, rep, app["digest"])

    def test_lying_size_in_manifest(self):
        lay = self.layout("liesize-layer")
        app = lay.image(lie_layer_size=True)
        layer = json.loads(lay.read(app["digest"]))["layers"][0]["digest"]
        for fmt in FORMATS:
            with self.subTest(fmt=fmt):
                proc, rep = self.verify(lay.pack(fmt), integrity_only=True, expect=3)
                self.assert_problem_names(proc, rep, layer)

    def test_two_problems_both_reported(self):
        lay, app, _, _ = self.build("two")
        m = json.loads(lay.read(app["digest"]))
        layer, config = m["layers"][1]["digest"], m["config"]["digest"]
        lay.flip(layer)
        lay.remove(config)
        for fmt in FORMATS:
            with self.subTest(fmt=fmt):
                proc, rep = self.verify(lay.pack(fmt), integrity_only=True, expect=3)
                self.assert_problem_names(proc, rep, layer)
                self.assert_problem_names(proc, rep, config)

    def test_referrer_subject_missing(self):
        lay = self.layout("orphan")
        lay.image()
        ghost = {"mediaType": R.OCI_MANIFEST, "size": 321,
                 "digest": R.sha256_digest(b"not in this bundle")}
        orphan = lay.referrer(ghost)
        proc, rep = self.verify(lay.pack("tar"), integrity_only=True, expect=3)
        probs = self.problems(rep)
        self.assertTrue(any(ghost["digest"] in (p.get("digest") or "") + " " + (p.get("message") or "")
                            or orphan["digest"] in (p.get("digest") or "") for p in probs),
                        f"no problem names the missing subject {ghost['digest']} or referrer "
                        f"{orphan['digest']}" + R.describe(proc))

    def test_non_json_index(self):
        for fmt in ("dir", "tar"):
            with self.subTest(fmt=fmt):
                lay, *_ = self.build("badindex")
                lay.set_index_bytes(b"this is { not json\n")
                proc = self.ferry("verify", "--integrity-only", lay.pack(fmt), expect=(1, 3))
                self.assert_error(proc, (1, 3), "index.json")

    def test_missing_bundle_is_error(self):
        proc = self.ferry("verify", "--integrity-only", os.path.join(self.tmp, "nope.tar"))
        self.assert_error(proc, 1, "nope.tar")

    def test_usage_error(self):
        """No BUNDLE and an unknown flag are usage errors (2); an unparsable
        --verification-time is a usage error (2) or a bad-input error (1), named."""
        proc = self.ferry("verify")
        self.assert_error(proc, 2)
        proc = self.ferry("verify", "--no-such-flag", self.tmp)
        self.assert_error(proc, 2, "no-such-flag")
        proc = self.ferry("verify", self.tmp, "--integrity-only", "--verification-time", "yesterday")
        self.assert_error(proc, (1, 2), "yesterday")


# ---------------------------------------------------------------------------
# Signatures
# ---------------------------------------------------------------------------

ENVELOPES = ("jws", "cose")
KEYS_RSA_EC = ("rsa2048", "ec256")


class Signatures(VerifyTest):
    """Notation signature verification against trust policy and trust store."""

    def each(self):
        for env in ENVELOPES:
            for key in KEYS_RSA_EC:
                yield env, key

    def test_valid_every_key_and_envelope(self):
        """One bundle, 12 roots (JWS/COSE × RSA-2048/3072/4096, P-256/384/521): exit 0,
        every check pass/enforce, report fields."""
        lay = self.layout("allkeys")
        expect = []
        for env in ENVELOPES:
            for spec in P.KEY_SPECS:
                name = f"{REG}/keys/{env}-{spec}:v1"
                d = lay.image(name=name, seed=f"{env}-{spec}", layer_sizes=(512,))
                s = lay.sign(d, self.pki[spec], env)
                expect.append((name, d, s, env))
        policy = self.strict_policy()
        for fmt in FORMATS:
            with self.subTest(fmt=fmt):
                proc, rep = self.verify(lay.pack(fmt), policy=policy, expect=0)
                self.assertEqual(rep["verificationTime"], VT, R.describe(proc))
                self.assertTrue(rep["integrity"]["ok"], R.describe(proc))
                self.assertEqual(len(rep["artifacts"]), len(expect), R.describe(proc))
                for name, d, s, env in expect:
                    with self.subTest(ref=name):
                        art = self.artifact(rep, d["digest"], proc)
                        self.assertTrue(art["verified"], R.describe(proc))
                        self.assertEqual(art["reference"], name)
                        self.assertEqual(art["scope"], name.rsplit(":", 1)[0])
                        self.assertEqual(art["mediaType"], R.OCI_MANIFEST)
                        self.assertEqual(art["policy"], "ferry-test")
                        self.assertEqual(art["level"], "strict")
                        sig = self.signature(art, s["digest"], proc)
                        self.assertEqual(sig["envelope"], s["_media_type"])
                        self.assert_all_pass(sig, proc)

    def test_signed_index_root(self):
        lay = self.layout("index")
        a = lay.image(root=False, seed="amd", platform="linux/amd64")
        b = lay.image(root=False, seed="arm", platform="linux/arm64")
        idx = lay.image_index(f"{REG}/team/multi:v2", [a, b])
        sig = lay.sign(idx, self.pki["ec384"], "cose")
        proc, rep, s = self.assert_sig_passes(lay.pack("tar"), idx["digest"], sig["digest"],
                                              policy=self.strict_policy())
        self.assertEqual(self.artifact(rep, idx["digest"])["mediaType"], R.OCI_INDEX)
        self.assertEqual(len(rep["artifacts"]), 1, "index children are not roots" + R.describe(proc))

    def test_trusted_identity_matching(self):
        pol = self.strict_policy(identities=[P.TRUSTED_IDENTITY])
        for env, key in self.each():
            with self.subTest(envelope=env, key=key):
                lay, app, sig = self.signed_app(key, env)
                proc, rep, s = self.assert_sig_passes(lay.pack("dir"), app["digest"], sig["digest"],
                                                      policy=pol)
                self.assert_check(s, "trustedIdentity", "pass", "enforce", None, proc)

    def test_trusted_identity_not_matching(self):
        pol = self.strict_policy(identities=[P.OTHER_IDENTITY])
        for env, key in self.each():
            with self.subTest(envelope=env, key=key):
                lay, app, sig = self.signed_app(key, env)
                self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"],
                                      "trustedIdentity", R_IDENTITY, policy=pol)

    def test_untrusted_root(self):
        """Chain to a root not in the store: strict/permissive fail, audit logs."""
        for env, key in (("jws", "untrusted"), ("cose", "untrusted")):
            lay, app, sig = self.signed_app(key, env)
            b = lay.pack("dir")
            for level in ("strict", "permissive"):
                with self.subTest(envelope=env, level=level):
                    self.assert_sig_fails(b, app["digest"], sig["digest"], "authenticity",
                                          R_UNTRUSTED, policy=self.strict_policy(level=level))
            with self.subTest(envelope=env, level="audit"):
                proc, rep = self.verify(b, policy=self.strict_policy(level="audit"), expect=0)
                art = self.artifact(rep, app["digest"], proc)
                self.assertTrue(art["verified"], R.describe(proc))
                self.assertEqual(art["level"], "audit")
                s = self.signature(art, sig["digest"], proc)
                self.assert_check(s, "authenticity", "fail", "log", R_UNTRUSTED, proc)
                self.assert_check(s, "integrity", "pass", "enforce", None, proc)

    def test_trust_store_with_other_root_only(self):
        """A good signature but the policy names only ca:untrusted."""
        for env, key in self.each():
            with self.subTest(envelope=env, key=key):
                lay, app, sig = self.signed_app(key, env)
                self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"],
                                      "authenticity", R_UNTRUSTED,
                                      policy=self.strict_policy(stores=["ca:untrusted"]))

    def test_signature_moved_to_other_artifact(self):
        """B carries a signature whose payload names A: B fails, A (own signature) passes."""
        for env, key in self.each():
            with self.subTest(envelope=env, key=key):
                lay = self.layout("moved")
                a = lay.image(name=f"{REG}/team/a:v1", seed="a")
                b = lay.image(name=f"{REG}/team/b:v1", seed="b")
                sa = lay.sign(a, self.pki[key], env)
                sb = lay.sign(b, self.pki[key], env, target=a)
                proc, rep, s = self.assert_sig_fails(lay.pack("dir"), b["digest"], sb["digest"],
                                                     "integrity", R_TARGET,
                                                     policy=self.strict_policy())
                art_a = self.artifact(rep, a["digest"], proc)
                self.assertTrue(art_a["verified"], R.describe(proc))
                self.assertTrue(self.signature(art_a, sa["digest"], proc)["verified"])

    def test_wrong_target_size(self):
        """Payload names the right digest with the wrong size (content.Equal: size too)."""
        for env in ENVELOPES:
            with self.subTest(envelope=env):
                lay = self.layout("wrongsize")
                app = lay.image()
                t = dict(R.subject_of(app), size=app["size"] + 1)
                sig = lay.sign(app, self.pki["rsa2048"], env, target=t)
                self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"], "integrity",
                                      R_TARGET, policy=self.strict_policy())

    def test_unknown_critical_header(self):
        """ferry follows the spec: an unknown critical header fails (notation-go accepts)."""
        for env, key in self.each():
            with self.subTest(envelope=env, key=key):
                lay, app, sig = self.signed_app(key, env,
                                                extra_critical={"io.ferry.test.unknown": "x"})
                self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"], "integrity",
                                      r"io\.ferry\.test\.unknown", policy=self.strict_policy())

    def test_crit_names_absent_header(self):
        for env in ENVELOPES:
            with self.subTest(envelope=env):
                lay, app, sig = self.signed_app("rsa2048", env,
                                                crit=[N.H_SCHEME, "io.ferry.test.absent"])
                self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"], "integrity",
                                      r"io\.ferry\.test\.absent|crit",
                                      policy=self.strict_policy())

    def test_alg_mismatch(self):
        """Header alg differs from the key-derived alg (the primitive signature is valid
        for the header alg)."""
        for env, key, alg in (("jws", "rsa2048", "PS384"), ("jws", "ec256", "ES384"),
                              ("cose", "rsa2048", "PS512"), ("cose", "ec384", "ES256")):
            with self.subTest(envelope=env, key=key, alg=alg):
                lay, app, sig = self.signed_app(key, env, alg=alg)
                self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"], "integrity",
                                      R_ALG, policy=self.strict_policy())

    def test_padded_base64(self):
        lay, app, sig = self.signed_app("rsa2048", "jws", padded=True)
        self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"], "integrity", R_B64,
                              policy=self.strict_policy())

    def test_corrupted_signature_value(self):
        for env, key in self.each():
            with self.subTest(envelope=env, key=key):
                lay, app, sig = self.signed_app(key, env, corrupt_signature=True)
                # integrity is enforced at every level but skip
                self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"], "integrity",
                                      R_BAD_SIG, policy=self.strict_policy(level="audit"))

    def test_cose_untagged(self):
        lay, app, sig = self.signed_app("ec256", "cose", untagged=True)
        self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"], "integrity",
                              r"tag|cose|sign1", policy=self.strict_policy())

    def test_chain_without_root(self):
        leaf = self.pki["rsa2048"]
        for env in ENVELOPES:
            with self.subTest(envelope=env):
                lay, app, sig = self.signed_app(leaf, env, chain=leaf.chain[:2])
                self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"], "integrity",
                                      R_CHAIN, policy=self.strict_policy(level="audit"))

    def test_leaf_with_server_auth_eku(self):
        for env in ENVELOPES:
            with self.subTest(envelope=env):
                lay, app, sig = self.signed_app("serverauth", env)
                self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"], "integrity",
                                      R_EKU, policy=self.strict_policy())

    def test_expired_signature(self):
        """expiry 09:30 < verification time 10:00: strict fails, permissive/audit log."""
        exp = "2026-11-23T09:30:00Z"
        for env, key in self.each():
            lay, app, sig = self.signed_app(key, env, expiry=exp)
            b = lay.pack("dir")
            with self.subTest(envelope=env, key=key, level="strict"):
                self.assert_sig_fails(b, app["digest"], sig["digest"], "expiry", R_SIG_EXPIRED,
                                      policy=self.strict_policy())
            for level in ("permissive", "audit"):
                with self.subTest(envelope=env, key=key, level=level):
                    proc, rep, s = self.assert_sig_passes(b, app["digest"], sig["digest"],
                                                          policy=self.strict_policy(level=level))
                    self.assert_check(s, "expiry", "fail", "log", R_SIG_EXPIRED, proc)
            with self.subTest(envelope=env, key=key, when="before expiry"):
                self.assert_sig_passes(b, app["digest"], sig["digest"],
                                       policy=self.strict_policy(), vt="2026-11-23T09:29:59Z")

    def test_expired_leaf_without_timestamp(self):
        for env in ENVELOPES:
            lay, app, sig = self.signed_app("expired", env, signing_time="2021-06-01T00:00:00Z")
            b = lay.pack("dir")
            with self.subTest(envelope=env, level="strict"):
                self.assert_sig_fails(b, app["digest"], sig["digest"], "authenticTimestamp",
                                      R_CERT_EXPIRED, policy=self.strict_policy())
            with self.subTest(envelope=env, level="permissive"):
                proc, rep, s = self.assert_sig_passes(b, app["digest"], sig["digest"],
                                                      policy=self.strict_policy(level="permissive"))
                self.assert_check(s, "authenticTimestamp", "fail", "log", R_CERT_EXPIRED, proc)
            with self.subTest(envelope=env, when="inside the leaf's validity"):
                self.assert_sig_passes(b, app["digest"], sig["digest"],
                                       policy=self.strict_policy(), vt="2021-06-01T00:00:00Z")

    def test_not_yet_valid_leaf(self):
        for env in ENVELOPES:
            with self.subTest(envelope=env):
                lay, app, sig = self.signed_app("notyet", env)
                self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"],
                                      "authenticTimestamp", R_NOT_YET, policy=self.strict_policy())

    def ts_policy(self, tsa_store="tsa:tsa", verify_timestamp="always", **kw):
        return self.strict_policy(stores=["ca:ferry", tsa_store],
                                  verify_timestamp=verify_timestamp, **kw)

    def test_expired_leaf_with_trusted_timestamp(self):
        """Leaf valid around the run time, token from the trusted TSA now, verified 10
        days later (leaf expired): authenticTimestamp passes through the timestamp."""
        pki = self.pki
        for env, va in (("jws", "always"), ("cose", "always"), ("jws", "afterCertExpiry")):
            with self.subTest(envelope=env, verifyTimestamp=va):
                lay, app, sig = self.signed_app("short", env, tsa=pki,
                                                signing_time=pki.short_signing_time)
                proc, rep, s = self.assert_sig_passes(lay.pack("dir"), app["digest"], sig["digest"],
                                                      policy=self.ts_policy(verify_timestamp=va),
                                                      vt=pki.short_expired_time)
                self.assert_all_pass(s, proc)

    def test_expired_leaf_timestamp_needs_tsa_store(self):
        """Same signature, policy without a tsa store: no timestamp verification, the
        leaf is expired at verification time → fail."""
        pki = self.pki
        lay, app, sig = self.signed_app("short", "jws", tsa=pki, signing_time=pki.short_signing_time)
        self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"], "authenticTimestamp",
                              R_CERT_EXPIRED, policy=self.strict_policy(), vt=pki.short_expired_time)

    def test_timestamp_from_untrusted_tsa(self):
        pki = self.pki
        for env in ENVELOPES:
            with self.subTest(envelope=env):
                lay, app, sig = self.signed_app("short", env, tsa=pki,
                                                signing_time=pki.short_signing_time)
                self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"],
                                      "authenticTimestamp", R_TS_UNTRUSTED,
                                      policy=self.ts_policy("tsa:wrongtsa"),
                                      vt=pki.short_expired_time)

    def test_timestamp_outside_leaf_validity(self):
        """Token genTime (now) is after the expired leaf's notAfter (2022); verified after the
        token, like every timestamp test (relative to the run's clock)."""
        for env in ENVELOPES:
            with self.subTest(envelope=env):
                lay, app, sig = self.signed_app("expired", env, tsa=self.pki,
                                                signing_time="2021-06-01T00:00:00Z")
                self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"],
                                      "authenticTimestamp", R_TS_WINDOW, policy=self.ts_policy(),
                                      vt=self.pki.short_expired_time)

    def test_timestamp_required_but_absent(self):
        """A tsa store + verifyTimestamp always: a signature without a token fails."""
        for env in ENVELOPES:
            with self.subTest(envelope=env):
                lay, app, sig = self.signed_app("rsa2048", env)
                self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"],
                                      "authenticTimestamp", R_TS_MISSING, policy=self.ts_policy())

    def test_after_cert_expiry_skips_timestamp_for_valid_chain(self):
        lay, app, sig = self.signed_app("rsa2048", "cose")
        self.assert_sig_passes(lay.pack("dir"), app["digest"], sig["digest"],
                               policy=self.ts_policy(verify_timestamp="afterCertExpiry"))

    def test_timestamp_token_for_other_data(self):
        """A valid token over other bytes put into the unprotected header."""
        pki = self.pki
        lay = self.layout("ts-other")
        app = lay.image()
        env = json.loads(N.sign_jws(R.subject_of(app), pki["short"],
                                    signing_time=pki.short_signing_time))
        env["header"][N.H_TIMESTAMP] = base64.b64encode(pki.timestamp(b"other bytes")).decode()
        sig = N.add_signature_to_layout(lay.path, R.subject_of(app), R.canonical_json(env),
                                        N.JWS_MEDIA_TYPE)
        self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"], "authenticTimestamp",
                              r"mismatch|message|imprint|hash|match",
                              policy=self.ts_policy(), vt=pki.short_expired_time)

    def test_no_signature(self):
        lay = self.layout("unsigned")
        app = lay.image()
        b = lay.pack("dir")
        with self.subTest(level="strict"):
            proc, rep = self.verify(b, policy=self.strict_policy(), expect=3)
            art = self.artifact(rep, app["digest"], proc)
            self.assertFalse(art["verified"])
            self.assertEqual(art.get("signatures"), [], R.describe(proc))
            self.assertRegex(art.get("reason") or "", re.compile(R_NO_SIG, re.I), R.describe(proc))
        with self.subTest(level="audit"):
            proc, rep = self.verify(b, policy=self.strict_policy(level="audit"), expect=3)
            self.assertRegex(self.artifact(rep, app["digest"], proc).get("reason") or "",
                             re.compile(R_NO_SIG, re.I), R.describe(proc))
        with self.subTest(level="skip"):
            pol = self.policy(P.statement(level="skip", stores=(), identities=()))
            proc, rep = self.verify(b, policy=pol, expect=0)
            art = self.artifact(rep, app["digest"], proc)
            self.assertTrue(art["verified"])
            self.assertEqual(art["level"], "skip")

    def test_skip_level_ignores_invalid_signature(self):
        lay, app, sig = self.signed_app("rsa2048", "jws", corrupt_signature=True)
        pol = self.policy(P.statement(level="skip", stores=(), identities=()))
        proc, rep = self.verify(lay.pack("dir"), policy=pol, expect=0)
        self.assertEqual(self.artifact(rep, app["digest"], proc)["level"], "skip")

    def test_one_good_signature_is_enough(self):
        for env in ENVELOPES:
            with self.subTest(envelope=env):
                lay = self.layout("two-sigs")
                app = lay.image()
                bad = lay.sign(app, self.pki["untrusted"], env)
                good = lay.sign(app, self.pki["ec521"], env)
                proc, rep = self.verify(lay.pack("dir"), policy=self.strict_policy(), expect=0)
                art = self.artifact(rep, app["digest"], proc)
                self.assertTrue(art["verified"])
                self.assertTrue(self.signature(art, good["digest"], proc)["verified"])
                for s in art["signatures"]:
                    if s["digest"] == bad["digest"]:
                        self.assertFalse(s["verified"], R.describe(proc))

    def test_every_root_is_verified(self):
        """Two roots, one signed: exit 3, the signed one verified, the other not."""
        lay = self.layout("tworoots")
        a = lay.image(name=f"{REG}/team/a:v1", seed="a")
        b = lay.image(name=f"{REG}/team/b:v1", seed="b")
        lay.sign(a, self.pki["rsa2048"])
        proc, rep = self.verify(lay.pack("dir"), policy=self.strict_policy(), expect=3)
        self.assertTrue(self.artifact(rep, a["digest"], proc)["verified"])
        art_b = self.artifact(rep, b["digest"], proc)
        self.assertFalse(art_b["verified"])
        self.assertRegex(art_b.get("reason") or "", re.compile(R_NO_SIG, re.I), R.describe(proc))

    def test_sbom_referrer_is_not_a_signature(self):
        lay, app, sig = self.signed_app("rsa2048", "jws")
        lay.referrer(app)
        proc, rep, _ = self.assert_sig_passes(lay.pack("dir"), app["digest"], sig["digest"],
                                              policy=self.strict_policy())
        art = self.artifact(rep, app["digest"], proc)
        self.assertEqual([s["digest"] for s in art["signatures"]], [sig["digest"]])

    def test_policy_scope_exact_beats_wildcard(self):
        lay, app, sig = self.signed_app("rsa2048", "jws")
        b = lay.pack("dir")
        with self.subTest(exact="untrusted store"):
            pol = self.policy(
                P.statement("wild", scopes=["*"], stores=["ca:ferry"]),
                P.statement("exact", scopes=[APP], stores=["ca:untrusted"]))
            proc, rep, s = self.assert_sig_fails(b, app["digest"], sig["digest"], "authenticity",
                                                 R_UNTRUSTED, policy=pol)
            self.assertEqual(self.artifact(rep, app["digest"])["policy"], "exact")
        with self.subTest(exact="trusted store"):
            pol = self.policy(
                P.statement("wild", scopes=["*"], stores=["ca:untrusted"]),
                P.statement("exact", scopes=[f"{REG}/team/other", APP], stores=["ca:ferry"]))
            proc, rep, s = self.assert_sig_passes(b, app["digest"], sig["digest"], policy=pol)
            art = self.artifact(rep, app["digest"])
            self.assertEqual(art["policy"], "exact")
            self.assertEqual(art["scope"], APP)

    def test_policy_scope_no_match(self):
        lay, app, sig = self.signed_app("rsa2048", "jws")
        pol = self.policy(P.statement("other", scopes=[f"{REG}/team/other"]))
        proc, rep = self.verify(lay.pack("dir"), policy=pol, expect=3)
        art = self.artifact(rep, app["digest"], proc)
        self.assertFalse(art["verified"])
        self.assertIsNone(art.get("policy"), R.describe(proc))
        self.assertEqual(art["scope"], APP)
        self.assertRegex(art.get("reason") or "", re.compile(R_NO_POLICY, re.I), R.describe(proc))

    def test_scope_override(self):
        lay, app, sig = self.signed_app("ec256", "cose")
        b = lay.pack("tar")
        pol = self.policy(P.statement("local", scopes=["local/override"]))
        with self.subTest(scope=None):
            proc, rep = self.verify(b, policy=pol, expect=3)
            self.assertIsNone(self.artifact(rep, app["digest"], proc).get("policy"))
        with self.subTest(scope="local/override"):
            proc, rep, s = self.assert_sig_passes(b, app["digest"], sig["digest"], policy=pol,
                                                  scope="local/override")
            art = self.artifact(rep, app["digest"])
            self.assertEqual(art["scope"], "local/override")
            self.assertEqual(art["policy"], "local")

    def test_policy_scope_is_normalised(self):
        """The spelling of a host does not choose the statement (design §8, issue 13 §4): the
        recorded source, ``--scope`` and the policy's registryScopes are compared with the host
        lowercased, default ports dropped and docker.io's ``library/`` expanded. An unsigned
        bundle under a strict statement for the lowercase host and a ``*`` statement at ``skip``
        fails whichever way its source host is spelled."""
        lax = P.statement("lax", scopes=["*"], level="skip", stores=(), identities=())
        pol = self.policy(P.statement("strict", scopes=[APP]), lax)
        spellings = [APP, "REG.FERRY.TEST/team/app", "reg.ferry.test:443/team/app",
                     "Reg.Ferry.Test:0443/team/app", "reg.ferry.test:80/team/app"]
        for spelling in spellings:
            with self.subTest(source=spelling):
                lay = self.layout("unsigned-spelling")
                app = lay.image(name=f"{spelling}:v1")
                proc, rep = self.verify(lay.pack("dir"), policy=pol, expect=3)
                art = self.artifact(rep, app["digest"], proc)
                self.assertFalse(art["verified"], R.describe(proc))
                self.assertEqual(art.get("policy"), "strict", R.describe(proc))
                self.assertEqual(art.get("level"), "strict", R.describe(proc))
                self.assertEqual(art["scope"], APP, R.describe(proc))
                self.assertEqual(art["reference"], f"{spelling}:v1", R.describe(proc))
                self.assertRegex(art.get("reason") or "", re.compile(R_NO_SIG, re.I),
                                 R.describe(proc))
        lay = self.layout("unsigned")
        app = lay.image()
        b = lay.pack("tar")
        with self.subTest(policy="Reg.Ferry.Test:443/team/app"):
            odd = self.policy(P.statement("strict", scopes=["Reg.Ferry.Test:443/team/app"]), lax)
            proc, rep = self.verify(b, policy=odd, expect=3)
            art = self.artifact(rep, app["digest"], proc)
            self.assertEqual((art.get("policy"), art["scope"]), ("strict", APP), R.describe(proc))
        with self.subTest(scope="REG.FERRY.TEST:443/team/app"):
            proc, rep = self.verify(b, policy=pol, scope="REG.FERRY.TEST:443/team/app", expect=3)
            art = self.artifact(rep, app["digest"], proc)
            self.assertEqual((art.get("policy"), art["scope"]), ("strict", APP), R.describe(proc))
        with self.subTest(source="index.docker.io/library/alpine", policy="docker.io/alpine"):
            hub = self.layout("unsigned-hub")
            alpine = hub.image(name="index.docker.io/library/alpine:3")
            proc, rep = self.verify(hub.pack("dir"), expect=3, policy=self.policy(
                P.statement("strict", scopes=["docker.io/alpine"]), lax))
            art = self.artifact(rep, alpine["digest"], proc)
            self.assertEqual((art.get("policy"), art["scope"]), ("strict", "docker.io/library/alpine"),
                             R.describe(proc))
        with self.subTest(other_port="reg.ferry.test:5000/team/app"):
            other = self.layout("unsigned-port")
            d = other.image(name="reg.ferry.test:5000/team/app:v1")
            proc, rep = self.verify(other.pack("dir"), policy=pol, expect=0)
            art = self.artifact(rep, d["digest"], proc)
            self.assertEqual((art.get("policy"), art["scope"]), ("lax", "reg.ferry.test:5000/team/app"),
                             R.describe(proc))
        with self.subTest(ambiguous="two statements, one repository"):
            amb = self.policy(P.statement("strict", scopes=[APP]),
                              P.statement("other", scopes=["REG.FERRY.TEST:443/team/app"]))
            proc, _ = self.verify(b, policy=amb, json_out=False)
            self.assert_error(proc, 1, os.path.basename(amb), f'"{APP}"',
                              '"REG.FERRY.TEST:443/team/app"', "same repository")

    def test_malformed_trust_policy(self):
        lay, app, sig = self.signed_app("rsa2048", "jws")
        b = lay.pack("dir")
        cases = {
            "not-json": (b'{"version": "1.0", "trustPolicies": [ {', ()),
            "integrity-override": (None, ("integrity",)),
            "bad-version": (None, ("version",)),
            "dup-scope": (None, (APP,)),
        }
        docs = {
            "integrity-override": P.trust_policy(P.statement(override={"integrity": "log"})),
            "bad-version": dict(P.trust_policy(P.statement()), version="2.0"),
            "dup-scope": P.trust_policy(P.statement("a", scopes=[APP]),
                                        P.statement("b", scopes=[APP])),
        }
        for name, (raw, needles) in cases.items():
            with self.subTest(case=name):
                path = self.new_path(f"policy-{name}.json")
                with open(path, "wb") as f:
                    f.write(raw if raw is not None else R.canonical_json(docs[name]))
                proc, _ = self.verify(b, policy=path, json_out=False)
                self.assert_error(proc, 1, os.path.basename(path), *needles)

    def test_missing_trust_policy_file(self):
        lay, app, sig = self.signed_app("rsa2048", "jws")
        proc, _ = self.verify(lay.pack("dir"), policy=os.path.join(self.tmp, "absent.json"),
                              json_out=False)
        self.assert_error(proc, 1, "absent.json")

    def test_manifest_forms(self):
        for form in ("new", "legacy"):
            for env, key in self.each():
                with self.subTest(form=form, envelope=env, key=key):
                    lay, app, sig = self.signed_app(key, env, form=form)
                    proc, rep, s = self.assert_sig_passes(lay.pack("tar"), app["digest"],
                                                          sig["digest"], policy=self.strict_policy())
                    self.assert_all_pass(s, proc)

    def test_signature_with_foreign_artifact_type_is_ignored(self):
        """A manifest with artifactType notary but a non-empty config is not a Notation
        signature (SPEC §1.1): the artifact is unsigned."""
        lay = self.layout("foreigncfg")
        app = lay.image()
        env = N.sign_jws(R.subject_of(app), self.pki["rsa2048"])
        man, _ = N.signature_manifest(R.subject_of(app), env, N.JWS_MEDIA_TYPE, "new")
        m = json.loads(man)
        cfg = b'{"x":1}'
        lay.put(cfg)
        lay.put(env)
        m["config"] = R.descriptor("application/vnd.example.config+json", cfg)
        data = R.canonical_json(m)
        lay.put(data)
        lay._add_entry(R.descriptor(R.OCI_MANIFEST, data, artifactType=N.NOTARY_SIGNATURE))
        proc, rep = self.verify(lay.pack("dir"), policy=self.strict_policy(), expect=3)
        art = self.artifact(rep, app["digest"], proc)
        self.assertEqual(art.get("signatures"), [], R.describe(proc))

    def test_unsupported_envelope_media_type(self):
        lay = self.layout("badmt")
        app = lay.image()
        env = N.sign_jws(R.subject_of(app), self.pki["rsa2048"])
        sig = N.add_signature_to_layout(lay.path, R.subject_of(app), env,
                                        "application/vnd.example.unknown+json")
        self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"], "integrity",
                              r"media type|unsupported|not supported", policy=self.strict_policy())

    def test_signing_authority_scheme(self):
        for env in ENVELOPES:
            lay, app, sig = self.signed_app("rsa3072", env, scheme=N.SCHEME_SA)
            b = lay.pack("dir")
            with self.subTest(envelope=env, stores="signingAuthority:sa"):
                proc, rep, s = self.assert_sig_passes(
                    b, app["digest"], sig["digest"],
                    policy=self.strict_policy(stores=["signingAuthority:sa"]))
                self.assert_all_pass(s, proc)
            with self.subTest(envelope=env, stores="ca:ferry"):
                self.assert_sig_fails(b, app["digest"], sig["digest"], "authenticity", r".",
                                      policy=self.strict_policy(stores=["ca:ferry"]))

    def test_signing_authority_time_outside_validity(self):
        """signingAuthority: every chain cert must be valid at authenticSigningTime."""
        lay, app, sig = self.signed_app("expired", "jws", scheme=N.SCHEME_SA,
                                        signing_time="2023-01-01T00:00:00Z")
        self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"], "authenticTimestamp",
                              R_CERT_EXPIRED + "|validity|signing time",
                              policy=self.strict_policy(stores=["signingAuthority:sa"]))

    def test_human_output(self):
        lay, app, sig = self.signed_app("rsa2048", "jws")
        pol = self.strict_policy(identities=[P.OTHER_IDENTITY])
        proc, _ = self.verify(lay.pack("dir"), policy=pol, json_out=False, expect=3)
        out = proc.stdout + proc.stderr
        self.assertIn(APP, out, R.describe(proc))
        self.assertRegex(out, re.compile(r"trusted.?identity", re.I), R.describe(proc))
        self.assertRegex(out, re.compile(r"fail", re.I), R.describe(proc))
        self.assertRegex(out, re.compile(R_IDENTITY, re.I), R.describe(proc))
        proc, _ = self.verify(lay.pack("dir"), policy=self.strict_policy(), json_out=False,
                              expect=0)
        out = proc.stdout + proc.stderr
        for name in ("integrity", "authenticity", "expiry", "revocation"):
            self.assertRegex(out, re.compile(name, re.I), R.describe(proc))


# ---------------------------------------------------------------------------
# Revocation
# ---------------------------------------------------------------------------

class Revocation(VerifyTest):
    """Leaf ``cdp`` (CRL distribution point http://crl.invalid/inter.crl), CRLs issued
    by the intermediate given with --crl (offline; matched by issuer, not URL)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bundles = {}
        for env in ENVELOPES:
            lay = Layout(os.path.join(cls.tmp, f"cdp-{env}"))
            app = lay.image()
            sig = lay.sign(app, cls.pki["cdp"], env)
            cls.bundles[env] = (lay.pack("dir"), app, sig)

    def crl(self, name):
        return self.pki.crls[name]

    def crl_entry(self, rep, path, proc):
        entries = [c for c in rep.get("crls", []) if os.path.basename(path) in (c.get("source") or "")]
        self.assertEqual(len(entries), 1, f"want one crls[] entry from {path}" + R.describe(proc))
        return entries[0]

    def test_fresh_crl_not_listing_leaf(self):
        for env in ENVELOPES:
            with self.subTest(envelope=env):
                b, app, sig = self.bundles[env]
                proc, rep, s = self.assert_sig_passes(b, app["digest"], sig["digest"],
                                                      policy=self.strict_policy(),
                                                      crls=[self.crl("fresh")])
                self.assert_all_pass(s, proc)
                info = self.pki.crl_info["fresh"]
                c = self.crl_entry(rep, self.crl("fresh"), proc)
                self.assertIn("ferry test intermediate", c.get("issuer", ""), R.describe(proc))
                self.assertEqual(c.get("thisUpdate"), info["thisUpdate"])
                self.assertEqual(c.get("nextUpdate"), info["nextUpdate"])
                self.assertIs(c.get("fresh"), True)

    def test_crl_directory_and_pem(self):
        d = os.path.join(self.tmp, "crl-dir")
        os.makedirs(d, exist_ok=True)
        shutil.copy(self.crl("fresh"), os.path.join(d, "inter.crl"))
        b, app, sig = self.bundles["jws"]
        with self.subTest(form="dir"):
            self.assert_sig_passes(b, app["digest"], sig["digest"], policy=self.strict_policy(),
                                   crls=[d])
        with self.subTest(form="pem"):
            self.assert_sig_passes(b, app["digest"], sig["digest"], policy=self.strict_policy(),
                                   crls=[self.crl("fresh") + ".pem"])

    def test_revoked(self):
        for env in ENVELOPES:
            b, app, sig = self.bundles[env]
            crls = [self.crl("revoked")]
            with self.subTest(envelope=env, level="strict"):
                self.assert_sig_fails(b, app["digest"], sig["digest"], "revocation", R_REVOKED,
                                      policy=self.strict_policy(), crls=crls)
            for level in ("permissive", "audit"):
                with self.subTest(envelope=env, level=level):
                    proc, rep, s = self.assert_sig_passes(b, app["digest"], sig["digest"],
                                                          policy=self.strict_policy(level=level),
                                                          crls=crls)
                    self.assert_check(s, "revocation", "fail", "log", R_REVOKED, proc)
            with self.subTest(envelope=env, override="revocation: skip"):
                proc, rep, s = self.assert_sig_passes(
                    b, app["digest"], sig["digest"], crls=crls,
                    policy=self.strict_policy(override={"revocation": "skip"}))
                self.assert_check(s, "revocation", "skipped", "skip", None, proc)

    def test_no_crl_is_unknown(self):
        for env in ENVELOPES:
            b, app, sig = self.bundles[env]
            with self.subTest(envelope=env, level="strict"):
                proc, rep, s = self.assert_sig_fails(b, app["digest"], sig["digest"], "revocation",
                                                     R_UNKNOWN, policy=self.strict_policy())
                reason = self.check(s, "revocation")["reason"]
                self.assertTrue(P.CDP_URL in reason or "ferry test intermediate" in reason
                                or "ferry test cdp" in reason,
                                f"reason should name the missing CRL (URL or issuer): {reason!r}")
            with self.subTest(envelope=env, level="permissive"):
                proc, rep, s = self.assert_sig_passes(b, app["digest"], sig["digest"],
                                                      policy=self.strict_policy(level="permissive"))
                self.assert_check(s, "revocation", "fail", "log", R_UNKNOWN, proc)

    def test_stale_crl(self):
        b, app, sig = self.bundles["jws"]
        stale = self.crl("stale")
        proc, rep, s = self.assert_sig_fails(b, app["digest"], sig["digest"], "revocation",
                                             R_UNKNOWN, policy=self.strict_policy(), crls=[stale])
        reason = self.check(s, "revocation")["reason"]
        self.assertIn("2022-01-01", reason, "reason names the stale CRL's nextUpdate")
        self.assertTrue("stale.crl" in reason or "ferry test intermediate" in reason,
                        f"reason names the CRL: {reason!r}")
        c = self.crl_entry(rep, stale, proc)
        self.assertIs(c.get("fresh"), False)
        self.assertEqual(c.get("nextUpdate"), "2022-01-01T00:00:00Z")
        self.assertEqual(c.get("thisUpdate"), "2021-01-01T00:00:00Z")
        with self.subTest(when="before nextUpdate"):
            self.assert_sig_passes(b, app["digest"], sig["digest"], policy=self.strict_policy(),
                                   crls=[stale], vt="2021-06-01T00:00:00Z")

    def test_crl_signed_by_other_key(self):
        b, app, sig = self.bundles["cose"]
        self.assert_sig_fails(b, app["digest"], sig["digest"], "revocation", R_UNKNOWN,
                              policy=self.strict_policy(), crls=[self.crl("wrong_key")])
        with self.subTest(also="fresh"):
            self.assert_sig_passes(b, app["digest"], sig["digest"], policy=self.strict_policy(),
                                   crls=[self.crl("wrong_key"), self.crl("fresh")])

    def test_leaf_without_cdp_needs_no_crl(self):
        lay, app, sig = self.signed_app("rsa2048", "jws")
        proc, rep, s = self.assert_sig_passes(lay.pack("dir"), app["digest"], sig["digest"],
                                              policy=self.strict_policy())
        self.assert_check(s, "revocation", "pass", "enforce", None, proc)

    def test_crls_listed_in_report(self):
        b, app, sig = self.bundles["jws"]
        crls = [self.crl(n) for n in ("fresh", "stale", "wrong_key")]
        proc, rep = self.verify(b, policy=self.strict_policy(), crls=crls, expect=0)
        for name in ("fresh", "stale", "wrong_key"):
            with self.subTest(crl=name):
                c = self.crl_entry(rep, self.crl(name), proc)
                info = self.pki.crl_info[name]
                self.assertIn("ferry test intermediate", c.get("issuer", ""))
                self.assertEqual(c.get("thisUpdate"), info["thisUpdate"])
                self.assertEqual(c.get("nextUpdate"), info["nextUpdate"])
                self.assertIs(c.get("fresh"), name != "stale")

    def test_unparsable_crl_is_error(self):
        bad = os.path.join(self.tmp, "garbage.crl")
        with open(bad, "wb") as f:
            f.write(b"not a crl")
        b, app, sig = self.bundles["jws"]
        proc, _ = self.verify(b, policy=self.strict_policy(), crls=[bad], json_out=False)
        self.assert_error(proc, 1, "garbage.crl")


# ---------------------------------------------------------------------------
# ferry save → ferry verify (real registry)
# ---------------------------------------------------------------------------

@unittest.skipIf(shutil.which(R.REGISTRY_BIN) is None, f"{R.REGISTRY_BIN} not installed")
class SavedBundle(VerifyTest):
    """Signatures pushed to a docker-registry, saved by ``ferry save``, verified: the
    scope comes from the bundle's io.containerd.image.name (host:port/repo)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.reg = R.Registry("verify-src").start()
        cls.addClassCleanup(cls.reg.stop)
        app = R.push_image(cls.reg, "demo/app", "v1", [R.seeded_bytes("sv-0", 4096),
                                                       R.seeded_bytes("sv-1", 70000)])
        cls.app = R.subject_of(app)
        cls.sigs = {}
        for env, key in (("jws", "rsa2048"), ("cose", "ec384")):
            ident = cls.pki[key]
            data, mt = N.sign(env, cls.app, ident)
            cls.sigs[env] = R.push_referrer(
                cls.reg, "demo/app", app, N.NOTARY_SIGNATURE, data, mt,
                {N.THUMBPRINT: json.dumps(ident.thumbprints),
                 "org.opencontainers.image.created": P.SIGNING_TIME})
        R.push_sbom(cls.reg, "demo/app", app, "sv")
        cls.scope = f"{cls.reg.host}/demo/app"

    def save(self, fmt):
        out = self.new_path(f"saved.{fmt}") if fmt != "dir" else self.new_path("saved-dir")
        self.ferry("save", "--plain-http", f"{self.scope}:v1", "-o", out, expect=0)
        return out

    def test_saved_bundle_verifies(self):
        for fmt in FORMATS:
            with self.subTest(fmt=fmt):
                b = self.save(fmt)
                pol = self.policy(P.statement("exact", scopes=[self.scope]))
                proc, rep = self.verify(b, policy=pol, expect=0)
                art = self.artifact(rep, self.app["digest"], proc)
                self.assertEqual(art["scope"], self.scope)
                self.assertEqual(art["reference"], f"{self.scope}:v1")
                self.assertEqual(art["policy"], "exact")
                for env, s in self.sigs.items():
                    self.assert_all_pass(self.signature(art, s["digest"], proc), proc)
                proc, rep = self.verify(b, integrity_only=True, expect=0)

    def test_saved_bundle_scope_mismatch(self):
        b = self.save("tar")
        pol = self.policy(P.statement("other", scopes=[f"{self.reg.host}/demo/other"]))
        proc, rep = self.verify(b, policy=pol, expect=3)
        self.assertIsNone(self.artifact(rep, self.app["digest"], proc).get("policy"))


class BundledTrust(VerifyTest):
    """Trust material carried in the bundle (design §3, issue 4): ``ferry save
    --trust-policy --trust-store --crl`` prints a pin; ``ferry verify --trust-pin`` uses the
    bundle's own trust only when the pin matches; local options override it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.reg = R.Registry("trust-src").start()
        cls.addClassCleanup(cls.reg.stop)
        app = R.push_image(cls.reg, "demo/app", "v1", [R.seeded_bytes("bt-0", 4096)])
        cls.app = R.subject_of(app)
        ident = cls.pki["cdp"]  # names a CRL distribution point: revocation needs a CRL
        data, mt = N.sign("jws", cls.app, ident)
        cls.sig = R.push_referrer(cls.reg, "demo/app", app, N.NOTARY_SIGNATURE, data, mt,
                                  {N.THUMBPRINT: json.dumps(ident.thumbprints)})
        cls.scope = f"{cls.reg.host}/demo/app"
        # "carried" for the source (offline verify), "mirror" for wherever push --verify
        # lands the image (its destination repository chooses, issue 13 §4).
        cls.strict = P.write_trust_policy(os.path.join(cls.tmp, "trustpolicy.json"),
                                          P.statement("carried", scopes=[cls.scope]),
                                          P.statement("mirror", scopes=["*"]))

    def save(self, fmt, crl):
        out = self.new_path(f"trusted.{fmt}") if fmt != "dir" else self.new_path("trusted-dir")
        proc = self.ferry("save", "--plain-http", f"{self.scope}:v1", "-o", out,
                          "--trust-policy", self.strict, "--trust-store", self.store,
                          "--crl", self.pki.crls[crl], "--json", expect=0)
        pin = json.loads(proc.stdout)["trustPin"]
        self.assertRegex(pin, r"^sha256:[0-9a-f]{64}$")
        return out, pin

    def test_pin_verifies_with_bundled_trust_only(self):
        for fmt in FORMATS:
            with self.subTest(fmt=fmt):
                b, pin = self.save(fmt, "fresh")
                proc, rep = self.verify(b, extra=["--trust-pin", pin], expect=0)
                art = self.artifact(rep, self.app["digest"], proc)
                self.assertEqual(art["policy"], "carried")
                self.assert_all_pass(self.signature(art, self.sig["digest"], proc), proc)
                self.assertEqual(len(rep["crls"]), 1, R.describe(proc))
                self.assertTrue(rep["crls"][0]["fresh"], R.describe(proc))
                # inspect shows the trust material and its files
                ins = json.loads(self.ferry("inspect", b, "--json", expect=0).stdout)
                self.assertEqual(ins["trust"]["digest"], pin)
                files = ins["trust"]["files"]
                self.assertIn("trustpolicy.json", files)
                self.assertTrue(any(f.startswith("truststore/x509/ca/ferry/") for f in files), files)
                self.assertTrue(any(f.startswith("crl/") for f in files), files)

    def test_serve_verifies_with_the_pin_before_it_listens(self):
        """``ferry serve --trust-pin`` (issue 17): the signature verifies with the carried trust
        material, then the bundle is served with its referrer; a CRL saying the signer is
        revoked stops it before it listens (exit 3, one error line)."""
        import subprocess
        import urllib.request
        b, pin = self.save("tar", "fresh")
        cmd = [R.ferry_binary(), "serve", b, "--trust-pin", pin, "--verification-time", VT,
               "--listen", "127.0.0.1:0"]
        srv = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=R.child_env())
        try:
            lines = []
            while True:
                line = srv.stderr.readline()
                self.assertTrue(line, "ferry serve ended before it listened:\n" + "".join(lines))
                lines.append(line)
                m = re.search(r"ferry: serving .* at http://127\.0\.0\.1:(\d+)/", line)
                if m:
                    break
            base = f"http://127.0.0.1:{m.group(1)}"
            with urllib.request.urlopen(f"{base}/v2/demo/app/referrers/{self.app['digest']}", timeout=30) as r:
                listed = [d["digest"] for d in json.loads(r.read())["manifests"]]
            self.assertEqual(listed, [self.sig["digest"]])
        finally:
            srv.terminate()
            srv.wait(30)
            srv.stderr.close()
        self.assertEqual(srv.returncode, 0)
        revoked, pin = self.save("tar", "revoked")
        proc = self.ferry("serve", revoked, "--trust-pin", pin, "--verification-time", VT,
                          "--listen", "127.0.0.1:0", expect=3)
        self.assertEqual(proc.stderr.count("ferry: error:"), 1, R.describe(proc))
        self.assertIn("not serving", proc.stderr, R.describe(proc))
        self.assertNotIn("ferry: serving", proc.stderr, R.describe(proc))

    def test_wrong_pin_fails_clearly(self):
        b, pin = self.save("tar", "fresh")
        other = "sha256:" + "0" * 64
        proc = self.ferry("verify", b, "--trust-pin", other, "--verification-time", VT, expect=3)
        self.assertIn(other, proc.stderr)
        self.assertIn(pin, proc.stderr)
        self.assertEqual(proc.stderr.count("ferry: error:"), 1, R.describe(proc))

    def test_no_pin_refuses_and_explains(self):
        b, pin = self.save("tar", "fresh")
        proc = self.ferry("verify", b, "--verification-time", VT, expect=2)
        self.assertIn("--trust-pin", proc.stderr)
        self.assertIn(pin, proc.stderr)

    def test_revoked_signer_per_bundled_crl_fails_strict(self):
        b, pin = self.save("tar.zst", "revoked")
        proc, rep = self.verify(b, extra=["--trust-pin", pin], expect=3)
        art = self.artifact(rep, self.app["digest"], proc)
        checks = {c["name"]: c for c in self.signature(art, self.sig["digest"], proc)["checks"]}
        self.assertEqual(checks["revocation"]["result"], "fail", R.describe(proc))
        self.assertIn("revoked", checks["revocation"]["reason"])
        # A local policy overrides the bundled one: audit logs the revocation.
        audit = self.policy(P.statement("local-audit", scopes=[self.scope], level="audit"))
        proc, rep = self.verify(b, extra=["--trust-pin", pin, "--trust-policy", audit], expect=0)
        self.assertEqual(self.artifact(rep, self.app["digest"], proc)["policy"], "local-audit")

    def test_push_verify_with_pin(self):
        with R.Registry("trust-dst") as dst:
            good, pin = self.save("tar", "fresh")
            self.ferry("push", "--plain-http", "--verify", "--trust-pin", pin,
                       "--verification-time", VT, good, dst.host, expect=0)
            self.assertIn("v1", dst.list_tags("demo/app"))
            bad, bad_pin = self.save("tar", "revoked")
            proc = self.ferry("push", "--plain-http", "--verify", "--trust-pin", bad_pin,
                              "--verification-time", VT, bad, f"{dst.host}/other", expect=3)
            self.assertIn("revoked", proc.stderr)
            self.assertEqual([r for r in dst.catalog() if r.startswith("other/")], [])

    def test_save_notes_missing_crl(self):
        out = self.new_path("nocrl.tar")
        proc = self.ferry("save", "--plain-http", f"{self.scope}:v1", "-o", out,
                          "--trust-policy", self.strict, "--trust-store", self.store, expect=0)
        self.assertIn("note:", proc.stderr)
        self.assertIn("crl.invalid/inter.crl", proc.stderr)
        out2 = self.new_path("withcrl.tar")
        proc = self.ferry("save", "--plain-http", f"{self.scope}:v1", "-o", out2,
                          "--trust-policy", self.strict, "--trust-store", self.store,
                          "--crl", self.pki.crls["fresh"], expect=0)
        self.assertNotIn("note:", proc.stderr)

    def test_fetch_crls_downloads_and_carries_them(self):
        # A leaf whose CRL distribution point is a loopback HTTP server serving the fresh CRL.
        import http.server, socketserver, threading
        d = tempfile.mkdtemp(dir=self.tmp)
        # Everything here is relative to the run's clock (the leaf is issued with -days): the
        # CRL too, so that save (which judges CRLs at its own clock) and verify agree on it.
        now = datetime.datetime.now(datetime.timezone.utc)
        ca = P.CA(d, "fetch", "2001")
        ca.cert, ca.key = self.pki.inter.cert, self.pki.inter.key
        ca.gencrl(os.path.join(d, "inter.crl"), P.gentime(now - datetime.timedelta(days=1)),
                  P.gentime(now + datetime.timedelta(days=30)))
        handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=d)
        httpd = socketserver.TCPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        self.addCleanup(httpd.shutdown)
        url = f"http://127.0.0.1:{httpd.server_address[1]}/inter.crl"
        key, csr, cert, ext = (os.path.join(d, n) for n in ("k.pem", "c.csr", "leaf.pem", "ext.cnf"))
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                    f"extendedKeyUsage=codeSigning\ncrlDistributionPoints=URI:{url}\n")
        P.run([P.OPENSSL, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
               "-subj", "/C=US/ST=WA/O=ferry-test/CN=fetch", "-out", csr])
        P.run([P.OPENSSL, "x509", "-req", "-in", csr, "-CA", self.pki.inter.cert, "-CAkey",
               self.pki.inter.key, "-set_serial", "4242", "-days", "3650", "-extfile", ext, "-out", cert])
        ident = P.Identity("fetch", key, cert, self.pki.inter.chain, "rsa2048",
                           "/C=US/ST=WA/O=ferry-test/CN=fetch")
        app = R.push_image(self.reg, "demo/fetch", "v1", [R.seeded_bytes("bt-f", 2048)])
        data, mt = N.sign("jws", R.subject_of(app), ident, signing_time=P.rfc3339(now))
        sig = R.push_referrer(self.reg, "demo/fetch", app, N.NOTARY_SIGNATURE, data, mt)
        scope = f"{self.reg.host}/demo/fetch"
        pol = P.write_trust_policy(self.new_path("fetchpolicy.json"), P.statement("fetch", scopes=[scope]))
        out = self.new_path("fetched.tar")
        proc = self.ferry("save", "--plain-http", f"{scope}:v1", "-o", out, "--trust-policy", pol,
                          "--trust-store", self.store, "--fetch-crls", "--json", expect=0)
        self.assertIn(url, proc.stderr)
        pin = json.loads(proc.stdout)["trustPin"]
        # The leaf and the CRL were issued just now: verify at the run's clock.
        proc, rep = self.verify(out, extra=["--trust-pin", pin], vt=None, expect=0)
        art = self.artifact(rep, app["digest"], proc)
        checks = {c["name"]: c for c in self.signature(art, sig["digest"], proc)["checks"]}
        self.assertEqual(checks["revocation"]["result"], "pass", R.describe(proc))
        self.assertEqual(len(rep["crls"]), 1, R.describe(proc))

    def test_save_notes_missing_tsa_crl(self):
        # An upstream envelope countersigned by GlobalSign's TSA, whose chain names CRLs.
        shared = find_shared()
        if not shared:
            self.skipTest("shared/notation not found")
        env = os.path.join(shared, "notation", "notation-go", "verifier-testdata", "timestamp",
                           "sigEnv", "jwsWithTimestamp.sig")
        with open(env, "rb") as f:
            data = f.read()
        app = R.push_image(self.reg, "demo/tsa", "v1", [R.seeded_bytes("bt-t", 1024)])
        R.push_referrer(self.reg, "demo/tsa", app, N.NOTARY_SIGNATURE, data, "application/jose+json")
        out = self.new_path("tsa.tar")
        proc = self.ferry("save", "--plain-http", f"{self.reg.host}/demo/tsa:v1", "-o", out, expect=0)
        self.assertIn("timestamping certificate", proc.stderr)
        self.assertIn("crl.globalsign.com", proc.stderr)

    def test_stale_bundled_crl_is_reported(self):
        b, pin = self.save("dir", "stale")
        proc, rep = self.verify(b, extra=["--trust-pin", pin], expect=3)
        self.assertFalse(rep["crls"][0]["fresh"], R.describe(proc))
        self.assertIn("2022-01-01", json.dumps(rep["artifacts"]), R.describe(proc))


# ---------------------------------------------------------------------------
# Upstream corpus (notation e2e): CASES.md §1, §2, §11.1, §13
# ---------------------------------------------------------------------------

def find_shared():
    env = os.environ.get("FERRY_SHARED")
    if env:
        return env if os.path.isdir(os.path.join(env, "notation")) else None
    d = R.REPO_ROOT
    while True:
        if os.path.isdir(os.path.join(d, "shared", "notation")):
            return os.path.join(d, "shared")
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


SHARED = find_shared()
E2E_TARGET = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9"

# (case, layout, trust store, policy, expected exit, check that decides or None,
#  its expected (result, action) or None, reason regex)
UPSTREAM_S1 = [
    ("1.1", "e2e-valid-signature", "e2e", "trustpolicy.json", 0, None, None, None),
    ("1.2", "e2e-valid-signature", "e2e", "valid_trusted_identity_trustpolicy.json", 0,
     "trustedIdentity", ("pass", "enforce"), None),
    ("1.3", "e2e-valid-signature", "e2e", "invalid_trusted_identity_trustpolicy.json", 3,
     "trustedIdentity", ("fail", "enforce"), R_IDENTITY),
    ("1.4", "e2e-valid-signature", "multiple-identities",
     "multiple_trusted_identity_trustpolicy.json", 0, None, None, None),
    ("1.5", "e2e-valid-signature", "multiple-stores", "multiple_trust_store_trustpolicy.json", 0,
     None, None, None),
    ("1.6", "e2e-valid-signature", "new_e2e", "trustpolicy.json", 3,
     "authenticity", ("fail", "enforce"), R_UNTRUSTED),
    ("1.7", "e2e-valid-signature", "new_e2e", "permissive_trustpolicy.json", 3,
     "authenticity", ("fail", "enforce"), R_UNTRUSTED),
    ("1.8", "e2e-valid-signature", "new_e2e", "audit_trustpolicy.json", 0,
     "authenticity", ("fail", "log"), R_UNTRUSTED),
    ("1.9", "e2e-valid-signature", "new_e2e", "override_strict_trustpolicy.json", 0,
     "authenticity", ("fail", "log"), R_UNTRUSTED),
    ("1.10", "e2e-valid-signature", "new_e2e", "override_permissive_trustpolicy.json", 0,
     "authenticity", ("fail", "log"), R_UNTRUSTED),
    ("1.11", "e2e-valid-signature", "new_e2e", "override_audit_trustpolicy.json", 3,
     "authenticity", ("fail", "enforce"), R_UNTRUSTED),
    ("1.13", "e2e-expired-signature", "e2e", "trustpolicy.json", 3,
     "expiry", ("fail", "enforce"), R_SIG_EXPIRED),
    ("1.14", "e2e-expired-signature", "e2e", "permissive_trustpolicy.json", 0,
     "expiry", ("fail", "log"), R_SIG_EXPIRED),
    ("1.15", "e2e-expired-signature", "e2e", "audit_trustpolicy.json", 0,
     "expiry", ("fail", "log"), R_SIG_EXPIRED),
    ("1.16", "e2e-expired-signature", "e2e", "override_strict_trustpolicy.json", 0,
     "expiry", ("fail", "log"), R_SIG_EXPIRED),
    ("1.17", "e2e-expired-signature", "e2e", "override_permissive_trustpolicy.json", 3,
     "expiry", ("fail", "enforce"), R_SIG_EXPIRED),
    ("1.18", "e2e-expired-signature", "e2e", "override_audit_trustpolicy.json", 3,
     "expiry", ("fail", "enforce"), R_SIG_EXPIRED),
    ("1.19", "e2e-with-expired-cert", "expired_e2e", "trustpolicy.json", 3,
     "authenticTimestamp", ("fail", "enforce"), R_CERT_EXPIRED),
    ("1.20", "e2e-with-expired-cert", "expired_e2e", "permissive_trustpolicy.json", 0,
     "authenticTimestamp", ("fail", "log"), r"expired at|after certificate"),
    ("1.21", "e2e-with-expired-cert", "expired_e2e", "audit_trustpolicy.json", 0,
     "authenticTimestamp", ("fail", "log"), R_CERT_EXPIRED),
    ("1.22", "e2e-with-expired-cert", "expired_e2e", "override_strict_trustpolicy.json", 0,
     "authenticTimestamp", ("fail", "log"), R_CERT_EXPIRED),
    ("1.23-strict", "e2e-invalid-signature", "e2e", "trustpolicy.json", 3,
     "integrity", ("fail", "enforce"), r"media type|not supported|unsupported"),
    ("1.23-permissive", "e2e-invalid-signature", "e2e", "permissive_trustpolicy.json", 3,
     "integrity", ("fail", "enforce"), r"media type|not supported|unsupported"),
    ("1.23-audit", "e2e-invalid-signature", "e2e", "audit_trustpolicy.json", 3,
     "integrity", ("fail", "enforce"), r"media type|not supported|unsupported"),
    ("1.24", "e2e-invalid-signature", "e2e", "skip_trustpolicy.json", 0, None, None, None),
    ("1.27", "e2e-valid-multiple-signatures", "e2e", "trustpolicy.json", 0, None, None, None),
]

# §2: policy validation (pair with e2e-valid-signature + TS:e2e). (case, policy, exit
# codes, substrings the error line must contain (case-insensitive), scope)
UPSTREAM_S2 = [
    ("2.1", "unset_trust_store_trustpolicy.json", (1,), ["e2e"], None),
    ("2.2", "invalid_trust_store_trustpolicy.json", (1, 3), ["invalid_store"], None),
    ("2.3", "malformed_trust_store_trustpolicy.json", (1,), ["ca:"], None),
    ("2.4", "wildcard_trust_store_trustpolicy.json", (1,), ["*"], None),
    ("2.5", "unset_trusted_identity_trustpolicy.json", (1,), ["e2e"], None),
    ("2.6", "malformed_trusted_identity_trustpolicy.json", (1,), ["separator"], None),
    ("2.7", "empty_trusted_identity_trustpolicy.json", (1,), ["trusted identit"], None),
    ("2.8", "overlapped_trusted_identity_trustpolicy.json", (1,), ["overlap"], None),
    ("2.9", "wildcard_plus_other_trusted_identity_trustpolicy.json", (1,), ["*"], None),
    ("2.10", "missing_organization_trusted_identity_trustpolicy.json", (1,), ['"O"'], None),
    ("2.11", "missing_state_trusted_identity_trustpolicy.json", (1,), ['"ST"'], None),
    ("2.12", "missing_country_trusted_identity_trustpolicy.json", (1,), ['"C"'], None),
    ("2.13", "multi_statements_with_the_same_registry_scope_trustpolicy.json", (1,),
     ["localhost:5000/test-repo8"], None),
    ("2.14", "multi_statements_with_the_same_name_trustpolicy.json", (1,), ["e2e"], None),
    ("2.15", "multi_statements_with_multi_wildcard_registry_scope_trustpolicy.json", (1,),
     ["*"], None),
    ("2.16", "multi_statements_with_wildcard_registry_scope_trustpolicy.json", (0,), [], None),
    ("2.17", "empty_registry_scope_trustpolicy.json", (1,), ["registry scope"], None),
    ("2.18", "malformed_registry_scope_trustpolicy.json", (1,), ["test-repo"], None),
    ("2.19", "overlapped_registry_scope_trustpolicy.json", (1,), ["localhost:5000/test-repo6"],
     None),
    ("2.20", "wildcard_plus_other_registry_scope_trustpolicy.json", (1,), ["*"], None),
    ("2.21", "invalid_registry_scope_trustpolicy.json", (3,), [], None),
    ("2.22a", "registry_scope_trustpolicy.json", (0,), [], "localhost:5000/test-repo"),
    ("2.22b", "multiple_registry_scope_trustpolicy.json", (0,), [], "localhost:5000/test-repo2"),
    ("2.22c", "any_registry_scope_trust_policy.json", (0,), [], None),
    ("2.23", "invalid_format_trustpolicy.json", (1,), ["invalid_format_trustpolicy.json"], None),
    ("1.12", "override_integrity_for_permissive_trustpolicy.json", (1,), ["integrity"], None),
]


@unittest.skipIf(SHARED is None, "shared/notation corpus not found (set FERRY_SHARED)")
class Upstream(VerifyTest):
    """notation's own e2e layouts, trust stores and policies (CASES.md), verified with
    ``--scope local/e2e`` at 2026-11-23 (the reference date of CASES.md)."""

    SCOPE = "local/e2e"

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.e2e = os.path.join(SHARED, "notation", "notation-e2e")
        cls.derived = os.path.join(SHARED, "notation", "derived", "x5c-extracted-certs")

    def lay(self, name):
        return os.path.join(self.e2e, "oci_layout", name)

    def ts(self, name):
        return os.path.join(self.e2e, "truststores", name)

    def pol(self, name):
        return os.path.join(self.e2e, "trustpolicies", name)

    def root_digest(self, layout):
        with open(os.path.join(layout, "index.json")) as f:
            idx = json.load(f)
        tagged = [e for e in idx["manifests"]
                  if (e.get("annotations") or {}).get(R.ANN_REF_NAME) == "v1"]
        self.assertEqual(len(tagged), 1, f"{layout}: no root tagged v1 that ferry could pick")
        return tagged[0]["digest"]

    def run_case(self, case, layout, store, policy, code, check=None, expect=None, reason=None,
                 scope=SCOPE, crls=()):
        msg = f"[CASES {case}: {os.path.basename(layout)} / {os.path.basename(store)} / " \
              f"{os.path.basename(policy)}]"
        proc, rep = self.verify(layout, policy=policy, store=store, scope=scope, crls=crls)
        self.assertEqual(proc.returncode, code, msg + R.describe(proc))
        digest = self.root_digest(layout)
        art = self.artifact(rep, digest, proc)
        self.assertEqual(art.get("verified"), code == 0, msg + R.describe(proc))
        if check is None:
            return proc, rep, art
        sigs = art.get("signatures") or []
        found = [s for s in sigs if (self.check(s, check) or {}).get("result") == expect[0]
                 and (self.check(s, check) or {}).get("action") == expect[1]
                 and re.search(reason or "", self.check(s, check).get("reason") or "", re.I)]
        self.assertTrue(found, f"{msg} no signature whose {check} check is {expect} "
                               f"with reason ~ /{reason}/" + R.describe(proc))
        return proc, rep, art

    def test_s1_oci_layout_cases(self):
        for case, layout, store, policy, code, check, expect, reason in UPSTREAM_S1:
            with self.subTest(case=case):
                self.run_case(case, self.lay(layout), self.ts(store), self.pol(policy), code,
                              check, expect, reason)

    def test_s1_25_lists_the_signature(self):
        proc, rep, art = self.run_case("1.25", self.lay("e2e-valid-signature"), self.ts("e2e"),
                                       self.pol("trustpolicy.json"), 0)
        digests = [s["digest"] for s in art["signatures"]]
        self.assertEqual(digests, ["sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f"],
                         "[CASES 1.25]" + R.describe(proc))
        self.assertEqual(art["signatures"][0]["envelope"], N.JWS_MEDIA_TYPE)
        self.assert_all_pass(art["signatures"][0], proc)

    def test_s1_26_unsigned(self):
        proc, rep, art = self.run_case("1.26", self.lay("e2e"), self.ts("e2e"),
                                       self.pol("trustpolicy.json"), 3)
        self.assertEqual(art.get("signatures"), [], "[CASES 1.26]" + R.describe(proc))
        self.assertRegex(art.get("reason") or "", re.compile(R_NO_SIG, re.I),
                         "[CASES 1.26]" + R.describe(proc))

    def test_s1_policy_names(self):
        """1.27 / 2.16: which statement applied."""
        _, _, art = self.run_case("2.16", self.lay("e2e-valid-signature"), self.ts("e2e"),
                                  self.pol("multi_statements_with_wildcard_registry_scope_trustpolicy.json"), 0)
        self.assertEqual(art.get("policy"), "e2e2", "[CASES 2.16] the '*' statement applies")
        self.assertEqual(art.get("scope"), self.SCOPE)
        self.assertEqual(art.get("level"), "strict")

    def test_s1_tar_and_zst_of_upstream_layout(self):
        for fmt in FORMATS[1:]:
            with self.subTest(fmt=fmt):
                out = pack_layout(self.lay("e2e-valid-signature"),
                                  self.new_path(f"e2e-valid-signature.{fmt}"))
                proc, rep = self.verify(out, policy=self.pol("trustpolicy.json"),
                                        store=self.ts("e2e"), scope=self.SCOPE, expect=0)
                proc, rep = self.verify(out, integrity_only=True, expect=0)

    def test_s1_integrity_only(self):
        for layout in sorted(os.listdir(os.path.join(self.e2e, "oci_layout"))):
            with self.subTest(layout=layout):
                self.verify(self.lay(layout), integrity_only=True, expect=0)

    def test_s2_policy_validation(self):
        layout = self.lay("e2e-valid-signature")
        for case, policy, codes, needles, scope in UPSTREAM_S2:
            with self.subTest(case=case):
                msg = f"[CASES {case}: {policy}]"
                proc, rep = self.verify(layout, policy=self.pol(policy), store=self.ts("e2e"),
                                        scope=scope or self.SCOPE, json_out=False)
                self.assertIn(proc.returncode, codes, msg + R.describe(proc))
                if proc.returncode == 1:
                    self.assert_error(proc, 1, *needles)
                elif proc.returncode == 3 and needles:
                    out = (proc.stdout + proc.stderr).lower()
                    for n in needles:
                        self.assertIn(n.lower(), out, msg + R.describe(proc))

    def test_s2_21_no_applicable_policy(self):
        proc, rep, art = self.run_case("2.21", self.lay("e2e-valid-signature"), self.ts("e2e"),
                                       self.pol("invalid_registry_scope_trustpolicy.json"), 3)
        self.assertIsNone(art.get("policy"), "[CASES 2.21]" + R.describe(proc))
        self.assertRegex(art.get("reason") or "", re.compile(R_NO_POLICY, re.I),
                         "[CASES 2.21]" + R.describe(proc))

    def test_s2_24_policy_file_absent(self):
        proc, _ = self.verify(self.lay("e2e-valid-signature"),
                              policy=os.path.join(self.tmp, "trustpolicy.json"),
                              store=self.ts("e2e"), scope=self.SCOPE, json_out=False)
        self.assert_error(proc, 1, "trustpolicy.json")

    # -- §11.1 CRL scenario: sign e2e's target with the upstream CRL chain -------------
    def crl_bundle(self):
        crl = os.path.join(self.e2e, "crl")
        ident = P.Identity.from_files("upstream-crl-leaf", os.path.join(crl, "leaf.key"),
                                      os.path.join(crl, "certchain_with_crl.pem"), "rsa2048",
                                      os.path.join(self.tmp, "upstream-crl"))
        out = self.new_path("crl-scenario")
        shutil.copytree(self.lay("e2e"), out)
        with open(os.path.join(out, "index.json"), "rb") as f:
            idx = json.load(f)
        target = dict(idx["manifests"][0])
        target.pop("annotations", None)
        env, mt = N.sign("jws", target, ident, signing_time="2026-11-23T09:00:00Z")
        N.add_signature_to_layout(out, target, env, mt, form="legacy", identity=ident)
        return out, crl

    def test_s11_1_crl_scenario(self):
        layout, crl = self.crl_bundle()
        store = self.ts("crl")
        strict = self.pol("trustpolicy.json")
        permissive = self.pol("permissive_trustpolicy.json")
        c = lambda *names: [os.path.join(crl, n) for n in names]
        cases = [
            ("11.1a", c("leaf.crl", "intermediate.crl"), strict, 0, "revocation", ("pass", "enforce"), None),
            ("11.1b", c("leaf_revoked.crl", "intermediate.crl"), strict, 3, "revocation",
             ("fail", "enforce"), R_REVOKED),
            ("11.1c", c("leaf.crl", "intermediate_revoked.crl"), strict, 3, "revocation",
             ("fail", "enforce"), R_REVOKED),
            ("11.1f-strict", c("leaf_expired.crl", "intermediate.crl"), strict, 3, "revocation",
             ("fail", "enforce"), R_UNKNOWN),
            ("11.1f-permissive", c("leaf_expired.crl", "intermediate.crl"), permissive, 0,
             "revocation", ("fail", "log"), R_UNKNOWN),
            ("11.1-none", [], strict, 3, "revocation", ("fail", "enforce"), R_UNKNOWN),
        ]
        for case, crls, pol, code, check, expect, reason in cases:
            with self.subTest(case=case):
                self.run_case(case, layout, store, pol, code, check, expect, reason, crls=crls)

    # -- §13 timestamped layouts (derived outcomes) -------------------------------------
    def test_s13_timestamped_layouts(self):
        cert7 = os.path.join(self.derived, "testcert7_e2e-with-timestamped-signature.pem")
        if not os.path.exists(cert7):
            self.skipTest("derived testcert7 missing")
        store = P.write_truststore(self.new_path("ts-testcert7"), {
            "ca": {"e2e": [cert7]},
            "tsa": {"e2e": [os.path.join(self.ts("timestamp"), "x509", "tsa", "e2e", n)
                            for n in os.listdir(os.path.join(self.ts("timestamp"), "x509", "tsa", "e2e"))]}})
        cases = [
            ("13.1", "e2e-with-timestamped-signature", "trustpolicy.json", "expiry", R_SIG_EXPIRED),
            ("13.2", "e2e-with-invalid-timestamped-signature", "trustpolicy.json",
             "authenticTimestamp", R_CERT_EXPIRED),
            ("13.2-tsa", "e2e-with-invalid-timestamped-signature", "timestamp_trustpolicy.json",
             "authenticTimestamp", r"timestamp|countersignature|parse"),
        ]
        for case, layout, policy, check, reason in cases:
            with self.subTest(case=case):
                self.run_case(case, self.lay(layout), store, self.pol(policy), 3, check,
                              ("fail", "enforce"), reason)


if __name__ == "__main__":
    unittest.main(verbosity=2)
