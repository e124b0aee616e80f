#!/usr/bin/env python3
"""Hostile bundles (issue 6, design.md §8): ``ferry verify``, ``ferry inspect`` and
``ferry push`` on bundles built to break them — entries outside the layout (``..``,
absolute paths), links, devices and FIFOs, duplicate entries, bytes that do not match
their names, lying sizes (up to 10^15), bad digest algorithms, missing blobs, index.json
that is not JSON / 200,000 levels deep / huge, manifests over 4 MiB, cycles through
``manifests`` and ``subject``, truncated archives and a zstd bomb — as ``.tar``,
``.tar.zst`` and directories.

Every case asserts, for each of the three commands:
  - the exit code: 1 (malformed) or 3 (verification failed; verify only);
  - exactly one ``ferry: error: `` line, last on stderr, naming the entry or digest;
  - no crash marker (sanitizer report, uncaught exception, signal);
  - nothing written: the test's work tree and ferry's working directory are unchanged;
  - nothing pushed: the destination registry holds no manifest, no tag, and no blob whose
    bytes differ from its name (docker-registry is real, on loopback).

Run: python3 tests/e2e/test_hostile_bundle.py [HostileBundles[.test_name]]
     (FERRY=/abs/path/ferry). Exit 77 (skipped) without ferry, docker-registry or openssl.
"""

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402
import pki as P  # noqa: E402

R.skip_module_unless(__name__, registry=True, programs=(P.OPENSSL,))

import test_verify as V  # noqa: E402

HAVE_ZSTD = shutil.which("zstd") is not None
TAR_FORMATS = ("tar", "tar.zst") if HAVE_ZSTD else ("tar",)
ALL_FORMATS = ("dir",) + TAR_FORMATS
CRASH_MARKERS = ("Traceback", "terminate called", "Segmentation fault", "AddressSanitizer",
                 "runtime error:", "LeakSanitizer", "core dumped")
GiB = 1 << 30


def _sanitized():
    """True for a ferry built with AddressSanitizer: its shadow memory and quarantine add a
    few hundred MiB to any peak RSS, so the memory bounds below are scaled for it."""
    try:
        with open(R.ferry_binary(), "rb") as f:
            return b"__asan_init" in f.read()
    except OSError:
        return False


RSS_SCALE = 3 if _sanitized() else 1


# ---------------------------------------------------------------------------
# Archive writing: any entry, any order, any header
# ---------------------------------------------------------------------------

class Entry:
    """One tar entry: a regular file (``data``) or another type (``kind``: symlink,
    hardlink, chr, blk, fifo, dir), with an optional header size that lies."""

    def __init__(self, name, data=b"", kind="file", target="", size=None, stream=None):
        self.name, self.data, self.kind, self.target = name, data, kind, target
        self.size = size          # header size when it differs from the data
        self.stream = stream      # (fileobj, size) for large generated content

    def tarinfo(self):
        ti = tarfile.TarInfo(self.name)
        ti.mtime = 0
        ti.mode = 0o644
        types = {"file": tarfile.REGTYPE, "symlink": tarfile.SYMTYPE,
                 "hardlink": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE,
                 "fifo": tarfile.FIFOTYPE, "dir": tarfile.DIRTYPE}
        ti.type = types[self.kind]
        if self.kind in ("symlink", "hardlink"):
            ti.linkname = self.target
        if self.kind in ("chr", "blk"):
            ti.devmajor, ti.devminor = 1, 3
        if self.kind == "file":
            ti.size = self.stream[1] if self.stream else len(self.data)
        return ti


class Zeros(io.RawIOBase):
    """``n`` zero bytes as a file object (the zstd bomb's content)."""

    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, b):
        k = min(len(b), self.left)
        b[:k] = bytes(k)
        self.left -= k
        return k


def write_archive(path, entries, truncate_at=None):
    """Writes ``entries`` as a ustar/pax tar at ``path`` (``.tar.zst``: piped through the
    zstd CLI). ``truncate_at``: keep only that many bytes of the uncompressed tar (a
    negative value counts from the end); the compressed stream of a truncated
    ``.tar.zst`` is the compression of the truncated tar."""
    zst = path.endswith(".zst")
    tar_path = path[:-4] if zst else path
    with open(tar_path, "wb") as raw:
        tf = tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT)
        for e in entries:
            ti = e.tarinfo()
            if e.kind != "file":
                tf.addfile(ti)
            elif e.stream:
                tf.addfile(ti, e.stream[0])
            elif e.size is not None and e.size != len(e.data):
                # A header that lies about the size: written by hand (tarfile would pad
                # or refuse); what follows is the data and the rest of the archive.
                ti.size = e.size
                raw.write(ti.tobuf(tarfile.USTAR_FORMAT if e.size < 8 ** 11 else tarfile.PAX_FORMAT,
                                   tarfile.ENCODING, "surrogateescape"))
                raw.write(e.data + b"\0" * (-len(e.data) % 512))
                tf.offset = raw.tell()
            else:
                tf.addfile(ti, io.BytesIO(e.data))
        tf.close()
    if truncate_at is not None:
        size = os.path.getsize(tar_path)
        with open(tar_path, "r+b") as f:
            f.truncate(truncate_at if truncate_at >= 0 else size + truncate_at)
    if zst:
        P.run(["zstd", "-q", "-f", "--rm", "-o", path, tar_path])
    return path


def layout_entries(layout_dir):
    """The layout's files as entries in ferry's order (V.layout_order)."""
    entries = []
    for arcname, path in V.layout_order(layout_dir):
        with open(path, "rb") as f:
            entries.append(Entry(arcname, f.read()))
    return entries


class Existing(V.Layout):
    """A copy of a layout directory, opened without resetting its index.json."""

    def __init__(self, path):  # noqa: super().__init__ would write an empty index
        self.path = path


def tree_snapshot(root):
    """{relative path: (type, size, mtime_ns)} of everything under ``root`` (not
    following links): any file ferry writes, anywhere in the tree, shows up."""
    snap = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            snap[os.path.relpath(p, root)] = (st.st_mode >> 12, st.st_size, st.st_mtime_ns)
    return snap


# ---------------------------------------------------------------------------
# The suite
# ---------------------------------------------------------------------------

class HostileBundles(V.VerifyTest):
    """One signed image with an SBOM is the raw material; each test turns it into a
    hostile bundle and runs verify, inspect and push on it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.reg = R.Registry("hostile")
        cls.reg.start()
        cls.addClassCleanup(cls.reg.stop)
        # Everything ferry could write lands under here or in its cwd: both watched.
        cls.work = os.path.join(cls.tmp, "work")
        cls.cwd = os.path.join(cls.tmp, "cwd")
        os.makedirs(cls.work)
        os.makedirs(cls.cwd)
        base = V.Layout(os.path.join(cls.tmp, "base"))
        cls.app = base.image(seed="hostile")
        cls.sig = base.sign(cls.app, cls.pki["rsa2048"])
        cls.sbom = base.referrer(cls.app)
        cls.base = base
        manifest = json.loads(base.read(cls.app["digest"]))
        cls.config = manifest["config"]
        cls.layer = manifest["layers"][1]
        cls.push_n = 0

    # -- bundles ---------------------------------------------------------------
    def case_dir(self, stem):
        path = os.path.join(self.work, f"{self.new_path(stem).rsplit('/', 1)[1]}")
        shutil.copytree(self.base.path, path, symlinks=True)
        return path

    def entries(self):
        return layout_entries(self.base.path)

    def archive(self, stem, fmt, entries, truncate_at=None):
        path = os.path.join(self.work, f"{self.new_path(stem).rsplit('/', 1)[1]}.{fmt}")
        return write_archive(path, entries, truncate_at)

    @staticmethod
    def in_head(entries, *extra):
        """``entries`` with ``extra`` right after index.json: in a .tar.zst's head, which
        inspect reads (design §3: inspect reads only the head of a .tar.zst)."""
        return entries[:2] + list(extra) + entries[2:]

    @staticmethod
    def tail_inspect(fmt):
        """inspect's codes for a problem in a blob entry after the head: a .tar.zst's
        tail is not read by inspect (design §3), the other formats are checked whole."""
        return (0, 1) if fmt == "tar.zst" else (1,)

    def replace(self, entries, name, **kw):
        """entries with ``name``'s entry replaced by Entry(name, **kw)."""
        out = [Entry(name, **kw) if e.name == name else e for e in entries]
        self.assertTrue(any(e.name == name for e in entries), name)
        return out

    @staticmethod
    def blob_name(desc):
        return "blobs/sha256/" + desc["digest"].split(":", 1)[1]

    # -- running ---------------------------------------------------------------
    def run_ferry(self, *args, timeout=120):
        """Runs ferry in the watched cwd; returns (proc, seconds, its own peak RSS in MiB)."""
        cmd = [R.ferry_binary()] + [str(a) for a in args]
        start = time.monotonic()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=self.cwd, env=R.child_env())
            timer = threading.Timer(timeout, p.kill)
            timer.start()
            try:
                _, status, usage = os.wait4(p.pid, 0)
            finally:
                timer.cancel()
            p.returncode = os.waitstatus_to_exitcode(status)
            seconds = time.monotonic() - start
            out.seek(0)
            err.seek(0)
            proc = subprocess.CompletedProcess(cmd, p.returncode, out.read().decode(errors="replace"),
                                               err.read().decode(errors="replace"))
        self.assertLess(seconds, timeout, f"ferry hung for {timeout} s" + R.describe(proc))
        for bad in CRASH_MARKERS:
            self.assertNotIn(bad, proc.stderr, R.describe(proc))
        self.assertGreaterEqual(proc.returncode, 0, "killed by a signal" + R.describe(proc))
        return proc, seconds, usage.ru_maxrss / 1024

    def assert_one_error(self, proc, codes, needles):
        codes = (codes,) if isinstance(codes, int) else tuple(codes)
        self.assertIn(proc.returncode, codes, R.describe(proc))
        lines = [l for l in proc.stderr.splitlines() if l.strip()]
        errors = [l for l in lines if l.startswith("ferry: error: ")]
        self.assertEqual(len(errors), 1, "want exactly one 'ferry: error: ' line" + R.describe(proc))
        self.assertEqual(lines[-1], errors[0], "the error line must be last" + R.describe(proc))
        low = errors[0].lower()
        self.assertTrue(any(n.lower() in low for n in needles),
                        f"the error names none of {needles}" + R.describe(proc))
        return errors[0]

    def registry_state(self):
        return R.storage_snapshot(self.reg.storage)

    def assert_nothing_pushed(self, proc, before):
        """No manifest or tag landed, and every blob the registry gained hashes to its
        name (the registry checks uploads, ferry must not even start a bad one)."""
        after = self.registry_state()
        added = [k for k in after if k not in before]
        manifests = [k for k in added if "/_manifests/" in k]
        self.assertEqual(manifests, [], "a manifest or tag was pushed from a hostile bundle"
                         + R.describe(proc))
        for k in added:
            if k.endswith("/data") and "/blobs/sha256/" in k:
                hexd = k.split("/")[-2]
                with open(os.path.join(self.reg.storage, k), "rb") as f:
                    self.assertEqual(hashlib.sha256(f.read()).hexdigest(), hexd, k)

    def hostile(self, bundle, needles, verify=(1, 3), inspect=(1,), push=True, policy=False,
                max_seconds=60, max_rss_mib=None, verify_needles=None):
        """Runs ``verify --integrity-only`` (and, with ``policy``, a full verify), ``inspect``
        and ``push`` on ``bundle``: each exits with one of its codes (``verify``, ``inspect``;
        push 1) and one error line naming one of ``needles``, writes nothing, pushes
        nothing. ``inspect`` may allow 0 (content problems are verify's to find) or be None."""
        runs = [("verify", ["verify", "--integrity-only", bundle], verify, verify_needles or needles)]
        if policy:
            runs.append(("verify-policy", ["verify", bundle, "--trust-policy", self.strict_policy(),
                                           "--trust-store", self.store, "--verification-time", V.VT],
                         verify, verify_needles or needles))
        if inspect:
            runs.append(("inspect", ["inspect", bundle], inspect, needles))
        if push:
            type(self).push_n += 1
            runs.append(("push", ["push", "--plain-http", bundle,
                                  f"{self.reg.host}/hostile{self.push_n}"], (1,), needles))
        before_reg = self.registry_state()
        before_tree = tree_snapshot(self.tmp_root())
        for what, args, codes, nd in runs:
            with self.subTest(command=what, bundle=os.path.basename(bundle)):
                proc, seconds, rss = self.run_ferry(*args)
                if not (proc.returncode == 0 and 0 in codes):
                    self.assert_one_error(proc, codes, nd)
                self.assertLess(seconds, max_seconds, f"took {seconds:.1f} s" + R.describe(proc))
                if max_rss_mib is not None:
                    self.assertLess(rss, max_rss_mib * RSS_SCALE, f"peak RSS {rss:.0f} MiB" + R.describe(proc))
                diff = R.snapshot_diff(before_tree, tree_snapshot(self.tmp_root()))
                self.assertEqual(diff, [], "ferry wrote files" + R.describe(proc))
                self.assertEqual(os.listdir(self.cwd), [], R.describe(proc))
                if what == "push":
                    self.assert_nothing_pushed(proc, before_reg)
        return bundle

    def tmp_root(self):
        """The tree watched for writes: the class's temp dir (bundles, cwd, policies) —
        the registry's storage lives elsewhere and is checked by assert_nothing_pushed."""
        return self.tmp

    def strict_policy(self, **kw):
        # Written once per test before the snapshot (policies are files too).
        if not hasattr(self, "_policy"):
            self._policy = super().strict_policy(**kw)
        return self._policy

    def setUp(self):
        self.strict_policy()

    # -- entries outside the layout --------------------------------------------
    def test_entries_outside_the_layout(self):
        """``..``, absolute paths and names outside oci-layout/index.json/blobs are refused
        by name; nothing appears where the entry pointed."""
        escape = os.path.join(self.tmp, "escaped")
        for name in ("../escaped", "blobs/sha256/../../../escaped", escape,
                     "blobs/sha256/./" + self.layer["digest"].split(":")[1] + "x",
                     "./../escaped"):
            for fmt in TAR_FORMATS:
                with self.subTest(entry=name, fmt=fmt):
                    entries = self.in_head(self.entries(), Entry(name, b"owned\n"))
                    self.hostile(self.archive("outside", fmt, entries), [name.lstrip("./")[:20]])
                    self.assertFalse(os.path.exists(escape))
        if HAVE_ZSTD:
            with self.subTest(entry="README at the tail of a .tar.zst"):
                # Issue 14: a regular file at the top level is another tool's (ctr export's
                # manifest.json) and allowed by the layout spec: ignored with a note, never
                # pushed (e2e-users-tarballs-CtrExport); in a directory it is refused above.
                bundle = self.archive("outside", "tar.zst", self.entries() + [Entry("README", b"owned\n")])
                proc = R.run_ferry("verify", "--integrity-only", bundle)
                self.assertEqual(proc.returncode, 0, R.describe(proc))
                self.assertIn('ignored 1 file beside the OCI layout (not part of it, never pushed): "README"',
                              proc.stderr, R.describe(proc))

    def test_links_devices_fifos_in_archives(self):
        """A symlink, hardlink, device or FIFO entry, at a blob's name or beside it, is
        refused naming the entry (never followed, never created)."""
        layer = self.blob_name(self.layer)
        for kind, target in (("symlink", "/etc/passwd"), ("hardlink", "index.json"),
                             ("chr", ""), ("blk", ""), ("fifo", ""), ("symlink", "../../index.json")):
            for fmt in TAR_FORMATS:
                with self.subTest(kind=kind, target=target, fmt=fmt):
                    entries = self.replace(self.entries(), layer, kind=kind, target=target)
                    self.hostile(self.archive(kind, fmt, entries), [layer], inspect=self.tail_inspect(fmt))
                with self.subTest(kind=kind, where="extra entry", fmt=fmt):
                    entries = self.in_head(self.entries(), Entry("blobs/sha256/" + "ab" * 32, kind=kind,
                                                                 target=target))
                    self.hostile(self.archive(kind, fmt, entries), ["ab" * 32])

    def test_links_and_fifos_in_directories(self):
        """A layout directory whose blob is a symlink (to a file outside, or to another
        blob), whose blobs/sha256 is a symlink, or whose blob is a FIFO (opening it would
        block) or a device node: refused by name, no hang."""
        layer_hex = self.layer["digest"].split(":")[1]
        cases = []
        d = self.case_dir("dir-symlink-out")
        target = os.path.join(self.tmp, "outside-file")
        with open(target, "wb") as f:
            f.write(self.base.read(self.layer["digest"]))
        os.remove(os.path.join(d, "blobs", "sha256", layer_hex))
        os.symlink(target, os.path.join(d, "blobs", "sha256", layer_hex))
        cases.append(("symlink to a file outside", d, [layer_hex]))
        d = self.case_dir("dir-symlink-in")
        os.remove(os.path.join(d, "blobs", "sha256", layer_hex))
        os.symlink(self.config["digest"].split(":")[1], os.path.join(d, "blobs", "sha256", layer_hex))
        cases.append(("symlink to another blob", d, [layer_hex]))
        d = self.case_dir("dir-symlink-blobs")
        real = os.path.join(self.tmp, "real-blobs")
        if not os.path.exists(real):
            shutil.copytree(os.path.join(self.base.path, "blobs"), real)
        shutil.rmtree(os.path.join(d, "blobs"))
        os.symlink(real, os.path.join(d, "blobs"))
        cases.append(("blobs is a symlink", d, ["blobs"]))
        d = self.case_dir("dir-index-symlink")
        os.remove(os.path.join(d, "index.json"))
        os.symlink(os.path.join(self.base.path, "index.json"), os.path.join(d, "index.json"))
        cases.append(("index.json is a symlink", d, ["index.json"]))
        d = self.case_dir("dir-fifo")
        os.remove(os.path.join(d, "blobs", "sha256", layer_hex))
        os.mkfifo(os.path.join(d, "blobs", "sha256", layer_hex))
        cases.append(("FIFO", d, [layer_hex]))
        d = self.case_dir("dir-fifo-index")
        os.remove(os.path.join(d, "index.json"))
        os.mkfifo(os.path.join(d, "index.json"))
        cases.append(("index.json is a FIFO", d, ["index.json"]))
        if os.geteuid() == 0:
            d = self.case_dir("dir-device")
            os.remove(os.path.join(d, "blobs", "sha256", layer_hex))
            os.mknod(os.path.join(d, "blobs", "sha256", layer_hex), 0o644 | 0o020000, os.makedev(1, 5))
            cases.append(("character device (/dev/zero)", d, [layer_hex]))
        for what, bundle, needles in cases:
            with self.subTest(case=what):
                self.hostile(bundle, needles)

    def test_duplicate_entries(self):
        """The same name twice with different content (a blob, index.json): refused by
        name. (A reader that kept the first or the last would see another bundle than
        the verifier did.)"""
        layer = self.blob_name(self.layer)
        for name, other in ((layer, b"other bytes"), ("index.json", b'{"schemaVersion":2,"manifests":[]}'),
                            ("oci-layout", b'{"imageLayoutVersion":"1.0.0"} ')):
            for fmt in TAR_FORMATS:
                with self.subTest(entry=name, fmt=fmt):
                    entries = self.in_head(self.entries(), Entry(name, other))
                    self.hostile(self.archive("dup", fmt, entries), [name, name.replace("blobs/sha256/", "sha256:")],
                                 inspect=self.tail_inspect(fmt) if name.startswith("blobs/") else (1,))

    # -- content that lies -------------------------------------------------------
    def test_bytes_not_matching_their_name(self):
        """A layer whose bytes are not its name: verify 3, inspect is read-only (lists
        the bundle: manifests are intact) and push 1 with the blob never accepted."""
        for fmt in ALL_FORMATS:
            with self.subTest(fmt=fmt):
                lay = Existing(self.case_dir("flip"))
                lay.flip(self.layer["digest"])
                bundle = lay.pack(fmt) if fmt != "dir" else lay.path
                self.hostile(bundle, [self.layer["digest"], self.blob_name(self.layer)], verify=(3,), inspect=(0,),
                             policy=True)

    def test_missing_blob(self):
        for fmt in ALL_FORMATS:
            with self.subTest(fmt=fmt):
                lay = Existing(self.case_dir("missing"))
                lay.remove(self.layer["digest"])
                bundle = lay.pack(fmt) if fmt != "dir" else lay.path
                self.hostile(bundle, [self.layer["digest"], self.blob_name(self.layer)], verify=(3,), inspect=(0,),
                             policy=True)

    def manifest_with_layer(self, lay, layer_desc):
        """Rewrites the app manifest with ``layer_desc`` as its second layer and re-roots
        the index on it; returns the new manifest's digest."""
        m = json.loads(lay.read(self.app["digest"]))
        m["layers"][1] = layer_desc
        data = R.canonical_json(m)
        lay.put(data)
        index = lay.index()
        for e in index["manifests"]:
            if e["digest"] == self.app["digest"]:
                e["digest"], e["size"] = R.sha256_digest(data), len(data)
        lay._write_index(index)
        return R.sha256_digest(data)

    def test_lying_sizes(self):
        """A descriptor whose size lies — by one byte, or 10^15 — fails fast naming the
        digest, without allocating or reading what the size claims."""
        for size in (self.layer["size"] + 1, self.layer["size"] - 1, 10 ** 15, 2 ** 63 - 1):
            for fmt in ALL_FORMATS:
                with self.subTest(size=size, fmt=fmt):
                    lay = Existing(self.case_dir("liesize"))
                    self.manifest_with_layer(lay, dict(self.layer, size=size))
                    bundle = lay.pack(fmt) if fmt != "dir" else lay.path
                    self.hostile(bundle, [self.layer["digest"], self.blob_name(self.layer)], inspect=(0,), max_seconds=20,
                                 max_rss_mib=512)
        for size in (-1, 1.5, "12", 2 ** 64):
            with self.subTest(size=size):
                lay = Existing(self.case_dir("badsize"))
                digest = self.manifest_with_layer(lay, dict(self.layer, size=size))
                self.hostile(lay.pack("tar"), [digest])

    def test_tar_header_size_lies(self):
        """A tar header that claims 10^15 bytes (or more than the archive holds): a
        truncated archive, named, refused without reading or allocating that much."""
        layer = self.blob_name(self.layer)
        data = self.base.read(self.layer["digest"])
        for size in (10 ** 15, len(data) + 4096):
            for fmt in TAR_FORMATS:
                with self.subTest(size=size, fmt=fmt):
                    entries = self.replace(self.entries(), layer, data=data, size=size)
                    self.hostile(self.archive("hdrsize", fmt, entries),
                                 [layer, "truncated", "unexpected end"], max_seconds=20,
                                 max_rss_mib=512, inspect=self.tail_inspect(fmt))

    def test_bad_digest_algorithms(self):
        """Descriptors with unknown or malformed digests, and blob entries under unknown
        algorithm directories: refused by name."""
        hexd = self.layer["digest"].split(":", 1)[1]
        for bad in ("md5:" + hexd[:32], "sha256:" + hexd[:-1], "sha256:" + hexd.upper(),
                    "sha256:" + hexd[:-1] + "g", "SHA256:" + hexd, "sha256" + hexd, ":" + hexd,
                    "sha256:../../../" + hexd[9:], "sha512:" + hexd + hexd, "sha256+b64u:" + hexd):
            with self.subTest(digest=bad):
                lay = Existing(self.case_dir("baddigest"))
                digest = self.manifest_with_layer(lay, dict(self.layer, digest=bad))
                self.hostile(lay.pack("tar"), [bad, digest],
                             inspect=(0, 1) if bad.startswith("sha512:") else (1,))
        for fmt in TAR_FORMATS:
            with self.subTest(entry="blobs/md5/...", fmt=fmt):
                entries = self.in_head(self.entries(), Entry("blobs/md5/" + hexd[:32], b"x"))
                self.hostile(self.archive("algdir", fmt, entries), ["blobs/md5/"])
        with self.subTest(index="root with a bad digest"):
            lay = Existing(self.case_dir("badroot"))
            index = lay.index()
            index["manifests"][0]["digest"] = "sha256:zz"
            lay._write_index(index)
            self.hostile(lay.pack("tar"), ["sha256:zz"])

    # -- index.json and manifests ------------------------------------------------
    def test_index_json_hostile(self):
        """index.json that is not JSON, 200,000 levels deep, 65 MiB, or JSON of the
        wrong shape: exit 1 naming index.json, fast."""
        deep = b"[" * 200_000 + b"]" * 200_000
        deep_obj = b'{"manifests":' * 200_000 + b"[]" + b"}" * 200_000
        huge = b'{"schemaVersion":2,"manifests":[],"annotations":{"x":"' + b"A" * (65 << 20) + b'"}}'
        cases = (("not json", b"this is { not json\n"), ("deep array", deep),
                 ("deep object", deep_obj), ("huge", huge), ("empty", b""),
                 ("array", b"[]"), ("manifests not a list", b'{"schemaVersion":2,"manifests":{}}'),
                 ("entry not an object", b'{"schemaVersion":2,"manifests":[7]}'),
                 ("nul bytes", b'{"schemaVersion":2,\0"manifests":[]}'),
                 ("invalid utf-8", b'{"schemaVersion":2,"manifests":[],"annotations":{"a":"\xff\xfe"}}'))
        for what, data in cases:
            for fmt in ALL_FORMATS:
                if what == "huge" and fmt == "tar":
                    continue  # the same bytes as .tar.zst without the compression
                with self.subTest(index=what, fmt=fmt):
                    if fmt == "dir":
                        d = self.case_dir("index")
                        with open(os.path.join(d, "index.json"), "wb") as f:
                            f.write(data)
                        bundle = d
                    else:
                        bundle = self.archive("index", fmt, self.replace(self.entries(), "index.json", data=data))
                    self.hostile(bundle, ["index.json"], max_seconds=30, max_rss_mib=768)

    def test_manifest_over_4_mib(self):
        """A root manifest of 5 MiB (valid JSON, honest name): refused naming its digest
        (manifests ≤ 4 MiB, design §8), without reading it whole into memory twice."""
        m = json.loads(self.base.read(self.app["digest"]))
        m["annotations"]["org.example.padding"] = "P" * (5 << 20)
        data = R.canonical_json(m)
        digest = R.sha256_digest(data)
        for fmt in ALL_FORMATS:
            with self.subTest(fmt=fmt):
                lay = Existing(self.case_dir("bigmanifest"))
                lay.put(data)
                lay.add_root(R.descriptor(R.OCI_MANIFEST, data), "reg.ferry.test/team/big:v1")
                bundle = lay.pack(fmt) if fmt != "dir" else lay.path
                self.hostile(bundle, [digest, digest.split(":")[1]], policy=True)

    def test_cycles(self):
        """Graphs that loop — an index listing itself (a blob whose name lies), two
        indexes listing each other, a referrer whose subject is itself or its referrer:
        refused, never a hang."""
        def lying_blob(lay, name_hex, data):
            with open(os.path.join(lay.path, "blobs", "sha256", name_hex), "wb") as f:
                f.write(data)

        cases = []
        # 1. An index whose own name is in its manifests.
        lay = Existing(self.case_dir("cycle-self"))
        me = "sha256:" + "c1" * 32
        idx = R.canonical_json({"schemaVersion": 2, "mediaType": R.OCI_INDEX, "manifests": [
            {"mediaType": R.OCI_INDEX, "digest": me, "size": 200}]})
        lying_blob(lay, me.split(":")[1], idx)
        lay.add_root({"mediaType": R.OCI_INDEX, "digest": me, "size": len(idx)}, "reg.ferry.test/loop/self:v1")
        cases.append(("index lists itself", lay, me))
        # 2. Two indexes listing each other.
        lay = Existing(self.case_dir("cycle-pair"))
        a, b = "sha256:" + "a1" * 32, "sha256:" + "b2" * 32
        ia = R.canonical_json({"schemaVersion": 2, "mediaType": R.OCI_INDEX, "manifests": [
            {"mediaType": R.OCI_INDEX, "digest": b, "size": 200}]})
        ib = R.canonical_json({"schemaVersion": 2, "mediaType": R.OCI_INDEX, "manifests": [
            {"mediaType": R.OCI_INDEX, "digest": a, "size": len(ia)}]})
        lying_blob(lay, a.split(":")[1], ia)
        lying_blob(lay, b.split(":")[1], ib.ljust(200))
        lay.add_root({"mediaType": R.OCI_INDEX, "digest": a, "size": len(ia)}, "reg.ferry.test/loop/pair:v1")
        cases.append(("two indexes list each other", lay, a))
        # 3. A referrer whose subject is itself.
        lay = Existing(self.case_dir("cycle-subject"))
        r = "sha256:" + "d3" * 32
        man = R.canonical_json({"schemaVersion": 2, "mediaType": R.OCI_MANIFEST,
                                "artifactType": "application/vnd.example",
                                "config": {"mediaType": R.OCI_EMPTY, "digest": R.EMPTY_DIGEST, "size": 2},
                                "layers": [], "subject": {"mediaType": R.OCI_MANIFEST, "digest": r,
                                                          "size": 300}})
        lying_blob(lay, r.split(":")[1], man.ljust(300))
        lay.put(R.EMPTY_JSON)
        lay._add_entry({"mediaType": R.OCI_MANIFEST, "digest": r, "size": 300,
                        "artifactType": "application/vnd.example"})
        cases.append(("referrer is its own subject", lay, r))
        # 4. The app's signature re-pointed: the app's manifest (lying) names the
        # signature as its subject, the signature names the app.
        lay = Existing(self.case_dir("cycle-referrers"))
        m = json.loads(lay.read(self.app["digest"]))
        m["subject"] = {"mediaType": R.OCI_MANIFEST, "digest": self.sig["digest"], "size": self.sig["size"]}
        m["annotations"]["org.example.note"] = "loop"
        lying_blob(lay, self.app["digest"].split(":")[1], R.canonical_json(m))
        cases.append(("subject and referrer name each other", lay, self.app["digest"]))
        for what, lay, digest in cases:
            for fmt in ALL_FORMATS:
                with self.subTest(case=what, fmt=fmt):
                    bundle = lay.pack(fmt) if fmt != "dir" else lay.path
                    self.hostile(bundle, [digest, digest.split(":")[1]], max_seconds=20, policy=True)

    # -- damaged archives --------------------------------------------------------
    def test_truncated_archives(self):
        """Archives cut inside a header, inside a blob, and just before the end-of-archive
        blocks; a .tar.zst cut inside its compressed stream: refused naming the bundle."""
        entries = self.entries()
        layer_end = None
        tmp = write_archive(os.path.join(self.work, "measure.tar"), entries)
        with tarfile.open(tmp) as tf:
            for m in tf.getmembers():
                if m.name == self.blob_name(self.layer):
                    layer_end = m.offset_data + m.size
                last_end = m.offset_data + m.size
        os.remove(tmp)
        for where, at in (("inside a blob", layer_end - 100), ("inside a header", 700),
                          ("inside the last blob", last_end - 10), ("after 10 bytes", 10)):
            for fmt in TAR_FORMATS:
                with self.subTest(cut=where, fmt=fmt):
                    bundle = self.archive("trunc", fmt, entries, truncate_at=at)
                    in_tail = at > 4096
                    self.hostile(bundle, [os.path.basename(bundle)],
                                 inspect=self.tail_inspect(fmt) if in_tail else (1,))
        if HAVE_ZSTD:
            with self.subTest(cut="inside the zstd stream"):
                bundle = self.archive("trunc-zst", "tar.zst", entries)
                with open(bundle, "r+b") as f:
                    f.truncate(os.path.getsize(bundle) * 2 // 3)
                self.hostile(bundle, [os.path.basename(bundle)], inspect=(0, 1))

    @unittest.skipUnless(HAVE_ZSTD, "zstd CLI not installed")
    def test_zstd_bomb(self):
        """1 GiB of zeros in a .tar.zst of about a MiB — as index.json, and as a blob
        entry named like a 8 KiB layer: refused fast, memory bounded, nothing written."""
        stems = []
        for name in ("index.json", self.blob_name(self.layer)):
            entries = [e for e in self.entries() if e.name != name]
            pos = 1 if name == "index.json" else len(entries)
            entries.insert(pos, Entry(name, stream=(Zeros(GiB), GiB)))
            bundle = self.archive("bomb", "tar.zst", entries)
            self.assertLess(os.path.getsize(bundle), 2 << 20)
            stems.append((name, bundle))
        for name, bundle in stems:
            with self.subTest(entry=name):
                self.hostile(bundle, [name.rsplit("/", 1)[-1]], max_seconds=60, max_rss_mib=256,
                             inspect=(0, 1) if name != "index.json" else (1,))


if __name__ == "__main__":
    unittest.main()
