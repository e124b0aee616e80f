// Offline CRL revocation (../shared/notation/SPEC.md §7) against a PKI generated at test
// time, then the upstream CRL material of CASES.md §11.
#include <ferry/verify/revocation.hpp>

#include <ferry/error.hpp>

#include "test_pki_crl.hpp"

#include <doctest/doctest.h>

#include "fixtures.hpp"

#include <ferry/util/file.hpp>

// Specs are built with designated initializers; GCC 12 warns about every defaulted member.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace ferry::verify;
using namespace ferry::verify::testpki;
namespace fs = std::filesystem;
using ferry::TempDir;
using fixtures::write_into;

namespace {

constexpr const char* k_leaf_cdp = "http://crl.test/leaf.crl";
constexpr const char* k_int_cdp = "http://crl.test/intermediate.crl";

/// root → intermediate (CDP) → leaf (CDP).
struct Pki {
  Issued root = issue({.cn = "Test Root", .ca = true});
  Issued intermediate = issue({.cn = "Test Intermediate",
                               .issuer = root.cert.get(),
                               .issuer_key = root.key.get(),
                               .ca = true,
                               .serial = 0x1002,
                               .cdp = {k_int_cdp}});
  Issued leaf = issue({.cn = "Test Leaf",
                       .issuer = intermediate.cert.get(),
                       .issuer_key = intermediate.key.get(),
                       .serial = 0x1000,
                       .cdp = {k_leaf_cdp}});

  Chain chain() const { return chain_of({leaf.cert.get(), intermediate.cert.get(), root.cert.get()}); }
  CrlSpec leaf_crl() const { return {.issuer = intermediate.cert.get(), .key = intermediate.key.get()}; }
  CrlSpec int_crl() const { return {.issuer = root.cert.get(), .key = root.key.get()}; }
};

const Pki& pki()
{
  static const Pki p;
  return p;
}

CrlSet set_of(std::initializer_list<CrlSpec> specs)
{
  CrlSet set;
  int i = 0;
  for (const auto& s : specs) {
    X509CrlPtr crl = make_crl(s);
    set.add_bytes(crl_der(crl.get()), "crl" + std::to_string(i++) + ".crl");
  }
  return set;
}

const TimePoint k_now = t0();

} // namespace

TEST_CASE("CrlSet: DER, PEM with several CRLs, directories and garbage")
{
  const Pki& p = pki();
  X509CrlPtr a = make_crl(p.leaf_crl());
  X509CrlPtr b = make_crl(p.int_crl());

  SUBCASE("DER bytes")
  {
    CrlSet set;
    set.add_bytes(crl_der(a.get()), "a.crl");
    REQUIRE(set.entries().size() == 1);
    CHECK(set.entries()[0].info.source == "a.crl");
    CHECK(set.entries()[0].info.issuer == "CN=Test Intermediate,O=Ferry Test,C=US");
    CHECK(set.entries()[0].info.this_update == k_now - days(1));
    CHECK(set.entries()[0].info.next_update == k_now + days(7));
  }
  SUBCASE("PEM with two CRLs")
  {
    CrlSet set;
    set.add_bytes(crl_pem(a.get()) + crl_pem(b.get()), "both.pem");
    CHECK(set.entries().size() == 2);
  }
  SUBCASE("freshness")
  {
    CrlSet set;
    set.add_bytes(crl_der(a.get()), "a.crl");
    CHECK(set.describe(k_now)[0].fresh);
    CHECK_FALSE(set.describe(k_now + days(8))[0].fresh);
    X509CrlPtr none = make_crl({.issuer = p.root.cert.get(), .key = p.root.key.get(), .next_update = std::nullopt});
    set.add_bytes(crl_der(none.get()), "none.crl");
    CHECK_FALSE(set.describe(k_now)[1].fresh);
  }
  SUBCASE("garbage names the source")
  {
    CrlSet set;
    CHECK_THROWS_WITH_AS(set.add_bytes("not a crl", "junk.crl"), doctest::Contains("junk.crl"), ferry::Error);
    CHECK_THROWS_WITH_AS(set.add_bytes("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "cert.pem"),
                         doctest::Contains("cert.pem"), ferry::Error);
    CHECK_THROWS_AS(set.add_bytes("", "empty.crl"), ferry::Error);
    CHECK(set.empty());
  }
  SUBCASE("a file and a directory")
  {
    TempDir dir;
    write_into(dir.path(), "a.crl", crl_der(a.get()));
    write_into(dir.path(), "b.pem", crl_pem(b.get()));
    CrlSet set;
    set.add_path(dir.path());
    CHECK(set.entries().size() == 2);
    CrlSet one;
    one.add_path(dir.path() / "b.pem");
    REQUIRE(one.entries().size() == 1);
    CHECK(one.entries()[0].info.source == (dir.path() / "b.pem").string());

    write_into(dir.path(), "zz-garbage.txt", "hello");
    CrlSet bad;
    CHECK_THROWS_WITH_AS(bad.add_path(dir.path()), doctest::Contains("zz-garbage.txt"), ferry::Error);
    CHECK_THROWS_AS(bad.add_path(dir.path() / "missing.crl"), ferry::Error);
  }
}

TEST_CASE("check_revocation: fresh CRLs, nothing listed → ok")
{
  const Pki& p = pki();
  CrlSet set = set_of({p.leaf_crl(), p.int_crl()});
  RevocationResult r = check_revocation(p.chain(), set, k_now, std::nullopt, RevocationPurpose::code_signing);
  CHECK(r.status == RevocationStatus::ok);
  CHECK(r.reason.empty());
  REQUIRE(r.certs.size() == 2);  // the root is never checked
  CHECK(r.certs[0].index == 0);
  CHECK(r.certs[0].subject == "CN=Test Leaf,O=Ferry Test,C=US");
  REQUIRE(r.certs[0].crl);
  CHECK(r.certs[0].crl->source == "crl0.crl");
  CHECK(r.certs[0].crl->fresh);
  CHECK(r.certs[1].crl->source == "crl1.crl");
}

TEST_CASE("check_revocation: revoked leaf and revoked intermediate")
{
  const Pki& p = pki();
  SUBCASE("leaf")
  {
    CrlSpec leaf = p.leaf_crl();
    leaf.revoked = {{.serial = 0x1000}};
    RevocationResult r = check_revocation(p.chain(), set_of({leaf, p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing);
    CHECK(r.status == RevocationStatus::revoked);
    CHECK(r.reason == "signing certificate with subject \"CN=Test Leaf,O=Ferry Test,C=US\" is revoked");
    CHECK(r.certs[0].status == RevocationStatus::revoked);
    CHECK(r.certs[1].status == RevocationStatus::ok);
    CHECK(r.certs[0].reason.find("1000") != std::string::npos);
  }
  SUBCASE("intermediate, timestamping wording")
  {
    CrlSpec in = p.int_crl();
    in.revoked = {{.serial = 0x1002, .reason = 1}};
    RevocationResult r = check_revocation(p.chain(), set_of({p.leaf_crl(), in}), k_now, std::nullopt, RevocationPurpose::timestamping);
    CHECK(r.status == RevocationStatus::revoked);
    CHECK(r.reason == "timestamping certificate with subject \"CN=Test Intermediate,O=Ferry Test,C=US\" is revoked");
  }
  SUBCASE("another serial is not this certificate")
  {
    CrlSpec leaf = p.leaf_crl();
    leaf.revoked = {{.serial = 0x1001}};
    CHECK(check_revocation(p.chain(), set_of({leaf, p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing).status ==
          RevocationStatus::ok);
  }
}

TEST_CASE("check_revocation: stale, missing, wrong key, no nextUpdate → unknown")
{
  const Pki& p = pki();
  SUBCASE("stale")
  {
    CrlSpec leaf = p.leaf_crl();
    leaf.this_update = k_now - days(30);
    leaf.next_update = k_now - days(23);
    RevocationResult r = check_revocation(p.chain(), set_of({leaf, p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing);
    CHECK(r.status == RevocationStatus::unknown);
    CHECK(r.reason ==
          "signing certificate with subject \"CN=Test Leaf,O=Ferry Test,C=US\" revocation status is unknown: CRL from CN=Test "
          "Intermediate,O=Ferry Test,C=US (crl0.crl) is stale since 2026-10-31T00:00:00Z");
    REQUIRE(r.certs[0].crl);
    CHECK_FALSE(r.certs[0].crl->fresh);
  }
  SUBCASE("exactly at nextUpdate is still fresh")
  {
    CrlSpec leaf = p.leaf_crl();
    leaf.next_update = k_now;
    CHECK(check_revocation(p.chain(), set_of({leaf, p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing).status ==
          RevocationStatus::ok);
  }
  SUBCASE("a stale CRL that lists the serial is unknown, not revoked (upstream)")
  {
    CrlSpec leaf = p.leaf_crl();
    leaf.next_update = k_now - days(1);
    leaf.revoked = {{.serial = 0x1000}};
    CHECK(check_revocation(p.chain(), set_of({leaf, p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing).status ==
          RevocationStatus::unknown);
  }
  SUBCASE("the freshest valid CRL of several is used")
  {
    CrlSpec stale = p.leaf_crl();
    stale.this_update = k_now - days(30);
    stale.next_update = k_now - days(23);
    stale.revoked = {{.serial = 0x1000}};
    CrlSpec older = p.leaf_crl();
    older.this_update = k_now - days(3);
    older.revoked = {{.serial = 0x1000, .when = k_now - days(4)}};
    CrlSpec fresh = p.leaf_crl();
    fresh.number = 2;
    // Same issuer, two fresh CRLs: the later thisUpdate decides (the older one lists the serial).
    RevocationResult r = check_revocation(p.chain(), set_of({stale, older, p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing);
    CHECK(r.status == RevocationStatus::revoked);
    r = check_revocation(p.chain(), set_of({stale, fresh, p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing);
    CHECK(r.status == RevocationStatus::ok);
    CHECK(r.certs[0].crl->source == "crl1.crl");
    r = check_revocation(p.chain(), set_of({older, fresh, p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing);
    CHECK(r.status == RevocationStatus::ok);  // fresh (thisUpdate now-1d) is newer than older (now-3d)
  }
  SUBCASE("missing")
  {
    RevocationResult r = check_revocation(p.chain(), set_of({p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing);
    CHECK(r.status == RevocationStatus::unknown);
    CHECK(r.reason ==
          "signing certificate with subject \"CN=Test Leaf,O=Ferry Test,C=US\" revocation status is unknown: no CRL for issuer "
          "\"CN=Test Intermediate,O=Ferry Test,C=US\" (distribution point http://crl.test/leaf.crl)");
    CHECK(r.certs[1].status == RevocationStatus::ok);
  }
  SUBCASE("wrong key")
  {
    EvpPkeyPtr other = make_key();
    CrlSpec leaf = p.leaf_crl();
    leaf.key = other.get();
    RevocationResult r = check_revocation(p.chain(), set_of({leaf, p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing);
    CHECK(r.status == RevocationStatus::unknown);
    CHECK(r.certs[0].reason.find("no CRL for issuer") != std::string::npos);
    CHECK(r.certs[0].reason.find("does not verify") != std::string::npos);
  }
  SUBCASE("a CRL from another issuer does not count")
  {
    RevocationResult r = check_revocation(p.chain(), set_of({p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing);
    CHECK(r.certs[0].status == RevocationStatus::unknown);
  }
  SUBCASE("no nextUpdate")
  {
    CrlSpec leaf = p.leaf_crl();
    leaf.next_update = std::nullopt;
    RevocationResult r = check_revocation(p.chain(), set_of({leaf, p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing);
    CHECK(r.status == RevocationStatus::unknown);
    CHECK(r.certs[0].reason.find("has no nextUpdate") != std::string::npos);
  }
  SUBCASE("unknown critical CRL extension")
  {
    CrlSpec leaf = p.leaf_crl();
    leaf.unknown_critical_ext = true;
    RevocationResult r = check_revocation(p.chain(), set_of({leaf, p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing);
    CHECK(r.status == RevocationStatus::unknown);
    CHECK(r.certs[0].reason.find("unsupported critical extension 1.3.6.1.4.1.99999.1") != std::string::npos);
  }
  SUBCASE("unknown critical entry extension")
  {
    CrlSpec leaf = p.leaf_crl();
    leaf.revoked = {{.serial = 0x1000, .unknown_critical_ext = true}};
    RevocationResult r = check_revocation(p.chain(), set_of({leaf, p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing);
    CHECK(r.status == RevocationStatus::unknown);
  }
  SUBCASE("revoked wins over unknown in the aggregate")
  {
    CrlSpec in = p.int_crl();
    in.revoked = {{.serial = 0x1002}};
    RevocationResult r = check_revocation(p.chain(), set_of({in}), k_now, std::nullopt, RevocationPurpose::code_signing);
    CHECK(r.certs[0].status == RevocationStatus::unknown);
    CHECK(r.status == RevocationStatus::revoked);
    CHECK(r.reason.find("Test Intermediate") != std::string::npos);
  }
}

TEST_CASE("check_revocation: certificateHold and removeFromCRL — the latest entry decides")
{
  const Pki& p = pki();
  auto status = [&](std::vector<RevokedEntry> entries) {
    CrlSpec leaf = p.leaf_crl();
    leaf.revoked = std::move(entries);
    return check_revocation(p.chain(), set_of({leaf, p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing).status;
  };
  // A CRL holds one entry per serial, so hold-then-remove spans a base and a delta CRL in
  // practice; here two CRLs from the same issuer are simulated by one CRL with one entry
  // at a time, and the hold/remove ordering is exercised through a delta CRL below.
  CHECK(status({{.serial = 0x1000, .reason = 6}}) == RevocationStatus::revoked);  // certificateHold
  CHECK(status({{.serial = 0x1000, .reason = 8}}) == RevocationStatus::ok);  // removeFromCRL

  SUBCASE("hold in the base, remove (later) in the delta → ok; the reverse → revoked")
  {
    auto with_delta = [&](long base_reason, TimePoint base_when, long delta_reason, TimePoint delta_when) {
      CrlSpec base = p.leaf_crl();
      base.number = 10;
      base.freshest_crl = "http://crl.test/delta.crl";
      base.revoked = {{.serial = 0x1000, .when = base_when, .reason = base_reason}};
      CrlSpec delta = p.leaf_crl();
      delta.number = 11;
      delta.delta_of = 10;
      delta.revoked = {{.serial = 0x1000, .when = delta_when, .reason = delta_reason}};
      return check_revocation(p.chain(), set_of({base, delta, p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing).status;
    };
    CHECK(with_delta(6, k_now - days(10), 8, k_now - days(2)) == RevocationStatus::ok);
    CHECK(with_delta(8, k_now - days(10), 6, k_now - days(2)) == RevocationStatus::revoked);
    CHECK(with_delta(6, k_now - days(2), 8, k_now - days(10)) == RevocationStatus::revoked);
  }
  SUBCASE("a permanent reason in the delta revokes")
  {
    CrlSpec base = p.leaf_crl();
    base.number = 10;
    base.freshest_crl = "http://crl.test/delta.crl";
    CrlSpec delta = p.leaf_crl();
    delta.number = 11;
    delta.delta_of = 10;
    delta.revoked = {{.serial = 0x1000, .reason = 1}};
    CHECK(check_revocation(p.chain(), set_of({base, delta, p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing).status ==
          RevocationStatus::revoked);
    // Without the delta the base refers to one that is missing → unknown.
    RevocationResult r = check_revocation(p.chain(), set_of({base, p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing);
    CHECK(r.status == RevocationStatus::unknown);
    CHECK(r.certs[0].reason.find("delta CRL") != std::string::npos);
    // A delta for another base number is not used.
    delta.delta_of = 12;
    CHECK(check_revocation(p.chain(), set_of({base, delta, p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing).status ==
          RevocationStatus::unknown);
  }
  SUBCASE("a delta alone is not a base CRL")
  {
    CrlSpec delta = p.leaf_crl();
    delta.number = 11;
    delta.delta_of = 10;
    CHECK(check_revocation(p.chain(), set_of({delta, p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing).status ==
          RevocationStatus::unknown);
  }
}

TEST_CASE("check_revocation: invalidity date honoured only with a signing time")
{
  const Pki& p = pki();
  CrlSpec leaf = p.leaf_crl();
  leaf.revoked = {{.serial = 0x1000, .when = k_now - days(5), .reason = 1, .invalidity = k_now - days(10)}};
  CrlSet set = set_of({leaf, p.int_crl()});
  CHECK(check_revocation(p.chain(), set, k_now, std::nullopt, RevocationPurpose::code_signing).status == RevocationStatus::revoked);
  CHECK(check_revocation(p.chain(), set, k_now, k_now - days(20), RevocationPurpose::code_signing).status == RevocationStatus::ok);
  CHECK(check_revocation(p.chain(), set, k_now, k_now - days(10), RevocationPurpose::code_signing).status ==
        RevocationStatus::revoked);  // not before
  CHECK(check_revocation(p.chain(), set, k_now, k_now - days(1), RevocationPurpose::code_signing).status ==
        RevocationStatus::revoked);
}

TEST_CASE("check_revocation: revocation information in the certificates")
{
  const Pki& p = pki();
  SUBCASE("OCSP only → unknown offline")
  {
    Issued leaf = issue({.cn = "OCSP Leaf",
                         .issuer = p.intermediate.cert.get(),
                         .issuer_key = p.intermediate.key.get(),
                         .ocsp = {"http://ocsp.test"}});
    Chain chain = chain_of({leaf.cert.get(), p.intermediate.cert.get(), p.root.cert.get()});
    RevocationResult r = check_revocation(chain, set_of({p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing);
    CHECK(r.status == RevocationStatus::unknown);
    CHECK(r.certs[0].reason.find("OCSP (http://ocsp.test) cannot be checked offline") != std::string::npos);
    CHECK(r.reason.find("signing certificate with subject \"CN=OCSP Leaf,O=Ferry Test,C=US\" revocation status is unknown: ") == 0);
  }
  SUBCASE("OCSP and CDP → the CRL decides (upstream falls back to CRL)")
  {
    Issued leaf = issue({.cn = "Both Leaf",
                         .issuer = p.intermediate.cert.get(),
                         .issuer_key = p.intermediate.key.get(),
                         .cdp = {k_leaf_cdp},
                         .ocsp = {"http://ocsp.test"}});
    Chain chain = chain_of({leaf.cert.get(), p.intermediate.cert.get(), p.root.cert.get()});
    CHECK(check_revocation(chain, set_of({p.leaf_crl(), p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing).status ==
          RevocationStatus::ok);
  }
  SUBCASE("neither → not revocable (ok), even without any CRL")
  {
    Issued leaf = issue({.cn = "Plain Leaf", .issuer = p.root.cert.get(), .issuer_key = p.root.key.get()});
    Chain chain = chain_of({leaf.cert.get(), p.root.cert.get()});
    RevocationResult r = check_revocation(chain, CrlSet{}, k_now, std::nullopt, RevocationPurpose::code_signing);
    CHECK(r.status == RevocationStatus::ok);
    REQUIRE(r.certs.size() == 1);
    CHECK_FALSE(r.certs[0].crl);
  }
  SUBCASE("the root is never checked")
  {
    Issued root = issue({.cn = "Root With CDP", .ca = true, .cdp = {"http://crl.test/root.crl"}, .ocsp = {"http://ocsp.test"}});
    Issued leaf = issue({.cn = "Leaf Under CDP Root", .issuer = root.cert.get(), .issuer_key = root.key.get()});
    CHECK(check_revocation(chain_of({leaf.cert.get(), root.cert.get()}), CrlSet{}, k_now, std::nullopt, RevocationPurpose::code_signing)
              .status == RevocationStatus::ok);
    RevocationResult self = check_revocation(chain_of({root.cert.get()}), CrlSet{}, k_now, std::nullopt, RevocationPurpose::code_signing);
    CHECK(self.status == RevocationStatus::ok);
    CHECK(self.certs.empty());
  }
  SUBCASE("Freshest CRL in the certificate but not in the base CRL → unknown")
  {
    Issued leaf = issue({.cn = "Delta Leaf",
                         .issuer = p.intermediate.cert.get(),
                         .issuer_key = p.intermediate.key.get(),
                         .cdp = {k_leaf_cdp},
                         .freshest_crl = "http://crl.test/delta.crl"});
    Chain chain = chain_of({leaf.cert.get(), p.intermediate.cert.get(), p.root.cert.get()});
    CHECK(check_revocation(chain, set_of({p.leaf_crl(), p.int_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing).status ==
          RevocationStatus::unknown);
  }
  SUBCASE("a broken chain is unknown, not a throw")
  {
    Chain chain = chain_of({p.leaf.cert.get(), p.root.cert.get()});
    RevocationResult r = check_revocation(chain, set_of({p.leaf_crl()}), k_now, std::nullopt, RevocationPurpose::code_signing);
    CHECK(r.status == RevocationStatus::unknown);
    CHECK(r.reason.find("invalid certificate chain") != std::string::npos);
    CHECK(check_revocation(Chain{}, CrlSet{}, k_now, std::nullopt, RevocationPurpose::code_signing).status == RevocationStatus::unknown);
  }
}

// ---- upstream material (CASES.md §11) -------------------------------------------------

namespace {

std::optional<fs::path> shared_notation()
{
  if (const char* env = std::getenv("FERRY_SHARED")) {
    fs::path p = fs::path(env) / "notation";
    if (fs::is_directory(p)) return p;
    if (fs::is_directory(env) && fs::exists(fs::path(env) / "CASES.md")) return fs::path(env);
  }
  std::error_code ec;
  for (fs::path dir = fs::current_path(ec); !dir.empty(); dir = dir.parent_path()) {
    if (fs::is_directory(dir / "shared" / "notation")) return dir / "shared" / "notation";
    if (dir == dir.parent_path()) break;
  }
  return std::nullopt;
}

std::string slurp(const fs::path& p)
{
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

} // namespace

TEST_CASE("upstream CRL material (CASES.md §11)")
{
  auto shared = shared_notation();
  if (!shared) {
    MESSAGE("shared/notation not found (set FERRY_SHARED); skipping upstream CRL cases");
    return;
  }
  const fs::path crl_dir = *shared / "notation-e2e" / "crl";
  Chain chain = parse_certificates(slurp(crl_dir / "certchain_with_crl.pem"), "certchain_with_crl.pem");
  REQUIRE(chain.size() == 3);
  // The e2e chain ends at the intermediate? It is LeafCert → IntermediateCA → RootCA.
  CHECK(subject_for_display(chain[0].get()).find("CN=LeafCert") == 0);
  const TimePoint now = parse_rfc3339("2026-11-23T00:00:00Z");
  auto check_with = [&](std::initializer_list<const char*> files) {
    CrlSet set;
    for (const char* f : files) set.add_path(crl_dir / f);
    return check_revocation(chain, set, now, std::nullopt, RevocationPurpose::code_signing);
  };

  SUBCASE("11.1a leaf.crl + intermediate.crl → ok (the intermediate's OCSP is unknown offline, CRL fallback)")
  {
    RevocationResult r = check_with({"leaf.crl", "intermediate.crl"});
    CHECK(r.status == RevocationStatus::ok);
    CHECK(r.reason.empty());
  }
  SUBCASE("11.1b leaf_revoked.crl → revoked")
  {
    RevocationResult r = check_with({"leaf_revoked.crl", "intermediate.crl"});
    CHECK(r.status == RevocationStatus::revoked);
    CHECK(r.reason.find("is revoked") != std::string::npos);
    CHECK(r.reason.find("CN=LeafCert") != std::string::npos);
  }
  SUBCASE("11.1c intermediate_revoked.crl → revoked")
  {
    RevocationResult r = check_with({"leaf.crl", "intermediate_revoked.crl"});
    CHECK(r.status == RevocationStatus::revoked);
    CHECK(r.reason.find("CN=IntermediateCA") != std::string::npos);
  }
  SUBCASE("11.1d/e expired cached CRL replaced by a fresh one: the fresh one decides")
  {
    CHECK(check_with({"leaf_expired.crl", "leaf.crl", "intermediate.crl"}).status == RevocationStatus::ok);
    CHECK(check_with({"leaf_expired.crl", "leaf_revoked.crl", "intermediate.crl"}).status == RevocationStatus::revoked);
  }
  SUBCASE("11.1f only leaf_expired.crl → unknown")
  {
    // Corpus fact: leaf_expired.crl (AKI 71:2E:45…) is signed by another key than the
    // chain's IntermediateCA (SKI 6C:29:C8…), so it is rejected before its staleness is
    // even looked at (upstream checks the signature first too: core crl.go validate). Upstream's
    // e2e never notices because its file cache discards an expired entry unread.
    RevocationResult r = check_with({"leaf_expired.crl", "intermediate.crl"});
    CHECK(r.status == RevocationStatus::unknown);
    CHECK(r.certs[0].reason.find("leaf_expired.crl) does not verify with the issuer's key") != std::string::npos);
    CHECK(r.certs[1].status == RevocationStatus::ok);
  }
  SUBCASE("no CRLs at all → unknown (both certificates have CDPs)")
  {
    RevocationResult r = check_revocation(chain, CrlSet{}, now, std::nullopt, RevocationPurpose::code_signing);
    CHECK(r.status == RevocationStatus::unknown);
    REQUIRE(r.certs.size() == 2);
    CHECK(r.certs[0].reason.find("http://localhost:10086/leaf.crl") != std::string::npos);
    CHECK(r.certs[1].reason.find("http://localhost:10086/intermediate.crl") != std::string::npos);
  }
  SUBCASE("the whole directory parses (add_path on a directory with keys and certs fails on the non-CRL files)")
  {
    CrlSet set;
    CHECK_THROWS_AS(set.add_path(crl_dir), ferry::Error);  // leaf.key, *.pem are not CRLs
    for (const char* f : {"leaf.crl", "leaf_revoked.crl", "leaf_expired.crl", "intermediate.crl", "intermediate_revoked.crl"}) {
      CrlSet one;
      CHECK_NOTHROW(one.add_path(crl_dir / f));
      REQUIRE(one.entries().size() == 1);
    }
    CrlSet exp;
    exp.add_path(crl_dir / "leaf_expired.crl");
    CHECK(format_rfc3339(*exp.entries()[0].info.next_update) == "2023-12-25T08:15:42Z");
  }

  // §11.2 notation-core-go parser fixtures: both CRLs parse (DER), both stale since
  // 2024-11-25; delta.crl carries a Delta CRL Indicator.
  const fs::path core = *shared / "notation-core-go" / "revocation-crl";
  SUBCASE("11.2 delta.crl and crlWithMultipleFreshestCRLs.crl")
  {
    for (const char* f : {"delta.crl", "crlWithMultipleFreshestCRLs.crl"}) {
      CrlSet set;
      INFO(f);
      CHECK_NOTHROW(set.add_path(core / f));
      REQUIRE(set.entries().size() == 1);
      CHECK_FALSE(set.describe(now)[0].fresh);
    }
    CrlSet d;
    d.add_path(core / "delta.crl");
    CHECK(X509_CRL_get_ext_by_NID(d.entries()[0].crl.get(), NID_delta_crl, -1) >= 0);
  }
  SUBCASE("11.2 NotationTest3 certificates: the issuing CA is absent, so revocation is unknown")
  {
    for (const char* f : {"certificateWithDeltaCRL.cer", "certificateWith2DeltaCRL.cer", "certificateWithZeroDeltaCRLURL.cer"}) {
      INFO(f);
      Chain c = parse_certificates(slurp(core / f), f);
      REQUIRE(c.size() == 1);
      // A chain of just the leaf: nothing to check (only the last certificate, never checked).
      CHECK(check_revocation(c, CrlSet{}, now, std::nullopt, RevocationPurpose::code_signing).certs.empty());
    }
  }
}
