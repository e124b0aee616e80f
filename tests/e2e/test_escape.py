#!/usr/bin/env python3
"""What a bundle says is escaped before a terminal sees it (issue 13 §7, design.md §8).

Bundles carry text chosen by whoever made them: annotations, reference names, image names,
artifact and media types, tar entry names, trust-file titles; a trust policy's statement
names and a certificate's subject reach the output too, and so does the bundle's own path.
Each is filled here with terminal attacks — ESC sequences (clear screen ``ESC[2J``, set the
window title ``ESC]0;…BEL``), ``\\r``, ``\\n`` followed by a fake ``verification passed``
line, ``\\b``, other C0 controls, DEL, C1 controls (U+0085, U+009B CSI), bidi controls
(U+202E, U+2066), U+2028 — and, where the format allows any byte (tar entry names, paths),
bytes that are not UTF-8. Then ``inspect``, ``inspect --json``, ``verify --integrity-only``,
``verify`` with a trust policy (and ``--json``, ``--report``), ``sign`` and ``push`` (to a
docker-registry started here, with ``--verify``, and once with stderr on a terminal so that
the progress display's log lines are exercised) run on them. Asserted for every run:
  - stdout and stderr are UTF-8 holding no byte below 0x20 but ``\\n``, no DEL, no C1
    control and no bidi or invisible format character (on the terminal, ferry's own
    cursor-up/clear sequences of the progress bars are the only escape sequences);
  - the fake ``verification passed`` never starts a line;
  - no crash; the exit code is one the command may give for that input;
  - ``--json`` output parses and gives back the bundle's strings exactly (where they are
    UTF-8; a byte that is not becomes U+FFFD, and nothing throws).

Run: python3 tests/e2e/test_escape.py [Escapes[.test_name]]   (FERRY=/abs/path/ferry)
Exit 77 (skipped) without ferry, docker-registry or openssl.
"""

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402
import pki as P  # noqa: E402

R.skip_module_unless(__name__, registry=True, programs=(P.OPENSSL,))

import test_verify as V  # noqa: E402
from test_progress import run_on_pty  # noqa: E402

FAKE = "verification passed: FAKE"
# What a hostile bundle writes wherever JSON lets it write text (no NUL: C strings end there).
EVIL = ("\x1b[2J\x1b]0;pwned\x07\r" + FAKE + "\n" + FAKE + "\b\t\x0b\x0c\x7f"
        "\x85\x9b31m\u202egnp.exe\u2066\u2069\u200e\u2028\ufeff\\x1b")
# In a tag only [A-Za-z0-9_.-] is valid: this one is refused by what parses it as a tag.
EVIL_TAG = "v1" + EVIL
# Tar entry names may hold any byte but NUL: raw C1 bytes and bytes that are not UTF-8.
EVIL_ENTRY_NAMES = (
    b"blobs/sha256/\x1b[2J\xff\xfe\r\n" + FAKE.encode() + b"\x9b31m",
    b"\x1b]0;pwned\x07\r" + FAKE.encode() + "\u202e\u2066".encode() + b"\x85\xc0\xaf",
)
CRASH_MARKERS = ("Traceback", "terminate called", "Segmentation fault", "AddressSanitizer",
                 "runtime error:", "LeakSanitizer", "core dumped", "type_error")
# Code points that must never reach a terminal raw (util/text.hpp unsafe_for_terminal).
UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b\u200e\u200f"
                    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
                    "\U000e0000-\U000e007f]")
# ferry's own sequences on a terminal (progress.cpp): cursor to a frame's first line, clear.
REDRAW = re.compile(r"\x1b\[\d+F\x1b\[J")
TRUST_TYPE = "application/vnd.ferry.trust.v1+json"
TITLE = "org.opencontainers.image.title"


def ferry(*args, cwd=None):
    """Runs ferry; stdout and stderr as bytes (the output is checked byte for byte)."""
    cmd = [R.ferry_binary()] + [a if isinstance(a, bytes) else str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, timeout=300, cwd=cwd, env=R.child_env())


def describe(proc):
    return (f"\n$ {proc.args!r}\nexit {proc.returncode}\n--- stdout ---\n{proc.stdout[:6000]!r}"
            f"\n--- stderr ---\n{proc.stderr[:6000]!r}")


def write_tar(layout_dir, out, extra_names):
    """The layout as a plain tar in ferry's order with an entry per raw name in
    ``extra_names`` (bytes) right after index.json; GNU format keeps names byte for byte."""
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as tf:
        order = V.layout_order(layout_dir)
        for n, (arcname, path) in enumerate(order):
            tf.add(path, arcname=arcname, recursive=False)
            if n == 1:
                for raw in extra_names:
                    ti = tarfile.TarInfo(raw.decode("utf-8", "surrogateescape"))
                    ti.size, ti.mtime, ti.mode = 3, 0, 0o644
                    tf.addfile(ti, io.BytesIO(b"abc"))
    return out


class Escapes(V.VerifyTest):
    """One signed image whose index entry and referrer carry EVIL; variants of it with a
    hostile tag, hostile tar entry names, a hostile trust-file title, a hostile non-manifest
    root, a signature by a certificate with a hostile subject, and a hostile path."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.reg = R.Registry("escapes")
        cls.reg.start()
        cls.addClassCleanup(cls.reg.stop)
        cls.push_n = 0

        # annotated: valid names; EVIL in annotations, an artifactType and a media type.
        lay = V.Layout(os.path.join(cls.tmp, "annotated"))
        cls.app = lay.image()
        index = lay.index()
        index["manifests"][0]["annotations"]["org.example.evil"] = EVIL
        lay._write_index(index)
        cls.sig = lay.sign(cls.app, cls.pki["ec256"])
        cls.sbom = lay.referrer(cls.app, artifact_type="application/x-evil+" + EVIL)
        cls.annotated = lay.path

        # tagged: the root is known only by a tag (no io.containerd.image.name), EVIL_TAG.
        lay = V.Layout(os.path.join(cls.tmp, "tagged"))
        app = lay.image()
        lay.patch_index_entry(app["digest"], annotations={R.ANN_REF_NAME: EVIL_TAG})
        lay.sign(app, cls.pki["ec256"])
        cls.tagged = lay.path

        # imagename: io.containerd.image.name is not a reference.
        lay = V.Layout(os.path.join(cls.tmp, "imagename"))
        app = lay.image()
        lay.patch_index_entry(app["digest"], annotations={R.ANN_IMAGE_NAME: "reg.ferry.test/app" + EVIL,
                                                           R.ANN_REF_NAME: "v1"})
        cls.imagename = lay.path

        # mediatype: an index.json entry whose mediaType is EVIL.
        lay = V.Layout(os.path.join(cls.tmp, "mediatype"))
        app = lay.image()
        lay.patch_index_entry(app["digest"], mediaType="application/vnd.oci.image.manifest.v1+json" + EVIL)
        cls.mediatype = lay.path

        # trusttitle: trust material whose file title is EVIL.
        lay = V.Layout(os.path.join(cls.tmp, "trusttitle"))
        lay.image()
        lay.put(R.EMPTY_JSON)
        manifest = R.canonical_json({
            "schemaVersion": 2, "mediaType": R.OCI_MANIFEST, "artifactType": TRUST_TYPE,
            "config": {"mediaType": R.OCI_EMPTY, "digest": R.EMPTY_DIGEST, "size": 2},
            "layers": [dict(R.descriptor("application/json", R.EMPTY_JSON),
                            annotations={TITLE: "trustpolicy.json" + EVIL})]})
        lay.put(manifest)
        lay._add_entry(dict(R.descriptor(R.OCI_MANIFEST, manifest, artifactType=TRUST_TYPE),
                            annotations={R.ANN_REF_NAME: "ferry.trust"}))
        cls.trusttitle, cls.trust_pin = lay.path, R.sha256_digest(manifest)

        # entries: the annotated bundle as a tar with hostile entry names.
        cls.entries = write_tar(cls.annotated, os.path.join(cls.tmp, "entries.tar"), EVIL_ENTRY_NAMES)

        # evilcert: signed by an expired certificate whose CN is hostile; expiry names it.
        pki = cls.pki
        key = pki._key("evilcn", "ec256")
        csr, cert = pki._path("evilcn.csr"), pki._path("evilcn.pem")
        P.run([P.OPENSSL, "req", "-new", "-utf8", "-key", key, "-out", csr, "-subj",
               P.SUBJECT_BASE + "/CN=e\x1b[2J\r\n" + "verification passed\x85\u202e\x07"])
        pki.inter_ca.issue(csr, cert, "ext_leaf", P.EXPIRED)
        ident = P.Identity("evilcn", key, cert, [pki.inter, pki.root], "ec256",
                           P.SUBJECT_BASE + "/CN=evilcn")
        lay = V.Layout(os.path.join(cls.tmp, "evilcert"))
        app = lay.image()
        lay.sign(app, ident)
        cls.evilcert = lay.path

        # The trust policy: its one statement's name is EVIL.
        cls.evil_policy_name = "policy" + EVIL
        cls.evil_policy = P.write_trust_policy(os.path.join(cls.tmp, "evil-policy.json"),
                                               P.statement(name=cls.evil_policy_name))

    # -- assertions ------------------------------------------------------------------
    def assert_safe_text(self, data, what, proc):
        """``data`` (bytes written by ferry) is UTF-8 with no unsafe code point but \\n, and
        no line starts with the fake verdict."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            self.fail(f"{what} is not UTF-8 ({e})" + describe(proc))
        m = UNSAFE.search(text)
        self.assertIsNone(m, f"{what} holds {m.group() if m else ''!r} raw" + describe(proc))
        for line in text.split("\n"):
            self.assertFalse(line.startswith(FAKE), f"{what}: a bundle printed a line of its own"
                             + describe(proc))
        return text

    def run_safe(self, *args, codes=(0,), cwd=None):
        """Runs ferry; asserts the exit code, no crash, and safe stdout and stderr. Returns
        (proc, stdout text, stderr text)."""
        proc = ferry(*args, cwd=cwd)
        self.assertIn(proc.returncode, codes, describe(proc))
        out = self.assert_safe_text(proc.stdout, "stdout", proc)
        err = self.assert_safe_text(proc.stderr, "stderr", proc)
        for bad in CRASH_MARKERS:
            self.assertNotIn(bad, err, describe(proc))
        if proc.returncode != 0:
            errors = [l for l in err.splitlines() if l.startswith("ferry: error: ")]
            self.assertEqual(len(errors), 1, "one ferry: error: line" + describe(proc))
        return proc, out, err

    def run_json(self, *args, codes=(0,)):
        """run_safe with --json: stdout is one JSON document when the command got that far."""
        proc, out, err = self.run_safe(*args, "--json", codes=codes)
        doc = None
        if out:
            try:
                doc = json.loads(out)
            except ValueError as e:
                self.fail(f"--json output is not JSON ({e})" + describe(proc))
        return proc, doc

    def verify_args(self, bundle, policy=None, scope=None):
        args = ["verify", bundle, "--verification-time", V.VT]
        if policy:
            args += ["--trust-policy", policy, "--trust-store", self.store]
        else:
            args.append("--integrity-only")
        if scope:
            args += ["--scope", scope]
        return args

    def copy(self, bundle, stem):
        path = self.new_path(stem)
        (shutil.copytree if os.path.isdir(bundle) else shutil.copy)(bundle, path)
        return path

    def target(self):
        type(self).push_n += 1
        return f"{self.reg.host}/escapes{self.push_n}"

    # -- inspect ---------------------------------------------------------------------
    def test_inspect_annotations_artifact_type(self):
        _, out, _ = self.run_safe("inspect", self.annotated)
        self.assertIn("application/x-evil+\\x1b[2J\\x1b]0;pwned\\x07\\x0d" + FAKE + "\\x0a", out)
        self.assertIn("\\u202egnp.exe\\u2066", out)
        self.assertIn("\\\\x1b", out, "a backslash in the bundle is doubled: unambiguous")
        _, doc = self.run_json("inspect", self.annotated)
        root = doc["roots"][0]
        self.assertEqual(root["annotations"]["org.example.evil"], EVIL)
        self.assertIn("application/x-evil+" + EVIL, [r.get("artifactType") for r in root["referrers"]])

    def test_inspect_hostile_tag_image_name_media_type(self):
        for bundle in (self.tagged, self.imagename, self.mediatype):
            with self.subTest(bundle=os.path.basename(bundle)):
                self.run_safe("inspect", bundle, codes=(0, 1))
                self.run_json("inspect", bundle, codes=(0, 1))

    def test_inspect_trust_file_title(self):
        """A trust file title that could never be a path is refused by inspect and verify
        alike (one reading of the trust artifact), in an escaped error line."""
        proc, _, err = self.run_safe("inspect", self.trusttitle, codes=(1,))
        self.assertIn("trustpolicy.json\\x1b[2J", err, describe(proc))
        self.run_json("inspect", self.trusttitle, codes=(1,))
        self.run_safe("verify", self.trusttitle, "--trust-pin", self.trust_pin, "--verification-time", V.VT,
                      codes=(1, 3))

    # -- verify ----------------------------------------------------------------------
    def test_verify_integrity_only(self):
        for bundle in (self.annotated, self.tagged, self.imagename, self.mediatype):
            with self.subTest(bundle=os.path.basename(bundle)):
                self.run_safe(*self.verify_args(bundle), codes=(0, 1, 3))
                self.run_json(*self.verify_args(bundle), codes=(0, 1, 3))

    def test_verify_policy_statement_name(self):
        _, out, _ = self.run_safe(*self.verify_args(self.annotated, self.evil_policy))
        self.assertIn('(policy "policy\\x1b[2J', out)
        proc, doc = self.run_json(*self.verify_args(self.annotated, self.evil_policy))
        self.assertEqual([a["policy"] for a in doc["artifacts"]], [self.evil_policy_name], describe(proc))
        # The same through --report: the HTML has no raw control or bidi character either.
        report = self.new_path("report.html")
        self.run_safe(*self.verify_args(self.annotated, self.evil_policy), "--report", report)
        with open(report, "rb") as f:
            html = f.read().decode("utf-8")
        m = re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]", html)
        self.assertIsNone(m, f"the HTML report holds {m.group() if m else ''!r}")

    def test_verify_hostile_tag_as_reference(self):
        """A root whose ref.name is neither a tag nor a reference is refused by verify as by
        every command (one definition of roots, issue 13 §5), naming it escaped."""
        args = self.verify_args(self.tagged, self.evil_policy, scope="reg.ferry.test/team/app")
        proc, _, err = self.run_safe(*args, codes=(1,))
        self.assertIn("v1\\x1b[2J", err, describe(proc))
        self.run_json(*args, codes=(1,))
        proc, _, err = self.run_safe("inspect", self.tagged, codes=(1,))
        self.assertIn("v1\\x1b[2J", err, describe(proc))

    def test_verify_certificate_subject(self):
        """An expired signing certificate is named by its subject in the reason."""
        proc, out, _ = self.run_safe(*self.verify_args(self.evilcert, self.policy(P.statement())), codes=(3,))
        self.assertIn("NOT verified", out, describe(proc))
        self.run_json(*self.verify_args(self.evilcert, self.policy(P.statement())), codes=(3,))

    # -- tar entry names -----------------------------------------------------------------
    def test_tar_entry_names(self):
        self.run_safe("inspect", self.entries, codes=(1,))
        self.run_json("inspect", self.entries, codes=(1,))
        proc, _, err = self.run_safe(*self.verify_args(self.entries), codes=(1, 3))
        self.assertRegex(err, r"\\xff\\xfe|\\xc0\\xaf", "bytes that are not UTF-8 shown as \\x.." + describe(proc))
        proc, doc = self.run_json(*self.verify_args(self.entries), codes=(1, 3))
        if doc is not None:  # a report (exit 3): the entry names in its problems, as UTF-8
            messages = " ".join(p["message"] for p in doc["integrity"]["problems"])
            self.assertIn("\x1b[2J\ufffd\ufffd\r\n" + FAKE, messages, describe(proc))
        self.run_safe("push", "--plain-http", self.entries, self.target(), codes=(1,))
        self.run_safe("sign", "--key", self.pki["ec256"].key, "--cert", self.pki["ec256"].chain_pem,
                      "--signing-time", P.SIGNING_TIME, self.copy(self.entries, "entries.tar"), codes=(1,))

    def test_bundle_path_not_utf8(self):
        """The bundle's own path (not UTF-8, with an ESC): --json does not throw on it."""
        path = os.path.join(self.tmp, os.fsdecode(b"caf\xe9\x1b[2J\xe2\x80\xae"))
        shutil.copytree(self.annotated, path)
        proc, out, _ = self.run_safe(*self.verify_args(path))
        self.assertIn("caf\\xe9\\x1b[2J\\u202e", out, describe(proc))
        for args in (self.verify_args(path), ["inspect", path]):
            proc, doc = self.run_json(*args)
            self.assertTrue(doc["bundle"].endswith("caf\ufffd\x1b[2J\u202e"), describe(proc))

    # -- sign --------------------------------------------------------------------------
    def test_sign(self):
        ident = self.pki["ec256"]
        sign = ["sign", "--key", ident.key, "--cert", ident.chain_pem, "--signing-time", P.SIGNING_TIME]
        self.run_safe(*sign, self.copy(self.annotated, "sign-annotated"))
        self.run_json(*sign, self.copy(self.annotated, "sign-annotated-json"))
        proc, _, err = self.run_safe(*sign, self.copy(self.tagged, "sign-tagged"), codes=(0, 1))
        if proc.returncode == 1:
            self.assertIn("v1\\x1b[2J", err, describe(proc))
        self.run_safe(*sign, self.copy(self.tagged, "sign-tagged-ref"), EVIL_TAG, codes=(0, 1))

    # -- push --------------------------------------------------------------------------
    def test_push(self):
        self.run_safe("push", "--plain-http", self.annotated, self.target())
        proc, doc = self.run_json("push", "--plain-http", self.annotated, self.target())
        self.assertTrue(doc["proof"]["ok"], describe(proc))
        # The referrer's artifactType arrived byte for byte.
        body, _, _ = self.reg.get_manifest(f"escapes{self.push_n}/team/app", self.sbom["digest"])
        manifest = json.loads(body)
        self.assertEqual(manifest["artifactType"], "application/x-evil+" + EVIL)
        # (Not self.mediatype: a root whose mediaType is not a manifest's is issue 13 §5's to
        # refuse; today push sends it and the HTTP layer refuses the header, exit 2.)
        for bundle in (self.tagged, self.imagename):
            with self.subTest(bundle=os.path.basename(bundle)):
                self.run_safe("push", "--plain-http", bundle, self.target(), codes=(0, 1))

    def test_push_verify_logs(self):
        """push --verify logs the verification (policy names, references) on stderr."""
        verify = ["--verify", "--trust-policy", self.evil_policy, "--trust-store", self.store,
                  "--verification-time", V.VT]
        proc, _, err = self.run_safe("push", "--plain-http", *verify, self.annotated, self.target())
        self.assertIn('(policy "policy\\x1b[2J', err, describe(proc))
        proc, _, err = self.run_safe("push", "--plain-http", *verify, self.tagged, self.target(), codes=(1, 3))
        self.assertIn("v1\\x1b[2J", err, describe(proc))

    def test_push_verify_on_a_terminal(self):
        """With stderr a terminal, log lines go out above the progress bars: escaped too."""
        code, out, term = run_on_pty(["push", "--plain-http", "--verify", "--trust-policy", self.evil_policy,
                                      "--trust-store", self.store, "--verification-time", V.VT,
                                      self.annotated, self.target()])
        self.assertEqual(code, 0, term)
        self.assertIn('(policy "policy\\x1b[2J', term)
        own = REDRAW.sub("", term)
        m = UNSAFE.search(own)
        self.assertIsNone(m, f"the terminal got {m.group() if m else ''!r} raw:\n{term!r}")
        self.assertNotIn("\ufffd", term, "ferry wrote bytes that are not UTF-8 to the terminal")
        for line in own.split("\n") + out.split("\n"):
            self.assertFalse(line.startswith(FAKE), term)


if __name__ == "__main__":
    unittest.main()
