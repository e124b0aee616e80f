#!/usr/bin/env python3
"""Issue 13's Done-when tests — "push exactly what was verified": the gaps between what
``verify`` checks and what ``push``, ``inspect`` and ``sign`` act on, tried as an attacker
would (design.md §8). Written before the fix: every class fails on main as of 8a32936.

Classes (meson: ``e2e-gap-<Class>``):
  ParserDifferential  hand-built tars on which two tar parsers disagree (pax ``x`` + GNU
                      ``L`` in both orders, pax records without their newline,
                      ``GNU.sparse.name``, numeric fields starting with NUL/TAB, duplicates
                      after canonicalisation, names that cannot be canonicalised, sparse
                      entries, GNU tar / bsdtar archives of ``.``): every command refuses
                      by name, or every command sees the same bundle.
  VerifyThenPush      the bundle changed between the verification and the push of
                      ``push --verify`` (FERRY_TEST_HOOK_AFTER_VERIFY).
  UnverifiedManifests manifests pushed under ``--verify`` that no verified signature covers
                      (``unverifiedManifests``, ``--only-verified``).
  SpoofedScope        trust-policy scopes on normalised names; push evaluates the
                      destination repository.
  Roots               index.json entries that are not manifests, or not what they claim.
  EntryBomb           2,000,000 tiny entries; 50,000 problems (``--max-entries``,
                      ``--max-problems``).
  Escapes             control and bidi characters from a bundle never reach a terminal.

Contracts assumed from ferry (the implementer checks these):
  - exit codes 0 / 1 (malformed, I/O) / 2 (usage) / 3 (verification failed); every failure
    prints exactly one ``ferry: error: `` line, the last on stderr, naming the entry or
    digest concerned;
  - a tar entry name is canonicalised once: a leading ``./`` dropped, the ``./`` (``.``)
    directory entry ignored; two entries on one path afterwards, or a name that cannot be
    canonicalised (absolute, ``..``, ``.`` or empty segments, NUL, control characters,
    trailing ``/`` on a file), or a sparse entry: exit 1 from verify, inspect, push and sign;
  - ``verify --json``: ``bundleDigest`` (sha256 of index.json), ``artifacts[].digest``,
    ``artifacts[].verified``, ``artifacts[].scope`` (normalised: lowercase host, no
    ``:443``/``:80``, ``docker.io/library/`` expanded), ``integrity.problems`` (at most
    ``--max-problems``, default 100) and ``integrity.problemsTotal``;
  - ``push --json``: top-level ``bundleDigest`` (of the index.json verified and pushed) and
    ``verification.bundleDigest``; ``roots[].digest``; under ``--verify``
    ``unverifiedManifests: [{digest, mediaType, artifactType, reason}]`` (also with
    ``--dry-run``); ``push --verify --only-verified`` exits 3 and sends nothing when that list
    is not empty;
  - ``push --verify`` evaluates the trust policy for the destination repository (after
    ``--map`` and the target namespace); offline ``verify`` for the recorded source or
    ``--scope``;
  - ``FERRY_TEST_HOOK_AFTER_VERIFY=<shell command>``: run by ``push --verify`` after the
    verification passed and before anything is sent (a non-zero status fails the push);
  - ``--max-entries N`` (verify, inspect, push; default 500,000) and ``--max-problems N``
    (verify; default 100); a bundle over the entry limit fails with exit 1 and an error line
    naming the limit and ``--max-entries``; problems beyond the limit are counted in one
    line ("... N more problems");
  - human output escapes control and bidi characters taken from a bundle.

Run: python3 tests/e2e/test_gap.py [Class[.test_name]]   (FERRY=/abs/path/ferry)
Exit 77 (skipped) without ferry, docker-registry or openssl. The file doubles as the
command of FERRY_TEST_HOOK_AFTER_VERIFY (``--hook MARKER ACTION ARGS...``).
"""

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import unittest


def hook_main(argv):
    """FERRY_TEST_HOOK_AFTER_VERIFY's command: ``--hook MARKER ACTION ARGS``; changes the
    bundle, then writes MARKER (the test's proof that the hook ran)."""
    marker, action, args = argv[0], argv[1], argv[2:]
    if action == "overwrite":      # SRC DST: DST's inode gets SRC's bytes (truncate + write)
        with open(args[0], "rb") as f:
            data = f.read()
        with open(args[1], "r+b") as f:
            f.truncate(0)
            f.write(data)
    elif action == "rename":       # SRC DST: SRC renamed over DST (a directory is swapped)
        src, dst = args
        if os.path.isdir(dst):
            os.rename(dst, dst + ".old")
        os.rename(src, dst)
    elif action == "patch":        # FILE OFFSET HEX: bytes written in place
        with open(args[0], "r+b") as f:
            f.seek(int(args[1]))
            f.write(bytes.fromhex(args[2]))
    elif action == "truncate":     # FILE SIZE: FILE cut to SIZE bytes
        os.truncate(args[0], int(args[1]))
    elif action == "symlink":      # TARGET LINK: LINK replaced by a symlink to TARGET
        os.remove(args[1])
        os.symlink(args[0], args[1])
    else:
        raise SystemExit(f"unknown hook action {action}")
    with open(marker, "w") as f:
        f.write(action)


if __name__ == "__main__" and len(sys.argv) > 3 and sys.argv[1] == "--hook":
    hook_main(sys.argv[2:])
    sys.exit(0)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402
import pki as P  # noqa: E402

R.skip_module_unless(__name__, registry=True, programs=(P.OPENSSL,))

import test_verify as V  # noqa: E402
import test_hostile_bundle as H  # noqa: E402

HAVE_ZSTD = shutil.which("zstd") is not None
HAVE_GNU_TAR = shutil.which("tar") is not None
HAVE_BSDTAR = shutil.which("bsdtar") is not None
VT = P.VERIFICATION_TIME
APP_REF = V.APP_REF
CRASH_MARKERS = H.CRASH_MARKERS
SCALE = H.RSS_SCALE            # 3 under AddressSanitizer, for time and memory bounds alike
OCI_LAYOUT = R.canonical_json({"imageLayoutVersion": "1.0.0"})
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


# ---------------------------------------------------------------------------
# Raw tar: every header byte chosen by the test
# ---------------------------------------------------------------------------

def _octal(n, width):
    return (b"%0*o" % (width - 1, n)) + b"\0"


def _bytes(s):
    return s.encode("utf-8", "surrogateescape") if isinstance(s, str) else s


def header(name, size=0, typ=b"0", linkname=b"", magic=b"ustar\x0000", prefix=b"",
           size_field=None, chksum=None, mode=0o644):
    """One 512-byte tar header. ``size_field`` (12 bytes) replaces the octal size;
    ``chksum(sum)`` formats the 8-byte checksum field (default ``%06o\\0 ``); ``magic``
    ``b"ustar  \\0"`` makes it a GNU header (whose prefix area is not a prefix)."""
    name, linkname, prefix = _bytes(name), _bytes(linkname), _bytes(prefix)
    h = bytearray(512)
    h[0:len(name[:100])] = name[:100]
    h[100:108] = _octal(mode, 8)
    h[108:116] = _octal(0, 8)
    h[116:124] = _octal(0, 8)
    h[124:136] = size_field if size_field is not None else _octal(size, 12)
    h[136:148] = _octal(0, 12)
    h[156:157] = typ
    h[157:157 + len(linkname)] = linkname
    h[257:265] = magic
    h[265:270] = b"root\0"
    h[297:302] = b"root\0"
    h[345:345 + len(prefix)] = prefix
    h[148:156] = b" " * 8
    s = sum(h)
    h[148:156] = chksum(s) if chksum else b"%06o\0 " % s
    assert len(h) == 512
    return bytes(h)


def pad(data):
    return data + b"\0" * (-len(data) % 512)


def entry(name, data=b"", **kw):
    """A regular file (or ``typ``) entry: header + data padded to 512."""
    return header(name, len(data), **kw) + pad(data)


def pax_record(key, value, newline=True):
    """``"<len> key=value\\n"`` with the length counting itself; ``newline=False`` leaves the
    terminating newline out (the length still counts the bytes written)."""
    body = b" " + _bytes(key) + b"=" + _bytes(value) + (b"\n" if newline else b"")
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return str(n).encode() + body


def pax(*records, typ=b"x", name="PaxHeaders/entry"):
    """A pax extended header (``typ`` ``x``, ``g`` or Solaris ``X``); records are
    (key, value) pairs or ready-made bytes."""
    data = b"".join(r if isinstance(r, bytes) else pax_record(*r) for r in records)
    return entry(name, data, typ=typ)


def gnu_long(name, typ=b"L"):
    """A GNU long name (``L``) or long link name (``K``) header."""
    return entry("././@LongLink", _bytes(name) + b"\0", typ=typ, magic=b"ustar  \0")


EOA = b"\0" * 1024                 # end of archive: two zero blocks


def blob_name(digest_or_data):
    if isinstance(digest_or_data, bytes):
        digest_or_data = R.sha256_digest(digest_or_data)
    return "blobs/sha256/" + digest_or_data.split(":", 1)[1]


def hexpart(digest):
    return digest.split(":", 1)[1]


def zstd_compress(tar_bytes, out):
    with open(out, "wb") as f:
        subprocess.run(["zstd", "-q", "-c"], input=tar_bytes, stdout=f, check=True)
    return out


# ---------------------------------------------------------------------------
# The raw material: a signed image S and an unsigned image U in one blob store
# ---------------------------------------------------------------------------

class Material:
    """One layout directory whose blobs hold a signed image S (with its Notary signature)
    and an unsigned image U, both recorded as APP_REF; ``s_index`` lists S and its
    signature, ``u_index`` lists U under the same name and tag. Both index documents have
    the same length (JSON whitespace pads the shorter), so one can replace the other in
    place. The layout's index.json is ``s_index``."""

    def __init__(self, path, pki):
        lay = V.Layout(path)
        self.S = lay.image(seed="gap-signed")
        self.sig = lay.sign(self.S, pki["rsa2048"])
        u = lay.image(seed="gap-unsigned", root=False)
        u.pop("platform", None)
        self.U = u
        s_index = lay.index()
        u_index = {"schemaVersion": 2, "mediaType": R.OCI_INDEX, "manifests": [
            dict(mediaType=u["mediaType"], digest=u["digest"], size=u["size"],
                 annotations={R.ANN_IMAGE_NAME: APP_REF, R.ANN_REF_NAME: "v1"})]}
        s_b, u_b = R.canonical_json(s_index), R.canonical_json(u_index)
        n = max(len(s_b), len(u_b))
        self.s_index, self.u_index = s_b.ljust(n), u_b.ljust(n)
        lay.set_index_bytes(self.s_index)
        self.layout = lay
        self.path = path
        manifest = json.loads(lay.read(self.S["digest"]))
        self.layer = manifest["layers"][1]
        self.config = manifest["config"]
        # Every blob (S's graph, the signature, U's graph) in ferry's tar order.
        self.blobs = []
        for arcname, p in V.layout_order(path):
            if arcname.startswith("blobs/"):
                with open(p, "rb") as f:
                    self.blobs.append((arcname, f.read()))

    @property
    def s_digests(self):
        """The manifests of S's graph: S and its signature."""
        return {self.S["digest"], self.sig["digest"]}

    def blob_entries(self, skip=()):
        return b"".join(entry(n, d) for n, d in self.blobs if n not in skip)

    def tar(self, index_part, extra=b"", tail=EOA):
        """oci-layout, ``index_part`` (the entries that say what index.json is), every
        blob, ``extra``, end of archive."""
        return entry("oci-layout", OCI_LAYOUT) + index_part + self.blob_entries() + extra + tail

    def plain(self, index=None):
        """An honest tar: oci-layout, index.json (S unless ``index``), the blobs."""
        return self.tar(entry("index.json", index if index is not None else self.s_index))

    def copy_layout(self, dst, index=None):
        shutil.copytree(self.path, dst)
        if index is not None:
            with open(os.path.join(dst, "index.json"), "wb") as f:
                f.write(index)
        return dst


# ---------------------------------------------------------------------------
# Base class: one registry, the material, ferry runs and registry checks
# ---------------------------------------------------------------------------

class GapTest(V.VerifyTest):
    """A registry on loopback, the material and a strict trust policy (every scope,
    ca:ferry); ferry runs with crash checks and wait4 accounting (test_hostile_bundle)."""

    run_ferry = H.HostileBundles.run_ferry          # (proc, seconds, peak RSS MiB)
    assert_one_error = H.HostileBundles.assert_one_error

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.reg = R.Registry("gap")
        cls.reg.start()
        cls.addClassCleanup(cls.reg.stop)
        cls.cwd = os.path.join(cls.tmp, "cwd")
        os.makedirs(cls.cwd)
        cls.m = Material(os.path.join(cls.tmp, "material"), cls.pki)
        cls.policy_file = P.write_trust_policy(os.path.join(cls.tmp, "strict.json"), P.statement())
        cls.ns_n = 0

    # -- files ---------------------------------------------------------------
    def write(self, stem, data, fmt="tar"):
        """Raw tar bytes as a ``.tar`` (or compressed as ``.tar.zst``) bundle."""
        path = self.new_path(stem) + "." + fmt
        if fmt == "tar.zst":
            return zstd_compress(data, path)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def copy_bundle(self, bundle, stem="copy"):
        out = self.new_path(stem) + ("" if os.path.isdir(bundle) else
                                     (".tar.zst" if bundle.endswith(".tar.zst") else ".tar"))
        if os.path.isdir(bundle):
            shutil.copytree(bundle, out, symlinks=True)
        else:
            shutil.copyfile(bundle, out)
        return out

    # -- ferry -------------------------------------------------------------------
    def trust_args(self, policy=None):
        return ["--trust-policy", policy or self.policy_file, "--trust-store", self.store,
                "--verification-time", VT]

    def ferry_run(self, *args, timeout=120):
        proc, _, _ = self.run_ferry(*args, timeout=timeout)
        return proc

    def json_of(self, proc):
        try:
            return json.loads(proc.stdout)
        except ValueError as e:
            self.fail(f"--json output is not one JSON document ({e})" + R.describe(proc))

    def new_target(self):
        """(TARGET, namespace): a fresh namespace in the registry per push."""
        type(self).ns_n += 1
        ns = f"ns{type(self).ns_n}"  # (not the class name: "unverified" must not appear by chance)
        return f"{self.reg.host}/{ns}", ns

    def sign_args(self):
        ident = self.pki["rsa2048"]
        return ["sign", "--key", ident.key, "--cert", ident.chain_pem, "--signing-time", P.SIGNING_TIME]

    # -- registry -------------------------------------------------------------------
    def landed(self, ns):
        """{repository: {tag: digest}} of every repository under ``ns``."""
        out = {}
        for repo in self.reg.catalog():
            if repo == ns or repo.startswith(ns + "/"):
                tags = {}
                for t in self.reg.list_tags(repo):
                    head = self.reg.head_manifest(repo, t)
                    tags[t] = head["digest"] if head else None
                out[repo] = tags
        return out

    def manifests_present(self, ns, digests, repos=("team/app",)):
        """The (repository, digest) pairs of ``digests`` that the registry holds as
        manifests in any repository under ``ns`` (and ``ns``/``repos``)."""
        names = set(self.landed(ns)) | {f"{ns}/{r}" for r in repos}
        return sorted((repo, d) for repo in names for d in digests if self.reg.manifest_exists(repo, d))

    def assert_nothing_tagged(self, ns, digests, proc):
        """No tag in any repository under ``ns``, no manifest of ``digests``."""
        tagged = {r: t for r, t in self.landed(ns).items() if t}
        self.assertEqual(tagged, {}, "tags landed" + R.describe(proc))
        self.assertEqual(self.manifests_present(ns, digests), [], "manifests landed" + R.describe(proc))

    def assert_tags_verified(self, ns, verified, never, proc):
        """Every tag under ``ns`` points at a digest in ``verified`` (a fallback
        ``sha256-<hex>`` tag: at a referrers index of a verified subject); no manifest of
        ``never`` is in the registry."""
        for repo, tags in self.landed(ns).items():
            for tag, digest in tags.items():
                if R.is_fallback_tag(tag):
                    self.assertIn("sha256:" + tag[7:], verified,
                                  f"{repo}:{tag} lists referrers of an unverified manifest" + R.describe(proc))
                else:
                    self.assertIn(digest, verified,
                                  f"{repo}:{tag} -> {digest}, which was not verified" + R.describe(proc))
        self.assertEqual(self.manifests_present(ns, never), [],
                         "an unverified manifest reached the registry" + R.describe(proc))


def error_lines(proc):
    return [l for l in proc.stderr.splitlines() if l.startswith("ferry: error: ")]


def roots_seen(proc):
    """The root digests a command's --json output names (verify: artifacts, inspect and
    push: roots, sign: signed subjects), or None."""
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        return None
    if doc.get("command") == "sign":
        return sorted(x["subject"]["digest"] for x in doc.get("signatures", []))
    key = "artifacts" if doc.get("command") == "verify" else "roots"
    return sorted(x.get("digest") for x in doc.get(key) or [])


def summary(runs):
    """For failure messages: each command's exit code, error line and the roots it saw."""
    out = []
    for what, proc in runs.items():
        errs = error_lines(proc)
        out.append(f"  {what}: exit {proc.returncode} roots {roots_seen(proc)} {errs[-1] if errs else ''}")
    return "\n" + "\n".join(out) + "\n" + "".join(R.describe(p) for p in runs.values())


# ---------------------------------------------------------------------------
# 1. Parser differentials
# ---------------------------------------------------------------------------

class ParserDifferential(GapTest):
    """Tars on which a naive parser and libarchive could disagree about which bytes are
    index.json or a blob, built so that one reading is the signed image S and the other
    the unsigned image U. Either every command (verify with the trust policy, inspect,
    push --verify, sign) refuses the archive with exit 1 and one error line naming the
    entry, or every command sees the same bundle: the same roots and bundleDigest in
    verify, inspect, push --verify --json and sign, and U never reaches the registry."""

    def one_view(self, bundle, needles, refuse=False, accept=False):
        """Runs every command on ``bundle``. ``refuse``: exit 1 from all is required (names
        that cannot be canonicalised, duplicates); ``accept``: all must accept and agree
        (verify 0, S verified and pushed); otherwise either outcome, but one for all."""
        target, ns = self.new_target()
        runs = {
            "verify": self.ferry_run("verify", bundle, *self.trust_args(), "--json"),
            "inspect": self.ferry_run("inspect", bundle, "--json"),
            "push --verify": self.ferry_run("push", "--plain-http", "--verify", *self.trust_args(),
                                            bundle, target, "--json"),
            "sign": self.ferry_run(*self.sign_args(), self.copy_bundle(bundle), "--json"),
        }
        ctx = f"\nbundle {os.path.basename(bundle)}" + summary(runs)
        # U never lands, whatever else happens.
        for repo, tags in self.landed(ns).items():
            self.assertNotIn(self.m.U["digest"], tags.values(), f"unsigned image tagged in {repo}" + ctx)
        self.assertEqual(self.manifests_present(ns, [self.m.U["digest"]]), [], "unsigned image pushed" + ctx)

        codes = {k: p.returncode for k, p in runs.items()}
        # design §3: inspect reads only the head of a .tar.zst, so a problem in its tail may
        # pass inspect; what inspect shows is then the head, never U.
        refusers = dict(runs)
        if bundle.endswith(".tar.zst") and codes["inspect"] == 0 and not accept:
            self.assertNotIn(self.m.U["digest"], roots_seen(runs["inspect"]) or [], ctx)
            if any(c == 1 for k, c in codes.items() if k != "inspect"):
                refusers.pop("inspect")
        rcodes = {k: codes[k] for k in refusers}
        if refuse:
            self.assertTrue(all(c == 1 for c in rcodes.values()),
                            "every command must refuse this archive with exit 1, naming the entry" + ctx)
        # Refused by all: inspect and sign exit 1; verify and push --verify exit 1 (or 3
        # when what libarchive reads is a bundle without index.json or with a bad blob).
        refused = (rcodes.get("inspect", 1) == 1 and codes["sign"] == 1 and codes["verify"] in (1, 3)
                   and codes["push --verify"] in (1, 3))
        if not refuse and not accept and 1 in rcodes.values():
            self.assertTrue(refused, "the commands disagree: either all refuse the archive (exit 1) or all "
                            "see one bundle" + ctx)
        if refused and not accept:
            for what, proc in refusers.items():
                with self.subTest(command=what):
                    self.assert_one_error(proc, codes[what] if codes[what] in (1, 3) else 1, needles)
            self.assert_nothing_tagged(ns, self.m.s_digests | {self.m.U["digest"]}, runs["push --verify"])
            return None
        # One bundle for all.
        v = runs["verify"]
        self.assertIn(v.returncode, (0, 3), ctx)
        if accept:
            self.assertEqual(v.returncode, 0, "this archive must be accepted" + ctx)
        rep = self.json_of(v)
        roots = sorted(a["digest"] for a in rep["artifacts"])
        verified = {a["digest"] for a in rep["artifacts"] if a["verified"]}
        bundle_digest = rep["bundleDigest"]
        self.assertIsNotNone(bundle_digest, "verify read no index.json, inspect did" + ctx)

        i = runs["inspect"]
        self.assertEqual(i.returncode, 0, "inspect must show what verify verified" + ctx)
        self.assertEqual(sorted(r["digest"] for r in self.json_of(i)["roots"]), roots,
                         "inspect shows other roots than verify" + ctx)

        p = runs["push --verify"]
        self.assertEqual(p.returncode, v.returncode, "push --verify disagrees with verify" + ctx)
        doc = self.json_of(p)
        if p.returncode == 0:
            self.assertEqual(doc.get("bundleDigest"), bundle_digest,
                             "push --json bundleDigest is not verify's" + ctx)
            self.assertEqual((doc.get("verification") or {}).get("bundleDigest"), bundle_digest, ctx)
            self.assertEqual(sorted(r["digest"] for r in doc["roots"]), roots, "push pushed other roots" + ctx)
            self.assert_tags_verified(ns, verified, [self.m.U["digest"]], p)
        else:
            self.assert_nothing_tagged(ns, self.m.s_digests | {self.m.U["digest"]}, p)

        s = runs["sign"]
        self.assertEqual(s.returncode, 0, "sign refuses what verify and inspect accept" + ctx)
        self.assertEqual(sorted(x["subject"]["digest"] for x in self.json_of(s)["signatures"]), roots,
                         "sign signed other roots than verify shows" + ctx)
        if accept:
            self.assertEqual(roots, [self.m.S["digest"]], ctx)
            self.assertEqual(verified, {self.m.S["digest"]}, ctx)
        return rep

    def cases(self, cases):
        for what, data, needles, mode in cases:
            with self.subTest(case=what):
                bundle = self.write(re.sub(r"[^a-z0-9]+", "-", what.lower())[:40], data)
                self.one_view(bundle, needles, refuse=mode == "refuse", accept=mode == "accept")

    # -- pax and GNU long names --------------------------------------------------
    def test_pax_path_and_gnu_long_name(self):
        """A pax ``path`` and a GNU ``L`` name on one entry, in both orders (libarchive 3.6
        takes the first, a naive parser the last): one reading gives index.json = S, the
        other index.json = U (the other entry reads as an honest blob named after its
        bytes). Also two pax headers and two L headers in a row."""
        m = self.m
        s_blob, u_blob = blob_name(m.s_index), blob_name(m.u_index)
        x_then_l = (pax(("path", "index.json")) + gnu_long(s_blob) + entry(s_blob, m.s_index) +
                    pax(("path", u_blob)) + gnu_long("index.json") + entry(u_blob, m.u_index))
        l_then_x = (gnu_long("index.json") + pax(("path", s_blob)) + entry(s_blob, m.s_index) +
                    gnu_long(u_blob) + pax(("path", "index.json")) + entry(u_blob, m.u_index))
        x_then_x = (pax(("path", "index.json")) + pax(("path", s_blob)) + entry(s_blob, m.s_index) +
                    pax(("path", u_blob)) + pax(("path", "index.json")) + entry(u_blob, m.u_index))
        l_then_l = (gnu_long("index.json") + gnu_long(s_blob) + entry(s_blob, m.s_index) +
                    gnu_long(u_blob) + gnu_long("index.json") + entry(u_blob, m.u_index))
        path_and_ustar = pax(("path", "index.json")) + entry(u_blob, m.s_index)  # pax path overrides
        self.cases([
            ("pax x then GNU L", m.tar(x_then_l), ["index.json", hexpart(R.sha256_digest(m.s_index))], "either"),
            ("GNU L then pax x", m.tar(l_then_x), ["index.json", hexpart(R.sha256_digest(m.s_index))], "either"),
            # libarchive names the entry by the header it kept (S's blob name) when it refuses.
            ("two pax headers", m.tar(x_then_x), ["index.json", hexpart(R.sha256_digest(m.s_index))], "either"),
            ("two GNU L headers", m.tar(l_then_l), ["index.json"], "either"),
            ("pax path over a ustar name", m.tar(path_and_ustar), ["index.json"], "accept"),
        ])

    def test_pax_record_without_newline(self):
        """A pax record whose last byte is not a newline: libarchive ignores the record
        (the ustar name stands), a naive parser drops the last byte as if it were the
        newline. index.json is S by one reading and U by the other."""
        m = self.m
        s_blob, u_blob = blob_name(m.s_index), blob_name(m.u_index)
        part = (pax(pax_record("path", s_blob + "X", newline=False)) + entry("index.json", m.s_index) +
                pax(pax_record("path", "index.jsonX", newline=False)) + entry(u_blob, m.u_index))
        # The same without a competing name: only the broken record says "index.json".
        lone = pax(pax_record("path", "index.jsonX", newline=False)) + entry(s_blob, m.s_index)
        # A record with a length that runs past the header's data.
        long_len = pax(b"99 path=index.json\n") + entry(u_blob, m.u_index) + entry("index.json", m.s_index)
        self.cases([
            ("no newline: S for libarchive, U for a naive parser", m.tar(part),
             ["index.json", "pax", hexpart(R.sha256_digest(m.s_index))], "either"),
            ("no newline, lone", m.tar(lone), ["index.json", "pax", hexpart(R.sha256_digest(m.s_index))], "either"),
            ("record length past the end", m.tar(long_len), ["index.json", "pax"], "either"),
        ])

    def test_gnu_sparse_name(self):
        """A pax ``GNU.sparse.name`` record renames the entry for libarchive and for
        nothing else: index.json is S by one reading and U by the other."""
        m = self.m
        s_blob, u_blob = blob_name(m.s_index), blob_name(m.u_index)
        part = (pax(("GNU.sparse.name", "index.json")) + entry(s_blob, m.s_index) +
                pax(("GNU.sparse.name", u_blob)) + entry("index.json", m.u_index))
        self.cases([("GNU.sparse.name", m.tar(part), ["index.json", "sparse"], "either")])

    @unittest.skipUnless(HAVE_GNU_TAR, "GNU tar not installed")
    def test_sparse_entries_refused(self):
        """A real sparse entry (GNU tar ``--sparse``: old GNU ``S`` headers and pax 0.1 /
        1.0 sparse maps), named like a blob whose expanded bytes match its name: refused
        by every command, naming the blob."""
        hole = 1 << 20
        tail = R.seeded_bytes("gap-sparse", 512)
        data = bytes(hole) + tail
        digest = R.sha256_digest(data)
        for fmt, opts in (("gnu", ["--format=gnu"]), ("pax-0.1", ["--format=posix", "--sparse-version=0.1"]),
                          ("pax-1.0", ["--format=posix", "--sparse-version=1.0"])):
            with self.subTest(sparse=fmt):
                d = self.m.copy_layout(self.new_path("sparse-layout"))
                with open(os.path.join(d, blob_name(digest)), "wb") as f:
                    f.truncate(hole)
                    f.seek(hole)
                    f.write(tail)
                out = self.new_path(f"sparse-{fmt}") + ".tar"
                P.run(["tar", "--sparse", *opts, "-C", d, "-cf", out, "oci-layout", "index.json", "blobs"])
                with tarfile.open(out) as tf:
                    kinds = {m.name: (m.type, m.sparse) for m in tf.getmembers()}
                self.assertTrue(any(s for _, s in kinds.values()), f"GNU tar wrote no sparse entry: {kinds}")
                self.one_view(out, [hexpart(digest)], refuse=True)

    # -- numeric fields ------------------------------------------------------------
    def test_numeric_fields_nul_tab_space(self):
        """Size and checksum fields that start with NUL, TAB or spaces. libarchive 3.6
        reads a size starting with NUL as 0 and skips a leading TAB; a naive parser does
        the opposite — so the data of one entry holds, for one of them, a whole hidden
        archive (index.json = S for one reading, U for the other). An empty blob
        (sha256 of nothing) carries the smuggled bytes."""
        m = self.m
        empty = blob_name(b"")
        hidden_s = entry("index.json", m.s_index) + m.blob_entries() + EOA
        hidden_u = entry("index.json", m.u_index) + m.blob_entries() + EOA
        layout = entry("oci-layout", OCI_LAYOUT)
        # size "\0<octal>": libarchive sees an empty blob and then the hidden S archive,
        # a naive parser an N-byte blob and then U.
        nul_size = (layout + header(empty, size_field=b"\0%010o\0" % len(hidden_s)) + hidden_s +
                    entry("index.json", m.u_index) + m.blob_entries() + EOA)
        # size "\t<octal>": libarchive skips the TAB and reads the hidden U archive as
        # the content of a blob named after it, a naive parser reads 0 and walks into it.
        tab_size = (layout + header(blob_name(hidden_u), size_field=b"\t%010o\0" % len(hidden_u)) + hidden_u +
                    entry("index.json", m.s_index) + m.blob_entries() + EOA)
        space_size = m.tar(header("index.json", size_field=b"   %08o\0" % len(m.s_index)) + pad(m.s_index))
        b256_size = m.tar(header("index.json", size_field=b"\x80" + len(m.s_index).to_bytes(11, "big"))
                          + pad(m.s_index))
        nul_sum = m.tar(entry("index.json", m.s_index, chksum=lambda s: b"\0%06o\0" % s))
        tab_sum = m.tar(entry("index.json", m.s_index, chksum=lambda s: b"\t%06o\0" % s))
        space_sum = m.tar(entry("index.json", m.s_index, chksum=lambda s: b"  %05o\0" % s))
        damaged = ["damaged", "header", "checksum", "index.json"]
        self.cases([
            ("size starts with NUL", nul_size, [empty[13:], "index.json", "size"], "either"),
            ("size starts with TAB", tab_size, [hexpart(R.sha256_digest(hidden_u)), "index.json", "size"], "either"),
            ("size starts with spaces", space_size, ["index.json"], "accept"),
            ("size in base-256", b256_size, ["index.json"], "accept"),
            ("checksum starts with NUL", nul_sum, damaged, "either"),
            ("checksum starts with TAB", tab_sum, damaged, "either"),
            ("checksum starts with spaces", space_sum, ["index.json"], "accept"),
        ])

    # -- canonical names -------------------------------------------------------------
    def test_duplicates_after_canonicalisation(self):
        """Two entries that map to one layout path — plain and via a pax path, with and
        without ``./``, with an empty segment — are refused by every command with exit 1
        naming the entry, whichever content each carries (S/U, identical bytes)."""
        m = self.m
        layer = blob_name(m.layer["digest"])
        flipped = bytearray(m.layout.read(m.layer["digest"]))
        flipped[10] ^= 1
        s, u = m.s_index, m.u_index
        cases = [
            ("index.json plain and via pax path", entry("index.json", s) + pax(("path", "index.json")) +
             entry("other", u), ["index.json"]),
            ("pax path index.json first, plain second", pax(("path", "index.json")) + entry("x", s) +
             entry("index.json", u), ["index.json"]),
            ("index.json and ./index.json", entry("index.json", s) + entry("./index.json", u), ["index.json"]),
            ("./index.json and index.json", entry("./index.json", s) + entry("index.json", u), ["index.json"]),
            ("index.json twice, identical", entry("index.json", s) + entry("index.json", s), ["index.json"]),
            ("index.json via GNU L and plain", gnu_long("index.json") + entry("y", u) + entry("index.json", s),
             ["index.json"]),
            ("layer and ./layer", entry("index.json", s) + entry("./" + layer, bytes(flipped)), [layer[13:]]),
            ("layer and blobs//sha256/layer", entry("index.json", s) +
             entry(layer.replace("blobs/", "blobs//"), bytes(flipped)), ["blobs//sha256", layer[13:]]),
            ("layer twice, identical", entry("index.json", s) + entry(layer, m.layout.read(m.layer["digest"])),
             [layer[13:]]),
            ("oci-layout and ./oci-layout", entry("index.json", s) + entry("./oci-layout", OCI_LAYOUT),
             ["oci-layout"]),
            ("index.json as a directory and a file", entry("index.json", s) + entry("index.json/", typ=b"5"),
             ["index.json"]),
            ("./index.json twice via ./ and .//", entry("./index.json", s) + entry(".//index.json", u),
             ["index.json"]),
        ]
        self.cases([(w, m.tar(part), n, "refuse") for w, part, n in cases])

    def test_names_that_cannot_be_canonicalised(self):
        """An extra entry beside a valid signed bundle whose name is absolute, has ``..``,
        ``.`` or empty segments, a trailing slash on a file, control characters or a
        backslash: refused by every command with exit 1 naming the entry. (Today verify
        reports most of them as problems, exit 3, and sign rewrites the bundle.)"""
        m = self.m
        h = hexpart(m.layer["digest"])
        names = [
            ("/index.json", ["/index.json"]),
            ("/" + blob_name(m.layer["digest"]), [h]),
            ("blobs/sha256/../sha256/" + h, [h]),
            ("blobs/sha256//" + h, [h]),
            ("blobs//sha256/" + h, [h]),
            ("blobs/./sha256/" + h, [h]),
            ("blobs/sha256/" + h + "/", [h]),
            ("blobs/sha256/" + h + "\n", [h]),
            ("blobs/sha256/\x01" + h[1:], [h[1:]]),
            ("index.json\r", ["index.json"]),
            ("\x7findex.json", ["index.json"]),
            ("blobs\\sha256\\" + h, [h]),
            ("", ["entry", "name", "empty"]),
        ]
        cases = []
        for name, needles in names:
            data = m.layout.read(m.layer["digest"]) if h in name else b"owned\n"
            if len(_bytes(name)) > 99:
                part = entry("index.json", m.s_index) + pax(("path", name)) + entry("long", data)
            else:
                part = entry("index.json", m.s_index) + entry(name, data)
            cases.append((f"name {name!r}", m.tar(part), needles, "refuse"))
        self.cases(cases)

    def test_nul_in_names(self):
        """NUL inside a pax path or a GNU long name (libarchive ends the name there, a
        naive parser keeps it): the entry is index.json = S by one reading and an
        unknown entry by the other. One outcome for all commands."""
        m = self.m
        self.cases([
            ("NUL in a pax path", m.tar(pax(("path", "index.json\0.evil")) + entry("x", m.s_index)),
             ["index.json", "NUL", "\\0", "\\x00"], "either"),
            ("NUL in a GNU long name", m.tar(gnu_long("index.json\0.evil") + entry("x", m.s_index)),
             ["index.json", "NUL", "\\0", "\\x00"], "either"),
        ])

    # -- archives real tools write -------------------------------------------------
    def tool_archives(self):
        """The layout (S signed, U's blobs unreferenced) archived as ``tar -C dir .``."""
        d = self.m.copy_layout(self.new_path("tool-layout"))
        out = []
        if HAVE_GNU_TAR:
            for fmt in ("gnu", "posix", "ustar"):
                p = self.new_path(f"gnu-{fmt}") + ".tar"
                P.run(["tar", f"--format={fmt}", "-C", d, "-cf", p, "."])
                out.append((f"GNU tar --format={fmt} -C dir .", p))
        if HAVE_BSDTAR:
            for fmt in ("pax", "ustar"):
                p = self.new_path(f"bsdtar-{fmt}") + ".tar"
                P.run(["bsdtar", "--format", fmt, "-C", d, "-cf", p, "."])
                out.append((f"bsdtar --format {fmt} -C dir .", p))
        if HAVE_GNU_TAR and HAVE_ZSTD:
            p = self.new_path("gnu-zst") + ".tar.zst"
            P.run(["tar", "--zstd", "-C", d, "-cf", p, "."])
            out.append(("GNU tar --zstd -C dir .", p))
        return out

    @unittest.skipUnless(HAVE_GNU_TAR or HAVE_BSDTAR, "neither GNU tar nor bsdtar installed")
    def test_tar_of_dot_is_accepted(self):
        """``tar -C layout -cf x.tar .`` (GNU tar, bsdtar; plain and zstd) writes ``./``,
        ``./oci-layout``, ``./blobs/`` ...: accepted by verify, inspect, push --verify and
        sign, which all see S (today: "unsafe entry name")."""
        archives = self.tool_archives()
        self.assertTrue(archives)
        for what, path in archives:
            with self.subTest(archive=what):
                if path.endswith(".tar"):
                    with tarfile.open(path) as tf:
                        self.assertIn("./oci-layout", tf.getnames())
                self.one_view(path, [], accept=True)

    # -- further hostile entries ------------------------------------------------------
    def test_links_and_directories_named_like_layout_files(self):
        """A hardlink or symlink named like a blob or index.json, a directory named
        index.json, a regular file whose pax path ends in ``/`` (libarchive turns it into
        a directory): refused by every command naming the entry."""
        m = self.m
        layer = blob_name(m.layer["digest"])
        u_blob = blob_name(m.u_index)
        s = entry("index.json", m.s_index)
        cases = [
            ("hardlink named like a blob", s + entry(layer, typ=b"1", linkname="index.json"), [layer[13:]]),
            ("hardlink index.json -> U's index blob", entry(u_blob, m.u_index) +
             entry("index.json", typ=b"1", linkname=u_blob), ["index.json"]),
            ("symlink index.json", entry(u_blob, m.u_index) + entry("index.json", typ=b"2", linkname=u_blob),
             ["index.json"]),
            ("directory index.json before the file", entry("index.json", typ=b"5") + s, ["index.json"]),
            ("pax path index.json/ (a file)", s + pax(("path", "index.json/")) + entry("z", m.u_index),
             ["index.json"]),
            ("ustar name with trailing slash, file type", s + entry(layer + "/", b"x"), [layer[13:]]),
        ]
        self.cases([(w, m.tar(part), n, "refuse") for w, part, n in cases])

    def test_headers_a_naive_parser_does_not_know(self):
        """Solaris ``X`` extended headers, GNU ``K`` long link names, ``V`` volume labels,
        ``g`` global headers with a path, a GNU header whose prefix area a naive parser
        reads as a prefix, a pax ``size`` record that differs from the ustar size: one
        outcome for all commands."""
        m = self.m
        s, u = m.s_index, m.u_index
        s_blob = blob_name(s)
        cases = [
            ("Solaris X path", pax(("path", "index.json"), typ=b"X") + entry(s_blob, s), ["index.json"]),
            ("GNU K before index.json", gnu_long("whatever", typ=b"K") + entry("index.json", s), ["index.json"]),
            ("V volume label first", entry("label", typ=b"V") + entry("index.json", s), ["label", "index.json"]),
            ("g global path", pax(("path", "index.json"), typ=b"g") + entry(s_blob, s) + entry("index.json", u),
             ["index.json"]),
            ("GNU magic with a prefix area", entry("index.json", s, magic=b"ustar  \0", prefix="blobs"),
             ["index.json"]),
            ("pax size, ustar size 0", pax(("size", str(len(s)))) + header("index.json", 0) + pad(s),
             ["index.json"]),
            ("pax size 0, ustar size real", pax(("size", "0")) + header(s_blob, len(s)) + pad(s) +
             entry("index.json", s), ["index.json", s_blob[13:], "damaged", "header", "checksum"]),
            ("pax size in a global header", pax(("size", "0"), typ=b"g") + entry("index.json", s), ["index.json"]),
        ]
        self.cases([(w, m.tar(part), n, "either") for w, part, n in cases])

    def test_data_after_the_end_of_archive(self):
        """Entries after the end-of-archive blocks (index.json = U, again), after a single
        zero block, and a .tar.zst of two zstd frames (S's archive, then U's): one outcome
        for all commands; U never lands."""
        m = self.m
        after = entry("index.json", m.u_index) + m.blob_entries() + EOA
        s_tar = m.plain()
        self.cases([
            ("entries after the end of archive", s_tar + after, ["index.json"], "either"),
            ("entries after one zero block", s_tar[:-1024] + b"\0" * 512 + after, ["index.json"], "either"),
        ])
        if HAVE_ZSTD:
            for what, first in (("with", s_tar), ("without", s_tar[:-1024])):
                with self.subTest(case=f"two zstd frames, first {what} end-of-archive"):
                    a = zstd_compress(first, self.new_path("frame1"))
                    b = zstd_compress(m.plain(m.u_index), self.new_path("frame2"))
                    out = self.new_path("two-frames") + ".tar.zst"
                    with open(out, "wb") as f:
                        for p in (a, b):
                            with open(p, "rb") as g:
                                f.write(g.read())
                    # Without the first archive's end marker the second one's entries follow
                    # its own: the first of them that repeats a path is named.
                    self.one_view(out, ["index.json", "duplicate entry", "data after the end"],
                                  refuse=(what == "without"))


# ---------------------------------------------------------------------------
# 2. The bundle changes between verification and push
# ---------------------------------------------------------------------------

@contextlib.contextmanager
def hook_after_verify(marker, action, *args):
    """FERRY_TEST_HOOK_AFTER_VERIFY (inherited by ferry) runs this file's --hook."""
    os.environ["FERRY_TEST_HOOK_AFTER_VERIFY"] = " ".join(
        [sys.executable, os.path.abspath(__file__), "--hook", marker, action] + [str(a) for a in args])
    try:
        yield
    finally:
        del os.environ["FERRY_TEST_HOOK_AFTER_VERIFY"]


class VerifyThenPush(GapTest):
    """``push --verify`` with a hook that changes the bundle after the verification
    passed. Either the push fails with exit 1 before the first tag, naming the digest
    that differed, and the registry holds no tag and no manifest of the bundle; or what
    landed is exactly what was verified (tags -> S, U absent) and the push report's
    bundleDigest is verify's. Never the substituted content."""

    def bundle(self, fmt, stem="vtp"):
        """S's bundle (U's blobs unreferenced inside) as dir, tar or tar.zst."""
        if fmt == "dir":
            return self.m.copy_layout(self.new_path(stem))
        return self.write(stem, self.m.plain(), fmt)

    def u_bundle(self, fmt):
        if fmt == "dir":
            return self.m.copy_layout(self.new_path("u"), index=self.m.u_index)
        return self.write("u", self.m.plain(self.m.u_index), fmt)

    @staticmethod
    def region(path, name):
        with tarfile.open(path) as tf:
            info = tf.getmember(name)
            return info.offset_data, info.size

    def changed_between(self, bundle, action, args, needles):
        """Verifies ``bundle`` (its bundleDigest), then push --verify --json with the
        hook; asserts one of the two allowed outcomes."""
        v = self.ferry_run("verify", bundle, *self.trust_args(), "--json")
        self.assertEqual(v.returncode, 0, R.describe(v))
        bundle_digest = self.json_of(v)["bundleDigest"]
        marker = self.new_path("hook-ran")
        target, ns = self.new_target()
        with hook_after_verify(marker, action, *args):
            proc = self.ferry_run("push", "--plain-http", "--verify", *self.trust_args(), bundle, target, "--json")
        self.assertTrue(os.path.exists(marker),
                        "FERRY_TEST_HOOK_AFTER_VERIFY did not run: push --verify must run it after the "
                        "verification and before sending anything" + R.describe(proc))
        every = self.m.s_digests | {self.m.U["digest"]}
        if proc.returncode == 0:
            doc = self.json_of(proc)
            self.assertEqual(doc.get("bundleDigest"), bundle_digest,
                             "push --json must name the verified index.json's digest" + R.describe(proc))
            self.assertEqual(sorted(r["digest"] for r in doc["roots"]), [self.m.S["digest"]], R.describe(proc))
            self.assert_tags_verified(ns, self.m.s_digests, [self.m.U["digest"]], proc)
            self.assertEqual(self.landed(ns).get(f"{ns}/team/app", {}).get("v1"), self.m.S["digest"],
                             R.describe(proc))
        else:
            self.assert_one_error(proc, 1, needles)
            self.assert_nothing_tagged(ns, every, proc)
        return proc

    def test_index_json_replaced(self):
        """index.json replaced by one pointing at U (whose blobs are in the bundle): a new
        file renamed over it (dir), the same inode rewritten (dir, tar, tar.zst), or the
        bytes of index.json's region in a .tar rewritten in place (same length)."""
        u_digest = R.sha256_digest(self.m.u_index)
        s_digest = R.sha256_digest(self.m.s_index)
        needles = ["index.json", hexpart(s_digest), hexpart(u_digest)]
        with self.subTest(fmt="dir", how="rename over"):
            b = self.bundle("dir")
            new = os.path.join(self.tmp, f"new-index-{os.path.basename(b)}")
            with open(new, "wb") as f:
                f.write(self.m.u_index)
            self.changed_between(b, "rename", [new, os.path.join(b, "index.json")], needles)
        with self.subTest(fmt="dir", how="same inode"):
            b = self.bundle("dir")
            new = self.new_path("u-index.json")
            with open(new, "wb") as f:
                f.write(self.m.u_index)
            self.changed_between(b, "overwrite", [new, os.path.join(b, "index.json")], needles)
        with self.subTest(fmt="tar", how="index.json region rewritten in place"):
            b = self.bundle("tar")
            off, size = self.region(b, "index.json")
            self.assertEqual(size, len(self.m.u_index))
            self.changed_between(b, "patch", [b, off, self.m.u_index.hex()], needles)
        for fmt in ("tar", "tar.zst") if HAVE_ZSTD else ("tar",):
            with self.subTest(fmt=fmt, how="whole file rewritten (same inode) with U's bundle"):
                b = self.bundle(fmt)
                self.changed_between(b, "overwrite", [self.u_bundle(fmt), b], needles)

    def test_bundle_renamed_over(self):
        """Another bundle (index.json = U, same blobs) renamed over the bundle's path:
        .tar, .tar.zst and a directory."""
        needles = ["index.json", hexpart(R.sha256_digest(self.m.s_index)), hexpart(R.sha256_digest(self.m.u_index))]
        for fmt in ("dir", "tar", "tar.zst") if HAVE_ZSTD else ("dir", "tar"):
            with self.subTest(fmt=fmt):
                b = self.bundle(fmt)
                self.changed_between(b, "rename", [self.u_bundle(fmt), b], needles)

    def test_layer_bytes_replaced(self):
        """A layer's bytes changed under its name: a byte flipped in place inside the
        .tar, the .tar cut inside the layer, the file rewritten in a directory, a directory
        blob replaced by a symlink to a file outside with other bytes, a .tar.zst
        rewritten. The push must stop before the first tag naming the layer's digest (or
        push the verified bytes)."""
        layer = self.m.layer["digest"]
        needles = [hexpart(layer)]
        with self.subTest(fmt="tar", how="byte flipped in place"):
            b = self.bundle("tar")
            off, size = self.region(b, blob_name(layer))
            with open(b, "rb") as f:
                f.seek(off + size // 2)
                byte = f.read(1)[0]
            self.changed_between(b, "patch", [b, off + size // 2, bytes([byte ^ 1]).hex()], needles)
        with self.subTest(fmt="dir", how="same inode rewritten"):
            b = self.bundle("dir")
            other = self.new_path("other-layer")
            data = bytearray(self.m.layout.read(layer))
            data[len(data) // 2] ^= 1
            with open(other, "wb") as f:
                f.write(bytes(data))
            self.changed_between(b, "overwrite", [other, os.path.join(b, blob_name(layer))], needles)
        with self.subTest(fmt="dir", how="symlink to a file outside"):
            b = self.bundle("dir")
            self.changed_between(b, "symlink", [other, os.path.join(b, blob_name(layer))], needles)
        with self.subTest(fmt="tar", how="cut inside a layer"):
            b = self.bundle("tar")
            off, size = self.region(b, blob_name(layer))
            self.changed_between(b, "truncate", [b, off + size // 2], needles + ["truncated", "unexpected end"])
        if HAVE_ZSTD:
            with self.subTest(fmt="tar.zst", how="rewritten with a flipped layer"):
                b = self.bundle("tar.zst")
                data = bytearray(self.m.plain())
                plain = self.write("flip-src", bytes(data))
                off, size = self.region(plain, blob_name(layer))
                data[off + size // 2] ^= 1
                self.changed_between(b, "overwrite", [self.write("flipped", bytes(data), "tar.zst"), b], needles)

    def test_index_json_byte_flipped_in_tar(self):
        """One byte of index.json flipped inside the .tar (its JSON stays valid: a space
        of the padding becomes a tab)."""
        b = self.bundle("tar")
        off, size = self.region(b, "index.json")
        data = self.m.s_index
        if data.endswith(b" "):
            i = len(data) - 1
            new = b"\t"
        else:  # no padding: change the tag v1 -> v2 (same length)
            i = data.index(b'"v1"') + 2
            new = b"2"
        self.changed_between(b, "patch", [b, off + i, new.hex()],
                             ["index.json", hexpart(R.sha256_digest(self.m.s_index))])


# ---------------------------------------------------------------------------
# 3. Manifests pushed under --verify that no verified signature covers
# ---------------------------------------------------------------------------

class UnverifiedManifests(GapTest):
    """A signed root S with an unsigned SBOM referrer, an unsigned referrer that is
    itself a runnable image (config + layers + subject S), a second signature on S from
    an untrusted root (a signature manifest that did not verify) and an unsigned referrer
    of the SBOM. ``push --verify`` lists those four (``unverifiedManifests`` in --json,
    in the --dry-run plan, in human output) and not S, its good signature or anything
    reachable from S; ``--only-verified`` refuses them (exit 3) and sends nothing."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        lay = V.Layout(os.path.join(cls.tmp, "referrers"))
        cls.app = lay.image(seed="uv-app")
        cls.app_sig = lay.sign(cls.app, cls.pki["rsa2048"])
        cls.sbom = lay.referrer(cls.app)
        # A runnable image that names S as its subject, listed untagged like any referrer.
        layers = [R.seeded_bytes("uv-runnable-0", 3000), R.seeded_bytes("uv-runnable-1", 5000)]
        config = R.canonical_json({"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/evil"]},
                                   "rootfs": {"type": "layers", "diff_ids": [R.sha256_digest(l) for l in layers]}})
        lay.put(config)
        for l in layers:
            lay.put(l)
        manifest = R.canonical_json({"schemaVersion": 2, "mediaType": R.OCI_MANIFEST,
                                     "config": R.descriptor(R.OCI_CONFIG, config),
                                     "layers": [R.descriptor(R.OCI_LAYER_GZIP, l) for l in layers],
                                     "subject": R.subject_of(cls.app)})
        lay.put(manifest)
        cls.runnable = R.descriptor(R.OCI_MANIFEST, manifest)
        lay._add_entry(dict(cls.runnable))
        cls.bad_sig = lay.sign(cls.app, cls.pki["untrusted"])
        cls.sbom_note = lay.referrer(cls.sbom, artifact_type="application/vnd.example.note",
                                     payload=b'{"note":"unsigned"}')
        cls.lay = lay
        cls.unverified = {cls.sbom["digest"], cls.runnable["digest"], cls.bad_sig["digest"],
                          cls.sbom_note["digest"]}
        # Everything covered: a signed index root (two platform images) and its signature.
        clean = V.Layout(os.path.join(cls.tmp, "clean"))
        kids = [clean.image(seed=f"uv-clean-{p}", root=False, platform=p) for p in ("linux/amd64", "linux/arm64")]
        cls.clean_app = clean.image_index(APP_REF, kids)
        cls.clean_sig = clean.sign(cls.clean_app, cls.pki["rsa2048"])
        cls.clean = clean

    def push(self, bundle, *extra):
        target, ns = self.new_target()
        proc = self.ferry_run("push", "--plain-http", "--verify", *self.trust_args(), *extra, bundle, target)
        return proc, ns

    def assert_listed(self, doc, proc):
        self.assertIn("unverifiedManifests", doc, "push --verify --json must list unverifiedManifests"
                      + R.describe(proc))
        got = {e["digest"]: e for e in doc["unverifiedManifests"]}
        self.assertEqual(set(got), self.unverified, R.describe(proc))
        for d, e in got.items():
            self.assertEqual(set(e), {"digest", "mediaType", "artifactType", "reason"}, e)
            self.assertEqual(e["mediaType"], R.OCI_MANIFEST, e)
            self.assertTrue(isinstance(e["reason"], str) and e["reason"], e)
        self.assertEqual(got[self.sbom["digest"]]["artifactType"], R.SPDX)
        self.assertEqual(got[self.bad_sig["digest"]]["artifactType"], R.NOTATION_SIGNATURE)
        self.assertEqual(got[self.sbom_note["digest"]]["artifactType"], "application/vnd.example.note")
        self.assertIn(got[self.runnable["digest"]]["artifactType"], (None, "", R.OCI_CONFIG))

    def output(self, proc):
        """stdout + stderr without the temp dir's name (which holds the class name)."""
        return (proc.stdout + proc.stderr).replace(self.tmp, "<tmp>")

    def assert_named_in_human(self, proc):
        """Each unverified manifest has a line that says so; S and its signature none."""
        lines = self.output(proc).splitlines()
        pat = re.compile(r"unverified|not verified|no verified signature|not covered", re.I)
        for d in self.unverified:
            self.assertTrue(any(d in l and pat.search(l) for l in lines),
                            f"no line names {d} as unverified" + R.describe(proc))
        for d in (self.app["digest"], self.app_sig["digest"]):
            self.assertFalse(any(d in l and re.search(r"unverified", l, re.I) for l in lines),
                             f"{d} is verified" + R.describe(proc))

    def test_listed_in_json_plan_and_human_output(self):
        for fmt in ("dir", "tar"):
            with self.subTest(fmt=fmt, run="push --json"):
                bundle = self.lay.pack(fmt)
                proc, ns = self.push(bundle, "--json")
                self.assertEqual(proc.returncode, 0, R.describe(proc))
                self.assert_listed(self.json_of(proc), proc)
                # Listed, not refused: they are pushed.
                for d in self.unverified | {self.app["digest"]}:
                    self.assertTrue(self.reg.manifest_exists(f"{ns}/team/app", d), d)
            with self.subTest(fmt=fmt, run="push --dry-run --json"):
                before = R.storage_snapshot(self.reg.storage)
                proc, ns = self.push(bundle, "--dry-run", "--json")
                self.assertEqual(proc.returncode, 0, R.describe(proc))
                self.assert_listed(self.json_of(proc), proc)
                self.assertEqual(R.snapshot_diff(before, R.storage_snapshot(self.reg.storage)), [])
            with self.subTest(fmt=fmt, run="push --dry-run (human)"):
                proc, ns = self.push(bundle, "--dry-run")
                self.assertEqual(proc.returncode, 0, R.describe(proc))
                self.assert_named_in_human(proc)
            with self.subTest(fmt=fmt, run="push (human)"):
                proc, ns = self.push(bundle)
                self.assertEqual(proc.returncode, 0, R.describe(proc))
                self.assert_named_in_human(proc)

    def test_only_verified_refuses_and_sends_nothing(self):
        for fmt in ("dir", "tar"):
            for json_out in ((), ("--json",)):
                with self.subTest(fmt=fmt, json=bool(json_out)):
                    bundle = self.lay.pack(fmt)
                    before = R.storage_snapshot(self.reg.storage)
                    catalog = self.reg.catalog()
                    proc, ns = self.push(bundle, "--only-verified", *json_out)
                    self.assert_one_error(proc, 3, list(self.unverified))
                    for d in self.unverified:
                        self.assertIn(d, proc.stderr + proc.stdout, R.describe(proc))
                    self.assertIn("unverified", self.output(proc).lower(), R.describe(proc))
                    self.assertEqual(self.reg.catalog(), catalog, R.describe(proc))
                    self.assertEqual(R.snapshot_diff(before, R.storage_snapshot(self.reg.storage)), [],
                                     "--only-verified sent something" + R.describe(proc))
                    if json_out:
                        self.assert_listed(self.json_of(proc), proc)

    def test_fully_verified_bundle_lists_nothing(self):
        """A signed index (its platform images reachable from it) and its signature:
        nothing unverified; --only-verified pushes it."""
        proc, ns = self.push(self.clean.pack("tar"), "--only-verified", "--json")
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        self.assertEqual(self.json_of(proc).get("unverifiedManifests"), [], R.describe(proc))
        self.assertEqual(self.reg.head_manifest(f"{ns}/team/app", "v1")["digest"], self.clean_app["digest"])


# ---------------------------------------------------------------------------
# 4. Trust-policy scope from the identity that matters
# ---------------------------------------------------------------------------

class SpoofedScope(GapTest):
    """Scopes match normalised names; push --verify evaluates the destination
    repository, offline verify the recorded source (or --scope)."""

    def unsigned(self, source, stem="spoof"):
        lay = V.Layout(self.new_path(stem))
        lay.image(name=source, seed="spoof-" + re.sub(r"[^a-z0-9]", "", source.lower()))
        return lay

    def dest_policy(self, *repos):
        """Strict (ca:ferry) for ``repos`` in the test registry; ``*`` skip."""
        return self.policy(P.statement("dest", scopes=[f"{self.reg.host}/{r}" for r in repos]),
                           P.statement("anything", scopes=["*"], level="skip", stores=(), identities=()))

    def assert_push_refused(self, bundle, policy, target, ns, repo, extra=()):
        before = R.storage_snapshot(self.reg.storage)
        proc = self.ferry_run("push", "--plain-http", "--verify", *self.trust_args(policy), *extra, bundle, target,
                              "--json")
        self.assert_one_error(proc, 3, ["verification failed", "no signature", repo])
        doc = self.json_of(proc)
        scopes = [a["scope"] for a in doc["verification"]["artifacts"]]
        self.assertEqual(scopes, [f"{self.reg.host}/{repo}"],
                         "push --verify must evaluate the destination repository" + R.describe(proc))
        self.assertEqual(self.landed(ns), {}, R.describe(proc))
        self.assertEqual(R.snapshot_diff(before, R.storage_snapshot(self.reg.storage)), [],
                         "a refused push sent something" + R.describe(proc))

    def test_push_verify_uses_the_destination(self):
        """An unsigned bundle recorded as from evil.example (EVIL.EXAMPLE,
        registry.internal:443) lands at TARGET/team/app, which a strict statement covers:
        exit 3, nothing pushed (today the ``*`` skip statement lets it through)."""
        for i, source in enumerate(("evil.example/{}:v1", "EVIL.EXAMPLE/{}:v1",
                                    "registry.internal:443/{}:v1", "evil.example:80/{}:v1")):
            repo = f"team{i}/app"  # one repository per case, each covered by a strict statement
            with self.subTest(source=source.format(repo)):
                bundle = self.unsigned(source.format(repo)).pack("tar")
                self.assert_push_refused(bundle, self.dest_policy(repo), self.reg.host, f"team{i}", repo)

    def test_push_verify_after_map_and_namespace(self):
        """--map team/app=other/app with a strict statement for other/app, and a target
        namespace with a strict statement for ns/team/app."""
        bundle = self.unsigned("evil.example/team/app:v1").pack("tar")
        with self.subTest(case="--map"):
            self.assert_push_refused(bundle, self.dest_policy("other/app"), self.reg.host, "other", "other/app",
                                     extra=("--map", "team/app=other/app"))
        with self.subTest(case="namespace"):
            target, ns = self.new_target()
            self.assert_push_refused(bundle, self.dest_policy(f"{ns}/team/app"), target, ns, f"{ns}/team/app")

    def test_signed_push_reports_the_destination_scope(self):
        """A signed image recorded as from evil.example verifies under the destination's
        strict statement and is pushed; the report's scope is the destination."""
        lay = V.Layout(self.new_path("signed-evil"))
        app = lay.image(name="evil.example/team/app:v1", seed="spoof-signed")
        lay.sign(app, self.pki["rsa2048"])
        target, ns = self.new_target()
        proc = self.ferry_run("push", "--plain-http", "--verify", *self.trust_args(self.dest_policy(f"{ns}/team/app")),
                              lay.pack("tar"), target, "--json")
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        art = self.json_of(proc)["verification"]["artifacts"]
        self.assertEqual([(a["scope"], a["policy"], a["verified"]) for a in art],
                         [(f"{self.reg.host}/{ns}/team/app", "dest", True)], R.describe(proc))
        self.assertEqual(self.reg.head_manifest(f"{ns}/team/app", "v1")["digest"], app["digest"])

    def test_offline_verify_normalises_the_source(self):
        """Offline verify of a source spelled REGISTRY.INTERNAL/team/app,
        registry.internal:443/team/app or :80, against a strict statement for
        registry.internal/team/app and ``*`` skip: the strict statement applies (exit 3
        for an unsigned image) and ``artifacts[].scope`` is the normalised name. Likewise
        docker.io names (``alpine``, ``docker.io/alpine``, ``index.docker.io/library/alpine``)
        against docker.io/library/alpine, and --scope spelled with an uppercase host and
        :443."""
        policy = self.policy(P.statement("internal", scopes=["registry.internal/team/app"]),
                             P.statement("alpine", scopes=["docker.io/library/alpine"]),
                             P.statement("anything", scopes=["*"], level="skip", stores=(), identities=()))
        for source, scope in (("REGISTRY.INTERNAL/team/app:v1", "registry.internal/team/app"),
                              ("registry.internal:443/team/app:v1", "registry.internal/team/app"),
                              ("Registry.Internal:80/team/app:v1", "registry.internal/team/app"),
                              ("alpine:3", "docker.io/library/alpine"),
                              ("docker.io/alpine:3", "docker.io/library/alpine"),
                              ("index.docker.io/library/alpine:3", "docker.io/library/alpine")):
            with self.subTest(source=source):
                proc, rep = self.verify(self.unsigned(source).pack("dir"), policy=policy, expect=None)
                self.assertEqual(proc.returncode, 3, "the strict statement must apply" + R.describe(proc))
                self.assertEqual([(a["scope"], a["policy"]) for a in rep["artifacts"]],
                                 [(scope, "alpine" if "alpine" in scope else "internal")], R.describe(proc))
        for spelled in ("REGISTRY.INTERNAL:443/team/app", "registry.internal:80/team/app"):
            with self.subTest(scope=spelled):
                lay = V.Layout(self.new_path("noname"))
                app = lay.image(seed="spoof-noname", root=False)
                app.pop("platform")
                lay._add_entry(dict(app, annotations={R.ANN_REF_NAME: "v1"}))
                proc, rep = self.verify(lay.pack("dir"), policy=policy, scope=spelled, expect=None)
                self.assertEqual(proc.returncode, 3, R.describe(proc))
                self.assertEqual([a["scope"] for a in rep["artifacts"]], ["registry.internal/team/app"],
                                 R.describe(proc))


# ---------------------------------------------------------------------------
# 5. One definition of a bundle's roots
# ---------------------------------------------------------------------------

class Roots(GapTest):
    """index.json entries that are not a manifest or index, or whose bytes are not what
    their mediaType says: verify, inspect, push, push --verify and sign all refuse with
    exit 1, one error line naming the digest; nothing pushed; no crash."""

    def bogus_cases(self):
        """(what, layout dir, digest named)."""
        m = self.m
        out = []

        def base(stem):
            return H.Existing(m.copy_layout(self.new_path(stem)))

        lay = base("layer-root")
        lay._add_entry(dict(m.layer, annotations={R.ANN_IMAGE_NAME: "reg.ferry.test/team/layer:v1"}))
        out.append(("layer media type at a layer blob", lay, m.layer["digest"]))
        lay = base("config-root")
        lay._add_entry(dict(m.config, annotations={R.ANN_IMAGE_NAME: "reg.ferry.test/team/config:v1"}))
        out.append(("config media type at the config blob", lay, m.config["digest"]))
        lay = base("octet-root")
        lay._add_entry({"mediaType": "application/octet-stream", "digest": m.layer["digest"], "size": m.layer["size"]})
        out.append(("octet-stream root without annotations", lay, m.layer["digest"]))

        image = json.loads(m.layout.read(m.S["digest"]))
        bare_image = {k: v for k, v in image.items() if k != "mediaType"}
        index = {"schemaVersion": 2, "mediaType": R.OCI_INDEX, "manifests": [
            dict(mediaType=m.S["mediaType"], digest=m.S["digest"], size=m.S["size"],
                 platform={"architecture": "amd64", "os": "linux"})]}
        bare_index = {k: v for k, v in index.items() if k != "mediaType"}
        for what, doc, claimed in (("index claimed, image manifest bytes", image, R.OCI_INDEX),
                                   ("index claimed, image manifest bytes without mediaType", bare_image, R.OCI_INDEX),
                                   ("image claimed, index bytes", index, R.OCI_MANIFEST),
                                   ("image claimed, index bytes without mediaType", bare_index, R.OCI_MANIFEST),
                                   ("docker manifest claimed, OCI manifest bytes", image, R.DOCKER_MANIFEST),
                                   ("docker list claimed, OCI index bytes", index, R.DOCKER_LIST)):
            lay = base("mismatch")
            data = R.canonical_json(dict(doc, annotations={"org.example.case": what}))
            lay.put(data)
            lay.add_root({"mediaType": claimed, "digest": R.sha256_digest(data), "size": len(data)},
                         "reg.ferry.test/team/liar:v1")
            out.append((what, lay, R.sha256_digest(data)))
        return out

    def test_non_manifest_roots_refused_by_all(self):
        for what, lay, digest in self.bogus_cases():
            for fmt in ("dir", "tar"):
                with self.subTest(case=what, fmt=fmt):
                    bundle = lay.pack(fmt)
                    target, ns = self.new_target()
                    runs = {
                        "verify": ["verify", bundle, *self.trust_args()],
                        "verify --integrity-only": ["verify", "--integrity-only", bundle],
                        "inspect": ["inspect", bundle],
                        "push": ["push", "--plain-http", bundle, target],
                        "push --verify": ["push", "--plain-http", "--verify", *self.trust_args(), bundle, target],
                        "sign": [*self.sign_args(), self.copy_bundle(bundle)],
                    }
                    for cmd, args in runs.items():
                        with self.subTest(command=cmd):
                            proc = self.ferry_run(*args)
                            self.assert_one_error(proc, 1, [digest])
                    self.assert_nothing_tagged(ns, self.m.s_digests | {digest}, proc)


# ---------------------------------------------------------------------------
# 6. Bounded work
# ---------------------------------------------------------------------------

def write_entry_bomb(path, n, kind, tail=b""):
    """A .tar.zst of ``n`` tiny entries then ``tail`` (raw tar bytes) and the end of
    archive, streamed into ``zstd -1 -T2`` from a header template (name and checksum
    patched). ``kind``: ``match`` (distinct blob names, 8 bytes each that hash to the
    name), ``mismatch`` (counter names, empty: the issue's ~3 MB bomb), ``dirs``
    (``blobs/sha256/`` directory entries)."""
    size = 8 if kind == "match" else 0
    h = header("blobs/sha256/" + "0" * 64, size, typ=b"5" if kind == "dirs" else b"0")
    if kind == "dirs":
        h = header("blobs/sha256/", 0, typ=b"5")
    base = sum(h[:148]) + sum(h[156:]) + 8 * 32 - 64 * ord("0")
    fmt = h[:13].replace(b"%", b"%%") + b"%s" + h[77:148].replace(b"%", b"%%") + b"%s" + h[156:].replace(b"%", b"%%")
    z = subprocess.Popen(["zstd", "-q", "-1", "-T2", "-f", "-o", path], stdin=subprocess.PIPE)
    sha = hashlib.sha256
    zeros = bytes(504)
    try:
        for lo in range(0, n, 8192):
            chunk = []
            hi = min(n, lo + 8192)
            if kind == "dirs":
                chunk = [h] * (hi - lo)
            for i in (range(lo, hi) if kind != "dirs" else ()):
                if size:
                    c = i.to_bytes(8, "big")
                    hx = sha(c).hexdigest().encode()
                    chunk.append(fmt % (hx, b"%06o\0 " % (base + sum(hx))))
                    chunk.append(c + zeros)
                else:
                    hx = b"%064x" % i
                    chunk.append(fmt % (hx, b"%06o\0 " % (base + sum(hx))))
            z.stdin.write(b"".join(chunk))
        z.stdin.write(tail + EOA)
    finally:
        z.stdin.close()
        z.wait()
    return path


# Runs ferry from a fresh small process and reports {rc, seconds, maxrss_kib}: Linux
# carries a process's RSS high-water mark across exec (signal->maxrss), so a child
# forked straight from this test — whose RSS grows with the outputs it reads — would
# inherit the test's peak. Output goes to files, counted without loading it whole.
_LAUNCHER = r"""
import json, os, subprocess, sys, threading, time
out, err, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
with open(out, "wb") as o, open(err, "wb") as e:
    start = time.monotonic()
    p = subprocess.Popen(sys.argv[4:], stdout=o, stderr=e)
    t = threading.Timer(timeout, p.kill)
    t.start()
    _, status, usage = os.wait4(p.pid, 0)
    t.cancel()
print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "seconds": time.monotonic() - start,
                  "maxrss_kib": usage.ru_maxrss}))
"""


class Bounded:
    """What a bounded run left: exit code, seconds, peak RSS (MiB), the number of output
    lines, the error lines and the first/last bytes of stdout and stderr."""

    KEEP = 8192

    def __init__(self, args, result, out_path, err_path):
        self.args, self.returncode = args, result["rc"]
        self.seconds, self.rss = result["seconds"], result["maxrss_kib"] / 1024
        self.lines = 0
        self.errors = []
        self.last_stderr_line = ""
        self.markers = []
        texts = {}
        for which, path in (("stdout", out_path), ("stderr", err_path)):
            size = os.path.getsize(path)
            with open(path, "rb") as f:
                head = f.read(self.KEEP)
                f.seek(0)
                for line in f:  # streamed: never the whole output in memory
                    self.lines += 1
                    if which == "stderr":
                        text = line.decode(errors="replace").rstrip("\n")
                        if text.startswith("ferry: error: ") and len(self.errors) < 10:
                            self.errors.append(text[:2000])
                        if text.strip():
                            self.last_stderr_line = text[:2000]
                        self.markers += [m for m in CRASH_MARKERS if m in text and m not in self.markers]
                f.seek(0 if size <= 2 * self.KEEP else size - self.KEEP)
                rest = f.read()
            if size <= 2 * self.KEEP:
                texts[which] = rest.decode(errors="replace")
            else:
                texts[which] = head.decode(errors="replace") + "\n[...]\n" + rest.decode(errors="replace")
        self.stdout, self.stderr = texts["stdout"], texts["stderr"]

    def describe(self):
        return (f"\n$ {' '.join(self.args)}\nexit {self.returncode}, {self.seconds:.1f} s, {self.rss:.0f} MiB, "
                f"{self.lines} lines\n--- stdout (head/tail) ---\n{self.stdout}\n--- stderr (head/tail) ---\n"
                f"{self.stderr}")


class EntryBomb(GapTest):
    """2,000,000 tiny entries in a small .tar.zst, and 50,000 problems in one .tar: every
    command fails (or reports) within bounds — seconds, < 256 MiB, < 1,000 lines — and
    says which limit and which flag raises it."""

    BOMB_ENTRIES = 2_000_000
    MAX_SECONDS = 15 * SCALE
    MAX_RSS = 256 * SCALE
    PROBLEMS = 50_000

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not HAVE_ZSTD:
            raise unittest.SkipTest("zstd CLI not installed")
        cls.bombs = {}

    def bomb(self, kind):
        """Built once per run: the bomb entries first, then a valid signed layout (so
        that even a reader of only the head must go through them)."""
        if kind not in self.bombs:
            tail = self.m.plain()[:-1024]
            path = os.path.join(self.tmp, f"bomb-{kind}.tar.zst")
            type(self).bombs[kind] = write_entry_bomb(path, self.BOMB_ENTRIES, kind, tail)
        return self.bombs[kind]

    def bounded(self, *args, timeout=None):
        """Runs ferry through _LAUNCHER; returns a Bounded."""
        timeout = timeout or self.MAX_SECONDS + 5
        out, err = self.new_path("out"), self.new_path("err")
        cmd = [R.ferry_binary()] + [str(a) for a in args]
        r = subprocess.run([sys.executable, "-c", _LAUNCHER, out, err, str(timeout)] + cmd, capture_output=True,
                           text=True, cwd=self.cwd, env=R.child_env(), timeout=timeout + 60)
        self.assertEqual(r.returncode, 0, r.stderr)
        run = Bounded(cmd, json.loads(r.stdout), out, err)
        os.remove(out)
        os.remove(err)
        self.assertEqual(run.markers, [], "crash" + run.describe())
        self.assertGreaterEqual(run.returncode, 0, f"killed by a signal (after {run.seconds:.1f} s)" + run.describe())
        return run

    def assert_bounded(self, run, code, needles=None, max_lines=1000):
        """Within time, memory and output bounds; exit ``code`` with exactly one error line,
        the last on stderr, naming one of ``needles`` (all of them if a list of lists)."""
        self.assertLess(run.seconds, self.MAX_SECONDS, f"took {run.seconds:.1f} s" + run.describe())
        self.assertLess(run.rss, self.MAX_RSS, f"peak RSS {run.rss:.0f} MiB" + run.describe())
        self.assertLess(run.lines, max_lines, f"{run.lines} lines of output" + run.describe())
        self.assertEqual(run.returncode, code, run.describe())
        self.assertEqual(len(run.errors), 1, "want exactly one 'ferry: error: ' line" + run.describe())
        self.assertEqual(run.last_stderr_line, run.errors[0], "the error line must be last" + run.describe())
        for group in needles or []:
            self.assertTrue(any(n in run.errors[0] for n in group),
                            f"the error line names none of {group}" + run.describe())
        return run.errors[0]

    def commands(self, bundle, *extra):
        target, ns = self.new_target()
        return {"verify": ["verify", bundle, *self.trust_args(), *extra],
                "verify --integrity-only": ["verify", "--integrity-only", bundle, *extra],
                "inspect": ["inspect", bundle, *extra],
                "push": ["push", "--plain-http", bundle, target, *extra]}, ns

    LIMIT_NEEDLES = [["--max-entries"], ["500000", "500,000", "500 000"]]

    def test_two_million_entries(self):
        """2,000,000 entries before index.json — distinct blobs whose bytes match their
        names (~85 MB), counter-named empty blobs (the issue's ~6 MB bomb), directory
        entries: verify, verify --integrity-only, inspect and push each exit 1 within
        15 s, under 256 MiB, in fewer than 1,000 lines, naming --max-entries and 500,000
        (the directory bomb — 2,000,000 ``blobs/sha256/`` entries — may instead be
        refused at its second entry as a duplicate path, naming it); nothing pushed."""
        for kind in ("mismatch", "match", "dirs"):
            bundle = self.bomb(kind)
            if kind != "match":
                self.assertLess(os.path.getsize(bundle), 8 << 20)
            cmds, ns = self.commands(bundle)
            needles = self.LIMIT_NEEDLES if kind != "dirs" else [["--max-entries", "blobs/sha256"]]
            for what, args in cmds.items():
                with self.subTest(bomb=kind, command=what):
                    self.assert_bounded(self.bounded(*args), 1, needles)
            with self.subTest(bomb=kind, check="nothing pushed"):
                self.assertEqual(self.landed(ns), {})

    def small(self):
        """1,000 entries: S's bundle and ~990 honest unreferenced blobs before index.json."""
        if not hasattr(type(self), "_small"):
            filler = b"".join(entry(blob_name(d), d) for d in
                              (b"filler %d" % i for i in range(1000 - 2 - len(self.m.blobs))))
            data = (entry("oci-layout", OCI_LAYOUT) + filler + entry("index.json", self.m.s_index) +
                    self.m.blob_entries() + EOA)
            with tarfile.open(fileobj=__import__("io").BytesIO(data)) as tf:
                self.assertEqual(len(tf.getmembers()), 1000)
            type(self)._small = (self.write("small", data), self.write("small", data, "tar.zst"))
        return type(self)._small

    def test_small_bundle_over_a_lowered_limit(self):
        """--max-entries 500 on a 1,000-entry bundle: exit 1 naming the limit; with the
        default limit the same bundle verifies, inspects and pushes."""
        for bundle in self.small():
            cmds, ns = self.commands(bundle, "--max-entries", "500")
            for what, args in cmds.items():
                with self.subTest(bundle=os.path.basename(bundle), command=what, limit=500):
                    self.assert_bounded(self.bounded(*args), 1, [["--max-entries"], ["500"]])
            with self.subTest(bundle=os.path.basename(bundle), check="nothing pushed"):
                self.assertEqual(self.landed(ns), {})
            cmds, ns = self.commands(bundle)
            for what, args in cmds.items():
                with self.subTest(bundle=os.path.basename(bundle), command=what, limit="default"):
                    proc, _, _ = self.run_ferry(*args)
                    self.assertEqual(proc.returncode, 0, R.describe(proc))
            with self.subTest(bundle=os.path.basename(bundle), check="pushed with the default limit"):
                head = self.reg.head_manifest(f"{ns}/team/app", "v1")
                self.assertEqual(head and head["digest"], self.m.S["digest"])

    def problems_bomb(self):
        """A .tar of 50,000 one-byte blobs whose bytes do not match their names, all
        referenced (an index of two image manifests of 25,000 layers each)."""
        if hasattr(type(self), "_problems"):
            return type(self)._problems
        half = self.PROBLEMS // 2
        names = ["%064x" % (i + 1) for i in range(self.PROBLEMS)]
        cfg = R.canonical_json({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
        manifests = []
        for part in (names[:half], names[half:]):
            doc = {"schemaVersion": 2, "mediaType": R.OCI_MANIFEST, "config": R.descriptor(R.OCI_CONFIG, cfg),
                   "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + n,
                               "size": 1} for n in part]}
            manifests.append(R.canonical_json(doc))
        self.assertLess(max(len(x) for x in manifests), 4 << 20)
        index = R.canonical_json({"schemaVersion": 2, "mediaType": R.OCI_INDEX, "manifests": [
            dict(R.descriptor(R.OCI_MANIFEST, x), platform={"architecture": "amd64", "os": "linux", "variant": f"v{i}"})
            for i, x in enumerate(manifests)]})
        top = R.canonical_json({"schemaVersion": 2, "mediaType": R.OCI_INDEX, "manifests": [dict(
            R.descriptor(R.OCI_INDEX, index), annotations={R.ANN_IMAGE_NAME: "reg.ferry.test/team/problems:v1",
                                                          R.ANN_REF_NAME: "v1"})]})
        h = header("blobs/sha256/" + "0" * 64, 1)
        base = sum(h[:148]) + sum(h[156:]) + 8 * 32 - 64 * ord("0")
        fmt = h[:13] + b"%s" + h[77:148] + b"%s" + h[156:]
        blob = pad(b"x")
        body = [entry("oci-layout", OCI_LAYOUT), entry("index.json", top), entry(blob_name(index), index)]
        body += [entry(blob_name(x), x) for x in manifests] + [entry(blob_name(cfg), cfg)]
        for n in names:
            hx = n.encode()
            body.append(fmt % (hx, b"%06o\0 " % (base + sum(hx))))
            body.append(blob)
        body.append(EOA)
        type(self)._problems = self.write("problems", b"".join(body))
        return type(self)._problems

    def test_zeros_after_the_end(self):
        """A valid bundle followed by 4 GiB of zeros in a 140 KB .tar.zst (and 1 GiB in a
        .tar.gz): no tar pads that much, and reading it all costs time without bound (a
        few MB of zstd hold tens of GB of zeros). Refused by every command that reads to the
        end, naming it; inspect reads the head only."""
        plain = os.path.join(self.tmp, "zeros-base.tar")
        with open(plain, "wb") as f:
            f.write(self.m.plain())
        for suffix, compress, size in ((".tar.zst", "zstd -q -1 -T0", "4G"), (".tar.gz", "gzip -1", "1G")):
            path = os.path.join(self.tmp, "zeros" + suffix)
            if not os.path.exists(path):
                subprocess.run(f"(cat {plain}; head -c {size} /dev/zero) | {compress} > {path}", shell=True,
                               check=True)
            cmds, _ = self.commands(path)
            for name, args in cmds.items():
                with self.subTest(format=suffix, command=name):
                    run = self.bounded(*args)
                    if name == "inspect":  # reads the head only: never meets the tail, fast
                        self.assertEqual(run.returncode, 0, run.describe())
                        self.assertLess(run.seconds, self.MAX_SECONDS, run.describe())
                        continue
                    self.assert_bounded(run, 1, [["after the end of the archive"], ["64 MiB"]])

    def test_problems_bomb(self):
        """verify --integrity-only of 50,000 mismatched blobs: exit 3, < 1,000 lines, at
        most 100 problems listed and a line counting the rest; --json has at most 100
        problems and problemsTotal 50,000; --max-problems 500 lists 500."""
        bundle = self.problems_bomb()
        for listed, extra in ((100, ()), (500, ("--max-problems", "500"))):
            with self.subTest(max_problems=listed, output="human"):
                run = self.bounded("verify", "--integrity-only", bundle, *extra)
                self.assert_bounded(run, 3, [["verification failed"]], max_lines=min(1000, listed + 100))
                proc = self.ferry_run("verify", "--integrity-only", bundle, *extra)  # small now: read it all
                out = (proc.stdout + proc.stderr).splitlines()
                named = [l for l in out if DIGEST_RE.search(l) and "0" * 40 in l and "ferry: error:" not in l]
                self.assertLessEqual(len(named), listed, "problems listed beyond the limit" + R.describe(proc))
                self.assertGreaterEqual(len(named), listed, "the first problems are listed" + R.describe(proc))
                rest = self.PROBLEMS - listed
                more = [l for l in out if re.search(r"\bmore\b", l) and
                        str(rest) in re.sub(r"[,\s\u202f]", "", l)]
                self.assertTrue(more, f"no line says {rest} more problems" + R.describe(proc))
            with self.subTest(max_problems=listed, output="json"):
                run = self.bounded("verify", "--integrity-only", bundle, "--json", *extra)
                self.assert_bounded(run, 3, [["verification failed"]], max_lines=20 * listed + 200)
                proc = self.ferry_run("verify", "--integrity-only", bundle, "--json", *extra)
                integ = self.json_of(proc)["integrity"]
                self.assertEqual(len(integ["problems"]), listed, "problems listed")
                self.assertEqual(integ.get("problemsTotal"), self.PROBLEMS, "problemsTotal")


    def test_output_lines_are_capped(self):
        """A bundle of 400 unsigned roots: verify prints a line per root and its reason; with
        --max-lines 50 the detail stops after 50 lines with one line saying so, while the
        summary and the error line still go out; --json is never cut; without the flag
        (default 100,000) everything is printed."""
        lay = V.Layout(self.new_path("many-roots"))
        for i in range(400):
            lay.image(name=f"reg.ferry.test/team/app:v{i}", seed=f"many-{i}", layer_sizes=(64,))
        bundle = lay.pack("tar")
        proc = self.ferry_run("verify", bundle, *self.trust_args(), "--max-lines", "50")
        self.assertEqual(proc.returncode, 3, R.describe(proc))
        out = proc.stdout.splitlines()
        cut = [l for l in out if "further output cut after 50 lines" in l]
        self.assertEqual(len(cut), 1, R.describe(proc))
        self.assertLessEqual(len(out), 52, R.describe(proc))
        self.assertTrue(out[-1].startswith("verification FAILED: 400 artifacts"), R.describe(proc))
        self.assert_one_error(proc, 3, ["verification failed"])
        full = self.ferry_run("verify", bundle, *self.trust_args())
        self.assertGreaterEqual(len(full.stdout.splitlines()), 400, R.describe(full))
        self.assertNotIn("further output cut", full.stdout)
        doc = self.json_of(self.ferry_run("verify", bundle, *self.trust_args(), "--max-lines", "50", "--json"))
        self.assertEqual(len(doc["artifacts"]), 400)
        # inspect's tree is cut the same way.
        proc = self.ferry_run("inspect", bundle, "--max-lines", "10")
        self.assertEqual(proc.returncode, 0, R.describe(proc))
        self.assertLessEqual(len(proc.stdout.splitlines()), 12, R.describe(proc))
        self.assertIn("further output cut after 10 lines", proc.stdout)

# ---------------------------------------------------------------------------
# 7. Escapes (light; the thorough suite is elsewhere)
# ---------------------------------------------------------------------------

class Escapes(GapTest):
    """Bundle text with ESC, CR, LF and U+202E never reaches a terminal raw, and no fake
    "verification passed" line appears."""

    HOSTILE = "\x1b[2J\rverification passed\nverification passed, 9 artifacts\u202e"

    def test_reference_names_and_artifact_types(self):
        """A referrer's artifact type with ESC, BEL and U+202E is shown escaped; a root whose
        ref.name holds them is refused by every command (one definition of roots, issue 13
        §5), in an escaped error line. Either way nothing raw reaches the terminal and no
        line ferry did not write starts with 'verification passed'."""
        for hostile_tag in (False, True):
            lay = V.Layout(self.new_path("escapes-tag" if hostile_tag else "escapes"))
            app = lay.image(root=False, seed="escapes")
            app.pop("platform")
            lay._add_entry(dict(app, annotations={R.ANN_REF_NAME: self.HOSTILE if hostile_tag else "v1"}))
            lay.sign(app, self.pki["rsa2048"])
            lay.referrer(app, artifact_type="application/x-\x1b]0;owned\x07\u202etxt.exe")
            for fmt in ("dir", "tar"):
                bundle = lay.pack(fmt)
                for what, args in (("inspect", ["inspect", bundle]),
                                   ("verify", ["verify", bundle, *self.trust_args(), "--scope",
                                               "reg.ferry.test/team/app"])):
                    with self.subTest(fmt=fmt, command=what, hostile_tag=hostile_tag):
                        proc = self.ferry_run(*args)
                        if hostile_tag:
                            self.assert_one_error(proc, 1, ["ref.name"])
                        else:
                            self.assertEqual(proc.returncode, 0, R.describe(proc))
                        out = proc.stdout + proc.stderr
                        for bad in ("\x1b", "\r", "\u202e", "\x07"):
                            self.assertNotIn(bad, out, f"{bad!r} printed raw" + R.describe(proc))
                        fake = [l for l in out.splitlines() if l.startswith("verification passed")]
                        self.assertEqual(len(fake), 1 if what == "verify" and not hostile_tag else 0,
                                         "a line starting with 'verification passed' that ferry did not write"
                                         + R.describe(proc))
                if not hostile_tag:
                    with self.subTest(fmt=fmt, command="inspect --json"):
                        proc = self.ferry_run("inspect", bundle, "--json")
                        arts = [r["artifactType"] for r in self.json_of(proc)["roots"][0]["referrers"]]
                        self.assertIn("application/x-\x1b]0;owned\x07\u202etxt.exe", arts, R.describe(proc))

    def test_entry_names_in_errors(self):
        """An entry name with ESC and U+202E is refused; the error line escapes it."""
        m = self.m
        name = "blobs/sha256/\x1b[2J\u202e" + "a" * 10
        bundle = self.write("esc-entry", m.tar(entry("index.json", m.s_index) + entry(name, b"x")))
        for args in (["verify", "--integrity-only", bundle], ["inspect", bundle]):
            with self.subTest(command=args[0]):
                proc = self.ferry_run(*args)
                self.assert_one_error(proc, 1, ["a" * 10])
                for bad in ("\x1b", "\u202e"):
                    self.assertNotIn(bad, proc.stdout + proc.stderr, R.describe(proc))


if __name__ == "__main__":
    unittest.main(verbosity=2)
