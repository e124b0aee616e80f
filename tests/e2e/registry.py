"""End-to-end test library for ferry (Python 3 stdlib only).

- ``Registry``: a throwaway CNCF distribution (``docker-registry``) on 127.0.0.1,
  with its own config and storage, plus a minimal OCI distribution client on
  urllib (independent of ferry).
- Referrers: distribution 2.8 has no referrers API, so referrers live in the
  tag-schema fallback index (``sha256-<hex>`` tag), written here the way
  oras/notation write it (GET, merge, dedupe by digest, PUT).
  Reference: distribution-spec v1.1 "Referrers Tag Schema".
- Deterministic artifact builders (``push_image``, ``push_index``,
  ``push_referrer``, ``push_signature``, ``push_sbom``).
- ``graph_of``: a canonical, registry- and repo-independent description of what
  is reachable from a repository's tags, used to compare source and target.
- ``read_bundle``: an independent reader of ferry bundles (dir, .tar, .tar.zst)
  that records tar entry order.
- ``ferry_binary`` / ``run_ferry``.
- TLS and Basic auth: ``make_test_pki`` (throwaway CA + server cert via the
  ``openssl`` CLI), ``make_htpasswd`` (bcrypt, ``htpasswd`` from apache2-utils);
  ``Registry(tls=..., htpasswd=..., credentials=...)`` serves https and/or
  requires auth, and its client speaks https (CA context) and Basic auth.
- ``LayoutBuilder``: writes OCI layouts the way other tools do (oras-style
  untagged referrers, regclient-style ``sha256-<hex>`` tagged referrer indexes),
  usable with the builders above in place of a registry; ``tar_layout``.
"""

import atexit
import base64
import collections
import hashlib
import io
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
REGISTRY_BIN = os.environ.get("DOCKER_REGISTRY", "docker-registry")

# Media types
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ", ".join(MANIFEST_TYPES)

EMPTY_JSON = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

NOTATION_SIGNATURE = "application/vnd.cncf.notary.signature"
NOTATION_JWS = "application/jose+json"
NOTATION_THUMBPRINT = "io.cncf.notary.x509chain.thumbprint#S256"
SPDX = "application/spdx+json"

# Annotations a ferry bundle puts on its roots (design §3).
ANN_IMAGE_NAME = "io.containerd.image.name"
ANN_REF_NAME = "org.opencontainers.image.ref.name"

# Environment for child processes: loopback must never go through a proxy.
_NO_PROXY = "127.0.0.1,localhost,::1"


def child_env(extra=None):
    """os.environ plus loopback in NO_PROXY, plus ``extra`` (a value of None removes
    the variable)."""
    env = dict(os.environ)
    for k in ("NO_PROXY", "no_proxy"):
        env[k] = ",".join(x for x in (env.get(k), _NO_PROXY) if x)
    if extra:
        for k, v in extra.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
    return env


def sha256_digest(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode()


def fallback_tag(digest):
    """The referrers tag-schema tag for a subject digest: ``sha256-<hex>``."""
    alg, _, hexpart = digest.partition(":")
    return f"{alg}-{hexpart}"


def is_fallback_tag(tag):
    return tag.startswith("sha256-") and len(tag) == 7 + 64


def seeded_bytes(seed, size):
    """Random-looking but deterministic bytes."""
    return random.Random(seed).randbytes(size)


def _die_with_parent():
    """preexec_fn: the registry gets SIGTERM when the test process dies, even by SIGKILL
    (e.g. a meson test timeout), so no registry outlives its test. Linux only."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except Exception:
        pass


def _exit_on_sigterm():
    """Turn SIGTERM into SystemExit so context managers and atexit stop registries."""
    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    except ValueError:  # not the main thread
        pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RegistryError(Exception):
    def __init__(self, method, url, status, body):
        self.method, self.url, self.status, self.body = method, url, status, body
        super().__init__(f"{method} {url}: HTTP {status}: {body[:500]!r}")


# ---------------------------------------------------------------------------
# Registry process + client
# ---------------------------------------------------------------------------

class Registry:
    """A docker-registry (CNCF distribution 2.8) on 127.0.0.1:<free port>.

    Use as a context manager. ``.host`` is "127.0.0.1:PORT", ``.storage`` the
    filesystem driver's root directory (``docker/registry/v2/{blobs,repositories}``
    below it).

    Optional: ``tls`` (a ``TestPKI``: the registry serves https with its server
    cert, the client trusts its CA), ``htpasswd`` (path of a bcrypt htpasswd file:
    the registry requires Basic auth), ``credentials`` ((user, password) the client
    sends as Basic auth; pass ``anonymous=True`` to ``request`` to omit them)."""

    def __init__(self, name="registry", startup_timeout=20.0, tls=None, htpasswd=None,
                 credentials=None):
        self.name = name
        self.startup_timeout = startup_timeout
        self.proc = None
        self.tmpdir = None
        self.port = None
        self.host = None
        self._stderr = None
        self.tls = tls
        self.htpasswd = htpasswd
        self.credentials = credentials
        handlers = [urllib.request.ProxyHandler({})]
        if tls is not None:
            handlers.append(urllib.request.HTTPSHandler(
                context=ssl.create_default_context(cafile=tls.ca)))
        self._opener = urllib.request.build_opener(*handlers)

    @property
    def scheme(self):
        return "https" if self.tls is not None else "http"

    # -- lifecycle ---------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    @property
    def storage(self):
        return os.path.join(self.tmpdir, "storage")

    @property
    def blobs_dir(self):
        return os.path.join(self.storage, "docker", "registry", "v2", "blobs")

    @property
    def repositories_dir(self):
        return os.path.join(self.storage, "docker", "registry", "v2", "repositories")

    def start(self):
        _exit_on_sigterm()
        if shutil.which(REGISTRY_BIN) is None:
            raise RuntimeError(f"{REGISTRY_BIN} not found in PATH")
        self.tmpdir = tempfile.mkdtemp(prefix=f"ferry-e2e-{self.name}-")
        os.makedirs(self.storage)
        last_err = None
        for _attempt in range(3):  # port picked by bind(0) may be taken meanwhile
            self.port = free_port()
            self.host = f"127.0.0.1:{self.port}"
            config = os.path.join(self.tmpdir, "config.yml")
            with open(config, "w") as f:
                f.write(
                    "version: 0.1\n"
                    "log:\n"
                    "  level: error\n"
                    "  accesslog:\n"
                    "    disabled: true\n"
                    "storage:\n"
                    "  filesystem:\n"
                    f"    rootdirectory: {self.storage}\n"
                    "  delete:\n"
                    "    enabled: true\n"
                    "  maintenance:\n"
                    "    uploadpurging:\n"
                    "      enabled: false\n"
                    "http:\n"
                    f"  addr: {self.host}\n"
                    "  secret: ferry-e2e-fixed-secret\n"
                    "  headers:\n"
                    "    X-Content-Type-Options: [nosniff]\n"
                )
                if self.tls is not None:
                    f.write("  tls:\n"
                            f"    certificate: {self.tls.cert}\n"
                            f"    key: {self.tls.key}\n")
                if self.htpasswd is not None:
                    f.write("auth:\n"
                            "  htpasswd:\n"
                            "    realm: ferry-e2e\n"
                            f"    path: {self.htpasswd}\n")
            self._stderr = open(os.path.join(self.tmpdir, "registry.log"), "w+b")
            self.proc = subprocess.Popen(
                [REGISTRY_BIN, "serve", config],
                stdin=subprocess.DEVNULL, stdout=self._stderr, stderr=self._stderr,
                env=child_env(), preexec_fn=_die_with_parent)
            atexit.register(self.stop)
            try:
                self._wait_ready()
                return self
            except RuntimeError as e:
                last_err = e
                self.stop(remove=False)
        self.stop()
        raise last_err

    def _log(self):
        try:
            with open(os.path.join(self.tmpdir, "registry.log"), "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def _wait_ready(self):
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{REGISTRY_BIN} exited with {self.proc.returncode} before serving "
                    f"{self.host}:\n{self._log()}")
            # With htpasswd auth and no client credentials, 401 means "serving".
            want = (200, 401) if self.htpasswd is not None and not self.credentials else (200,)
            try:
                status, _, _ = self.request("GET", "/v2/", ok=tuple(range(100, 600)), timeout=2)
                if status in want:
                    return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise RuntimeError(
            f"{REGISTRY_BIN} did not answer 200 on {self.url('/v2/')} within "
            f"{self.startup_timeout}s:\n{self._log()}")

    def stop(self, remove=True):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        try:
            atexit.unregister(self.stop)
        except Exception:
            pass
        if remove and self.tmpdir and os.path.isdir(self.tmpdir):
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    # -- HTTP --------------------------------------------------------------
    def url(self, path):
        return f"{self.scheme}://{self.host}{path}"

    def basic_auth_header(self):
        """The Authorization header value for ``credentials`` (None without)."""
        if not self.credentials:
            return None
        user, password = self.credentials
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def request(self, method, path_or_url, data=None, headers=None, ok=(200,),
                anonymous=False, timeout=60):
        """Returns (status, headers, body). Raises RegistryError if status not in ok.
        Sends Basic auth when the client has ``credentials`` unless ``anonymous``."""
        url = path_or_url if path_or_url.startswith("http") else self.url(path_or_url)
        headers = dict(headers or {})
        auth = None if anonymous else self.basic_auth_header()
        if auth and "Authorization" not in headers:
            headers["Authorization"] = auth
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self._opener.open(req, timeout=timeout) as r:
                status, hdrs, body = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, hdrs, body = e.code, e.headers, e.read()
        if status not in ok:
            raise RegistryError(method, url, status, body)
        return status, hdrs, body

    # -- blobs -------------------------------------------------------------
    def put_blob(self, repo, data):
        """Monolithic upload (POST then PUT ?digest=). Returns the digest."""
        digest = sha256_digest(data)
        if self.blob_exists(repo, digest):
            return digest
        _, hdrs, _ = self.request("POST", f"/v2/{repo}/blobs/uploads/", data=b"",
                                  headers={"Content-Length": "0"}, ok=(202,))
        loc = hdrs["Location"]
        if not loc.startswith("http"):
            loc = self.url(loc)
        sep = "&" if "?" in loc else "?"
        loc = f"{loc}{sep}digest={urllib.parse.quote(digest)}"
        self.request("PUT", loc, data=data, ok=(201,), headers={
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(data))})
        return digest

    def blob_exists(self, repo, digest):
        status, _, _ = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", ok=(200, 404))
        return status == 200

    def get_blob(self, repo, digest):
        _, _, body = self.request("GET", f"/v2/{repo}/blobs/{digest}")
        if sha256_digest(body) != digest:
            raise AssertionError(f"blob {repo}@{digest}: content digest mismatch")
        return body

    # -- manifests ---------------------------------------------------------
    def put_manifest(self, repo, ref, data, media_type):
        """PUT by tag or digest; Content-Type = media type. Returns the digest."""
        _, hdrs, _ = self.request("PUT", f"/v2/{repo}/manifests/{ref}", data=data,
                                  headers={"Content-Type": media_type}, ok=(201,))
        digest = sha256_digest(data)
        got = hdrs.get("Docker-Content-Digest")
        if got and got != digest:
            raise AssertionError(f"registry reports {got} for manifest {digest}")
        return digest

    def get_manifest(self, repo, ref):
        """Returns (bytes, media_type, digest)."""
        _, hdrs, body = self.request("GET", f"/v2/{repo}/manifests/{ref}",
                                     headers={"Accept": ACCEPT})
        digest = sha256_digest(body)
        if ref.startswith("sha256:") and ref != digest:
            raise AssertionError(f"manifest {repo}@{ref}: content digest is {digest}")
        ctype = hdrs.get("Content-Type", "").split(";")[0].strip()
        return body, ctype, digest

    def try_get_manifest(self, repo, ref):
        """Like get_manifest, but None on 404."""
        try:
            return self.get_manifest(repo, ref)
        except RegistryError as e:
            if e.status == 404:
                return None
            raise

    def head_manifest(self, repo, ref):
        """Returns {'digest','mediaType','size'} or None on 404."""
        status, hdrs, _ = self.request("HEAD", f"/v2/{repo}/manifests/{ref}",
                                       headers={"Accept": ACCEPT}, ok=(200, 404))
        if status == 404:
            return None
        return {"digest": hdrs.get("Docker-Content-Digest"),
                "mediaType": hdrs.get("Content-Type", "").split(";")[0].strip(),
                "size": int(hdrs.get("Content-Length", "0"))}

    def manifest_exists(self, repo, digest):
        return self.head_manifest(repo, digest) is not None

    def delete_manifest(self, repo, digest):
        self.request("DELETE", f"/v2/{repo}/manifests/{digest}", ok=(202,))

    def _paginate(self, path, key):
        """Follows RFC 5988 ``Link: <...>; rel="next"``; None on 404."""
        items, url = [], path
        while url:
            status, hdrs, body = self.request("GET", url, ok=(200, 404))
            if status == 404:
                return None
            items.extend(json.loads(body).get(key) or [])
            link = hdrs.get("Link", "")
            url = None
            if 'rel="next"' in link:
                url = link[link.index("<") + 1:link.index(">")]
        return items

    def list_tags(self, repo):
        return sorted(self._paginate(f"/v2/{repo}/tags/list?n=1000", "tags") or [])

    def catalog(self):
        return sorted(self._paginate("/v2/_catalog?n=1000", "repositories") or [])

    # -- referrers (tag-schema fallback) -----------------------------------
    def referrers_api_status(self, repo, digest):
        """HTTP status of GET /v2/<repo>/referrers/<digest> (404 on distribution 2.8)."""
        status, _, _ = self.request("GET", f"/v2/{repo}/referrers/{digest}",
                                    ok=tuple(range(200, 600)))
        return status

    def referrers(self, repo, subject_digest):
        """The descriptors in the fallback index ``sha256-<hex>`` ([] if none)."""
        got = self.try_get_manifest(repo, fallback_tag(subject_digest))
        if got is None:
            return []
        body, ctype, _ = got
        doc = json.loads(body)
        if doc.get("mediaType", ctype) not in INDEX_TYPES:
            return []
        return list(doc.get("manifests") or [])

    def add_referrer(self, repo, subject_digest, descriptor):
        """GET the fallback index, merge (dedupe by digest), PUT it back."""
        current = self.referrers(repo, subject_digest)
        merged = [d for d in current if d.get("digest") != descriptor["digest"]]
        merged.append(descriptor)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": merged}
        return self.put_manifest(repo, fallback_tag(subject_digest),
                                 canonical_json(index), OCI_INDEX)


# ---------------------------------------------------------------------------
# Artifact builders (deterministic)
# ---------------------------------------------------------------------------

def descriptor(media_type, data, **extra):
    d = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    d.update({k: v for k, v in extra.items() if v is not None})
    return d


def parse_platform(platform):
    if platform is None or isinstance(platform, dict):
        return platform
    parts = platform.split("/")
    p = {"architecture": parts[1], "os": parts[0]}
    if len(parts) > 2:
        p["variant"] = parts[2]
    return p


def push_image(reg, repo, tag, layers, platform=None):
    """OCI image manifest with a config and gzip-typed layers (any bytes).

    ``tag`` None pushes by digest. Returns the manifest descriptor, with
    ``platform`` if given (ready for an index)."""
    plat = parse_platform(platform) or {"architecture": "amd64", "os": "linux"}
    config = {"architecture": plat["architecture"], "os": plat["os"],
              "rootfs": {"type": "layers",
                         "diff_ids": [sha256_digest(l) for l in layers]},
              "config": {}}
    if "variant" in plat:
        config["variant"] = plat["variant"]
    config_bytes = canonical_json(config)
    reg.put_blob(repo, config_bytes)
    layer_descs = []
    for l in layers:
        reg.put_blob(repo, l)
        layer_descs.append(descriptor(OCI_LAYER_GZIP, l))
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, config_bytes),
                "layers": layer_descs}
    data = canonical_json(manifest)
    reg.put_manifest(repo, tag or sha256_digest(data), data, OCI_MANIFEST)
    return descriptor(OCI_MANIFEST, data, platform=parse_platform(platform))


def push_index(reg, repo, tag, children, annotations=None):
    """OCI image index over already-pushed children (descriptors with platform)."""
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(children)}
    if annotations:
        index["annotations"] = annotations
    data = canonical_json(index)
    reg.put_manifest(repo, tag or sha256_digest(data), data, OCI_INDEX)
    return descriptor(OCI_INDEX, data)


def subject_of(desc):
    return {"mediaType": desc["mediaType"], "digest": desc["digest"], "size": desc["size"]}


def push_referrer(reg, repo, subject_desc, artifact_type, payload, layer_media_type,
                  annotations=None, update_fallback=True):
    """OCI 1.1 image manifest with artifactType, the empty config, one layer and
    ``subject``; pushed by digest and added to the subject's fallback index with
    artifactType and annotations on the descriptor (as oras/notation do).
    Returns the referrer's descriptor (as listed in the fallback index)."""
    reg.put_blob(repo, EMPTY_JSON)
    reg.put_blob(repo, payload)
    manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "artifactType": artifact_type,
                "config": {"mediaType": OCI_EMPTY, "digest": EMPTY_DIGEST, "size": 2},
                "layers": [descriptor(layer_media_type, payload)],
                "subject": subject_of(subject_desc)}
    if annotations:
        manifest["annotations"] = dict(annotations)
    data = canonical_json(manifest)
    digest = reg.put_manifest(repo, sha256_digest(data), data, OCI_MANIFEST)
    desc = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(data),
            "artifactType": artifact_type}
    if annotations:
        desc["annotations"] = dict(annotations)
    if update_fallback:
        reg.add_referrer(repo, subject_desc["digest"], desc)
    return desc


def _b64url(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def push_signature(reg, repo, subject_desc, seed, update_fallback=True):
    """A Notation-shaped JWS signature (not cryptographically valid)."""
    payload = canonical_json({"targetArtifact": subject_of(subject_desc)})
    protected = canonical_json({"alg": "PS256", "cty": "application/vnd.cncf.notary.payload.v1+json",
                                "io.cncf.notary.signingScheme": "notary.x509",
                                "io.cncf.notary.signingTime": "2024-01-01T00:00:00Z"})
    envelope = canonical_json({
        "payload": _b64url(payload), "protected": _b64url(protected),
        "header": {"x5c": [_b64url(seeded_bytes(seed + "-cert", 600))]},
        "signature": _b64url(seeded_bytes(seed + "-sig", 256))})
    thumb = hashlib.sha256(seed.encode()).hexdigest()
    ann = {NOTATION_THUMBPRINT: json.dumps([thumb]),
           "org.opencontainers.image.created": "2024-01-01T00:00:00Z"}
    return push_referrer(reg, repo, subject_desc, NOTATION_SIGNATURE, envelope,
                         NOTATION_JWS, ann, update_fallback=update_fallback)


def push_sbom(reg, repo, subject_desc, name):
    doc = canonical_json({"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0",
                          "SPDXID": "SPDXRef-DOCUMENT", "name": name,
                          "packages": [{"name": name, "SPDXID": "SPDXRef-1",
                                        "versionInfo": "1.0"}]})
    ann = {"org.opencontainers.image.created": "2024-01-01T00:00:00Z",
           "org.example.sbom.name": name}
    return push_referrer(reg, repo, subject_desc, SPDX, doc, SPDX, ann)


# ---------------------------------------------------------------------------
# Graph description
# ---------------------------------------------------------------------------

def graph_of(reg, repo, ref=None):
    """Canonical description of what is reachable in ``repo``.

    Starting points: ``ref`` (tag or digest) if given, else every tag except
    ``sha256-<hex>`` fallback tags. Follows index children and, recursively,
    referrers listed in fallback indexes. Returns a JSON-able dict:

      tags:      {tag: digest}                 (only tags, never fallback tags)
      manifests: {digest: mediaType}           every reachable manifest/index
      children:  {index digest: [child digests in order]}
      referrers: {subject digest: [{digest, mediaType, size, artifactType, annotations}]}
                 (the fallback-index descriptors, sorted by digest; index order ignored)
      blobs:     sorted [config/layer digests]
      missing:   sorted ["blob <d>" / "manifest <d>" not present in the registry]

    Contains no repository or host names, so graphs of a source repo and of its
    mirror under another name compare equal."""
    tags = {}
    if ref is None:
        starts = [t for t in reg.list_tags(repo) if not is_fallback_tag(t)]
    else:
        starts = [ref]
    todo = []
    for t in starts:
        h = reg.head_manifest(repo, t)
        if h is None:
            raise AssertionError(f"{reg.host}/{repo}:{t} does not resolve")
        if not t.startswith("sha256:"):
            tags[t] = h["digest"]
        todo.append(h["digest"])
    manifests, children, referrers, blobs, missing = {}, {}, {}, set(), set()
    while todo:
        d = todo.pop()
        if d in manifests:
            continue
        got = reg.try_get_manifest(repo, d)
        if got is None:
            missing.add(f"manifest {d}")
            manifests[d] = None
            continue
        body, ctype, _ = got
        doc = json.loads(body)
        mt = doc.get("mediaType") or ctype
        manifests[d] = mt
        if mt in INDEX_TYPES:
            children[d] = [c["digest"] for c in doc.get("manifests", [])]
            todo.extend(children[d])
        else:
            for b in [doc.get("config")] + list(doc.get("layers") or []):
                if b and b.get("digest"):
                    blobs.add(b["digest"])
        refs = reg.referrers(repo, d)
        if refs:
            referrers[d] = sorted(
                ({"digest": r["digest"], "mediaType": r.get("mediaType"), "size": r.get("size"),
                  "artifactType": r.get("artifactType"),
                  "annotations": r.get("annotations") or {}} for r in refs),
                key=lambda r: r["digest"])
            todo.extend(r["digest"] for r in refs)
    for b in blobs:
        if not reg.blob_exists(repo, b):
            missing.add(f"blob {b}")
    return {"tags": dict(sorted(tags.items())),
            "manifests": dict(sorted(manifests.items())),
            "children": dict(sorted(children.items())),
            "referrers": dict(sorted(referrers.items())),
            "blobs": sorted(blobs),
            "missing": sorted(missing)}


def format_graph(g):
    """Human-readable rendering of a graph_of() result."""
    out = []
    def walk(d, depth, label):
        mt = g["manifests"].get(d) or "MISSING"
        kind = {OCI_INDEX: "index", DOCKER_LIST: "list", OCI_MANIFEST: "manifest",
                DOCKER_MANIFEST: "docker manifest"}.get(mt, mt)
        out.append("  " * depth + f"{label}{d}  [{kind}]")
        for c in g["children"].get(d, []):
            walk(c, depth + 1, "child ")
        for r in g["referrers"].get(d, []):
            walk(r["digest"], depth + 1, f"<- {r['artifactType']} ")
    for t, d in g["tags"].items():
        out.append(f"tag {t}")
        walk(d, 1, "")
    if g["missing"]:
        out.append("MISSING: " + ", ".join(g["missing"]))
    return "\n".join(out)


# ---------------------------------------------------------------------------
# Storage snapshot (to prove a push was a no-op)
# ---------------------------------------------------------------------------

def storage_snapshot(root):
    """{relative path: (mtime_ns, size, inode)} of every file under root."""
    snap = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(dirpath, f)
            st = os.lstat(p)
            snap[os.path.relpath(p, root)] = (st.st_mtime_ns, st.st_size, st.st_ino)
    return snap


def snapshot_diff(before, after):
    """Human-readable list of changes between two storage snapshots."""
    changes = []
    for k in sorted(set(before) | set(after)):
        if k not in before:
            changes.append(f"added {k}")
        elif k not in after:
            changes.append(f"removed {k}")
        elif before[k] != after[k]:
            changes.append(f"rewritten {k}")
    return changes


# ---------------------------------------------------------------------------
# Bundle reader (independent of ferry)
# ---------------------------------------------------------------------------

class Bundle:
    """An OCI image layout read fully into memory.

    ``files``: {normalized name: bytes}; ``order``: tar entry names in order
    (regular files only; None for a directory); ``entries``: every tar member
    (name, type) including directories; ``index``/``layout``: parsed JSON."""

    def __init__(self, path, files, order, entries):
        self.path, self.files, self.order, self.entries = path, files, order, entries
        self.layout = json.loads(files["oci-layout"]) if "oci-layout" in files else None
        self.index = json.loads(files["index.json"]) if "index.json" in files else None

    def blob_name(self, digest):
        alg, _, hexpart = digest.partition(":")
        return f"blobs/{alg}/{hexpart}"

    def has_blob(self, digest):
        return self.blob_name(digest) in self.files

    def blob(self, digest):
        return self.files[self.blob_name(digest)]

    def blob_digests(self):
        return sorted(n.split("/", 2)[1] + ":" + n.split("/", 2)[2]
                      for n in self.files if n.startswith("blobs/"))

    def manifest(self, digest):
        return json.loads(self.blob(digest))

    def walk(self):
        """Classifies everything reachable from index.json.

        Returns dict: manifests {digest: parsed}, configs set, layers {digest:
        owning manifest digest}, missing [descriptions], size_mismatch [...]."""
        manifests, configs, layers, missing, bad_size = {}, set(), {}, [], []
        todo = list(self.index.get("manifests", []))
        while todo:
            desc = todo.pop(0)
            d = desc["digest"]
            if not self.has_blob(d):
                missing.append(f"manifest {d}")
                continue
            if len(self.blob(d)) != desc.get("size"):
                bad_size.append(d)
            if d in manifests:
                continue
            doc = self.manifest(d)
            manifests[d] = doc
            mt = doc.get("mediaType") or desc.get("mediaType")
            if mt in INDEX_TYPES:
                todo.extend(doc.get("manifests", []))
                continue
            c = doc.get("config")
            if c:
                configs.add(c["digest"])
                if not self.has_blob(c["digest"]):
                    missing.append(f"config {c['digest']} of {d}")
                elif len(self.blob(c["digest"])) != c.get("size"):
                    bad_size.append(c["digest"])
            for l in doc.get("layers") or []:
                layers.setdefault(l["digest"], d)
                if not self.has_blob(l["digest"]):
                    missing.append(f"layer {l['digest']} of {d}")
                elif len(self.blob(l["digest"])) != l.get("size"):
                    bad_size.append(l["digest"])
        return {"manifests": manifests, "configs": configs, "layers": layers,
                "missing": missing, "size_mismatch": bad_size}

    def referrers_of(self, subject_digest):
        """Digests of manifests in the bundle whose subject is subject_digest."""
        out = []
        for n, data in self.files.items():
            if not n.startswith("blobs/"):
                continue
            try:
                doc = json.loads(data)
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(doc, dict) and isinstance(doc.get("subject"), dict) \
                    and doc["subject"].get("digest") == subject_digest:
                out.append(sha256_digest(data))
        return sorted(out)


def _normalize(name):
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def _read_tar(path, fileobj=None):
    files, order, entries = {}, [], []
    mode = "r|" if fileobj is not None else "r:"
    with tarfile.open(path if fileobj is None else None, mode, fileobj=fileobj) as tf:
        for m in tf:
            name = _normalize(m.name)
            kind = ("file" if m.isreg() else "dir" if m.isdir() else
                    "symlink" if m.issym() else "hardlink" if m.islnk() else "other")
            entries.append((m.name, kind))
            if kind != "file":
                continue
            data = tf.extractfile(m).read()
            if name in files:
                raise AssertionError(f"{path}: duplicate tar entry {m.name}")
            files[name] = data
            order.append(name)
    return files, order, entries


def read_bundle(path):
    """Reads a bundle: directory, *.tar, or *.tar.zst / *.tzst."""
    if os.path.isdir(path):
        files = {}
        for dirpath, _dirs, names in os.walk(path):
            for n in names:
                p = os.path.join(dirpath, n)
                with open(p, "rb") as f:
                    files[os.path.relpath(p, path)] = f.read()
        return Bundle(path, files, None, None)
    if path.endswith(".tar.zst") or path.endswith(".tzst"):
        proc = subprocess.Popen(["zstd", "-dc", "--", path], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            files, order, entries = _read_tar(path, fileobj=proc.stdout)
            # Drain what tarfile left unread (end-of-archive padding) so zstd does not die of SIGPIPE.
            while proc.stdout.read(1 << 16):
                pass
        finally:
            proc.stdout.close()
            err = proc.stderr.read()
            proc.stderr.close()
            rc = proc.wait()
        if rc != 0:
            raise AssertionError(f"zstd -dc {path} failed: {err.decode(errors='replace')}")
        return Bundle(path, files, order, entries)
    files, order, entries = _read_tar(path)
    return Bundle(path, files, order, entries)


# ---------------------------------------------------------------------------
# TLS and Basic auth material (generated at test time)
# ---------------------------------------------------------------------------

TestPKI = collections.namedtuple("TestPKI", "dir ca ca_key cert key")
TestPKI.__doc__ = """Paths (PEM) of a throwaway CA and a server cert/key it issued."""


def _run_tool(cmd, cwd=None):
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}{p.stdout}")
    return p.stdout


def make_test_pki(directory, ip="127.0.0.1", days=2):
    """A throwaway CA and a server certificate for IP ``ip`` (subjectAltName
    IP:<ip>, serverAuth), made with the ``openssl`` CLI in ``directory``."""
    os.makedirs(directory, exist_ok=True)
    j = lambda n: os.path.join(directory, n)
    _run_tool(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256",
               "-days", str(days), "-subj", "/CN=ferry e2e test CA",
               "-addext", "basicConstraints=critical,CA:TRUE",
               "-addext", "keyUsage=critical,keyCertSign,cRLSign",
               "-keyout", j("ca.key"), "-out", j("ca.pem")])
    _run_tool(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256",
               "-subj", f"/CN={ip}", "-keyout", j("server.key"), "-out", j("server.csr")])
    with open(j("server.ext"), "w") as f:
        f.write(f"subjectAltName=IP:{ip}\n"
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n")
    _run_tool(["openssl", "x509", "-req", "-sha256", "-days", str(days),
               "-in", j("server.csr"), "-CA", j("ca.pem"), "-CAkey", j("ca.key"),
               "-set_serial", "0x" + os.urandom(8).hex(), "-extfile", j("server.ext"),
               "-out", j("server.pem")])
    return TestPKI(directory, j("ca.pem"), j("ca.key"), j("server.pem"), j("server.key"))


def make_htpasswd(path, users):
    """A bcrypt htpasswd file (``htpasswd -Bbn``, Debian package apache2-utils) for
    {user: password}; distribution only accepts bcrypt entries."""
    if shutil.which("htpasswd") is None:
        raise RuntimeError("htpasswd not found (apt-get install apache2-utils)")
    with open(path, "w") as f:
        for user, password in users.items():
            f.write(_run_tool(["htpasswd", "-Bbn", user, password]).strip() + "\n")
    return path


def docker_auth(user, password):
    """The ``auth`` field of a docker config.json ``auths`` entry."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()


# ---------------------------------------------------------------------------
# OCI layouts written the way other tools write them
# ---------------------------------------------------------------------------

class LayoutBuilder:
    """Builds an OCI image layout directory by hand.

    Duck-types the write side of the ``Registry`` client (``put_blob``,
    ``blob_exists``, ``put_manifest``, ``add_referrer``; the repo argument is
    ignored), so ``push_image``/``push_index``/``push_referrer``/``push_signature``
    build into a layout. A manifest put by tag becomes an ``index.json`` entry
    with ``org.opencontainers.image.ref.name``; ``write_index`` writes index.json.

    ``referrers`` says how referrers (``add_referrer``) are recorded:
      "oras"      each referrer listed untagged in index.json (oras-go OCI store);
      "regclient" per subject an OCI index, tagged ``sha256-<hex>`` in index.json,
                  listing the subject's referrers (regclient's ocidir; the referrers
                  tag schema applied to a layout); the referrers are not listed;
      None        referrer manifests are blobs only.
    ``fallback_annotations``: index-level annotations put on regclient-style
    fallback indexes (to tell them apart from ones a registry client writes)."""

    def __init__(self, path, referrers="oras", fallback_annotations=None):
        if referrers not in ("oras", "regclient", None):
            raise ValueError(referrers)
        self.path = path
        self.referrers_style = referrers
        self.fallback_annotations = fallback_annotations
        self.entries = []          # index.json entries in order
        self.referrers = {}        # subject digest -> [descriptors]
        self.fallback_indexes = {}  # subject digest -> descriptor of the written index
        os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
        with open(os.path.join(path, "oci-layout"), "wb") as f:
            f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))

    def blob_path(self, digest):
        alg, _, hexpart = digest.partition(":")
        return os.path.join(self.path, "blobs", alg, hexpart)

    def blob_exists(self, _repo, digest):
        return os.path.exists(self.blob_path(digest))

    def put_blob(self, _repo, data):
        digest = sha256_digest(data)
        if not os.path.exists(self.blob_path(digest)):
            with open(self.blob_path(digest), "wb") as f:
                f.write(data)
        return digest

    def put_manifest(self, repo, ref, data, media_type):
        digest = self.put_blob(repo, data)
        if ref and not ref.startswith("sha256:"):
            self.entries.append({"mediaType": media_type, "digest": digest, "size": len(data),
                                 "annotations": {ANN_REF_NAME: ref}})
        return digest

    def add_referrer(self, _repo, subject_digest, desc):
        lst = self.referrers.setdefault(subject_digest, [])
        lst[:] = [d for d in lst if d["digest"] != desc["digest"]] + [dict(desc)]

    def write_index(self):
        """Writes index.json (and regclient-style fallback indexes); returns it parsed."""
        entries = list(self.entries)
        for subject, descs in self.referrers.items():
            if self.referrers_style == "oras":
                entries.extend(dict(d) for d in descs)
            elif self.referrers_style == "regclient":
                index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descs}
                if self.fallback_annotations:
                    index["annotations"] = dict(self.fallback_annotations)
                data = canonical_json(index)
                digest = self.put_blob(None, data)
                desc = {"mediaType": OCI_INDEX, "digest": digest, "size": len(data)}
                self.fallback_indexes[subject] = dict(desc)
                desc["annotations"] = {ANN_REF_NAME: fallback_tag(subject)}
                entries.append(desc)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        with open(os.path.join(self.path, "index.json"), "wb") as f:
            f.write(canonical_json(index))
        return index


def read_layout_index(path):
    with open(os.path.join(path, "index.json"), "rb") as f:
        return json.load(f)


def tar_layout(layout_dir, out_path):
    """Tars a layout directory with entries relative to it (``oci-layout``,
    ``index.json``, ``blobs/``, ``blobs/sha256/``, ``blobs/sha256/<hex>``...)."""
    with tarfile.open(out_path, "w", format=tarfile.PAX_FORMAT) as tf:
        for name in ("oci-layout", "index.json"):
            tf.add(os.path.join(layout_dir, name), arcname=name, recursive=False)
        for dirpath, dirs, files in os.walk(os.path.join(layout_dir, "blobs")):
            dirs.sort()
            rel = os.path.relpath(dirpath, layout_dir)
            tf.add(dirpath, arcname=rel, recursive=False)
            for n in sorted(files):
                tf.add(os.path.join(dirpath, n), arcname=f"{rel}/{n}", recursive=False)
    return out_path


# ---------------------------------------------------------------------------
# ferry binary
# ---------------------------------------------------------------------------

def ferry_binary():
    """$FERRY (absolute path) if set, else <repo>/build/ferry."""
    env = os.environ.get("FERRY")
    if env:
        return os.path.abspath(env)
    return os.path.join(REPO_ROOT, "build", "ferry")


def skip_module_unless(module_name, registry=True, programs=()):
    """The e2e suites' skip rule: without the ferry binary, ``docker-registry`` (when
    ``registry``) or one of ``programs``, a suite run as a script exits 77 (meson's "skipped")
    and an imported one raises unittest.SkipTest. Call with the module's ``__name__``."""
    reason = None
    b = ferry_binary()
    if registry and shutil.which(REGISTRY_BIN) is None:
        reason = f"{REGISTRY_BIN} not installed (apt-get install docker-registry)"
    elif not (os.path.isfile(b) and os.access(b, os.X_OK)):
        reason = f"ferry binary not found at {b} (build it, or set FERRY=/abs/path)"
    else:
        for prog in programs:
            if shutil.which(prog) is None:
                reason = f"{prog} not found"
                break
    if reason is None:
        return
    if module_name == "__main__":
        print(f"SKIP: {reason}", file=sys.stderr)
        sys.exit(77)
    raise unittest.SkipTest(reason)


def run_ferry(*args, input=None, timeout=300, cwd=None, env=None):
    """Runs ferry; returns CompletedProcess with text stdout/stderr.
    ``env``: extra environment variables (None values remove one), see child_env."""
    cmd = [ferry_binary()] + [str(a) for a in args]
    return subprocess.run(cmd, input=input, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=child_env(env))


def one_error_line(tc, proc, *needles):
    """Asserts (on unittest case ``tc``) exactly one ``ferry: error: `` line, the last non-empty
    line on stderr, naming every needle; returns it."""
    lines = [l for l in proc.stderr.splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("ferry: error: ")]
    tc.assertEqual(len(errors), 1, describe(proc))
    tc.assertEqual(lines[-1], errors[0], describe(proc))
    for n in needles:
        tc.assertIn(n, errors[0], describe(proc))
    return errors[0]


def describe(proc):
    """For assertion messages."""
    return (f"\n$ {' '.join(proc.args) if isinstance(proc.args, list) else proc.args}\n"
            f"exit {proc.returncode}\n--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}")


if __name__ == "__main__":
    # Smoke run: python3 registry.py  -> starts a registry, prints its host, waits.
    with Registry() as r:
        print(r.host, r.storage, flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
