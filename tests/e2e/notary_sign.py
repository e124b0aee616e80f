"""An independent Notary Project (Notation) signer for tests: Python stdlib + ``openssl`` CLI.

Produces envelopes the way notation-go / notation-core-go do
(../shared/notation/SPEC.md §1-§4):

- payload ``{"targetArtifact":{"mediaType","digest","size"}}``
  (media type ``application/vnd.cncf.notary.payload.v1+json``);
- ``sign_jws``: JWS flattened JSON serialization. Protected header: alg (PS256/384/512,
  ES256/384/512 from the key), crit, cty, io.cncf.notary.signingScheme,
  io.cncf.notary.signingTime (or authenticSigningTime), optional io.cncf.notary.expiry.
  Unprotected header: x5c (standard base64 DER, leaf first .. root),
  io.cncf.notary.signingAgent, optional io.cncf.notary.timestampSignature (RFC 3161 token
  over the raw signature bytes). Signed bytes: ASCII(protected_b64url "." payload_b64url).
  RSA-PSS with salt = hash length; ECDSA as raw fixed-width r||s.
- ``sign_cose``: COSE_Sign1_Tagged (tag 18). Protected map: 1 alg, 2 crit (tstr labels),
  3 content type, "io.cncf.notary.signingScheme", "io.cncf.notary.signingTime" (tag 1
  epoch int), optional "io.cncf.notary.expiry"; unprotected: 33 x5chain (array of bstr),
  "io.cncf.notary.signingAgent", optional "io.cncf.notary.timestampSignature" (bstr).
  Signed bytes: CBOR ["Signature1", protected bstr, h'', payload].

Tampering knobs (keyword arguments of ``sign_jws``/``sign_cose``): ``target`` (any
descriptor: sign another artifact), ``extra_critical`` ({label: value} added to the
protected header and listed in crit), ``alg`` (header alg differing from the key's; the
signature is made with that alg's hash so only the mismatch is wrong), ``padded`` (JWS:
base64url *with* ``=`` padding for protected and payload), ``scheme``
(``notary.x509.signingAuthority``), ``expiry`` (RFC 3339, e.g. in the past),
``corrupt_signature`` (flip a bit of the primitive signature), ``chain`` (override the
certificate chain), ``content_type``, ``header_alg`` (the protected ``alg`` written
as given, independent of the algorithm used to sign: "none", "HS256", a COSE int such as
5 (HMAC 256/256) or a text value; ``None`` leaves ``alg`` out), ``sign_with`` (a function
signing input bytes → signature bytes replacing the key's primitive signature, e.g.
``hmac_sha256`` or ``lambda _: b""``).

Forgery helpers: ``swap_protected`` (the protected header of one envelope with the
payload and signature of another), ``hmac_sha256``.

Layout helpers: ``add_signature_to_layout`` (signature manifest in the new or legacy form
+ envelope blob, listed untagged in index.json, design §3), ``signature_manifest``.

Independent checks: ``check_jws`` / ``check_cose`` verify an envelope with
``openssl dgst -verify`` using the public key of the envelope's own leaf certificate, and
``cbor_decode`` parses COSE.
"""

import base64
import hashlib
import json
import os
import struct
import subprocess
import tempfile

import pki as P

PAYLOAD_TYPE = "application/vnd.cncf.notary.payload.v1+json"
JWS_MEDIA_TYPE = "application/jose+json"
COSE_MEDIA_TYPE = "application/cose"
NOTARY_SIGNATURE = "application/vnd.cncf.notary.signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
THUMBPRINT = "io.cncf.notary.x509chain.thumbprint#S256"
SIGNING_AGENT = "ferry-tests/1.0 (notary_sign.py)"

H_SCHEME = "io.cncf.notary.signingScheme"
H_SIGNING_TIME = "io.cncf.notary.signingTime"
H_AUTH_SIGNING_TIME = "io.cncf.notary.authenticSigningTime"
H_EXPIRY = "io.cncf.notary.expiry"
H_TIMESTAMP = "io.cncf.notary.timestampSignature"
H_AGENT = "io.cncf.notary.signingAgent"
SCHEME_X509 = "notary.x509"
SCHEME_SA = "notary.x509.signingAuthority"


# ---------------------------------------------------------------------------
# Encoding helpers
# ---------------------------------------------------------------------------

def b64url(data, padded=False):
    s = base64.urlsafe_b64encode(data).decode()
    return s if padded else s.rstrip("=")


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def descriptor(media_type, data, **extra):
    d = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    d.update({k: v for k, v in extra.items() if v is not None})
    return d


def payload_bytes(target):
    t = {"mediaType": target["mediaType"], "digest": target["digest"], "size": target["size"]}
    for k in ("annotations", "artifactType"):
        if k in target:
            t[k] = target[k]
    return canonical_json({"targetArtifact": t})


# -- minimal CBOR (RFC 8949), definite lengths, enough for COSE_Sign1 ---------

class Tag:
    def __init__(self, tag, value):
        self.tag, self.value = tag, value

    def __eq__(self, other):
        return isinstance(other, Tag) and (self.tag, self.value) == (other.tag, other.value)

    def __repr__(self):
        return f"Tag({self.tag}, {self.value!r})"


def _head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for ai, fmt, lim in ((24, ">B", 1 << 8), (25, ">H", 1 << 16), (26, ">I", 1 << 32),
                         (27, ">Q", 1 << 64)):
        if n < lim:
            return bytes([major << 5 | ai]) + struct.pack(fmt, n)
    raise ValueError("integer too large")


def cbor_encode(v):
    if isinstance(v, bool):
        return b"\xf5" if v else b"\xf4"
    if v is None:
        return b"\xf6"
    if isinstance(v, int):
        return _head(0, v) if v >= 0 else _head(1, -1 - v)
    if isinstance(v, (bytes, bytearray)):
        return _head(2, len(v)) + bytes(v)
    if isinstance(v, str):
        b = v.encode()
        return _head(3, len(b)) + b
    if isinstance(v, (list, tuple)):
        return _head(4, len(v)) + b"".join(cbor_encode(x) for x in v)
    if isinstance(v, dict):
        return _head(5, len(v)) + b"".join(cbor_encode(k) + cbor_encode(x) for k, x in v.items())
    if isinstance(v, Tag):
        return _head(6, v.tag) + cbor_encode(v.value)
    raise TypeError(type(v))


def cbor_decode(data):
    """Decodes one CBOR item (definite lengths only; rejects trailing bytes and duplicate
    map keys). Tags become ``Tag``; maps keep insertion order."""
    v, pos = _decode(data, 0)
    if pos != len(data):
        raise ValueError(f"trailing bytes at {pos}")
    return v


def _decode(data, pos):
    ib = data[pos]
    major, ai = ib >> 5, ib & 31
    pos += 1
    if major == 7:
        if ai == 20:
            return False, pos
        if ai == 21:
            return True, pos
        if ai == 22:
            return None, pos
        raise ValueError(f"unsupported simple/float {ai}")
    if ai < 24:
        n = ai
    elif ai in (24, 25, 26, 27):
        size = 1 << (ai - 24)
        n = int.from_bytes(data[pos:pos + size], "big")
        pos += size
    else:
        raise ValueError("indefinite length not supported")
    if major == 0:
        return n, pos
    if major == 1:
        return -1 - n, pos
    if major in (2, 3):
        b = data[pos:pos + n]
        if len(b) != n:
            raise ValueError("truncated string")
        return (bytes(b) if major == 2 else b.decode()), pos + n
    if major == 4:
        out = []
        for _ in range(n):
            x, pos = _decode(data, pos)
            out.append(x)
        return out, pos
    if major == 5:
        out = {}
        for _ in range(n):
            k, pos = _decode(data, pos)
            x, pos = _decode(data, pos)
            if k in out:
                raise ValueError(f"duplicate map key {k!r}")
            out[k] = x
        return out, pos
    if major == 6:
        x, pos = _decode(data, pos)
        return Tag(n, x), pos
    raise ValueError(major)


# -- ASN.1 DER ECDSA signature <-> raw r||s ------------------------------------

def _der_len(data, pos):
    n = data[pos]
    pos += 1
    if n < 0x80:
        return n, pos
    k = n & 0x7F
    return int.from_bytes(data[pos:pos + k], "big"), pos + k


def ecdsa_der_to_raw(der, width):
    if der[0] != 0x30:
        raise ValueError("not a DER SEQUENCE")
    _, pos = _der_len(der, 1)
    out = b""
    for _ in range(2):
        if der[pos] != 0x02:
            raise ValueError("not an INTEGER")
        n, pos = _der_len(der, pos + 1)
        v = int.from_bytes(der[pos:pos + n], "big")
        pos += n
        out += v.to_bytes(width, "big")
    return out


def _der_int(v):
    b = v.to_bytes(max(1, (v.bit_length() + 7) // 8), "big")
    if b[0] & 0x80:
        b = b"\x00" + b
    return b"\x02" + _der_length(len(b)) + b


def _der_length(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def ecdsa_raw_to_der(raw):
    w = len(raw) // 2
    body = _der_int(int.from_bytes(raw[:w], "big")) + _der_int(int.from_bytes(raw[w:], "big"))
    return b"\x30" + _der_length(len(body)) + body


# ---------------------------------------------------------------------------
# Primitive signatures with the openssl CLI
# ---------------------------------------------------------------------------

def _tmpdir():
    return tempfile.mkdtemp(prefix="ferry-sign-")


def primitive_sign(identity, data, alg=None):
    """Signs ``data`` with the identity's key using ``alg`` (default: the key's alg).
    RSA: RSASSA-PSS, MGF1 with the same hash, salt length = hash length.
    EC: ECDSA, returned as raw r||s of the key's field width."""
    alg = alg or identity.alg
    h = P.ALG_HASH[alg]
    d = _tmpdir()
    try:
        inp, out = os.path.join(d, "in"), os.path.join(d, "sig")
        with open(inp, "wb") as f:
            f.write(data)
        cmd = [P.OPENSSL, "dgst", "-" + h, "-sign", identity.key, "-out", out]
        if not identity.is_ec:
            cmd += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:digest",
                    "-sigopt", "rsa_mgf1_md:" + h]
        P.run(cmd + [inp])
        with open(out, "rb") as f:
            sig = f.read()
        if identity.is_ec:
            sig = ecdsa_der_to_raw(sig, P.EC_WIDTH[identity.spec])
        return sig
    finally:
        _rm(d)


def primitive_verify(cert_der, data, sig, alg, pss_saltlen="auto"):
    """Independent check with ``openssl dgst -verify`` and the public key of
    ``cert_der``. pss_saltlen: "auto" (JWS verifiers) or "digest" (COSE)."""
    h = P.ALG_HASH[alg]
    d = _tmpdir()
    try:
        cert, pub = os.path.join(d, "cert.der"), os.path.join(d, "pub.pem")
        with open(cert, "wb") as f:
            f.write(cert_der)
        P.run([P.OPENSSL, "x509", "-inform", "DER", "-in", cert, "-pubkey", "-noout",
               "-out", pub])
        inp, sigf = os.path.join(d, "in"), os.path.join(d, "sig")
        with open(inp, "wb") as f:
            f.write(data)
        with open(sigf, "wb") as f:
            f.write(ecdsa_raw_to_der(sig) if alg.startswith("ES") else sig)
        cmd = [P.OPENSSL, "dgst", "-" + h, "-verify", pub, "-signature", sigf]
        if alg.startswith("PS"):
            cmd += ["-sigopt", "rsa_padding_mode:pss", "-sigopt",
                    "rsa_pss_saltlen:" + ("-2" if pss_saltlen == "auto" else pss_saltlen),
                    "-sigopt", "rsa_mgf1_md:" + h]
        p = subprocess.run(cmd + [inp], capture_output=True, text=True)
        return p.returncode == 0 and "Verified OK" in p.stdout
    finally:
        _rm(d)


def _rm(d):
    import shutil
    shutil.rmtree(d, True)


def _flip(sig):
    b = bytearray(sig)
    b[len(b) // 2] ^= 0x01
    return bytes(b)


def _epoch(rfc3339):
    return int(P.parse_rfc3339(rfc3339).timestamp())


# ---------------------------------------------------------------------------
# Envelopes
# ---------------------------------------------------------------------------

_KEEP = object()


def sign_jws(target, identity, *, signing_time=P.SIGNING_TIME, expiry=None,
             scheme=SCHEME_X509, alg=None, extra_critical=None, extra_protected=None,
             crit=None, padded=False, tsa=None, signing_agent=SIGNING_AGENT,
             corrupt_signature=False, chain=None, content_type=PAYLOAD_TYPE,
             header_alg=_KEEP, sign_with=None):
    """A JWS envelope (bytes) signing ``target`` (OCI descriptor dict) with ``identity``
    (pki.Identity). ``tsa``: a pki.PKI whose ``timestamp()`` countersigns the signature.
    ``crit``: overrides the computed crit list entirely."""
    alg = alg or identity.alg
    prot = {"alg": alg}
    crit_list = [H_SCHEME]
    if expiry:
        crit_list.append(H_EXPIRY)
    if scheme == SCHEME_SA:
        crit_list.append(H_AUTH_SIGNING_TIME)
    for k in (extra_critical or {}):
        crit_list.append(k)
    prot["crit"] = list(crit) if crit is not None else crit_list
    prot["cty"] = content_type
    prot[H_SCHEME] = scheme
    if scheme == SCHEME_SA:
        prot[H_AUTH_SIGNING_TIME] = signing_time
    else:
        prot[H_SIGNING_TIME] = signing_time
    if expiry:
        prot[H_EXPIRY] = expiry
    prot.update(extra_critical or {})
    prot.update(extra_protected or {})
    if header_alg is None:
        del prot["alg"]
    elif header_alg is not _KEEP:
        prot["alg"] = header_alg

    payload = payload_bytes(target)
    if padded:
        # Make sure both encodings really end in padding.
        while len(payload) % 3 == 0:
            payload += b" "
        pj = canonical_json(prot)
        while len(pj) % 3 == 0:
            prot["io.ferry.test.pad"] = prot.get("io.ferry.test.pad", "") + "x"
            pj = canonical_json(prot)
    protected_b64 = b64url(canonical_json(prot), padded)
    payload_b64 = b64url(payload, padded)
    signing_input = (protected_b64 + "." + payload_b64).encode("ascii")
    sig = sign_with(signing_input) if sign_with else primitive_sign(identity, signing_input, alg)
    if corrupt_signature:
        sig = _flip(sig)
    header = {"x5c": [base64.b64encode(c).decode() for c in (chain or identity.chain)],
              H_AGENT: signing_agent}
    if tsa is not None:
        header[H_TIMESTAMP] = base64.b64encode(tsa.timestamp(sig)).decode()
    env = {"payload": payload_b64, "protected": protected_b64, "header": header,
           "signature": b64url(sig)}
    return canonical_json(env)


def sign_cose(target, identity, *, signing_time=P.SIGNING_TIME, expiry=None,
              scheme=SCHEME_X509, alg=None, extra_critical=None, extra_protected=None,
              crit=None, tsa=None, signing_agent=SIGNING_AGENT, corrupt_signature=False,
              chain=None, content_type=PAYLOAD_TYPE, untagged=False, header_alg=_KEEP,
              sign_with=None):
    """A COSE_Sign1_Tagged envelope (bytes); arguments as sign_jws. ``untagged``: omit
    CBOR tag 18 (invalid for Notation)."""
    alg = alg or identity.alg
    crit_list = [H_SCHEME]
    if expiry:
        crit_list.append(H_EXPIRY)
    if scheme == SCHEME_SA:
        crit_list.append(H_AUTH_SIGNING_TIME)
    for k in (extra_critical or {}):
        crit_list.append(k)
    prot = {1: P.COSE_ALG[alg], 2: list(crit) if crit is not None else crit_list,
            3: content_type, H_SCHEME: scheme}
    if scheme == SCHEME_SA:
        prot[H_AUTH_SIGNING_TIME] = Tag(1, _epoch(signing_time))
    else:
        prot[H_SIGNING_TIME] = Tag(1, _epoch(signing_time))
    if expiry:
        prot[H_EXPIRY] = Tag(1, _epoch(expiry))
    prot.update(extra_critical or {})
    prot.update(extra_protected or {})
    if header_alg is None:
        del prot[1]
    elif header_alg is not _KEEP:
        prot[1] = header_alg
    protected = cbor_encode(prot)
    payload = payload_bytes(target)
    to_be_signed = cbor_encode(["Signature1", protected, b"", payload])
    sig = sign_with(to_be_signed) if sign_with else primitive_sign(identity, to_be_signed, alg)
    if corrupt_signature:
        sig = _flip(sig)
    unprot = {33: list(chain or identity.chain), H_AGENT: signing_agent}
    if tsa is not None:
        unprot[H_TIMESTAMP] = tsa.timestamp(sig)
    msg = [protected, unprot, payload, sig]
    return cbor_encode(msg if untagged else Tag(18, msg))


def sign(envelope, target, identity, **kw):
    """envelope "jws" or "cose" -> (envelope bytes, media type)."""
    if envelope == "jws":
        return sign_jws(target, identity, **kw), JWS_MEDIA_TYPE
    if envelope == "cose":
        kw.pop("padded", None)
        return sign_cose(target, identity, **kw), COSE_MEDIA_TYPE
    raise ValueError(envelope)


# ---------------------------------------------------------------------------
# Forgeries
# ---------------------------------------------------------------------------

HMAC_KEY = b"ferry-tests shared secret"


def hmac_sha256(data, key=HMAC_KEY):
    """An HMAC-SHA256 tag over ``data`` (what HS256 / COSE alg 5 would carry)."""
    import hmac
    return hmac.new(key, data, hashlib.sha256).digest()


def swap_protected(env_bytes, donor_bytes, media_type):
    """``env_bytes`` with its protected header replaced by ``donor_bytes``' (both well
    formed, both signed): the signature no longer covers the protected header it
    travels with."""
    if media_type == JWS_MEDIA_TYPE:
        env, donor = json.loads(env_bytes), json.loads(donor_bytes)
        env["protected"] = donor["protected"]
        return canonical_json(env)
    msg, donor = cbor_decode(env_bytes), cbor_decode(donor_bytes)
    msg.value[0] = donor.value[0]
    return cbor_encode(msg)


# ---------------------------------------------------------------------------
# Independent checks of our own output
# ---------------------------------------------------------------------------

def parse_jws(env_bytes):
    env = json.loads(env_bytes)
    prot = json.loads(b64url_decode(env["protected"]))
    payload = json.loads(b64url_decode(env["payload"]))
    chain = [base64.b64decode(c) for c in env["header"]["x5c"]]
    return env, prot, payload, chain


def check_jws(env_bytes):
    """Returns (ok, protected header, payload) verifying with the x5c leaf key."""
    env, prot, payload, chain = parse_jws(env_bytes)
    signing_input = (env["protected"] + "." + env["payload"]).encode("ascii")
    ok = primitive_verify(chain[0], signing_input, b64url_decode(env["signature"]), prot["alg"])
    return ok, prot, payload


def parse_cose(env_bytes):
    msg = cbor_decode(env_bytes)
    if not isinstance(msg, Tag) or msg.tag != 18:
        raise ValueError("not COSE_Sign1_Tagged")
    protected, unprot, payload, sig = msg.value
    return protected, cbor_decode(protected), unprot, payload, sig


def check_cose(env_bytes):
    """Returns (ok, protected map, payload JSON); RSA-PSS checked with salt = hash length."""
    protected, prot, unprot, payload, sig = parse_cose(env_bytes)
    alg = {v: k for k, v in P.COSE_ALG.items()}[prot[1]]
    tbs = cbor_encode(["Signature1", protected, b"", payload])
    ok = primitive_verify(unprot[33][0], tbs, sig, alg, pss_saltlen="digest")
    return ok, prot, json.loads(payload)


def raw_signature(env_bytes, media_type):
    """The primitive signature bytes (what an RFC 3161 token must cover)."""
    if media_type == JWS_MEDIA_TYPE:
        return b64url_decode(json.loads(env_bytes)["signature"])
    return parse_cose(env_bytes)[4]


def timestamp_token(env_bytes, media_type):
    if media_type == JWS_MEDIA_TYPE:
        t = json.loads(env_bytes)["header"].get(H_TIMESTAMP)
        return base64.b64decode(t) if t else None
    return parse_cose(env_bytes)[2].get(H_TIMESTAMP)


# ---------------------------------------------------------------------------
# OCI layout
# ---------------------------------------------------------------------------

def signature_manifest(subject_desc, envelope_bytes, media_type, form="new", identity=None,
                       created=P.SIGNING_TIME, annotations=None):
    """(manifest bytes, config bytes) of a Notation signature manifest.
    form "new": artifactType notary + empty config; "legacy": no artifactType,
    config.mediaType application/vnd.cncf.notary.signature (content ``{}``)."""
    config = b"{}"
    if form == "new":
        cfg = {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2}
    elif form == "legacy":
        cfg = {"mediaType": NOTARY_SIGNATURE, "digest": EMPTY_DIGEST, "size": 2}
    else:
        raise ValueError(form)
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
    if form == "new":
        m["artifactType"] = NOTARY_SIGNATURE
    m["config"] = cfg
    m["layers"] = [descriptor(media_type, envelope_bytes)]
    m["subject"] = {"mediaType": subject_desc["mediaType"], "digest": subject_desc["digest"],
                    "size": subject_desc["size"]}
    ann = {}
    if identity is not None:
        ann[THUMBPRINT] = json.dumps(identity.thumbprints)
    if created:
        ann["org.opencontainers.image.created"] = created
    ann.update(annotations or {})
    if ann:
        m["annotations"] = ann
    return canonical_json(m), config


def write_blob(layout_dir, data):
    digest = sha256_digest(data)
    d = os.path.join(layout_dir, "blobs", "sha256")
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, digest.split(":", 1)[1])
    if not os.path.exists(p):
        with open(p, "wb") as f:
            f.write(data)
    return digest


def add_signature_to_layout(layout_dir, subject_desc, envelope_bytes, media_type, form="new",
                            identity=None, index_entry=True, annotations=None):
    """Writes the envelope blob, the config blob and the signature manifest into
    ``layout_dir`` and lists the manifest untagged in index.json (design §3; oras-style:
    the entry carries artifactType and annotations as oras does). Returns the manifest's
    descriptor (as listed)."""
    manifest, config = signature_manifest(subject_desc, envelope_bytes, media_type, form,
                                          identity, annotations=annotations)
    write_blob(layout_dir, envelope_bytes)
    write_blob(layout_dir, config)
    write_blob(layout_dir, manifest)
    desc = descriptor(OCI_MANIFEST, manifest)
    doc = json.loads(manifest)
    if "artifactType" in doc:
        desc["artifactType"] = doc["artifactType"]
    if doc.get("annotations"):
        desc["annotations"] = dict(doc["annotations"])
    if index_entry:
        ip = os.path.join(layout_dir, "index.json")
        with open(ip, "rb") as f:
            index = json.load(f)
        index.setdefault("manifests", []).append(desc)
        with open(ip, "wb") as f:
            f.write(canonical_json(index))
    return desc


# ---------------------------------------------------------------------------
# Self-check: python3 notary_sign.py
# ---------------------------------------------------------------------------

def _selfcheck():
    import time
    t0 = time.time()
    pki = P.shared_pki()
    print(f"pki: {pki.dir} ({time.time() - t0:.1f}s)")
    target = {"mediaType": OCI_MANIFEST, "size": 517,
              "digest": "sha256:" + hashlib.sha256(b"target").hexdigest()}
    fails = 0

    def expect(cond, what):
        nonlocal fails
        print(("ok   " if cond else "FAIL ") + what)
        fails += 0 if cond else 1

    for spec in P.KEY_SPECS:
        ident = pki[spec]
        ok, prot, payload = check_jws(sign_jws(target, ident))
        expect(ok and prot["alg"] == ident.alg and payload["targetArtifact"] == target,
               f"jws {spec} {ident.alg} verifies with openssl dgst -verify")
        ok, prot, payload = check_cose(sign_cose(target, ident))
        expect(ok and prot[1] == P.COSE_ALG[ident.alg] and payload["targetArtifact"] == target,
               f"cose {spec} {prot[1]} verifies (salt=hash length)")
    ok, _, _ = check_jws(sign_jws(target, pki["rsa2048"], corrupt_signature=True))
    expect(not ok, "corrupted jws signature does not verify")
    ok, _, _ = check_cose(sign_cose(target, pki["ec256"], corrupt_signature=True))
    expect(not ok, "corrupted cose signature does not verify")
    env = sign_jws(target, pki["rsa2048"], padded=True)
    e = json.loads(env)
    expect(e["protected"].endswith("=") and e["payload"].endswith("="), "padded knob pads")
    ok, prot, _ = check_jws(sign_jws(target, pki["rsa2048"], alg="PS384"))
    expect(ok and prot["alg"] == "PS384", "alg-mismatch knob: PS384 over an RSA-2048 key")
    env = sign_cose(target, pki["rsa2048"], expiry="2026-01-01T00:00:00Z",
                    extra_critical={"io.ferry.test.unknown": "x"})
    prot = parse_cose(env)[1]
    expect(prot[2] == [H_SCHEME, H_EXPIRY, "io.ferry.test.unknown"] and
           prot[H_EXPIRY] == Tag(1, _epoch("2026-01-01T00:00:00Z")) and
           isinstance(prot[H_SIGNING_TIME], Tag) and prot[H_SIGNING_TIME].tag == 1,
           "cose crit / tag-1 times")
    expect(isinstance(cbor_decode(env), Tag) and cbor_decode(env).tag == 18, "cose tag 18")
    for envelope in ("jws", "cose"):
        env, mt = sign(envelope, target, pki["short"], tsa=pki,
                       signing_time=pki.short_signing_time)
        tok = timestamp_token(env, mt)
        out = pki.verify_timestamp(tok, raw_signature(env, mt)).decode()
        expect("Verification: OK" in out, f"{envelope} timestamp token verifies (openssl ts -verify)")
        txt = P.run([P.OPENSSL, "cms", "-cmsout", "-print", "-inform", "DER", "-in", "/dev/stdin"],
                    input=tok).decode()
        expect("1.2.840.113549.1.9.16.2.47" in txt or "signingCertificateV2" in txt,
               f"{envelope} token carries ESS SigningCertificateV2")
    # CRLs
    r = subprocess.run([P.OPENSSL, "verify", "-crl_check", "-CAfile", pki.root.cert,
                        "-untrusted", pki.inter.cert, "-CRLfile", pki.crls["revoked"] + ".pem",
                        pki["cdp"].cert], capture_output=True, text=True)
    expect(r.returncode != 0 and "revoked" in (r.stdout + r.stderr), "revoked CRL revokes cdp leaf")
    r = subprocess.run([P.OPENSSL, "verify", "-crl_check", "-CAfile", pki.root.cert,
                        "-untrusted", pki.inter.cert, "-CRLfile", pki.crls["fresh"] + ".pem",
                        pki["cdp"].cert], capture_output=True, text=True)
    expect(r.returncode == 0, "fresh CRL: cdp leaf OK")
    r = subprocess.run([P.OPENSSL, "crl", "-in", pki.crls["wrong_key"] + ".pem", "-noout",
                        "-CAfile", pki.inter.cert, "-verify"], capture_output=True, text=True)
    expect("verify failure" in r.stdout + r.stderr, "wrong_key CRL does not verify with inter")
    print(f"{fails} failure(s), {time.time() - t0:.1f}s")
    return 1 if fails else 0


if __name__ == "__main__":
    import sys
    sys.exit(_selfcheck())
