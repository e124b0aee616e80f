"""The Sigstore / cosign test vectors of ``../shared/sigstore-vectors`` (issue 15), generated
once per test process (Python 3 stdlib only).

``../shared/sigstore-vectors`` is a Node generator: in memory and offline it makes a
Fulcio-style CA, a Rekor-style log, a TSA and cosign keys, signs one OCI manifest every way
cosign does, and writes ``cases.json`` (one row per case: ``id``, ``artifact``, ``policy``,
``expect`` pass|fail, ``layout``), ``trust/`` (``trusted_root.json``, ``cosign.pub``, ...)
and, given ``--layout``, one OCI layout per artifact under ``layouts/`` plus
``layouts/all-good`` (every passing kind at once).

``vectors()`` copies the generator to a temporary directory, runs ``npm ci --offline``
there (``.ci/run`` fills the npm cache beforehand; tests never touch the network), writes a
one-image OCI layout (``image_layout``) and runs ``node gen.mjs --out OUT --layout LAYOUT``
with a fixed signing time (no dependence on the clock: every verdict comes from the SET or
the TSA, never from now). ``skip_reason()`` says why it cannot run: no
``../shared/sigstore-vectors`` (``$FERRY_SHARED/sigstore-vectors`` when set), no node or
one older than 20.17, or ``npm ci --offline`` failing.
"""

import atexit
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading

import registry as R

IMAGE_NAME = "registry.example.test/team/app:v1"
IMAGE_REPO = "team/app"
# The signing time T. Any time an hour or more in the past works (gen.mjs refuses later
# ones); a fixed one keeps the vectors independent of the clock the tests run under.
SIGNING_TIME = "2025-06-01T12:00:00Z"
NODE_MIN = (20, 17)
BUNDLE_ARTIFACT_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def find_vectors():
    """``$FERRY_SHARED/sigstore-vectors``, else the first ``shared/sigstore-vectors`` walking
    up from the source root (``<source root>/../shared/sigstore-vectors``); None if absent."""
    env = os.environ.get("FERRY_SHARED")
    if env:
        for d in (os.path.join(env, "sigstore-vectors"), env):
            if os.path.isfile(os.path.join(d, "gen.mjs")):
                return d
        return None
    d = R.REPO_ROOT
    while True:
        cand = os.path.join(d, "shared", "sigstore-vectors")
        if os.path.isfile(os.path.join(cand, "gen.mjs")):
            return cand
        parent = os.path.dirname(d)
        if parent == d:
            return None
        d = parent


def node_version():
    """(major, minor, patch) of ``node`` on PATH, or None."""
    node = shutil.which("node")
    if node is None:
        return None
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(r"v?(\d+)\.(\d+)\.(\d+)", out.strip())
    return tuple(int(x) for x in m.groups()) if m else None


def _tool_reason():
    src = find_vectors()
    if src is None:
        return "../shared/sigstore-vectors not found (set FERRY_SHARED)"
    v = node_version()
    if v is None:
        return "node not found (the sigstore-vectors generator needs Node >= 20.17)"
    if v[:2] < NODE_MIN:
        return f"node {'.'.join(map(str, v))} is older than 20.17 (sigstore-vectors needs it)"
    if shutil.which("npm") is None:
        return "npm not found (the sigstore-vectors generator installs its packages with npm ci)"
    return None


# ---------------------------------------------------------------------------
# The one-image layout the vectors sign
# ---------------------------------------------------------------------------

def image_layout(path):
    """An OCI layout of one image (config + one layer + manifest), index.json naming it
    ``registry.example.test/team/app:v1``. Returns the manifest's descriptor."""
    lay = R.LayoutBuilder(path, referrers=None)
    layer = R.seeded_bytes("sigstore-vectors layer", 2048)
    layer_desc = R.descriptor(R.OCI_LAYER_GZIP, layer)
    lay.put_blob(None, layer)
    config = R.canonical_json({"architecture": "amd64", "os": "linux",
                               "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]}})
    lay.put_blob(None, config)
    manifest = R.canonical_json({"schemaVersion": 2, "mediaType": R.OCI_MANIFEST,
                                 "config": R.descriptor(R.OCI_CONFIG, config),
                                 "layers": [layer_desc]})
    lay.put_blob(None, manifest)
    desc = R.descriptor(R.OCI_MANIFEST, manifest)
    entry = dict(desc, annotations={R.ANN_REF_NAME: "v1", R.ANN_IMAGE_NAME: IMAGE_NAME})
    with open(os.path.join(path, "index.json"), "wb") as f:
        f.write(R.canonical_json({"schemaVersion": 2, "mediaType": R.OCI_INDEX, "manifests": [entry]}))
    return desc


# ---------------------------------------------------------------------------
# Generation, once per process
# ---------------------------------------------------------------------------

class Vectors:
    """The generated vectors: ``out`` (the generator's output directory), ``cases`` (the
    rows of cases.json), ``subject`` (the signed manifest's descriptor)."""

    def __init__(self, out, subject):
        self.out = out
        self.subject = subject
        with open(os.path.join(out, "cases.json")) as f:
            self.doc = json.load(f)
        self.cases = self.doc["cases"]
        if self.doc["subject"]["digest"] != subject["digest"]:
            raise RuntimeError(f"cases.json signs {self.doc['subject']['digest']}, not {subject['digest']}")

    def path(self, *rel):
        return os.path.join(self.out, *rel)

    @property
    def trusted_root(self):
        return self.path("trust", "trusted_root.json")

    @property
    def all_good(self):
        return self.path(self.doc.get("allGoodLayout") or "layouts/all-good")

    def layout(self, case):
        return self.path(case["layout"])

    def flags(self, policy):
        """cosign's flags for a case's ``policy`` (README: identity, issuer, key, requireTlog,
        signedTimestamps), always with ``--trusted-root``."""
        known = {"identity", "issuer", "key", "requireTlog", "signedTimestamps"}
        unknown = set(policy) - known
        if unknown:
            raise ValueError(f"policy fields this suite does not know: {sorted(unknown)}")
        args = ["--trusted-root", self.trusted_root]
        if policy.get("identity"):
            args += ["--certificate-identity", policy["identity"]]
        if policy.get("issuer"):
            args += ["--certificate-oidc-issuer", policy["issuer"]]
        if policy.get("key"):
            args += ["--cosign-key", self.path(policy["key"])]
        if policy.get("requireTlog") is False:
            args.append("--insecure-ignore-tlog")
        if policy.get("signedTimestamps"):
            args.append("--use-signed-timestamps")
        return args

    def keyless_policy(self):
        """The policy of the first passing keyless case (identity + issuer)."""
        for c in self.cases:
            p = c["policy"]
            if c["expect"] == "pass" and p.get("identity") and p.get("issuer") and set(p) == {"identity", "issuer"}:
                return dict(p)
        raise RuntimeError("cases.json has no passing keyless case")


_lock = threading.Lock()
_result = None  # Vectors, or the skip reason (str)


def _writable_copy(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("node_modules", "selftest-out"))
    for dirpath, dirs, files in os.walk(dst):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            os.chmod(p, os.stat(p).st_mode | stat.S_IWUSR)
    os.chmod(dst, os.stat(dst).st_mode | stat.S_IWUSR)


def _generate():
    reason = _tool_reason()
    if reason:
        return reason
    tmp = tempfile.mkdtemp(prefix="ferry-e2e-sigstore-vectors-")
    atexit.register(shutil.rmtree, tmp, True)
    gen = os.path.join(tmp, "gen")
    _writable_copy(find_vectors(), gen)
    env = R.child_env({"npm_config_audit": "false", "npm_config_fund": "false",
                       "npm_config_update_notifier": "false"})
    try:
        proc = subprocess.run(["npm", "ci", "--offline", "--no-audit", "--no-fund"], cwd=gen,
                              capture_output=True, text=True, timeout=300, env=env)
    except subprocess.TimeoutExpired:
        return "npm ci --offline in a copy of ../shared/sigstore-vectors did not finish in 300 s"
    if proc.returncode != 0:
        lines = [l for l in proc.stderr.splitlines() if l.strip() and "complete log" not in l]
        why = " / ".join(lines[:2]) or f"exit {proc.returncode}"
        return f"npm ci --offline failed for ../shared/sigstore-vectors (is the npm cache filled?): {why}"
    layout = os.path.join(tmp, "layout")
    subject = image_layout(layout)
    out = os.path.join(tmp, "out")
    proc = subprocess.run(["node", "gen.mjs", "--out", out, "--layout", layout, "--time", SIGNING_TIME],
                          cwd=gen, capture_output=True, text=True, timeout=300, env=env)
    if proc.returncode != 0:
        # The generator ran but disagrees with itself: a broken vector set, not a skip.
        raise RuntimeError(f"node gen.mjs failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return Vectors(out, subject)


def vectors():
    """The vectors (generated on first use), or a str saying why they cannot be made."""
    global _result
    with _lock:
        if _result is None:
            _result = _generate()
        return _result


def skip_reason():
    v = vectors()
    return v if isinstance(v, str) else None
