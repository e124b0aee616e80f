#!/usr/bin/env python3
"""End-to-end tests of ``ferry sign``: Notary Project signatures added to a bundle offline.

Run: python3 tests/e2e/test_sign.py [ClassName[.test_name]] [-k pattern]
     (FERRY=/abs/path/ferry to override the binary; FERRY_SHARED=/path/to/shared for the
     upstream corpus).
Exit code 77 (meson "skipped") when the ferry binary or ``openssl`` is missing.

Contract under test (issue 4):
  ferry sign --key KEY --cert CHAIN [--envelope jws|cose] [--expiry DURATION]
             [--timestamp-url URL --tsa-ca FILE] [--signing-agent TEXT] [--json]
             BUNDLE [REF...]
  exit 0 signed, 1 error (bad key/cert/bundle/TSA), 2 usage.
Every signature is checked three ways: ``ferry verify`` (the round trip), the independent
checker in notary_sign.py (openssl dgst over the envelope's own signing input), and field by
field against the shape notation writes (SPEC.md §1-§3, the notation-e2e vectors).

Classes: Sign (every key spec and envelope, every bundle format, REF selection, order),
Timestamp (a loopback RFC 3161 TSA: python http.server + ``openssl ts -reply``),
Errors (refusals leave the bundle untouched), Upstream (notation's own e2e key and layout:
the signature ferry makes is compared with the one notation made, and verifies under
notation's e2e trust store and policy).
"""

import base64
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402
import pki as P  # noqa: E402


R.skip_module_unless(__name__, registry=False, programs=(P.OPENSSL,))

import notary_sign as N  # noqa: E402
import test_verify as V  # noqa: E402  (Layout, VerifyTest, pack_layout, find_shared)

VT = P.VERIFICATION_TIME
ST = P.SIGNING_TIME
FORMATS = V.FORMATS
THUMB = N.THUMBPRINT
CREATED = "org.opencontainers.image.created"


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


class SignTest(V.VerifyTest):
    """VerifyTest plus helpers to run ``ferry sign`` and read what it wrote."""

    def sign(self, bundle, identity="rsa2048", *refs, envelope=None, expect=0, extra=(),
             signing_time=ST, json_out=True):
        ident = self.pki[identity] if isinstance(identity, str) else identity
        args = ["sign", "--key", ident.key, "--cert", ident.chain_pem]
        if envelope:
            args += ["--envelope", envelope]
        if signing_time:
            args += ["--signing-time", signing_time]
        args += list(extra)
        if json_out:
            args.append("--json")
        args += [bundle, *refs]
        proc = self.ferry(*args, expect=expect)
        out = None
        if json_out and proc.returncode == 0:
            out = json.loads(proc.stdout)
            self.assertEqual(out["command"], "sign", R.describe(proc))
        return proc, out

    @staticmethod
    def read_bundle(bundle):
        """(entry names in storage order, {name: bytes}) of a bundle in any format."""
        if os.path.isdir(bundle):
            names, data = [], {}
            for n in ("oci-layout", "index.json"):
                names.append(n)
                with open(os.path.join(bundle, n), "rb") as f:
                    data[n] = f.read()
            for alg in sorted(os.listdir(os.path.join(bundle, "blobs"))):
                for h in sorted(os.listdir(os.path.join(bundle, "blobs", alg))):
                    n = f"blobs/{alg}/{h}"
                    names.append(n)
                    with open(os.path.join(bundle, n), "rb") as f:
                        data[n] = f.read()
            return names, data
        path = bundle
        if bundle.endswith(".zst"):
            path = bundle + ".plain.tar"
            P.run(["zstd", "-q", "-d", "-f", "-o", path, bundle])
        names, data = [], {}
        with tarfile.open(path) as tf:
            for m in tf:
                names.append(m.name)
                data[m.name] = tf.extractfile(m).read()
        if path != bundle:
            os.remove(path)
        return names, data

    @staticmethod
    def blob(data, digest):
        return data["blobs/" + digest.replace(":", "/")]

    def assert_notation_shape(self, manifest_bytes, envelope_bytes, media_type, subject, ident,
                              signing_time=ST, expiry=None, agent_re=r"^ferry/"):
        """Field by field what notation writes (SPEC.md §1-§3; notation-e2e vectors)."""
        m = json.loads(manifest_bytes)
        self.assertEqual(list(m), ["schemaVersion", "mediaType", "artifactType", "config", "layers",
                                   "subject", "annotations"])
        self.assertEqual(m["mediaType"], N.OCI_MANIFEST)
        self.assertEqual(m["artifactType"], N.NOTARY_SIGNATURE)
        self.assertEqual(m["config"], {"mediaType": N.OCI_EMPTY, "digest": N.EMPTY_DIGEST, "size": 2,
                                       "data": "e30="})
        self.assertEqual(m["layers"], [{"mediaType": media_type, "digest": R.sha256_digest(envelope_bytes),
                                        "size": len(envelope_bytes)}])
        self.assertEqual(m["subject"], {k: subject[k] for k in ("mediaType", "digest", "size")})
        self.assertEqual(m["annotations"], {THUMB: json.dumps(ident.thumbprints, separators=(",", ":")),
                                            CREATED: signing_time})
        self.assertNotIn(b" ", manifest_bytes.replace(b"Test Leaf", b""))  # compact, as Go writes
        payload_target = {"mediaType": subject["mediaType"], "digest": subject["digest"],
                          "size": subject["size"]}
        if media_type == N.JWS_MEDIA_TYPE:
            ok, prot, payload = N.check_jws(envelope_bytes)
            self.assertTrue(ok, "independent JWS signature check")
            env = json.loads(envelope_bytes)
            self.assertEqual(list(env), ["payload", "protected", "header", "signature"])
            for k in ("payload", "protected", "signature"):
                self.assertNotRegex(env[k], r"[=+/]")
            raw_prot = b64url_decode(env["protected"]).decode()
            self.assertEqual(list(json.loads(raw_prot)), sorted(json.loads(raw_prot)))
            crit = ["io.cncf.notary.signingScheme"] + (["io.cncf.notary.expiry"] if expiry else [])
            want = {"alg": ident.alg, "crit": crit, "cty": N.PAYLOAD_TYPE,
                    "io.cncf.notary.signingScheme": "notary.x509",
                    "io.cncf.notary.signingTime": signing_time}
            if expiry:
                want["io.cncf.notary.expiry"] = expiry
            self.assertEqual(prot, want)
            self.assertEqual(b64url_decode(env["payload"]),
                             json.dumps({"targetArtifact": dict(sorted(payload_target.items()))},
                                        separators=(",", ":")).encode())
            keys = [k for k in env["header"] if k != "io.cncf.notary.timestampSignature"]
            self.assertEqual(keys, ["x5c", "io.cncf.notary.signingAgent"])
            self.assertEqual([base64.b64decode(c) for c in env["header"]["x5c"]], ident.chain)
            self.assertRegex(env["header"]["io.cncf.notary.signingAgent"], agent_re)
            if ident.is_ec:
                self.assertEqual(len(b64url_decode(env["signature"])), 2 * P.EC_WIDTH[ident.spec])
        else:
            ok, prot, payload = N.check_cose(envelope_bytes)
            self.assertTrue(ok, "independent COSE signature check (PSS salt = hash length)")
            self.assertEqual(envelope_bytes[0], 0xD2, "COSE_Sign1_Tagged")
            protected, prot_map, unprot, raw_payload, sig = N.parse_cose(envelope_bytes)
            self.assertEqual(prot_map[1], P.COSE_ALG[ident.alg])
            self.assertEqual(prot_map[3], N.PAYLOAD_TYPE)
            self.assertEqual(prot_map["io.cncf.notary.signingScheme"], "notary.x509")
            self.assertEqual(prot_map["io.cncf.notary.signingTime"], N.Tag(1, N._epoch(signing_time)))
            crit = ["io.cncf.notary.signingScheme"] + (["io.cncf.notary.expiry"] if expiry else [])
            self.assertEqual(prot_map[2], crit)
            if expiry:
                self.assertEqual(prot_map["io.cncf.notary.expiry"], N.Tag(1, N._epoch(expiry)))
            # go-cose's length-first canonical key order.
            labels = list(prot_map)
            enc = [N.cbor_encode(k) for k in labels]
            self.assertEqual(enc, sorted(enc, key=lambda b: (len(b), b)))
            self.assertIsInstance(unprot[33], list)
            self.assertEqual(unprot[33], ident.chain)
            self.assertRegex(unprot["io.cncf.notary.signingAgent"], agent_re)
            self.assertEqual(raw_payload, json.dumps({"targetArtifact": payload_target},
                                                     separators=(",", ":")).encode())
        self.assertEqual(payload["targetArtifact"], payload_target)


class Sign(SignTest):
    def app_bundle(self, fmt="dir", stem="bundle"):
        lay = self.layout(stem)
        app = lay.image()
        other = lay.image(name=f"{V.APP}:v2", seed="v2")
        return lay, app, other, lay.pack(fmt, out=self.new_path(f"{stem}.{fmt}") if fmt != "dir" else None)

    def test_every_key_spec_and_envelope_round_trips(self):
        policy = self.strict_policy()
        for spec in P.KEY_SPECS:
            for envelope in ("jws", "cose"):
                with self.subTest(spec=spec, envelope=envelope):
                    lay, app, other, bundle = self.app_bundle("dir", f"{spec}-{envelope}")
                    proc, out = self.sign(bundle, spec, V.APP_REF, envelope=envelope)
                    self.assertEqual(out["algorithm"], self.pki[spec].alg)
                    self.assertEqual(len(out["signatures"]), 1)
                    s = out["signatures"][0]
                    self.assertEqual(s["subject"]["digest"], app["digest"])
                    _, data = self.read_bundle(bundle)
                    mt = N.JWS_MEDIA_TYPE if envelope == "jws" else N.COSE_MEDIA_TYPE
                    self.assert_notation_shape(self.blob(data, s["signature"]["digest"]),
                                               self.blob(data, s["envelope"]["digest"]), mt, app,
                                               self.pki[spec])
                    proc, rep = self.verify(bundle, policy=policy, expect=3)  # v2 is unsigned
                    art = self.artifact(rep, app["digest"], proc)
                    self.assertTrue(art["verified"], R.describe(proc))
                    self.assert_all_pass(self.signature(art, s["signature"]["digest"], proc), proc)
                    self.assertFalse(self.artifact(rep, other["digest"], proc)["verified"])

    def test_all_roots_every_format_and_order(self):
        policy = self.strict_policy()
        for fmt in FORMATS:
            with self.subTest(fmt=fmt):
                lay, app, other, bundle = self.app_bundle(fmt, f"all-{fmt}")
                before_names, before = self.read_bundle(bundle)
                proc, out = self.sign(bundle, "ec384", envelope="cose", extra=["--expiry", "30d"])
                self.assertEqual(sorted(s["subject"]["digest"] for s in out["signatures"]),
                                 sorted([app["digest"], other["digest"]]))
                self.assertEqual(out["expiry"], "2026-12-23T09:00:00Z")
                self.assertFalse(os.path.exists(bundle + ".partial"))
                names, data = self.read_bundle(bundle)
                # Everything that was there is still there, byte for byte.
                for n in before_names:
                    if n != "index.json":
                        self.assertEqual(data.get(n), before[n], n)
                # index.json: old entries unchanged, new ones untagged with artifactType.
                old_idx, new_idx = json.loads(before["index.json"]), json.loads(data["index.json"])
                self.assertEqual(new_idx["manifests"][:2], old_idx["manifests"])
                for e, s in zip(new_idx["manifests"][2:], out["signatures"]):
                    self.assertEqual(list(e), ["mediaType", "digest", "size", "annotations", "artifactType"])
                    self.assertEqual(e["digest"], s["signature"]["digest"])
                    self.assertEqual(e["artifactType"], N.NOTARY_SIGNATURE)
                    self.assertNotIn(R.ANN_REF_NAME, e["annotations"])
                    self.assertEqual(e["annotations"][CREATED], ST)
                for s, subj in zip(out["signatures"], (app, other)):
                    self.assert_notation_shape(self.blob(data, s["signature"]["digest"]),
                                               self.blob(data, s["envelope"]["digest"]),
                                               N.COSE_MEDIA_TYPE, subj, self.pki["ec384"],
                                               expiry="2026-12-23T09:00:00Z")
                if fmt != "dir":
                    # design §3: oci-layout, index.json, manifests, small blobs, layers.
                    self.assertEqual(names[:2], ["oci-layout", "index.json"])
                    layers = {"blobs/" + l["digest"].replace(":", "/")
                              for d in (app, other)
                              for l in json.loads(self.blob(data, d["digest"]))["layers"]}
                    kinds = ["m" if V._is_manifest(data[n]) else ("l" if n in layers else "s")
                             for n in names[2:]]
                    self.assertEqual("".join(kinds), "".join(sorted(kinds, key="msl".index)),
                                     f"entry order {kinds}")
                    envs = [names.index("blobs/" + s["envelope"]["digest"].replace(":", "/"))
                            for s in out["signatures"]]
                    first_layer = kinds.index("l") + 2
                    self.assertTrue(all(i < first_layer for i in envs))
                self.assertEqual(names.count("blobs/" + N.EMPTY_DIGEST.replace(":", "/")), 1)
                proc, rep = self.verify(bundle, policy=policy, expect=0)
                self.verify(bundle, integrity_only=True, expect=0)

    def test_ref_selection(self):
        lay, app, other, bundle = self.app_bundle("tar", "select")
        for ref, want in ((V.APP_REF, app), ("v2", other), (app["digest"], app)):
            with self.subTest(ref=ref):
                proc, out = self.sign(bundle, "rsa2048", ref)
                self.assertEqual([s["subject"]["digest"] for s in out["signatures"]], [want["digest"]])
        proc, rep = self.verify(bundle, policy=self.strict_policy(), expect=0)
        self.assertEqual(len(self.artifact(rep, app["digest"], proc)["signatures"]), 2)
        self.assertEqual(len(self.artifact(rep, other["digest"], proc)["signatures"]), 1)

    def test_signed_bundle_keeps_other_referrers_and_signatures(self):
        lay = self.layout("mixed")
        app = lay.image()
        old = lay.sign(app, self.pki["ec256"])
        sbom = lay.referrer(app)
        bundle = lay.pack("tar", out=self.new_path("mixed.tar"))
        proc, out = self.sign(bundle, "rsa3072", envelope="jws")
        proc, rep = self.verify(bundle, policy=self.strict_policy(), expect=0)
        sigs = [s["digest"] for s in self.artifact(rep, app["digest"], proc)["signatures"]]
        self.assertIn(old["digest"], sigs)
        self.assertIn(out["signatures"][0]["signature"]["digest"], sigs)
        _, data = self.read_bundle(bundle)
        self.assertIn("blobs/" + sbom["digest"].replace(":", "/"), data)
        proc = self.ferry("inspect", "--json", bundle, expect=0)
        self.assertIn(out["signatures"][0]["signature"]["digest"], proc.stdout)

    def test_human_output_and_signing_agent(self):
        lay, app, other, bundle = self.app_bundle("dir", "human")
        proc, _ = self.sign(bundle, "rsa2048", "v2", json_out=False,
                            extra=["--signing-agent", "acme-signer/2.0"])
        self.assertIn(other["digest"], proc.stdout)
        self.assertIn(f"{V.APP}:v2", proc.stdout)
        names, data = self.read_bundle(bundle)
        envs = [json.loads(v) for k, v in data.items() if v.startswith(b'{"payload"')]
        self.assertEqual(len(envs), 1)
        # The result is printed once (issue 14): one line on stdout, not again on stderr.
        lines = [l for l in (proc.stdout + proc.stderr).splitlines() if other["digest"] in l]
        self.assertEqual(len(lines), 1, R.describe(proc))
        self.assertRegex(lines[0], r"^signed .*: signature sha256:[0-9a-f]{64} \(PS256, "
                                   r"application/jose\+json\)$")
        self.assertEqual(envs[0]["header"]["io.cncf.notary.signingAgent"], "acme-signer/2.0")


# ---------------------------------------------------------------------------
# RFC 3161 timestamps from a loopback TSA
# ---------------------------------------------------------------------------

class _TsaHandler(http.server.BaseHTTPRequestHandler):
    pki = None
    status_override = None
    requests = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).requests.append((self.headers.get("Content-Type"), body))
        if type(self).status_override:
            self.send_response(type(self).status_override)
            self.end_headers()
            return
        d = self.pki.tsa_dir
        n = len(type(self).requests)
        q, r = os.path.join(d, f"srv{n}.tsq"), os.path.join(d, f"srv{n}.tsr")
        with open(q, "wb") as f:
            f.write(body)
        P.run([P.OPENSSL, "ts", "-reply", "-config", self.pki.tsa_conf, "-queryfile", q, "-out", r])
        with open(r, "rb") as f:
            reply = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *a):
        pass


class Timestamp(SignTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        _TsaHandler.pki = cls.pki
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TsaHandler)
        cls.url = f"http://127.0.0.1:{cls.server.server_address[1]}/tsa"
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.addClassCleanup(cls.server.server_close)
        cls.addClassCleanup(cls.server.shutdown)
        cls.tsa_ca = os.path.join(cls.tmp, "tsa-root.pem")
        shutil.copy(cls.pki.tsa_root.cert, cls.tsa_ca)

    def setUp(self):
        _TsaHandler.status_override = None
        _TsaHandler.requests.clear()

    def test_timestamped_signatures_verify(self):
        policy = self.strict_policy(stores=("ca:ferry", "tsa:tsa"))
        for envelope in ("jws", "cose"):
            with self.subTest(envelope=envelope):
                lay = self.layout(f"ts-{envelope}")
                app = lay.image()
                bundle = lay.pack("tar", out=self.new_path(f"ts-{envelope}.tar"))
                # The real clock: the token's genTime is now, and the short leaf must cover it.
                proc, out = self.sign(bundle, "short", envelope=envelope, signing_time=None,
                                      extra=["--timestamp-url", self.url, "--tsa-ca", self.tsa_ca])
                self.assertTrue(out["signatures"][0]["timestamped"])
                ctype, query = _TsaHandler.requests[-1]
                self.assertEqual(ctype, "application/timestamp-query")
                text = P.run([P.OPENSSL, "ts", "-query", "-in", "/dev/stdin", "-text"], input=query).decode()
                self.assertRegex(text, r"Hash Algorithm: sha256")
                self.assertRegex(text, r"Certificate required: yes")
                self.assertNotRegex(text, r"Nonce: unspecified")
                _, data = self.read_bundle(bundle)
                env = self.blob(data, out["signatures"][0]["envelope"]["digest"])
                mt = N.JWS_MEDIA_TYPE if envelope == "jws" else N.COSE_MEDIA_TYPE
                token = N.timestamp_token(env, mt)
                self.assertTrue(token)
                self.pki.verify_timestamp(token, N.raw_signature(env, mt))  # openssl ts -verify
                if envelope == "jws":
                    self.assertEqual(list(json.loads(env)["header"]),
                                     ["io.cncf.notary.timestampSignature", "x5c",
                                      "io.cncf.notary.signingAgent"])
                # Verified after the short leaf expired: only the timestamp makes it pass.
                proc, rep = self.verify(bundle, policy=policy, vt=P.rfc3339(
                    P.parse_rfc3339(out["signingTime"]) + __import__("datetime").timedelta(days=10)),
                    expect=0)
                sig = self.signature(self.artifact(rep, app["digest"], proc),
                                     out["signatures"][0]["signature"]["digest"], proc)
                self.assert_check(sig, "authenticTimestamp", "pass", proc=proc)

    def test_tsa_failures(self):
        lay = self.layout("ts-fail")
        lay.image()
        bundle = lay.pack("tar", out=self.new_path("ts-fail.tar"))
        with open(bundle, "rb") as f:
            before = f.read()
        _TsaHandler.status_override = 500
        proc, _ = self.sign(bundle, "short", signing_time=None, expect=1, json_out=False,
                            extra=["--timestamp-url", self.url, "--tsa-ca", self.tsa_ca])
        self.assert_error(proc, 1, "timestamp authority", "500")
        _TsaHandler.status_override = None
        wrong = os.path.join(self.tmp, "wrong-tsa-root.pem")
        shutil.copy(self.pki.untrusted_root.cert, wrong)
        proc, _ = self.sign(bundle, "short", signing_time=None, expect=(1, 3), json_out=False,
                            extra=["--timestamp-url", self.url, "--tsa-ca", wrong])
        self.assert_error(proc, (1, 3), "timestamp authority")
        proc, _ = self.sign(bundle, "short", expect=2, json_out=False,
                            extra=["--timestamp-url", self.url])
        self.assert_error(proc, 2, "--tsa-ca")
        with open(bundle, "rb") as f:
            self.assertEqual(f.read(), before)
        self.assertFalse(os.path.exists(bundle + ".partial"))


# ---------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------

class Errors(SignTest):
    def bundle(self, fmt="tar"):
        lay = self.layout("err")
        lay.image()
        return lay.pack(fmt, out=self.new_path(f"err.{fmt}") if fmt != "dir" else None)

    def snapshot(self, bundle):
        return self.read_bundle(bundle)

    def test_refusals_leave_the_bundle_untouched(self):
        for fmt in ("tar", "dir"):
            with self.subTest(fmt=fmt):
                bundle = self.bundle(fmt)
                before = self.snapshot(bundle)
                rsa, ec = self.pki["rsa2048"], self.pki["ec256"]
                cases = [
                    (["--key", ec.key, "--cert", rsa.chain_pem, bundle], 1, ["does not match"]),
                    (["--key", rsa.key, "--cert", rsa.cert, bundle], 1, ["chain"]),  # no root
                    (["--key", rsa.key, "--cert", rsa.chain_pem, bundle, "nope:v9"], 1, ["nope:v9"]),
                    (["--key", os.path.join(self.tmp, "missing.key"), "--cert", rsa.chain_pem, bundle], 1,
                     ["missing.key"]),
                    (["--key", rsa.chain_pem, "--cert", rsa.chain_pem, bundle], 1, ["private key"]),
                    (["--key", rsa.key, "--cert", rsa.chain_pem, "--expiry", "soon", bundle], 2, ["soon"]),
                    (["--key", rsa.key, "--cert", rsa.chain_pem, "--envelope", "pgp", bundle], 2, []),
                    (["--cert", rsa.chain_pem, bundle], 2, ["--key"]),
                    (["--key", rsa.key, "--cert", rsa.chain_pem, os.path.join(self.tmp, "none.tar")], 1,
                     ["none.tar"]),
                ]
                for args, code, needles in cases:
                    proc = self.ferry("sign", *args)
                    self.assert_error(proc, code, *needles)
                    self.assertEqual(self.snapshot(bundle), before, " ".join(args))
                    self.assertFalse(os.path.exists(bundle.rstrip("/") + ".partial"))

    def test_server_auth_leaf_refused(self):
        bundle = self.bundle()
        ident = self.pki["serverauth"]
        proc = self.ferry("sign", "--key", ident.key, "--cert", ident.chain_pem, bundle)
        self.assert_error(proc, 1, "chain")


# ---------------------------------------------------------------------------
# notation's own e2e material
# ---------------------------------------------------------------------------

SHARED = V.SHARED


@unittest.skipUnless(SHARED, "../shared/notation not found")
class Upstream(SignTest):
    """Sign notation-e2e's unsigned layout ``e2e`` with notation's e2e key at the signing
    time of notation's own signature in ``e2e-valid-signature`` (2023-06-27T05:30:33Z):
    ferry's signature must equal notation's field by field (apart from the OCI 1.1 form,
    the signing agent and the signature value) and verify under notation's e2e trust store
    and policy."""

    NOTATION_SIG = "sha256:90ceaff260d657d797c408ac73564a9c7bb9d86055877c2a811f0e63b8c6524f"
    NOTATION_TIME = "2023-06-27T05:30:33Z"

    def test_matches_notation_signature(self):
        e2e = os.path.join(SHARED, "notation", "notation-e2e")
        ident = P.Identity.from_files("upstream-e2e", os.path.join(e2e, "localkeys", "e2e.key"),
                                      os.path.join(e2e, "localkeys", "e2e.crt"), "rsa2048",
                                      os.path.join(self.tmp, "upstream-e2e"))
        ref_layout = os.path.join(e2e, "oci_layout", "e2e-valid-signature")
        with open(os.path.join(ref_layout, "blobs", "sha256", self.NOTATION_SIG.split(":")[1]), "rb") as f:
            theirs = json.loads(f.read())
        with open(os.path.join(ref_layout, "blobs", "sha256", theirs["layers"][0]["digest"].split(":")[1]),
                  "rb") as f:
            their_env = json.loads(f.read())
        for fmt in FORMATS:
            with self.subTest(fmt=fmt):
                work = self.new_path("e2e")
                shutil.copytree(os.path.join(e2e, "oci_layout", "e2e"), work)
                bundle = V.pack_layout(work, work + f".{fmt}") if fmt != "dir" else work
                proc, out = self.sign(bundle, ident, "v1", signing_time=self.NOTATION_TIME)
                _, data = self.read_bundle(bundle)
                mine_bytes = self.blob(data, out["signatures"][0]["signature"]["digest"])
                env_bytes = self.blob(data, out["signatures"][0]["envelope"]["digest"])
                mine = json.loads(mine_bytes)
                self.assert_notation_shape(mine_bytes, env_bytes, N.JWS_MEDIA_TYPE, theirs["subject"], ident,
                                           signing_time=self.NOTATION_TIME)
                # Field by field against notation's manifest (legacy form there: config
                # mediaType and no artifactType are the only structural differences).
                self.assertEqual(mine["subject"], theirs["subject"])
                self.assertEqual(mine["annotations"], theirs["annotations"])
                self.assertEqual(mine["config"]["digest"], theirs["config"]["digest"])
                self.assertEqual(mine["config"]["size"], theirs["config"]["size"])
                self.assertEqual(mine["layers"][0]["mediaType"], theirs["layers"][0]["mediaType"])
                self.assertEqual([k for k in mine if k != "artifactType"], list(theirs))
                # ... and against notation's envelope: payload byte for byte, protected header
                # equal as data (notation wrote the time with a +08:00 offset), same x5c,
                # same key order everywhere.
                env = json.loads(env_bytes)
                self.assertEqual(list(env), list(their_env))
                self.assertEqual(env["payload"], their_env["payload"])
                self.assertEqual(list(env["header"]), list(their_env["header"]))
                self.assertEqual(env["header"]["x5c"], their_env["header"]["x5c"])
                p_mine = json.loads(b64url_decode(env["protected"]))
                p_theirs = json.loads(b64url_decode(their_env["protected"]))
                self.assertEqual(list(p_mine), list(p_theirs))
                t = p_theirs.pop("io.cncf.notary.signingTime")
                self.assertEqual(P.parse_rfc3339(p_mine.pop("io.cncf.notary.signingTime")), P.parse_rfc3339(t))
                self.assertEqual(p_mine, p_theirs)
                self.assertEqual(len(env["signature"]), len(their_env["signature"]))
                # notation's trust store and policy accept it.
                proc, rep = self.verify(bundle, policy=os.path.join(e2e, "trustpolicies", "trustpolicy.json"),
                                        store=os.path.join(e2e, "truststores", "e2e"), scope="local/e2e",
                                        expect=0)
                art = self.artifact(rep, theirs["subject"]["digest"], proc)
                self.assert_all_pass(self.signature(art, out["signatures"][0]["signature"]["digest"], proc),
                                     proc)


if __name__ == "__main__":
    unittest.main(verbosity=2)
