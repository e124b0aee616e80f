#!/usr/bin/env python3
"""End-to-end tests of ``ferry verify`` against forged Notary Project signatures.

Run: python3 tests/e2e/test_forged.py ForgedSignatures [-k pattern]
     (FERRY=/abs/path/ferry to override the binary).
Exit code 77 (meson "skipped") when the ferry binary or ``openssl`` is missing.

Every case attaches a signature that must not verify and checks that ``ferry verify
--json`` exits 3 with the signature not verified and a *named* reason in the failing
check (check name + a regex on its reason), for JWS and COSE where the case applies;
``ferry()`` also asserts that stderr carries no crash marker (AddressSanitizer, runtime
error:, ...) and every run has a subprocess timeout, so a hang fails the test.

The list in one place (some cases also exist in test_verify.py, noted per test):
   1. payload for another artifact            integrity          content descriptor mismatch
   2. protected header swapped after signing  integrity          signature verification error
   3. alg none / HS256 / COSE HMAC / no alg   integrity          names the alg
   4. EC key with PS alg, RSA key with ES alg integrity          key type / algorithm mismatch
   5. RSA-1024 leaf                           integrity          rsa key size 1024 bits
   6. intermediate that is not a CA           integrity          chain: parent cannot sign
   7. leaf EKU clientAuth / serverAuth        integrity          names the EKU
      (a leaf with no EKU, or with an EKU lacking codeSigning, is valid: the spec says
      the EKU "MAY contain id-kp-codeSigning" and lists only forbidden purposes)
   8. chains that loop / repeat a certificate integrity          chain reason, no hang
   9. 1,000-certificate x5c / x5chain         integrity          chain length, fast
      (ferry's bound, 100 certificates; notation walks any length)
  10. timestamp token over other bytes        authenticTimestamp message imprint mismatch
  11. CRL signed by another key               revocation         unknown
  12. CRL from the future (thisUpdate after the verification time): notation-core-go
      does not check thisUpdate (revocation/internal/crl/crl.go validate: signature,
      nextUpdate, critical extensions), so neither does ferry: such a CRL is used — one
      listing the leaf fails revocation "revoked", one not listing it passes.

Material is generated at test time: pki.PKI.forgeries() (extra certificates and CRLs,
built once per process) and notary_sign's knobs (header_alg, sign_with, swap_protected,
chain).
"""

import base64
import json
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402
import pki as P  # noqa: E402

# Before importing test_verify, which raises SkipTest when imported without openssl.
R.skip_module_unless(__name__, registry=False, programs=(P.OPENSSL,))

import notary_sign as N  # noqa: E402
import test_verify as V  # noqa: E402

ENVELOPES = V.ENVELOPES
MEDIA_TYPE = {"jws": N.JWS_MEDIA_TYPE, "cose": N.COSE_MEDIA_TYPE}

# A verification that loops or does per-certificate work quadratically would blow this
# (generous for ASan builds on a shared CI machine; a healthy run takes well under 1 s).
FERRY_TIMEOUT = 60
CHAIN_SECONDS = 20

R_CHAIN_NOT_CA = r"(chain|issue).*(parent certificate cannot sign|basic constraints|ca field)"
R_SELF_SIGNED = r"chain.*(self-signed|not issued by)"
R_CHAIN_LENGTH = r"chain.*(too long|length|at most)"


class ForgedSignatures(V.VerifyTest):
    """Forged or malformed signatures: each fails with a named reason, no crash, no hang."""

    observed = []  # (case, check, reason) for FERRY_FORGED_REPORT=1

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.forged = cls.pki.forgeries()

    @classmethod
    def tearDownClass(cls):
        if os.environ.get("FERRY_FORGED_REPORT"):
            for case, check, reason in cls.observed:
                print(f"  {case:42} {check:18} {reason}", file=sys.stderr)
        super().tearDownClass()

    # -- running ferry with a tight timeout ----------------------------------------
    def ferry(self, *args, expect=None):
        try:
            proc = R.run_ferry(*args, timeout=FERRY_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.fail(f"ferry {' '.join(map(str, args))} did not finish in {FERRY_TIMEOUT} s")
        if expect is not None:
            codes = (expect,) if isinstance(expect, int) else tuple(expect)
            self.assertIn(proc.returncode, codes, R.describe(proc))
        for bad in ("Traceback", "terminate called", "Segmentation fault", "AddressSanitizer",
                    "runtime error:", "LeakSanitizer"):
            self.assertNotIn(bad, proc.stderr, R.describe(proc))
        return proc

    # -- helpers -------------------------------------------------------------------------
    def attach(self, envelope, env_bytes, identity=None, stem="forged"):
        """A bundle with APP_REF signed by the given envelope bytes (attached as they
        are); returns (layout, app desc, sig desc)."""
        lay = self.layout(stem)
        app = lay.image()
        sig = N.add_signature_to_layout(lay.path, R.subject_of(app), env_bytes,
                                        MEDIA_TYPE[envelope], identity=identity)
        return lay, app, sig

    def fails(self, case, lay, app, sig, check, reason, policy=None, **kw):
        """assert_sig_fails (strict policy by default) on the directory bundle; records
        the observed reason. Returns the failing check."""
        proc, rep, s = self.assert_sig_fails(lay.pack("dir"), app["digest"], sig["digest"],
                                             check, reason,
                                             policy=policy or self.strict_policy(), **kw)
        c = self.check(s, check)
        type(self).observed.append((case, check, c.get("reason")))
        return c

    # -- 1 -----------------------------------------------------------------------------
    def test_01_payload_for_other_artifact(self):
        """B carries a signature whose payload names A (also test_verify
        Signatures.test_signature_moved_to_other_artifact)."""
        for env in ENVELOPES:
            with self.subTest(envelope=env):
                lay = self.layout("other-target")
                a = lay.image(name=f"{V.REG}/team/a:v1", seed="a")
                b = lay.image(name=f"{V.REG}/team/b:v1", seed="b")
                sb = lay.sign(b, self.pki["ec256"], env, target=a)
                c = self.fails(f"1 other artifact ({env})", lay, b, sb, "integrity", V.R_TARGET)
                self.assertIn(a["digest"], c["reason"], "the reason names the signed digest")

    # -- 2 -----------------------------------------------------------------------------
    def test_02_protected_header_swapped(self):
        """Signed over one protected header, carrying another well-formed one (other
        signingTime, an expiry) for the same payload and key."""
        ident = self.pki["ec256"]
        for env in ENVELOPES:
            with self.subTest(envelope=env):
                lay = self.layout("swap")
                app = lay.image()
                target = R.subject_of(app)
                signed, mt = N.sign(env, target, ident, signing_time="2026-11-23T09:00:00Z")
                donor, _ = N.sign(env, target, ident, signing_time="2026-11-01T00:00:00Z",
                                  expiry="2099-01-01T00:00:00Z")
                forged = N.swap_protected(signed, donor, mt)
                sig = N.add_signature_to_layout(lay.path, target, forged, mt, identity=ident)
                self.fails(f"2 swapped protected header ({env})", lay, app, sig, "integrity",
                           r"signature is invalid.*verification")

    # -- 3 -----------------------------------------------------------------------------
    def test_03_jws_alg_none_hs256_missing(self):
        ident = self.pki["rsa2048"]
        cases = (
            ("none", "none", lambda _: b"", r"signing method none is invalid"),
            ("HS256", "HS256", N.hmac_sha256, r"signing method HS256 is invalid"),
            ("RS256", "RS256", None, r"signing method RS256 is invalid"),
            ("unregistered", "XX999", N.hmac_sha256, r"signing method \(alg\) is unavailable"),
            ("absent", None, None, r"signing method \(alg\) is unspecified"),
        )
        for name, alg, signer, reason in cases:
            with self.subTest(alg=name):
                lay = self.layout(f"jws-alg-{name}")
                app = lay.image()
                env = N.sign_jws(R.subject_of(app), ident, header_alg=alg, sign_with=signer)
                sig = N.add_signature_to_layout(lay.path, R.subject_of(app), env,
                                                N.JWS_MEDIA_TYPE, identity=ident)
                self.fails(f"3 jws alg {name}", lay, app, sig, "integrity", reason)

    def test_03_cose_alg_hmac_none_missing(self):
        ident = self.pki["ec256"]
        cases = (
            ("HMAC 256/256 (5)", 5, N.hmac_sha256, r"algorithm.*\b5\b"),
            ("HMAC 384/384 (6)", 6, N.hmac_sha256, r"algorithm.*\b6\b"),
            ("text none", "none", N.hmac_sha256, r"algorithm.*none"),
            ("text ES256", "ES256", None, r"algorithm.*ES256"),
            ("absent", None, None, r"algorithm not found"),
            ("none, empty signature", "none", lambda _: b"", r"empty signature|algorithm"),
        )
        for name, alg, signer, reason in cases:
            with self.subTest(alg=name):
                lay = self.layout("cose-alg")
                app = lay.image()
                env = N.sign_cose(R.subject_of(app), ident, header_alg=alg, sign_with=signer)
                sig = N.add_signature_to_layout(lay.path, R.subject_of(app), env,
                                                N.COSE_MEDIA_TYPE, identity=ident)
                self.fails(f"3 cose alg {name}", lay, app, sig, "integrity", reason)

    # -- 4 -----------------------------------------------------------------------------
    def test_04_key_algorithm_family_mismatch(self):
        """The header names the other family (EC key + PS256, RSA key + ES256); the
        primitive signature is the key's own (also test_verify
        Signatures.test_alg_mismatch, same family, other size). JWS follows golang-jwt
        ("key is of invalid type"), COSE go-cose ("algorithm mismatch")."""
        for env in ENVELOPES:
            for key, alg in (("ec256", "PS256"), ("ec384", "PS384"), ("rsa2048", "ES256"),
                             ("rsa3072", "ES384")):
                with self.subTest(envelope=env, key=key, alg=alg):
                    lay, app, sig = self.signed_app(key, env, stem="family", alg=alg)
                    reason = (r"key is of invalid type" if env == "jws"
                              else rf"algorithm mismatch.*{alg}")
                    self.fails(f"4 {key} with {alg} ({env})", lay, app, sig, "integrity", reason)

    # -- 5 -----------------------------------------------------------------------------
    def test_05_rsa_1024_leaf(self):
        """An RSA-1024 leaf, chain otherwise valid and trusted (Notation: RSA 2048, 3072
        or 4096 only)."""
        for env in ENVELOPES:
            with self.subTest(envelope=env):
                lay, app, sig = self.signed_app(self.forged.rsa1024, env, stem="rsa1024")
                self.fails(f"5 rsa-1024 leaf ({env})", lay, app, sig, "integrity",
                           r"rsa key size 1024 bits is not supported")

    # -- 6 -----------------------------------------------------------------------------
    def test_06_intermediate_not_a_ca(self):
        """The leaf's issuer has basicConstraints CA:FALSE, or none at all (but
        keyCertSign): Go's CheckSignatureFrom refuses it as a parent."""
        for env in ENVELOPES:
            for inter in ("not_ca", "no_bc"):
                with self.subTest(envelope=env, intermediate=inter):
                    leaf = getattr(self.forged, "under_" + inter)
                    lay, app, sig = self.signed_app(leaf, env, stem=inter)
                    c = self.fails(f"6 intermediate {inter} ({env})", lay, app, sig,
                                   "integrity", R_CHAIN_NOT_CA)
                    self.assertIn(f"ferry forged {inter}", c["reason"],
                                  "the reason names the intermediate")

    # -- 7 -----------------------------------------------------------------------------
    def test_07_leaf_eku(self):
        """clientAuth / serverAuth EKU: invalid (also test_verify
        Signatures.test_leaf_with_server_auth_eku)."""
        for env in ENVELOPES:
            for ident, eku in ((self.forged.clientauth, "ClientAuth"),
                               (self.pki["serverauth"], "ServerAuth")):
                with self.subTest(envelope=env, eku=eku):
                    lay, app, sig = self.signed_app(ident, env, stem="eku")
                    self.fails(f"7 leaf eku {eku} ({env})", lay, app, sig, "integrity",
                               rf"extended key usage.*{eku}")

    def test_07_leaf_eku_valid_per_spec(self):
        """No EKU extension, or an EKU without codeSigning (documentSigning only): valid
        (spec: the EKU is optional and MAY contain id-kp-codeSigning)."""
        for env in ENVELOPES:
            for ident in (self.forged.noeku, self.forged.docsign):
                with self.subTest(envelope=env, leaf=ident.name):
                    lay, app, sig = self.signed_app(ident, env, stem="eku-ok")
                    proc, rep, s = self.assert_sig_passes(lay.pack("dir"), app["digest"],
                                                          sig["digest"],
                                                          policy=self.strict_policy())
                    self.assert_all_pass(s, proc)

    # -- 8 -----------------------------------------------------------------------------
    def test_08_chain_loops(self):
        f = self.forged
        leaf = self.pki["ec256"]
        cycle = [f.loop_a.der, f.loop_b.der]
        cases = (
            # Cross-signed pair, no root: every link verifies, nothing ends the chain.
            ("cross-signed", f.loop_leaf, [f.loop_leaf.der] + cycle, R_SELF_SIGNED),
            ("cross-signed x8", f.loop_leaf, [f.loop_leaf.der] + cycle * 8, R_SELF_SIGNED),
            # The cycle closed by a trusted root that did not issue it.
            ("cycle then root", f.loop_leaf, [f.loop_leaf.der] + cycle * 2 + [self.pki.root.der],
             r"chain.*not issued by"),
            ("intermediate twice", leaf,
             [leaf.der, self.pki.inter.der, self.pki.inter.der, self.pki.root.der],
             r"chain.*not issued by"),
            ("root twice", leaf, [leaf.der, self.pki.inter.der, self.pki.root.der,
                                  self.pki.root.der], R_SELF_SIGNED),
            ("leaf twice", leaf, [leaf.der, leaf.der, self.pki.inter.der, self.pki.root.der],
             r"chain.*(not issued by|parent certificate cannot sign)"),
        )
        store = P.write_truststore(self.new_path("loop-store"), {
            "ca": {"ferry": [self.pki.root], "loop": [f.loop_a, f.loop_b]}})
        policy = self.strict_policy(stores=["ca:ferry", "ca:loop"])
        for env in ENVELOPES:
            for name, ident, chain, reason in cases:
                with self.subTest(envelope=env, chain=name):
                    lay, app, sig = self.signed_app(ident, env, stem="loop", chain=chain)
                    self.fails(f"8 loop {name} ({env})", lay, app, sig, "integrity", reason,
                               policy=policy, store=store)

    # -- 9 -----------------------------------------------------------------------------
    def test_09_thousand_certificate_chain(self):
        """x5c / x5chain of 1,000 certificates: the leaf, then the cross-signed pair
        repeated (every link verifies), rejected quickly by a bound on the chain length."""
        f = self.forged
        chain = [f.loop_leaf.der] + [f.loop_a.der, f.loop_b.der] * 499 + [f.loop_a.der]
        self.assertEqual(len(chain), 1000)
        for env in ENVELOPES:
            with self.subTest(envelope=env):
                lay, app, sig = self.signed_app(f.loop_leaf, env, stem="long", chain=chain)
                t0 = time.monotonic()
                c = self.fails(f"9 1000-cert chain ({env})", lay, app, sig, "integrity",
                               R_CHAIN_LENGTH)
                elapsed = time.monotonic() - t0
                self.assertLess(elapsed, CHAIN_SECONDS, f"took {elapsed:.1f} s")
                self.assertIn("1000", c["reason"], "the reason gives the chain length")

    # -- 10 ----------------------------------------------------------------------------
    def test_10_timestamp_token_for_other_bytes(self):
        """A valid RFC 3161 token from the trusted TSA over other bytes (also test_verify
        Signatures.test_timestamp_token_for_other_data, JWS only)."""
        pki = self.pki
        token = pki.timestamp(b"other bytes")
        policy = self.strict_policy(stores=["ca:ferry", "tsa:tsa"], verify_timestamp="always")
        for env in ENVELOPES:
            with self.subTest(envelope=env):
                lay = self.layout("ts-other")
                app = lay.image()
                raw, mt = N.sign(env, R.subject_of(app), pki["short"],
                                 signing_time=pki.short_signing_time)
                if env == "jws":
                    doc = json.loads(raw)
                    doc["header"][N.H_TIMESTAMP] = base64.b64encode(token).decode()
                    raw = R.canonical_json(doc)
                else:
                    msg = N.cbor_decode(raw)
                    msg.value[1][N.H_TIMESTAMP] = token
                    raw = N.cbor_encode(msg)
                sig = N.add_signature_to_layout(lay.path, R.subject_of(app), raw, mt,
                                                identity=pki["short"])
                self.fails(f"10 timestamp over other bytes ({env})", lay, app, sig,
                           "authenticTimestamp", r"message imprint|mismatch",
                           policy=policy, vt=pki.short_expired_time)

    # -- 11, 12 --------------------------------------------------------------------------
    def cdp_bundle(self, env):
        return self.signed_app("cdp", env, stem=f"cdp-{env}")

    def test_11_crl_signed_by_other_key(self):
        """Issuer name of the intermediate, another key (also test_verify
        Revocation.test_crl_signed_by_other_key, COSE only)."""
        for env in ENVELOPES:
            with self.subTest(envelope=env):
                lay, app, sig = self.cdp_bundle(env)
                self.fails(f"11 crl by other key ({env})", lay, app, sig, "revocation",
                           rf"{V.R_UNKNOWN}.*(does not verify|signature)",
                           crls=[self.pki.crls["wrong_key"]])

    def test_12_crl_from_the_future(self):
        """thisUpdate 2027-06-01, after the verification time: used as notation does
        (no thisUpdate check) — revoked when it lists the leaf, fine when it does not."""
        crls = self.forged.crls
        for env in ENVELOPES:
            lay, app, sig = self.cdp_bundle(env)
            with self.subTest(envelope=env, crl="future_revoked"):
                self.fails(f"12 crl from the future, lists leaf ({env})", lay, app, sig,
                           "revocation", V.R_REVOKED, crls=[crls["future_revoked"]])
            with self.subTest(envelope=env, crl="future"):
                proc, rep, s = self.assert_sig_passes(lay.pack("dir"), app["digest"],
                                                      sig["digest"], policy=self.strict_policy(),
                                                      crls=[crls["future"]])
                self.assert_check(s, "revocation", "pass", "enforce", None, proc)


if __name__ == "__main__":
    unittest.main(verbosity=2)
