#!/usr/bin/env python3
"""``ferry verify --report FILE``: the verification report as a self-contained HTML page.

Run: python3 tests/e2e/test_report_html.py [HtmlReport[.test_name]]   (FERRY=/abs/path/ferry)
Exit 77 (skipped) without the ferry binary or ``openssl``. No registry is needed: bundles
are written by test_verify's ``Layout`` and signed by notary_sign.py with pki.py's PKI.

Contract under test: ``--report`` writes the report (exit 0 and exit 3 alike; nothing on
exit 1/2) atomically, rendered from the same document ``--json`` prints, as one HTML5 page
(doctype, charset, title) that is well-formed (every non-void element closed, in order),
self-contained (no script, no ``src``/``href`` to anything, no CSS ``url()``/``@import``), shows
every fact of the JSON report, and escapes every string (a reference and a trust policy
statement name carrying ``<script>`` appear as text). Headless Chromium renders it: a
1200x1600 PNG screenshot that is not a blank page, and ``--dump-dom`` holds the verdict.
Only the Chromium test skips when no ``chromium`` is installed (Debian package chromium).
"""

import html.parser
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402
import pki as P  # noqa: E402

R.skip_module_unless(__name__, registry=False, programs=(P.OPENSSL,))

import test_verify as V  # noqa: E402

HOSTILE = "<script>alert(1)</script>"
HOSTILE_POLICY = f"pol{HOSTILE}&\"'"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)


class ReportParser(html.parser.HTMLParser):
    """Collects what the assertions need and every well-formedness error: the doctype, the
    title, <meta charset>, all text, every table row (cells' text, the row's class, and the
    h2/h3 it sits under), tags and attributes, the style sheet."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.errors = []
        self.stack = []
        self.doctype = None
        self.first = None
        self.tags = []
        self.chunks = []
        self.title = ""
        self.charset = None
        self.style = ""
        self.rows = []
        self.ids = {}
        self._row = None
        self._cell = None
        self._h2 = self._h3 = None
        self._heading = None
        self._id_text = []

    def handle_decl(self, decl):
        if self.first is None:
            self.first = "decl"
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        if self.first is None:
            self.first = tag
        a = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "meta" and "charset" in a:
            self.charset = a["charset"]
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "tr":
            self._row = {"class": a.get("class", ""), "cells": [], "h2": self._h2, "h3": self._h3}
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag in ("h2", "h3"):
            self._heading = (tag, [])
        if "id" in a:
            self._id_text.append((a["id"], len(self.stack), []))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            self.errors.append(f"end tag for void element </{tag}>")
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}"
                               f" at {self.getpos()}")
            if tag in self.stack:
                while self.stack.pop() != tag:
                    pass
            return
        depth = len(self.stack)
        self.stack.pop()
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row["cells"].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None
        elif self._heading and tag == self._heading[0]:
            text = "".join(self._heading[1]).strip()
            if tag == "h2":
                self._h2, self._h3 = text, None
            else:
                self._h3 = text
            self._heading = None
        while self._id_text and self._id_text[-1][1] == depth:
            ident, _, text = self._id_text.pop()
            self.ids[ident] = "".join(text).strip()

    def handle_data(self, data):
        self.chunks.append(data)
        if self.stack and self.stack[-1] == "title":
            self.title += data
        if self.stack and self.stack[-1] == "style":
            self.style += data
        if self._cell is not None:
            self._cell.append(data)
        if self._heading:
            self._heading[1].append(data)
        for _, _, text in self._id_text:
            text.append(data)

    def close(self):
        super().close()
        if self.stack:
            self.errors.append(f"unclosed at the end: {self.stack}")


def parse(page):
    p = ReportParser()
    p.feed(page)
    p.close()
    return p


def png_size(path):
    """(width, height) from a PNG's IHDR, after checking the signature."""
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise AssertionError(f"{path} is not a PNG: {head!r}")
    return struct.unpack(">II", head[16:24])


class HtmlReport(V.VerifyTest):
    """Reports for a passing bundle (two roots, one with a CRL distribution point and a fresh
    CRL) and a failing one (a revoked signer, an untrusted root, a flipped layer, a root named
    with markup, a policy statement name with markup, a stale CRL)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        pki = cls.pki
        # Passing: JWS by rsa2048, COSE by the cdp leaf with a fresh CRL.
        lay = V.Layout(os.path.join(cls.tmp, "pass"))
        a = lay.image(name=f"{V.REG}/team/app:v1", seed="pass-a")
        sa = lay.sign(a, pki["rsa2048"], "jws")
        b = lay.image(name=f"{V.REG}/team/cdp:v1", seed="pass-b")
        sb = lay.sign(b, pki["cdp"], "cose")
        cls.pass_bundle = lay.pack("tar")
        cls.pass_policy = P.write_trust_policy(os.path.join(cls.tmp, "pass-policy.json"),
                                               P.statement())
        cls.pass_crls = [pki.crls["fresh"]]
        cls.pass_sigs = {a["digest"]: sa["digest"], b["digest"]: sb["digest"]}

        # Failing: revoked, untrusted, integrity, hostile names.
        lay = V.Layout(os.path.join(cls.tmp, "fail"))
        r = lay.image(name=f"{V.REG}/team/revoked:v1", seed="fail-revoked")
        sr = lay.sign(r, pki["cdp"], "jws")
        u = lay.image(name=f"{V.REG}/team/untrusted:v1", seed="fail-untrusted")
        su = lay.sign(u, pki["untrusted"], "cose")
        f = lay.image(name=f"{V.REG}/team/flipped:v1", seed="fail-flipped", layer_sizes=(4096,))
        sf = lay.sign(f, pki["rsa2048"], "jws")
        layer = json.loads(lay.read(f["digest"]))["layers"][0]["digest"]
        lay.flip(layer)
        # A root named with markup: its image name does not parse and is ignored; a ref.name
        # that is neither a tag nor a reference would be refused by every command (issue 13
        # §5), so the markup reaches the page through the policy statement's name.
        h = lay.image(name=f"{V.REG}/team/hostile:v1", seed="fail-hostile")
        lay.patch_index_entry(h["digest"], annotations={R.ANN_IMAGE_NAME: f"{V.REG}/team/x:{HOSTILE}"})
        cls.fail_bundle = lay.pack("dir")
        cls.fail_policy = P.write_trust_policy(os.path.join(cls.tmp, "fail-policy.json"),
                                               P.statement(name=HOSTILE_POLICY))
        cls.fail_crls = [pki.crls["revoked"], pki.crls["stale"]]
        cls.fail_digests = {"revoked": (r["digest"], sr["digest"]),
                            "untrusted": (u["digest"], su["digest"]),
                            "flipped": (f["digest"], sf["digest"]), "layer": layer,
                            "hostile": h["digest"]}

    # -- running ------------------------------------------------------------------------
    def run_report(self, bundle, policy, crls=(), expect=0, json_out=True, stem="report",
                   **kw):
        """verify --report (and --json): returns (proc, report dict or None, html, path)."""
        out = self.new_path(f"{stem}.html")
        proc, rep = self.verify(bundle, policy=policy, crls=crls, extra=("--report", out),
                                expect=expect, json_out=json_out, **kw)
        self.assertTrue(os.path.isfile(out), "no report written" + R.describe(proc))
        self.assertEqual([n for n in os.listdir(os.path.dirname(out)) if ".partial" in n], [],
                         "a temporary file was left behind")
        with open(out, encoding="utf-8") as f:
            return proc, rep, f.read(), out

    # -- assertions ----------------------------------------------------------------------
    def assert_page(self, page):
        """HTML5, well-formed, self-contained; returns the parse."""
        p = parse(page)
        self.assertEqual(p.errors, [], "not well-formed")
        self.assertEqual(p.first, "decl", "the doctype comes first")
        self.assertEqual((p.doctype or "").lower(), "doctype html")
        self.assertTrue(page.lower().startswith("<!doctype html>"))
        self.assertEqual((p.charset or "").lower(), "utf-8")
        self.assertTrue(p.title.strip(), "a non-empty <title>")
        self.assertEqual([t for t, _ in p.tags if t == "html"], ["html"])
        for tag, attrs in p.tags:
            self.assertNotIn(tag, ("script", "iframe", "object", "embed", "img", "link", "base"),
                             f"<{tag}> in a self-contained report")
            for name, value in attrs:
                self.assertFalse(name.startswith("on"), f"event handler {name} on <{tag}>")
                self.assertNotIn(name, ("src", "href", "srcset", "action", "formaction"),
                                 f"<{tag} {name}={value!r}>: nothing may be fetched or linked")
                self.assertNotRegex(value or "", r"(?i)(https?|file|javascript|data):",
                                    f"<{tag} {name}={value!r}>")
        self.assertTrue(p.style.strip(), "an inline style sheet")
        self.assertNotRegex(p.style, r"(?i)url\(|@import|@font-face", "CSS fetching nothing")
        self.assertIn("@media print", p.style, "a print style sheet")
        self.assertNotRegex(page, r"(?i)<script", "no script, not even escaped wrongly")
        return p

    def assert_facts(self, p, rep):
        """Every fact of the JSON report is on the page, rows where they belong."""
        text = "\x00".join(p.chunks)

        def has(value, what):
            self.assertIn(str(value), text, f"{what} {value!r} not on the page")

        ok = rep["verified"]
        self.assertIn("VERIFIED" if ok else "FAILED", p.ids.get("verdict", ""), "the verdict")
        self.assertNotIn("FAILED" if ok else "VERIFIED", p.ids.get("verdict", ""))
        self.assertIn("VERIFIED" if ok else "FAILED", p.title)
        for key in ("bundle", "format", "bundleDigest", "ferryVersion", "verificationTime"):
            has(rep[key], key)
        integ = rep["integrity"]
        has(integ["blobs"], "integrity.blobs")
        has(integ["bytes"], "integrity.bytes")
        for prob in integ["problems"]:
            rows = [r for r in p.rows if r["cells"] and r["cells"][0] == prob["message"]]
            self.assertEqual(len(rows), 1, f"problem {prob['message']!r}")
            self.assertEqual(rows[0]["cells"][1], prob.get("digest", ""))
        trust = rep.get("trust")
        if trust:
            for key in ("source", "pin", "trustPolicy", "trustPolicyDigest", "trustStore", "scope"):
                if trust[key] is not None:
                    has(trust[key], f"trust.{key}")
            for c in trust["crls"]:
                has(c, "trust.crls[]")
        for art in rep["artifacts"]:
            groups = {}
            for r in p.rows:
                groups.setdefault(r["h2"], []).append(r)
            mine = [g for g in groups.values()
                    if ["digest", art["digest"]] in [r["cells"] for r in g if r["h3"] is None]]
            self.assertEqual(len(mine), 1, f"one section for artifact {art['digest']}")
            fields = {r["cells"][0]: r["cells"][1] for r in mine[0]
                      if r["h3"] is None and len(r["cells"]) == 2}
            self.assertEqual(fields["reference"], art["reference"])
            self.assertEqual(fields["media type"], art["mediaType"])
            self.assertEqual(fields["scope"], art["scope"])
            self.assertEqual(fields["policy"], art["policy"] if art["policy"] is not None else "none")
            self.assertEqual(fields["level"], art["level"] if art["level"] is not None else "none")
            self.assertIn("verified" if art["verified"] else "FAILED", fields["verdict"])
            if art["reason"]:
                self.assertEqual(fields["reason"], art["reason"])
            for sig in art["signatures"]:
                rows = [r for r in mine[0] if r["h3"] and sig["digest"] in r["h3"]]
                sfields = {r["cells"][0]: r["cells"][1] for r in rows if len(r["cells"]) == 2}
                self.assertEqual(sfields["envelope"], sig["envelope"])
                self.assertIn("verified" if sig["verified"] else "FAILED", sfields["verdict"])
                if sig["reason"]:
                    self.assertEqual(sfields["reason"], sig["reason"])
                checks = [r for r in rows if len(r["cells"]) == 4 and r["cells"][0] != "check"]
                self.assertEqual([r["cells"] for r in checks],
                                 [[c["name"], c["action"], c["result"], c["reason"]]
                                  for c in sig["checks"]], f"signature {sig['digest']}'s checks")
                for r, c in zip(checks, sig["checks"]):  # colour follows the result
                    want = "log" if c["result"] == "fail" and c["action"] == "log" else c["result"]
                    self.assertEqual(r["class"], want, f"check {c['name']} row class")
        for crl in rep["crls"]:
            want = [crl["source"], crl["issuer"], crl["thisUpdate"], crl["nextUpdate"] or "none",
                    "fresh" if crl["fresh"] else "STALE"]
            self.assertIn(want, [r["cells"] for r in p.rows], "CRL row")

    # -- tests ---------------------------------------------------------------------------
    def test_passing_bundle(self):
        proc, rep, page, _ = self.run_report(self.pass_bundle, self.pass_policy, self.pass_crls,
                                             expect=0)
        p = self.assert_page(page)
        self.assert_facts(p, rep)
        self.assertEqual(len(rep["artifacts"]), 2)
        for art in rep["artifacts"]:
            self.assertTrue(art["verified"])
            self.assertIn(self.pass_sigs[art["digest"]], [s["digest"] for s in art["signatures"]])
        self.assertEqual(len(rep["crls"]), 1, R.describe(proc))
        self.assertIn("ferry test intermediate", rep["crls"][0]["issuer"])

    def test_failing_bundle(self):
        proc, rep, page, _ = self.run_report(self.fail_bundle, self.fail_policy, self.fail_crls,
                                             expect=3)
        p = self.assert_page(page)
        self.assert_facts(p, rep)
        d = self.fail_digests
        self.assertFalse(rep["integrity"]["ok"])
        self.assertIn(d["layer"], [x.get("digest") for x in rep["integrity"]["problems"]],
                      R.describe(proc))
        for name, check in (("revoked", "revocation"), ("untrusted", "authenticity")):
            art = self.artifact(rep, d[name][0], proc)
            sig = self.signature(art, d[name][1], proc)
            self.assert_check(sig, check, "fail", "enforce", None, proc)
        self.assertIn(False, [c["fresh"] for c in rep["crls"]], "the stale CRL is listed")
        self.assertEqual(len(rep["artifacts"]), 4, R.describe(proc))

    def test_hostile_strings_are_text(self):
        """A root's name and the policy statement's name carry markup: on the page they are
        text (the parser sees no <script> element, the bytes hold only escaped forms)."""
        proc, rep, page, _ = self.run_report(self.fail_bundle, self.fail_policy, self.fail_crls,
                                             expect=3, stem="hostile")
        p = self.assert_page(page)
        hostile = self.artifact(rep, self.fail_digests["hostile"], proc)
        self.assertEqual(hostile["reference"], self.fail_digests["hostile"], R.describe(proc))
        policies = {a["policy"] for a in rep["artifacts"] if a["policy"]}
        self.assertEqual(policies, {HOSTILE_POLICY})
        text = "\x00".join(p.chunks)
        self.assertIn(HOSTILE_POLICY, text)
        self.assertIn("pol&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;&#39;", page)
        self.assertNotIn(HOSTILE, page)

    def test_same_page_with_and_without_json(self):
        """--report renders --json's document: the page does not depend on --json, and the
        human output still goes to stdout without it."""
        _, _, with_json, _ = self.run_report(self.fail_bundle, self.fail_policy, self.fail_crls,
                                             expect=3)
        proc, _, without, _ = self.run_report(self.fail_bundle, self.fail_policy, self.fail_crls,
                                              expect=3, json_out=False)
        self.assertEqual(with_json, without)
        self.assertIn("verification FAILED", proc.stdout, R.describe(proc))

    def test_integrity_only(self):
        proc, rep, page, _ = self.run_report(self.pass_bundle, None, expect=0,
                                             integrity_only=True)
        p = self.assert_page(page)
        self.assertIsNone(rep["trust"])
        self.assert_facts(p, rep)
        self.assertIn("integrity only", "\x00".join(p.chunks).lower())

    def test_errors_write_no_report(self):
        missing_dir = os.path.join(self.tmp, "no-such-dir", "r.html")
        proc, _ = self.verify(self.pass_bundle, policy=self.pass_policy,
                              extra=("--report", missing_dir), expect=1)
        line = self.assert_error(proc, 1, missing_dir, "does not exist")
        self.assertFalse(os.path.exists(os.path.dirname(missing_dir)), line)
        self.assertEqual(proc.stdout, "", "nothing verified, nothing printed")
        # exit 1: the bundle cannot be read; exit 2: a usage error.
        for args, code in (([os.path.join(self.tmp, "absent.tar"), "--integrity-only"], 1),
                           ([self.pass_bundle, "--trust-policy", self.pass_policy], 2)):
            with self.subTest(code=code):
                out = self.new_path("err.html")
                proc = self.ferry("verify", *args, "--report", out, expect=code)
                self.assert_error(proc, code)
                self.assertFalse(os.path.exists(out), R.describe(proc))
                self.assertFalse(os.path.exists(out + ".partial"))
        with self.subTest(report="a directory"):
            proc, _ = self.verify(self.pass_bundle, policy=self.pass_policy,
                                  extra=("--report", self.tmp), expect=1)
            self.assert_error(proc, 1, self.tmp)

    def test_chromium_renders_it(self):
        """Headless Chromium: a 1200x1600 PNG far from a blank page's, and the verdict in
        the rendered DOM (with the hostile reference as text)."""
        if CHROMIUM is None:
            self.skipTest("chromium not installed (apt-get install chromium)")
        _, _, _, passing = self.run_report(self.pass_bundle, self.pass_policy, self.pass_crls,
                                           expect=0)
        _, _, _, failing = self.run_report(self.fail_bundle, self.fail_policy, self.fail_crls,
                                           expect=3)
        blank = self.new_path("blank.html")
        with open(blank, "w") as f:
            f.write('<!doctype html><meta charset="utf-8"><title>blank</title><body></body>\n')
        shots = {}
        for name, page in (("blank", blank), ("passing", passing), ("failing", failing)):
            png = self.new_path(f"{name}.png")
            self.chromium(f"--screenshot={png}", page)
            self.assertTrue(os.path.isfile(png), f"no screenshot of {name}")
            self.assertEqual(png_size(png), (1200, 1600), name)
            shots[name] = os.path.getsize(png)
        for name in ("passing", "failing"):
            self.assertGreater(shots[name], 4 * shots["blank"],
                               f"the {name} report's screenshot looks blank: {shots}")
        for page, verdict, other in ((passing, "VERIFIED", "FAILED"), (failing, "FAILED", "VERIFIED")):
            dom = self.chromium("--dump-dom", page).stdout
            p = parse(dom)
            self.assertIn(verdict, p.ids.get("verdict", ""), dom[:2000])
            self.assertNotIn(other, p.ids.get("verdict", ""))
            self.assertNotIn("<script", dom.lower())
        self.assertIn(HOSTILE_POLICY, "\x00".join(parse(self.chromium("--dump-dom", failing).stdout).chunks))

    def chromium(self, action, page):
        profile = tempfile.mkdtemp(prefix="ferry-chromium-", dir=self.tmp)
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions",
               f"--user-data-dir={profile}", "--window-size=1200,1600", action,
               "file://" + os.path.abspath(page)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            self.fail(f"chromium did not finish in 120 s: {' '.join(cmd)}")
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        return proc


if __name__ == "__main__":
    unittest.main(verbosity=2)
