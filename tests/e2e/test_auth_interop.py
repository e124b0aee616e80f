#!/usr/bin/env python3
"""End-to-end tests: registry TLS + Basic auth, layouts written by other tools, and
head-only inspect of a .tar.zst bundle.

Run: python3 tests/e2e/test_auth_interop.py [ClassName | -k pattern]
     (FERRY=/abs/path/ferry to override the binary)
Exit code 77 (meson "skipped") when docker-registry or the ferry binary is missing.
AuthTLS is skipped when `openssl` or `htpasswd` (Debian: apache2-utils) is missing;
the umoci tests when `umoci` is missing.

Classes:
  AuthTLS         docker-registry with https (throwaway CA, cert for IP 127.0.0.1) and
                  htpasswd (bcrypt) Basic auth: --ca-file, -u/--password-stdin,
                  --registry-config, $DOCKER_CONFIG, credHelpers/credsStore helpers,
                  --insecure, error lines, secrets never printed, push.
  ForeignLayouts  push of umoci, regclient-style (sha256-<hex> tagged referrer index)
                  and oras-style (untagged referrers) layouts, as directories and .tar.
  HeadOnly        inspect of a truncated .tar.zst reads only the head; push of it fails
                  and leaves no manifest of the cut image.

Contract: /work/shared/design.md §2, §3, §8. Every ferry run gets an empty $HOME and no
$DOCKER_CONFIG unless a test sets one, so the machine's docker config never leaks in.
Assumptions beyond the design are marked ASSUMPTION.
"""

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import registry as R  # noqa: E402


R.skip_module_unless(__name__)

from seed import seed_fixture  # noqa: E402
from test_roundtrip import E2E, contains_string  # noqa: E402  (bundle checks, error checks)

HAVE_UMOCI = shutil.which("umoci") is not None


def find_roots(doc):
    """roots of `ferry inspect --json`, by digest."""
    return {r.get("digest"): r for r in doc.get("roots") or []}


class Base(E2E):
    """E2E's checks without its registries: each class starts what it needs."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix=f"ferry-e2e-{cls.__name__}-")
        cls.addClassCleanup(shutil.rmtree, cls.tmp, True)
        cls.home = os.path.join(cls.tmp, "home")
        os.makedirs(cls.home)
        cls._src_graphs = {}

    def ferry(self, *args, expect=0, input=None, env=None):
        """Runs ferry with an isolated environment: empty $HOME, no $DOCKER_CONFIG
        (``env`` adds to / overrides that)."""
        full_env = {"HOME": self.home, "DOCKER_CONFIG": None}
        full_env.update(env or {})
        proc = R.run_ferry(*args, input=input, env=full_env)
        if expect is not None:
            self.assertEqual(proc.returncode, expect, R.describe(proc))
        for bad in ("Traceback", "terminate called", "Segmentation fault", "AddressSanitizer"):
            self.assertNotIn(bad, proc.stderr, R.describe(proc))
        return proc

    def ferry_json(self, *args, **kw):
        proc = self.ferry(*args, "--json", **kw)
        try:
            return json.loads(proc.stdout)
        except ValueError as e:
            self.fail(f"--json output is not one JSON document ({e}){R.describe(proc)}")


# ---------------------------------------------------------------------------
# 1. TLS + Basic auth
# ---------------------------------------------------------------------------

class AuthTLS(Base):
    """A registry with https (self-made CA) and htpasswd auth, seeded with the fixture."""

    USER = "ferry-e2e-user"
    PASSWORD = "Pw-4f9c2e-s3cret"     # distinctive: must never show up in ferry's output
    WRONG = "Wrong-8b1d7a-pw"

    @classmethod
    def setUpClass(cls):
        for tool, pkg in (("openssl", "openssl"), ("htpasswd", "apache2-utils")):
            if shutil.which(tool) is None:
                raise unittest.SkipTest(f"{tool} not installed (apt-get install {pkg})")
        super().setUpClass()
        cls.pki = R.make_test_pki(os.path.join(cls.tmp, "pki"))
        htpasswd = R.make_htpasswd(os.path.join(cls.tmp, "htpasswd"), {cls.USER: cls.PASSWORD})
        cls.src = R.Registry("auth", tls=cls.pki, htpasswd=htpasswd,
                             credentials=(cls.USER, cls.PASSWORD)).start()
        cls.addClassCleanup(cls.src.stop)
        cls.fx = seed_fixture(cls.src)
        cls._plain_bundle = None

    # -- helpers -----------------------------------------------------------
    @property
    def host(self):
        return self.src.host

    def secrets(self):
        """Strings that must never appear in ferry's output."""
        out = [self.PASSWORD, self.WRONG]
        for pw in (self.PASSWORD, self.WRONG):
            out.append(R.docker_auth(self.USER, pw))
        return out

    def assert_no_secrets(self, proc):
        for s in self.secrets():
            self.assertNotIn(s, proc.stdout, "secret printed on stdout" + R.describe(proc))
            self.assertNotIn(s, proc.stderr, "secret printed on stderr" + R.describe(proc))

    def save_app(self, out, *opts, expect=0, input=None, env=None):
        proc = self.ferry("save", *opts, self.app_ref, "-o", out,
                          expect=expect, input=input, env=env)
        self.assert_no_secrets(proc)
        return proc

    def check_app_bundle(self, out, proc=None):
        fx = self.fx
        self.assertTrue(os.path.exists(out), f"no bundle at {out}" + (R.describe(proc) if proc else ""))
        self.assert_no_partials(out)
        b = self.check_bundle(out, [(self.app_ref, "v1", fx["app"])],
                              [fx["app_sig"], fx["app_sbom"], fx["app_sbom_sig"]])
        self.assertEqual(b.referrers_of(fx["app"]), sorted([fx["app_sig"], fx["app_sbom"]]))
        self.assertEqual(b.referrers_of(fx["app_sbom"]), [fx["app_sbom_sig"]])
        for d in fx["app_layers"]:
            self.assertTrue(b.has_blob(d), f"layer {d} missing")
        return b

    def assert_failed_save(self, proc, out):
        line = self.assert_error(proc, 1, self.host)
        self.assertFalse(os.path.exists(out), f"{out} must not exist after a failed save")
        self.assert_no_partials(out)
        self.assert_no_secrets(proc)
        return line

    def write_config(self, name, doc):
        d = os.path.join(self.tmp, name)
        os.makedirs(d, exist_ok=True)
        p = os.path.join(d, "config.json")
        with open(p, "w") as f:
            json.dump(doc, f)
        return p

    def write_helper(self, name):
        """bin dir with an executable docker-credential-ferrytest that logs each call
        ("<action> <server>") to a log file and answers `get` for this registry only."""
        bindir = os.path.join(self.tmp, name, "bin")
        os.makedirs(bindir)
        log = os.path.join(self.tmp, name, "helper.log")
        script = os.path.join(bindir, "docker-credential-ferrytest")
        h = self.host
        with open(script, "w") as f:
            f.write(f"""#!/bin/sh
server=$(cat)
printf '%s %s\\n' "$1" "$server" >> '{log}'
[ "$1" = get ] || exit 1
case "$server" in
  {h}|https://{h}|https://{h}/|{h}/)
    printf '{{"ServerURL":"%s","Username":"{self.USER}","Secret":"{self.PASSWORD}"}}\\n' "$server" ;;
  *)
    echo "credentials not found in native keychain"; exit 1 ;;
esac
""")
        os.chmod(script, os.stat(script).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return bindir, log

    def helper_calls(self, log):
        if not os.path.exists(log):
            return []
        with open(log) as f:
            return [l.rstrip("\n") for l in f if l.strip()]

    def assert_helper_used(self, log):
        calls = self.helper_calls(log)
        gets = [c for c in calls if c.startswith("get ")]
        self.assertTrue(gets, f"credential helper was never asked (calls: {calls})")
        for c in gets:
            self.assertIn(self.host, c, f"helper asked for another server: {calls}")
        self.assertEqual([c for c in calls if not c.startswith("get ")], [],
                         "ferry must only `get` from a helper (never store/erase)")

    # -- the registry really is TLS + auth ----------------------------------
    def test_01_registry_requires_auth(self):
        status, hdrs, _ = self.src.request("GET", "/v2/", anonymous=True, ok=(401,))
        self.assertEqual(status, 401)
        self.assertTrue(hdrs.get("WWW-Authenticate", "").startswith("Basic"),
                        hdrs.get("WWW-Authenticate"))
        self.src.request("GET", "/v2/", ok=(200,))
        self.src.request("GET", "/v2/", ok=(401,),
                         headers={"Authorization": "Basic " + R.docker_auth(self.USER, self.WRONG)})
        self.assertEqual(self.src.scheme, "https")

    # -- credentials, every source ------------------------------------------
    def test_02_password_stdin(self):
        out = self.path("stdin.tar")
        proc = self.save_app(out, "--ca-file", self.pki.ca, "-u", self.USER, "--password-stdin",
                             input=self.PASSWORD + "\n")
        self.check_app_bundle(out, proc)

    def test_02b_password_stdin_line_endings(self):
        # As `docker login --password-stdin`: one trailing newline (LF or CRLF) is not part
        # of the password; none at all works too.
        for i, ending in enumerate(("", "\r\n")):
            with self.subTest(ending=repr(ending)):
                out = self.path(f"stdin-{i}.tar")
                proc = self.save_app(out, "--ca-file", self.pki.ca, "-u", self.USER,
                                     "--password-stdin", input=self.PASSWORD + ending)
                self.check_app_bundle(out, proc)

    def test_02c_username_and_password_stdin_go_together(self):
        # ASSUMPTION: -u without --password-stdin (no prompt in a batch tool) and
        # --password-stdin without -u are usage errors (exit 2).
        for i, (opts, inp) in enumerate(((["-u", self.USER], None),
                                         (["--password-stdin"], self.PASSWORD + "\n"))):
            with self.subTest(opts=opts):
                out = self.path(f"pair-{i}.tar")
                proc = self.save_app(out, "--ca-file", self.pki.ca, *opts, input=inp, expect=None)
                self.assert_error(proc, 2)
                self.assertFalse(os.path.exists(out))

    def test_03_registry_config_file(self):
        cfg = self.write_config("cfg-file", {"auths": {self.host: {
            "auth": R.docker_auth(self.USER, self.PASSWORD)}}})
        out = self.path("cfgfile.tar.zst")
        proc = self.save_app(out, "--ca-file", self.pki.ca, "--registry-config", cfg)
        self.check_app_bundle(out, proc)

    def test_03b_registry_config_url_key(self):
        # ASSUMPTION (design §2 "as docker"): an `auths` key written as a URL
        # ("https://host/v1/", older docker logins) matches the host.
        cfg = self.write_config("cfg-url", {"auths": {f"https://{self.host}/v1/": {
            "auth": R.docker_auth(self.USER, self.PASSWORD)}}})
        out = self.path("cfgurl.tar")
        proc = self.save_app(out, "--ca-file", self.pki.ca, "--registry-config", cfg)
        self.check_app_bundle(out, proc)

    def test_04_docker_config_env(self):
        cfg = self.write_config("dockercfg", {"auths": {self.host: {
            "auth": R.docker_auth(self.USER, self.PASSWORD)}}})
        out = self.path("envcfg-dir")
        proc = self.save_app(out, "--ca-file", self.pki.ca,
                             env={"DOCKER_CONFIG": os.path.dirname(cfg)})
        self.check_app_bundle(out, proc)

    def test_04b_home_docker_config(self):
        # Default after $DOCKER_CONFIG: ~/.docker/config.json.
        home = os.path.join(self.tmp, "otherhome")
        os.makedirs(os.path.join(home, ".docker"))
        with open(os.path.join(home, ".docker", "config.json"), "w") as f:
            json.dump({"auths": {self.host: {"auth": R.docker_auth(self.USER, self.PASSWORD)}}}, f)
        out = self.path("homecfg.tar")
        proc = self.save_app(out, "--ca-file", self.pki.ca, env={"HOME": home})
        self.check_app_bundle(out, proc)

    def test_05_credential_helper(self):
        bindir, log = self.write_helper("helper")
        cfg = self.write_config("cfg-helper", {"credHelpers": {self.host: "ferrytest"}})
        out = self.path("helper.tar")
        proc = self.save_app(out, "--ca-file", self.pki.ca, "--registry-config", cfg,
                             env={"PATH": bindir + os.pathsep + os.environ.get("PATH", "")})
        self.check_app_bundle(out, proc)
        self.assert_helper_used(log)

    def test_05b_creds_store(self):
        bindir, log = self.write_helper("store")
        cfg = self.write_config("cfg-store", {"credsStore": "ferrytest",
                                              "auths": {self.host: {}}})
        out = self.path("store.tar")
        proc = self.save_app(out, "--ca-file", self.pki.ca, "--registry-config", cfg,
                             env={"PATH": bindir + os.pathsep + os.environ.get("PATH", "")})
        self.check_app_bundle(out, proc)
        self.assert_helper_used(log)

    # -- failures -----------------------------------------------------------
    def test_06_wrong_password(self):
        out = self.path("wrong.tar")
        proc = self.save_app(out, "--ca-file", self.pki.ca, "-u", self.USER, "--password-stdin",
                             input=self.WRONG + "\n", expect=None)
        line = self.assert_failed_save(proc, out)
        # Names the registry and the credential source tried (issue 7).
        self.assertIn("authentication failed (credentials from", line, R.describe(proc))

    def test_06b_wrong_password_in_config(self):
        cfg = self.write_config("cfg-wrong", {"auths": {self.host: {
            "auth": R.docker_auth(self.USER, self.WRONG)}}})
        out = self.path("wrongcfg.tar")
        proc = self.save_app(out, "--ca-file", self.pki.ca, "--registry-config", cfg, expect=None)
        line = self.assert_failed_save(proc, out)
        self.assertIn(cfg, line, "the failing credential source (the config file) is named" + R.describe(proc))

    def test_06c_anonymous(self):
        out = self.path("anon.tar")
        proc = self.save_app(out, "--ca-file", self.pki.ca, expect=None)
        line = self.assert_failed_save(proc, out)
        self.assertIn("no credentials", line, R.describe(proc))

    def test_07_untrusted_certificate(self):
        out = self.path("noca.tar")
        proc = self.save_app(out, "-u", self.USER, "--password-stdin",
                             input=self.PASSWORD + "\n", expect=None)
        line = self.assert_failed_save(proc, out)
        # The error says what to do (issue 7): trust the registry's CA with --ca-file.
        self.assertIn("--ca-file", line, R.describe(proc))
        self.assertIn(self.host, line, R.describe(proc))

    def test_07b_plain_http_against_tls(self):
        # --plain-http against an https registry: a clean error naming the host.
        out = self.path("plain.tar")
        proc = self.save_app(out, "--plain-http", "-u", self.USER, "--password-stdin",
                             input=self.PASSWORD + "\n", expect=None)
        self.assert_failed_save(proc, out)

    def test_07c_https_against_plain_http(self):
        # No --plain-http against a plain-HTTP registry: the error suggests it.
        plain = R.Registry("plain").start()
        self.addCleanup(plain.stop)
        out = self.path("tls-to-plain.tar")
        proc = self.ferry("save", f"{plain.host}/demo/app:v1", "-o", out, expect=None)
        line = self.assert_error(proc, 1, plain.host, "--plain-http")
        self.assertFalse(os.path.exists(out))

    def test_08_insecure(self):
        out = self.path("insecure.tar")
        proc = self.save_app(out, "--insecure", "-u", self.USER, "--password-stdin",
                             input=self.PASSWORD + "\n")
        self.check_app_bundle(out, proc)

    # -- push ---------------------------------------------------------------
    def plain_source(self):
        """A plain-http registry seeded with the fixture, and a bundle saved from it."""
        cls = type(self)
        if cls._plain_bundle is None:
            plain = R.Registry("plainsrc").start()
            cls.addClassCleanup(plain.stop)
            seed_fixture(plain)
            out = self.path("from-plain.tar")
            self.ferry("save", "--plain-http", f"{plain.host}/demo/app:v1",
                       f"{plain.host}/demo/multi:v2", "-o", out)
            cls._plain_bundle = (plain, out)
        return cls._plain_bundle

    def test_09_push_with_credentials(self):
        plain, bundle = self.plain_source()
        proc = self.ferry("push", "--ca-file", self.pki.ca, "-u", self.USER, "--password-stdin",
                          bundle, self.host + "/pushed", input=self.PASSWORD + "\n")
        self.assert_no_secrets(proc)
        for repo in ("demo/app", "demo/multi"):
            want = R.graph_of(plain, repo)
            got = R.graph_of(self.src, "pushed/" + repo)
            self.assertEqual(got["missing"], [])
            self.assertEqual(got, want, f"graph of pushed/{repo} differs:\nwant:\n"
                                        f"{R.format_graph(want)}\ngot:\n{R.format_graph(got)}")

    def test_09b_push_with_helper(self):
        plain, bundle = self.plain_source()
        bindir, log = self.write_helper("pushhelper")
        cfg = self.write_config("cfg-pushhelper", {"credHelpers": {self.host: "ferrytest"}})
        proc = self.ferry("push", "--ca-file", self.pki.ca, "--registry-config", cfg,
                          bundle, self.host + "/viahelper",
                          env={"PATH": bindir + os.pathsep + os.environ.get("PATH", "")})
        self.assert_no_secrets(proc)
        self.assertEqual(R.graph_of(self.src, "viahelper/demo/app"), R.graph_of(plain, "demo/app"))
        self.assert_helper_used(log)

    def test_10_push_wrong_password_pushes_nothing(self):
        _plain, bundle = self.plain_source()
        before = self.src.catalog()
        proc = self.ferry("push", "--ca-file", self.pki.ca, "-u", self.USER, "--password-stdin",
                          bundle, self.host + "/denied", input=self.WRONG + "\n", expect=None)
        self.assert_error(proc, 1, self.host)
        self.assert_no_secrets(proc)
        self.assertEqual([r for r in self.src.catalog() if r.startswith("denied/")], [])
        self.assertEqual(sorted(set(self.src.catalog()) - set(before)), [])


# ---------------------------------------------------------------------------
# 2. Layouts written by other tools
# ---------------------------------------------------------------------------

class ForeignLayouts(Base):
    """umoci, regclient-style and oras-style layouts pushed to TARGET itself (design §2:
    a root with no known source repository lands at TARGET)."""

    # Index-level annotation on the hand-made regclient fallback index: if ferry pushed
    # that index (rather than writing its own), its digest would show up in the target.
    RC_MARK = {"org.example.written-by": "ferry-e2e regclient-style layout"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dst = R.Registry("dst").start()
        cls.addClassCleanup(cls.dst.stop)
        cls._layouts = {}

    # -- building layouts ---------------------------------------------------
    def build_signed(self, kind):
        """Image tagged v1 plus a notation signature, recorded per ``kind``
        ("regclient" or "oras"). Returns (dir, info)."""
        d = self.path(f"{kind}-layout")
        b = R.LayoutBuilder(d, referrers=kind,
                            fallback_annotations=self.RC_MARK if kind == "regclient" else None)
        layers = [R.seeded_bytes("foreign-layer-0", 48 * 1024),
                  R.seeded_bytes("foreign-layer-1", 160 * 1024)]
        img = R.push_image(b, None, "v1", layers, platform="linux/amd64")
        sig = R.push_signature(b, None, img, "foreign-sig")
        index = b.write_index()
        info = {"image": img["digest"], "sig": sig, "layers": [R.sha256_digest(l) for l in layers],
                "index": index, "fallback_index": b.fallback_indexes.get(img["digest"])}
        return d, info

    def build_umoci(self):
        d = self.path("umoci-layout")

        def umoci(*args):
            p = subprocess.run(["umoci", *args], capture_output=True, text=True, timeout=120,
                               env=R.child_env())
            self.assertEqual(p.returncode, 0, f"umoci {' '.join(args)}: {p.stderr}")
        umoci("init", "--layout", d)
        umoci("new", "--image", f"{d}:v1")
        umoci("config", "--image", f"{d}:v1", "--config.cmd=/bin/true")
        payload = self.path("umoci-hello.txt")
        with open(payload, "w") as f:
            f.write("hello from umoci\n")
        umoci("insert", "--image", f"{d}:v1", payload, "/hello.txt")
        index = R.read_layout_index(d)
        tagged = [m for m in index["manifests"]
                  if (m.get("annotations") or {}).get(R.ANN_REF_NAME) == "v1"]
        self.assertEqual(len(tagged), 1, index)
        digest = tagged[0]["digest"]
        with open(os.path.join(d, "blobs", "sha256", digest.split(":")[1]), "rb") as f:
            manifest_bytes = f.read()
        self.assertEqual(R.sha256_digest(manifest_bytes), digest)
        manifest = json.loads(manifest_bytes)
        blobs = [manifest["config"]["digest"]] + [l["digest"] for l in manifest["layers"]]
        self.assertTrue(manifest["layers"], "umoci insert should have added a layer")
        return d, {"image": digest, "blobs": blobs, "index": index}

    def layout(self, kind, fmt):
        """(path, info) of a layout of ``kind`` as "dir" or "tar" (built once)."""
        key = (kind, fmt)
        if key not in self._layouts:
            if fmt == "tar":
                d, info = self.layout(kind, "dir")
                out = R.tar_layout(d, self.path(f"{kind}.tar"))
                self._layouts[key] = (out, info)
            elif kind == "umoci":
                self._layouts[key] = self.build_umoci()
            else:
                self._layouts[key] = self.build_signed(kind)
        return self._layouts[key]

    def push(self, bundle, repo):
        return self.ferry("push", "--plain-http", bundle, f"{self.dst.host}/{repo}")

    def expected_referrer(self, info):
        s = info["sig"]
        return {"digest": s["digest"], "mediaType": s["mediaType"], "size": s["size"],
                "artifactType": s["artifactType"], "annotations": s.get("annotations") or {}}

    def check_signed_landed(self, repo, info):
        img = info["image"]
        g = R.graph_of(self.dst, repo)
        self.assertEqual(g["missing"], [], R.format_graph(g))
        self.assertEqual(g["tags"], {"v1": img})
        self.assertEqual(g["referrers"], {img: [self.expected_referrer(info)]},
                         "the signature must be a referrer of v1 (with artifactType and "
                         "annotations on its descriptor):\n" + R.format_graph(g))
        for d in info["layers"]:
            self.assertIn(d, g["blobs"])
        self.assertEqual(self.dst.list_tags(repo), sorted(["v1", R.fallback_tag(img)]),
                         "tags: v1 plus the fallback tag ferry writes, nothing else")
        self.assertEqual(self.dst.catalog().count(repo), 1)
        self.assertEqual([r for r in self.dst.catalog() if r.startswith(repo + "/")], [],
                         "a tag-only root lands at TARGET itself")

    # -- umoci --------------------------------------------------------------
    def _umoci(self, fmt, repo):
        bundle, info = self.layout("umoci", fmt)
        self.push(bundle, repo)
        self.assertEqual(self.dst.list_tags(repo), ["v1"])
        h = self.dst.head_manifest(repo, "v1")
        self.assertEqual(h["digest"], info["image"], "v1 must keep the layout's manifest digest")
        for d in info["blobs"]:
            self.assertTrue(self.dst.blob_exists(repo, d), d)
        g = R.graph_of(self.dst, repo)
        self.assertEqual(g["missing"], [])
        self.assertEqual(g["referrers"], {})
        self.assertEqual(g["tags"], {"v1": info["image"]})

    @unittest.skipUnless(HAVE_UMOCI, "umoci not installed")
    def test_umoci_dir(self):
        self._umoci("dir", "team/umoci")

    @unittest.skipUnless(HAVE_UMOCI, "umoci not installed")
    def test_umoci_tar(self):
        self._umoci("tar", "team/umoci-tar")

    # -- regclient style ----------------------------------------------------
    def _regclient(self, fmt, repo):
        bundle, info = self.layout("regclient", fmt)
        img, sig = info["image"], info["sig"]
        # The layout is what we meant: v1 + a sha256-<hex> tagged index, the signature
        # not listed on its own.
        listed = [(m["digest"], (m.get("annotations") or {}).get(R.ANN_REF_NAME))
                  for m in info["index"]["manifests"]]
        self.assertEqual(sorted(listed), sorted([(img, "v1"), (info["fallback_index"]["digest"],
                                                               R.fallback_tag(img))]))
        self.push(bundle, repo)
        self.check_signed_landed(repo, info)
        # The fallback index in the target lists exactly the signature ...
        refs = self.dst.referrers(repo, img)
        self.assertEqual([(r["digest"], r.get("artifactType")) for r in refs],
                         [(sig["digest"], R.NOTATION_SIGNATURE)])
        # ... and is ferry's own, not the layout's index pushed as a user tag.
        body, _, fb_digest = self.dst.get_manifest(repo, R.fallback_tag(img))
        self.assertNotEqual(fb_digest, info["fallback_index"]["digest"],
                            "the layout's sha256-<hex> index was pushed as a tag")
        self.assertNotIn("annotations", json.loads(body),
                         "fallback index in the target carries the layout index's annotations")
        self.assertFalse(self.dst.manifest_exists(repo, info["fallback_index"]["digest"]),
                         "the layout's referrer-list index must not be pushed at all")

    def test_regclient_dir(self):
        self._regclient("dir", "team/rc")

    def test_regclient_tar(self):
        self._regclient("tar", "team/rc-tar")

    # -- oras style ---------------------------------------------------------
    def _oras(self, fmt, repo):
        bundle, info = self.layout("oras", fmt)
        listed = [(m["digest"], (m.get("annotations") or {}).get(R.ANN_REF_NAME))
                  for m in info["index"]["manifests"]]
        self.assertEqual(sorted(listed), sorted([(info["image"], "v1"),
                                                 (info["sig"]["digest"], None)]))
        self.push(bundle, repo)
        self.check_signed_landed(repo, info)

    def test_oras_dir(self):
        self._oras("dir", "team/oras")

    def test_oras_tar(self):
        self._oras("tar", "team/oras-tar")

    # -- inspect reads them too ----------------------------------------------
    def test_inspect_foreign(self):
        kinds = ["regclient", "oras"] + (["umoci"] if HAVE_UMOCI else [])
        for kind in kinds:
            for fmt in ("dir", "tar"):
                with self.subTest(kind=kind, fmt=fmt):
                    bundle, info = self.layout(kind, fmt)
                    doc = self.ferry_json("inspect", bundle)
                    roots = find_roots(doc)
                    self.assertEqual(list(roots), [info["image"]],
                                     f"one root (the v1 image), no fallback index: {doc}")
                    if kind != "umoci":
                        refs = [r.get("digest") for r in roots[info["image"]].get("referrers", [])]
                        self.assertEqual(refs, [info["sig"]["digest"]], doc)


# ---------------------------------------------------------------------------
# 3. Head-only inspect of a .tar.zst
# ---------------------------------------------------------------------------

class HeadOnly(Base):
    """design §3: the tar starts with oci-layout, index.json and every manifest, so
    `inspect` of a .tar.zst needs only its head; a push needs all of it."""

    BIG = 8 * 1024 * 1024

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.src = R.Registry("src").start()
        cls.addClassCleanup(cls.src.stop)
        cls.dst = R.Registry("dst").start()
        cls.addClassCleanup(cls.dst.stop)
        cls.fx = seed_fixture(cls.src)
        big = R.push_image(cls.src, "demo/big", "v1", [R.seeded_bytes("big-layer", cls.BIG)])
        cls.big = big["digest"]
        cls.big_sig = R.push_signature(cls.src, "demo/big", big, "big-sig")["digest"]
        cls._bundles = None

    @property
    def big_ref(self):
        return self.ref("demo/big", "v1")

    def bundles(self):
        """(full .tar.zst, copy truncated to 40%) — saved once."""
        cls = type(self)
        if cls._bundles is None:
            full = self.path("big.tar.zst")
            self.ferry("save", "--plain-http", self.app_ref, self.multi_ref, self.big_ref,
                       "-o", full)
            size = os.path.getsize(full)
            self.assertGreater(size, self.BIG, "the random 8 MiB layer does not compress")
            cut = self.path("big-truncated.tar.zst")
            with open(full, "rb") as f, open(cut, "wb") as g:
                g.write(f.read(size * 40 // 100))
            cls._bundles = (full, cut)
        return cls._bundles

    def check_inspect(self, bundle):
        fx = self.fx
        doc = self.ferry_json("inspect", bundle)
        roots = find_roots(doc)
        self.assertEqual(sorted(roots), sorted([fx["app"], fx["multi"], self.big]), doc)
        big = roots[self.big]
        self.assertEqual(big.get("reference"), self.big_ref)
        sigs = [(r.get("digest"), r.get("artifactType")) for r in big.get("referrers", [])]
        self.assertEqual(sigs, [(self.big_sig, R.NOTATION_SIGNATURE)])
        self.assertTrue(contains_string(roots[fx["app"]], fx["app_sbom_sig"]))
        proc = self.ferry("inspect", bundle)
        out = proc.stdout + proc.stderr
        self.assertIn("demo/big", out)
        self.assertIn(self.big_sig.split(":")[1][:12], out,
                      "human inspect should show the signature (by digest)")

    def test_1_full_bundle_inspect(self):
        full, _ = self.bundles()
        self.check_inspect(full)

    def test_2_truncated_is_really_truncated(self):
        _, cut = self.bundles()
        p = subprocess.run(["zstd", "-t", "-q", "--", cut], capture_output=True)
        self.assertNotEqual(p.returncode, 0, "the truncated copy still decompresses")

    def test_3_truncated_inspect(self):
        _, cut = self.bundles()
        self.check_inspect(cut)

    def test_4_truncated_push_fails(self):
        _, cut = self.bundles()
        proc = self.ferry("push", "--plain-http", cut, self.dst.host + "/cut", expect=None)
        line = self.assert_error(proc, 1)
        self.assertTrue(os.path.basename(cut) in line or "sha256:" in line,
                        "the error should name the bundle or the blob concerned" + R.describe(proc))
        self.assertIsNone(self.dst.head_manifest("cut/demo/big", self.big),
                          "manifest of the cut image pushed from a truncated bundle")
        self.assertIsNone(self.dst.head_manifest("cut/demo/big", "v1"))
        for repo in self.dst.catalog():
            if repo.startswith("cut/"):
                self.assertIsNone(self.dst.head_manifest(repo, self.big),
                                  f"{repo} has the cut image")

    def test_5_full_bundle_push(self):
        # Control: the same bundle, untruncated, pushes fine.
        full, _ = self.bundles()
        self.ferry("push", "--plain-http", full, self.dst.host + "/whole")
        for repo in ("demo/app", "demo/multi", "demo/big"):
            self.assertEqual(R.graph_of(self.dst, "whole/" + repo), R.graph_of(self.src, repo), repo)


if __name__ == "__main__":
    unittest.main(verbosity=2)
