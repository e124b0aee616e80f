"""A test PKI for Notary Project (Notation) signatures, made with the ``openssl`` CLI.

Python 3 stdlib + ``openssl`` (3.0) only; everything is generated at test time into a
directory (``make_pki(dir)``, or ``shared_pki()`` for one PKI per process).

Certificates are issued with ``openssl ca`` so that validity periods are explicit
dates (reproducible outcomes with ``ferry verify --verification-time``):

  root           RSA-3072, self-signed, CA:TRUE critical, KU critical keyCertSign,cRLSign
                 2020-01-01 .. 2099-12-31, C=US, ST=WA, O=ferry-test, CN=ferry test root
  inter          RSA-3072, issued by root, CA:TRUE pathlen:0 critical, same KU; no CDP/AIA
  leaves (issued by inter; KU critical digitalSignature, EKU codeSigning, CA:FALSE;
          subject C=US, ST=WA, O=ferry-test, CN=<name>; 2020-01-01 .. 2099-12-31):
     rsa2048 rsa3072 rsa4096 ec256 ec384 ec521     (PS256/384/512, ES256/384/512)
     serverauth   RSA-2048, EKU serverAuth (no codeSigning)
     expired      RSA-2048, 2021-01-01 .. 2022-01-01
     notyet       RSA-2048, 2090-01-01 .. 2095-01-01
     cdp          RSA-2048, CRL distribution point http://crl.invalid/inter.crl
     short        RSA-2048, valid from 1 day before to 1 day after *now* (generation time):
                  a timestamp made now is inside its validity, a verification time
                  ``short_expired_time`` (now + 10 days) is after it
  untrusted_root RSA-3072 self-signed root CA (never in a trust store by default)
  untrusted      RSA-2048 leaf issued directly by untrusted_root
  tsa_root       RSA-3072 self-signed root CA for timestamping
  tsa            RSA-2048 TSA leaf, KU critical digitalSignature, EKU critical timeStamping only
  CRLs issued by inter (DER, ``crls[name]``):
     fresh        lists nothing,        lastUpdate 2025-01-01, nextUpdate 2099-01-01
     stale        lists nothing,        lastUpdate 2021-01-01, nextUpdate 2022-01-01
     revoked      lists ``cdp``,        lastUpdate 2025-01-01, nextUpdate 2099-01-01
     wrong_key    lists nothing, issuer name == inter's, but signed by another key
  ``timestamp(data)`` makes an RFC 3161 TimeStampToken (``openssl ts -reply -token_out``,
  SHA-256 message imprint, TSA cert included, ESS SigningCertificateV2 via
  ``ess_cert_id_alg = sha256``), genTime = now.

Helpers: ``write_truststore``, ``statement``/``trust_policy``/``write_trust_policy``.
"""

import base64
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading

OPENSSL = os.environ.get("OPENSSL", "openssl")

SUBJECT_BASE = "/C=US/ST=WA/O=ferry-test"
# The trusted identity matching every leaf of this PKI (and only them).
TRUSTED_IDENTITY = "x509.subject: C=US, ST=WA, O=ferry-test"
OTHER_IDENTITY = "x509.subject: C=US, ST=WA, O=someone-else"

CDP_URL = "http://crl.invalid/inter.crl"

# Fixed validity windows (openssl ca -startdate/-enddate, GeneralizedTime).
LONG = ("20200101000000Z", "20991231000000Z")
EXPIRED = ("20210101000000Z", "20220101000000Z")
NOT_YET = ("20900101000000Z", "20950101000000Z")

# A verification time inside every LONG window, after EXPIRED, before NOT_YET, inside
# the fresh CRLs and after the stale one.
VERIFICATION_TIME = "2026-11-23T10:00:00Z"
SIGNING_TIME = "2026-11-23T09:00:00Z"

# key spec -> (openssl genpkey args, signature alg, hash name, COSE alg)
KEY_SPECS = {
    "rsa2048": (["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"], "PS256", "sha256", -37),
    "rsa3072": (["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"], "PS384", "sha384", -38),
    "rsa4096": (["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096"], "PS512", "sha512", -39),
    "ec256": (["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "ES256", "sha256", -7),
    "ec384": (["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"], "ES384", "sha384", -35),
    "ec521": (["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"], "ES512", "sha512", -36),
}
ALG_HASH = {"PS256": "sha256", "PS384": "sha384", "PS512": "sha512",
            "ES256": "sha256", "ES384": "sha384", "ES512": "sha512"}
COSE_ALG = {"PS256": -37, "PS384": -38, "PS512": -39, "ES256": -7, "ES384": -35, "ES512": -36}
EC_WIDTH = {"ec256": 32, "ec384": 48, "ec521": 66}
# Key specs Notation refuses (not in KEY_SPECS, which tests iterate as "every valid key"):
# the alg is the one a naive signer would pick.
WEAK_KEY_SPECS = {
    "rsa1024": (["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"], "PS256", "sha256", -37),
}
ALL_KEY_SPECS = {**KEY_SPECS, **WEAK_KEY_SPECS}


def run(cmd, cwd=None, input=None):
    """Runs a command, raising with its stderr on failure; returns stdout bytes."""
    p = subprocess.run(cmd, cwd=cwd, input=input, capture_output=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n"
                           f"{p.stderr.decode(errors='replace')}{p.stdout.decode(errors='replace')}")
    return p.stdout


def pem_to_der(pem_path):
    return run([OPENSSL, "x509", "-in", pem_path, "-outform", "DER"])


def der_to_pem(der):
    b = base64.encodebytes(der).decode().replace("\n", "")
    lines = [b[i:i + 64] for i in range(0, len(b), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def split_pem_certs(path):
    """[DER] of every CERTIFICATE block of a PEM file, in order."""
    with open(path) as f:
        text = f.read()
    out = []
    for block in text.split("-----BEGIN CERTIFICATE-----")[1:]:
        body = block.split("-----END CERTIFICATE-----")[0]
        out.append(base64.b64decode("".join(body.split())))
    return out


def gentime(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y%m%d%H%M%SZ")


def rfc3339(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


class Identity:
    """A certificate with its key and chain.

    ``cert``/``key``: PEM paths; ``der``: DER bytes; ``chain``: [DER] leaf first, root
    last (exactly what goes into x5c / x5chain); ``chain_pem``: path of a PEM file with
    the chain; ``spec``: key spec name (``rsa2048``...); ``alg``: its Notation
    signature algorithm (``PS256``...); ``subject``: the openssl -subj string;
    ``serial``: hex serial."""

    def __init__(self, name, key, cert, chain, spec, subject):
        self.name, self.key, self.cert, self.spec, self.subject = name, key, cert, spec, subject
        self.der = pem_to_der(cert)
        self.chain = [self.der] + [c.der if isinstance(c, Identity) else c for c in chain]
        self.chain_pem = cert[:-4] + ".chain.pem"
        with open(self.chain_pem, "w") as f:
            f.write("".join(der_to_pem(d) for d in self.chain))
        self.serial = run([OPENSSL, "x509", "-in", cert, "-noout", "-serial"]).decode().strip().split("=", 1)[1]

    @classmethod
    def from_files(cls, name, key, chain_pem, spec, directory):
        """An Identity for existing material (e.g. upstream test data): ``key`` PEM,
        ``chain_pem`` a PEM file with the chain leaf first; ``directory`` receives the
        split-out leaf."""
        ders = split_pem_certs(chain_pem)
        os.makedirs(directory, exist_ok=True)
        leaf = os.path.join(directory, name + ".pem")
        with open(leaf, "w") as f:
            f.write(der_to_pem(ders[0]))
        subject = run([OPENSSL, "x509", "-in", leaf, "-noout", "-subject"]).decode().strip()
        return cls(name, key, leaf, ders[1:], spec, subject)

    @property
    def alg(self):
        return ALL_KEY_SPECS[self.spec][1]

    @property
    def hash(self):
        return ALL_KEY_SPECS[self.spec][2]

    @property
    def is_ec(self):
        return self.spec.startswith("ec")

    @property
    def thumbprints(self):
        return [hashlib.sha256(d).hexdigest() for d in self.chain]

    def __repr__(self):
        return f"Identity({self.name}, {self.spec}, {self.subject})"


_CA_CONF = """\
[ ca ]
default_ca = CA_default

[ CA_default ]
dir = {dir}
database = $dir/index.txt
new_certs_dir = $dir/newcerts
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sha256
default_days = 365
default_crl_days = 1
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
preserve = yes

[ policy_any ]
countryName = optional
stateOrProvinceName = optional
localityName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied

[ ext_root ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[ ext_inter ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ ext_leaf ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ ext_leaf_server ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ ext_leaf_cdp ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = codeSigning
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
crlDistributionPoints = URI:{cdp}

[ ext_leaf_noeku ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ ext_leaf_clientauth ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ ext_leaf_docsign ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = 1.3.6.1.5.5.7.3.36
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ ext_inter_not_ca ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ ext_inter_no_bc ]
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ ext_ca ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ ext_tsa ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ crl_ext ]
authorityKeyIdentifier = keyid:always
"""

_TSA_CONF = """\
[ tsa ]
default_tsa = tsa_config

[ tsa_config ]
dir = {dir}
serial = $dir/tsaserial
crypto_device = builtin
signer_cert = {cert}
certs = {certs}
signer_key = {key}
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5.6, 1.2.3.4.5.7
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


class CA:
    """An ``openssl ca`` working directory (database, serial, crlnumber, config)."""

    def __init__(self, directory, name, serial_start):
        self.dir = os.path.join(directory, "ca-" + name)
        os.makedirs(os.path.join(self.dir, "newcerts"), exist_ok=True)
        open(os.path.join(self.dir, "index.txt"), "w").close()
        with open(os.path.join(self.dir, "index.txt.attr"), "w") as f:
            f.write("unique_subject = no\n")
        with open(os.path.join(self.dir, "serial"), "w") as f:
            f.write(serial_start + "\n")
        with open(os.path.join(self.dir, "crlnumber"), "w") as f:
            f.write("1000\n")
        self.conf = os.path.join(self.dir, "ca.cnf")
        with open(self.conf, "w") as f:
            f.write(_CA_CONF.format(dir=self.dir, cdp=CDP_URL))
        self.cert = None
        self.key = None

    def issue(self, csr, out, ext, dates, selfsign_key=None):
        cmd = [OPENSSL, "ca", "-batch", "-notext", "-config", self.conf, "-in", csr,
               "-out", out, "-extensions", ext, "-startdate", dates[0], "-enddate", dates[1],
               "-md", "sha256", "-preserveDN"]
        if selfsign_key:
            cmd += ["-selfsign", "-keyfile", selfsign_key]
        else:
            cmd += ["-cert", self.cert, "-keyfile", self.key]
        run(cmd)

    def revoke(self, cert_pem):
        run([OPENSSL, "ca", "-batch", "-config", self.conf, "-cert", self.cert,
             "-keyfile", self.key, "-revoke", cert_pem])

    def gencrl(self, out_der, last, nxt, cert=None, key=None):
        pem = out_der + ".pem"
        run([OPENSSL, "ca", "-batch", "-config", self.conf, "-gencrl",
             "-cert", cert or self.cert, "-keyfile", key or self.key, "-md", "sha256",
             "-crlexts", "crl_ext", "-crl_lastupdate", last, "-crl_nextupdate", nxt,
             "-out", pem])
        run([OPENSSL, "crl", "-in", pem, "-outform", "DER", "-out", out_der])
        return out_der


class PKI:
    """See the module doc. Attributes: ``dir``, ``root``, ``inter``, ``untrusted_root``,
    ``tsa_root`` (Identity), ``leaves`` {name: Identity} (also reachable as
    ``pki[name]``), ``crls`` {name: DER path}, ``crl_info`` {name: {issuer, thisUpdate,
    nextUpdate}}, ``now`` (generation time, UTC), ``short_expired_time`` (RFC 3339)."""

    def __init__(self, directory, leaf_specs=None):
        self.dir = os.path.abspath(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        self.leaves = {}
        self.crls = {}
        self.crl_info = {}
        self._ts_lock = threading.Lock()
        self._ts_n = 0
        self._forged = None
        self._forged_lock = threading.Lock()
        self._build(leaf_specs or list(KEY_SPECS))

    # -- generation ---------------------------------------------------------
    def _path(self, *parts):
        return os.path.join(self.dir, *parts)

    def _key(self, name, spec):
        path = self._path(name + ".key")
        run([OPENSSL, "genpkey"] + ALL_KEY_SPECS[spec][0] + ["-out", path])
        return path

    def _csr(self, name, key, subject):
        csr = self._path(name + ".csr")
        run([OPENSSL, "req", "-new", "-key", key, "-subj", subject, "-out", csr])
        return csr

    def _self_signed(self, name, spec, subject, serial):
        ca = CA(self.dir, name, serial)
        key = self._key(name, spec)
        csr = self._csr(name, key, subject)
        cert = self._path(name + ".pem")
        ca.issue(csr, cert, "ext_root", LONG, selfsign_key=key)
        ca.cert, ca.key = cert, key
        return ca, Identity(name, key, cert, [], spec, subject)

    def _issue(self, ca, issuer_chain, name, spec, subject, ext, dates):
        key = self._key(name, spec)
        csr = self._csr(name, key, subject)
        cert = self._path(name + ".pem")
        ca.issue(csr, cert, ext, dates)
        return Identity(name, key, cert, issuer_chain, spec, subject)

    def _build(self, leaf_specs):
        self.root_ca, self.root = self._self_signed(
            "root", "rsa3072", SUBJECT_BASE + "/CN=ferry test root", "1001")
        inter = self._issue(self.root_ca, [self.root], "inter", "rsa3072",
                            SUBJECT_BASE + "/CN=ferry test intermediate", "ext_inter", LONG)
        self.inter = inter
        self.inter_ca = CA(self.dir, "inter", "2001")
        self.inter_ca.cert, self.inter_ca.key = inter.cert, inter.key
        chain = [inter, self.root]

        def leaf(name, spec="rsa2048", ext="ext_leaf", dates=LONG):
            ident = self._issue(self.inter_ca, chain, name, spec,
                                f"{SUBJECT_BASE}/CN=ferry test {name}", ext, dates)
            self.leaves[name] = ident
            return ident

        for spec in leaf_specs:
            leaf(spec, spec)
        leaf("serverauth", ext="ext_leaf_server")
        leaf("expired", dates=EXPIRED)
        leaf("notyet", dates=NOT_YET)
        leaf("cdp", ext="ext_leaf_cdp")
        day = datetime.timedelta(days=1)
        leaf("short", dates=(gentime(self.now - day), gentime(self.now + day)))
        self.short_expired_time = rfc3339(self.now + 10 * day)
        self.short_signing_time = rfc3339(self.now - datetime.timedelta(minutes=5))

        # Untrusted root and a leaf directly under it.
        self.untrusted_ca, self.untrusted_root = self._self_signed(
            "untrusted_root", "rsa3072", SUBJECT_BASE + "/CN=ferry untrusted root", "3001")
        self.leaves["untrusted"] = self._issue(
            self.untrusted_ca, [self.untrusted_root], "untrusted", "rsa2048",
            SUBJECT_BASE + "/CN=ferry test untrusted", "ext_leaf", LONG)

        # TSA.
        self.tsa_ca, self.tsa_root = self._self_signed(
            "tsa_root", "rsa3072", SUBJECT_BASE + "/CN=ferry test TSA root", "4001")
        self.tsa = self._issue(self.tsa_ca, [self.tsa_root], "tsa", "rsa2048",
                               SUBJECT_BASE + "/CN=ferry test TSA", "ext_tsa", LONG)
        self.tsa_dir = self._path("tsa")
        os.makedirs(self.tsa_dir, exist_ok=True)
        with open(os.path.join(self.tsa_dir, "tsaserial"), "w") as f:
            f.write("01\n")
        self.tsa_conf = os.path.join(self.tsa_dir, "tsa.cnf")
        with open(self.tsa_conf, "w") as f:
            f.write(_TSA_CONF.format(dir=self.tsa_dir, cert=self.tsa.cert, key=self.tsa.key,
                                     certs=self.tsa_root.cert))

        # CRLs by the intermediate (order matters: revoke after the non-revoking ones).
        d = self._path("crl")
        os.makedirs(d, exist_ok=True)
        self.crls["fresh"] = self.inter_ca.gencrl(os.path.join(d, "fresh.crl"),
                                                  "20250101000000Z", "20990101000000Z")
        self.crls["stale"] = self.inter_ca.gencrl(os.path.join(d, "stale.crl"),
                                                  "20210101000000Z", "20220101000000Z")
        self.inter_ca.revoke(self.leaves["cdp"].cert)
        self.crls["revoked"] = self.inter_ca.gencrl(os.path.join(d, "revoked.crl"),
                                                    "20250101000000Z", "20990101000000Z")
        # Same issuer name as the intermediate, another key.
        imp_ca, imp = self._self_signed("impostor", "rsa3072",
                                        SUBJECT_BASE + "/CN=ferry test intermediate", "5001")
        self.crls["wrong_key"] = imp_ca.gencrl(os.path.join(d, "wrong_key.crl"),
                                               "20250101000000Z", "20990101000000Z")
        for name, path in self.crls.items():
            self.crl_info[name] = crl_info(path)

    # -- forged-signature material (built on first use) -------------------------
    def forgeries(self):
        """Certificates and CRLs that must make a signature fail (tests/e2e/test_forged.py),
        built once on first use, mostly with P-256 keys to stay cheap. A namespace with
        Identities (leaf first, chain up to ``root`` unless said otherwise):

          rsa1024       RSA-1024 leaf under ``inter`` (otherwise like rsa2048)
          noeku         P-256 leaf without an EKU extension (valid for Notation)
          docsign       P-256 leaf whose EKU is documentSigning only (no codeSigning:
                        valid, the spec says the EKU MAY contain codeSigning)
          clientauth    P-256 leaf whose EKU is clientAuth only (invalid)
          under_not_ca  P-256 leaf issued by ``not_ca``, an intermediate with
                        basicConstraints critical CA:FALSE (and keyCertSign) under root
          under_no_bc   P-256 leaf issued by ``no_bc``, an intermediate without
                        basicConstraints under root
          loop_leaf     P-256 leaf issued by ``loop_a``; ``loop_a`` (CN=ferry loop A) is
                        issued by ``loop_b`` (CN=ferry loop B), which is issued by
                        ``loop_a``: a cross-signed pair with no root. ``loop_leaf.chain``
                        is [leaf, loop_a, loop_b].
        and ``crls`` {name: DER path} issued by ``inter``:
          future        lists nothing,  lastUpdate 2027-06-01 (after VERIFICATION_TIME),
                        nextUpdate 2099-01-01
          future_revoked lists ``cdp``, same dates
        """
        with self._forged_lock:
            if self._forged is None:
                self._forged = self._build_forgeries()
            return self._forged

    def _build_forgeries(self):
        import types
        f = types.SimpleNamespace(crls={})
        chain = [self.inter, self.root]

        def under(ca, issuer_chain, name, spec, ext, subject=None):
            return self._issue(ca, issuer_chain, name, spec,
                               subject or f"{SUBJECT_BASE}/CN=ferry forged {name}", ext, LONG)

        f.rsa1024 = under(self.inter_ca, chain, "rsa1024", "rsa1024", "ext_leaf")
        f.noeku = under(self.inter_ca, chain, "noeku", "ec256", "ext_leaf_noeku")
        f.docsign = under(self.inter_ca, chain, "docsign", "ec256", "ext_leaf_docsign")
        f.clientauth = under(self.inter_ca, chain, "clientauth", "ec256", "ext_leaf_clientauth")

        for attr, ext in (("not_ca", "ext_inter_not_ca"), ("no_bc", "ext_inter_no_bc")):
            inter = under(self.root_ca, [self.root], attr, "ec256", ext)
            ca = CA(self.dir, attr, "6001")
            ca.cert, ca.key = inter.cert, inter.key
            setattr(f, attr, inter)
            setattr(f, "under_" + attr,
                    under(ca, [inter, self.root], "under_" + attr, "ec256", "ext_leaf"))

        # Cross-signed pair: self-signed bootstraps A0 / B0 give each key a certificate
        # to sign the other with; the leaf is issued by A's key and name.
        boot = {}
        for side in ("a", "b"):
            subject = f"{SUBJECT_BASE}/CN=ferry loop {side.upper()}"
            ca, ident = self._self_signed(f"loop_{side}0", "ec256", subject, "7001")
            boot[side] = (ca, ident, subject)
        a_key, b_key = boot["a"][1].key, boot["b"][1].key
        a_csr = self._csr("loop_a", a_key, boot["a"][2])
        b_csr = self._csr("loop_b", b_key, boot["b"][2])
        a_pem, b_pem = self._path("loop_a.pem"), self._path("loop_b.pem")
        boot["b"][0].issue(a_csr, a_pem, "ext_ca", LONG)  # A issued by B
        boot["a"][0].issue(b_csr, b_pem, "ext_ca", LONG)  # B issued by A
        f.loop_b = Identity("loop_b", b_key, b_pem, [], "ec256", boot["b"][2])
        f.loop_a = Identity("loop_a", a_key, a_pem, [f.loop_b], "ec256", boot["a"][2])
        f.loop_leaf = under(boot["a"][0], [f.loop_a, f.loop_b], "loop_leaf", "ec256", "ext_leaf")

        d = self._path("crl")
        os.makedirs(d, exist_ok=True)
        # A clean database for the intermediate (its own one has ``cdp`` revoked).
        clean = CA(self.dir, "inter_clean", "2001")
        clean.cert, clean.key = self.inter.cert, self.inter.key
        f.crls["future"] = clean.gencrl(os.path.join(d, "future.crl"),
                                        "20270601000000Z", "20990101000000Z")
        f.crls["future_revoked"] = self.inter_ca.gencrl(os.path.join(d, "future_revoked.crl"),
                                                        "20270601000000Z", "20990101000000Z")
        f.crl_info = {n: crl_info(p) for n, p in f.crls.items()}
        return f

    # -- accessors ------------------------------------------------------------
    def __getitem__(self, name):
        return self.leaves[name]

    def timestamp(self, data, hash_name="sha256"):
        """An RFC 3161 TimeStampToken (DER CMS ContentInfo) over ``data`` from ``tsa``
        (genTime = now)."""
        with self._ts_lock:
            self._ts_n += 1
            n = self._ts_n
        base = os.path.join(self.tsa_dir, f"ts{n}")
        with open(base + ".data", "wb") as f:
            f.write(data)
        run([OPENSSL, "ts", "-query", "-data", base + ".data", "-" + hash_name, "-cert",
             "-no_nonce", "-out", base + ".tsq"])
        with self._ts_lock:  # the serial file is shared
            run([OPENSSL, "ts", "-reply", "-config", self.tsa_conf, "-queryfile", base + ".tsq",
                 "-token_out", "-out", base + ".tok"])
        with open(base + ".tok", "rb") as f:
            return f.read()

    def verify_timestamp(self, token, data):
        """Independent check of a token with ``openssl ts -verify`` (raises on failure)."""
        base = os.path.join(self.tsa_dir, "check-" + hashlib.sha256(token).hexdigest()[:16])
        with open(base + ".tok", "wb") as f:
            f.write(token)
        with open(base + ".data", "wb") as f:
            f.write(data)
        return run([OPENSSL, "ts", "-verify", "-token_in", "-in", base + ".tok",
                    "-data", base + ".data", "-CAfile", self.tsa_root.cert])


_shared = None
_shared_lock = threading.Lock()


def shared_pki():
    """One PKI per process, generated on first use in a temp dir removed at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            import atexit
            d = tempfile.mkdtemp(prefix="ferry-pki-")
            atexit.register(shutil.rmtree, d, True)
            _shared = PKI(d)
        return _shared


def make_pki(directory, leaf_specs=None):
    return PKI(directory, leaf_specs)


# ---------------------------------------------------------------------------
# CRL facts
# ---------------------------------------------------------------------------

def _openssl_date(s):
    # "Jan  1 00:00:00 2025 GMT"
    return datetime.datetime.strptime(" ".join(s.split()), "%b %d %H:%M:%S %Y %Z").replace(
        tzinfo=datetime.timezone.utc)


def crl_info(der_path):
    """{issuer (openssl oneline), thisUpdate, nextUpdate (RFC 3339), revoked [serial hex]}."""
    out = run([OPENSSL, "crl", "-inform", "DER", "-in", der_path, "-noout", "-text"]).decode()
    info = {"revoked": []}
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("Issuer:"):
            info["issuer"] = s.split(":", 1)[1].strip()
        elif s.startswith("Last Update:"):
            info["thisUpdate"] = rfc3339(_openssl_date(s.split(":", 1)[1]))
        elif s.startswith("Next Update:"):
            info["nextUpdate"] = rfc3339(_openssl_date(s.split(":", 1)[1]))
        elif s.startswith("Serial Number:"):
            info["revoked"].append(s.split(":", 1)[1].strip().upper())
    return info


# ---------------------------------------------------------------------------
# Notation trust store and trust policy
# ---------------------------------------------------------------------------

def write_truststore(directory, stores):
    """Writes Notation's ``truststore`` layout and returns ``directory``.

    ``stores``: {type: {store name: [Identity | file path | DER bytes, ...]}} with type in
    ca, signingAuthority, tsa; an Identity or DER lands as ``x509/<type>/<name>/<name>.crt``
    (PEM), a file is copied under its own name."""
    for typ, named in stores.items():
        if typ not in ("ca", "signingAuthority", "tsa"):
            raise ValueError(typ)
        for name, certs in named.items():
            d = os.path.join(directory, "x509", typ, name)
            os.makedirs(d, exist_ok=True)
            for i, c in enumerate(certs):
                if isinstance(c, Identity):
                    fname, pem = c.name + ".crt", der_to_pem(c.der)
                elif isinstance(c, (bytes, bytearray)):
                    fname, pem = f"cert{i}.crt", der_to_pem(bytes(c))
                else:  # a file (PEM or DER), copied byte for byte
                    fname = os.path.basename(c)
                    with open(c, "rb") as f:
                        pem = f.read()
                with open(os.path.join(d, fname), "wb") as f:
                    f.write(pem.encode() if isinstance(pem, str) else pem)
    return directory


def statement(name="ferry-test", scopes=("*",), level="strict", stores=("ca:ferry",),
              identities=("*",), override=None, verify_timestamp=None):
    """One trust policy statement (trustpolicy.json schema version 1.0). For level
    ``skip`` pass stores=() and identities=()."""
    sv = {"level": level}
    if override:
        sv["override"] = dict(override)
    if verify_timestamp:
        sv["verifyTimestamp"] = verify_timestamp
    st = {"name": name, "registryScopes": list(scopes), "signatureVerification": sv}
    if stores:
        st["trustStores"] = list(stores)
    if identities:
        st["trustedIdentities"] = list(identities)
    return st


def trust_policy(*statements):
    return {"version": "1.0", "trustPolicies": list(statements)}


def write_trust_policy(path, *statements_or_doc):
    """Writes a policy document (a dict from trust_policy) or statements as JSON."""
    if len(statements_or_doc) == 1 and "trustPolicies" in statements_or_doc[0]:
        doc = statements_or_doc[0]
    else:
        doc = trust_policy(*statements_or_doc)
    with open(path, "w") as f:
        json.dump(doc, f, indent=2)
    return path


if __name__ == "__main__":
    # Smoke run: python3 pki.py [DIR] -> builds a PKI and checks it with openssl verify.
    import sys
    import time
    d = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="ferry-pki-")
    t = time.time()
    p = PKI(d)
    print(f"PKI in {d} ({time.time() - t:.1f}s)")
    for n, ident in p.leaves.items():
        print(n, ident.alg, ident.subject, ident.serial)
    for n, i in p.crl_info.items():
        print("crl", n, i)
