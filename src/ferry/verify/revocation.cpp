#include <ferry/verify/revocation.hpp>

#include <ferry/error.hpp>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <sstream>

namespace ferry::verify {

namespace {

// notation-core-go caps a downloaded CRL at 32 MiB (revocation/crl/fetcher.go); so do we
// for files.
constexpr std::uintmax_t k_max_crl_file_size = 32u << 20;

// RFC 5280 §5.3.1 CRLReason codes that do not mean "permanently revoked".
constexpr long k_reason_certificate_hold = 6;
constexpr long k_reason_remove_from_crl = 8;

struct AsnIntegerFree {
  void operator()(ASN1_INTEGER* p) const { ASN1_INTEGER_free(p); }
};
using AsnIntegerPtr = std::unique_ptr<ASN1_INTEGER, AsnIntegerFree>;
struct DistPointsFree {
  void operator()(CRL_DIST_POINTS* p) const { CRL_DIST_POINTS_free(p); }
};
using DistPointsPtr = std::unique_ptr<CRL_DIST_POINTS, DistPointsFree>;
struct StringStackFree {
  void operator()(STACK_OF(OPENSSL_STRING) * p) const { X509_email_free(p); }
};
using StringStackPtr = std::unique_ptr<STACK_OF(OPENSSL_STRING), StringStackFree>;
struct AsnEnumeratedFree {
  void operator()(ASN1_ENUMERATED* p) const { ASN1_ENUMERATED_free(p); }
};
using AsnEnumeratedPtr = std::unique_ptr<ASN1_ENUMERATED, AsnEnumeratedFree>;
struct AsnGeneralizedTimeFree {
  void operator()(ASN1_GENERALIZEDTIME* p) const { ASN1_GENERALIZEDTIME_free(p); }
};
using AsnGeneralizedTimePtr = std::unique_ptr<ASN1_GENERALIZEDTIME, AsnGeneralizedTimeFree>;

std::string name_rfc2253(const X509_NAME* name)
{
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string oid_text(const ASN1_OBJECT* obj)
{
  char buf[128];
  int n = OBJ_obj2txt(buf, sizeof buf, obj, 1);
  return n > 0 ? std::string(buf) : std::string("?");
}

std::string hex_serial(const ASN1_INTEGER* serial)
{
  BIGNUM* bn = ASN1_INTEGER_to_BN(serial, nullptr);
  if (!bn) return "?";
  char* hex = BN_bn2hex(bn);
  std::string out = hex ? hex : "?";
  OPENSSL_free(hex);
  BN_free(bn);
  return out;
}

/// The CRL's CRL number (or delta CRL indicator) extension, if present and parsable.
AsnIntegerPtr crl_integer_ext(X509_CRL* crl, int nid)
{
  int crit = 0;
  return AsnIntegerPtr(static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl, nid, &crit, nullptr)));
}

CrlInfo make_info(X509_CRL* crl, const std::string& source)
{
  CrlInfo info;
  info.source = source;
  info.issuer = name_rfc2253(X509_CRL_get_issuer(crl));
  info.this_update = to_time_point(X509_CRL_get0_lastUpdate(crl));
  if (const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl)) info.next_update = to_time_point(next);
  return info;
}

bool is_fresh(const CrlInfo& info, TimePoint now) { return info.next_update && now <= *info.next_update; }

std::string describe_crl(const CrlInfo& info) { return "CRL from " + info.issuer + " (" + info.source + ")"; }

/// URIs of the full names of the CRL distribution points (Go's cert.CRLDistributionPoints:
/// only URIs count; a CDP extension without one makes the certificate non-revocable via CRL).
/// Sets `error` when the extension is present but malformed.
std::vector<std::string> cdp_urls(X509* cert, std::string* error)
{
  std::vector<std::string> out;
  int crit = -1;
  DistPointsPtr dps(static_cast<CRL_DIST_POINTS*>(X509_get_ext_d2i(cert, NID_crl_distribution_points, &crit, nullptr)));
  if (!dps) {
    if (crit >= 0 || crit == -2) *error = "malformed CRL distribution points extension";
    ERR_clear_error();
    return out;
  }
  for (int i = 0; i < sk_DIST_POINT_num(dps.get()); ++i) {
    DIST_POINT* dp = sk_DIST_POINT_value(dps.get(), i);
    if (!dp->distpoint || dp->distpoint->type != 0) continue;
    GENERAL_NAMES* names = dp->distpoint->name.fullname;
    for (int j = 0; j < sk_GENERAL_NAME_num(names); ++j) {
      GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, j);
      if (gn->type != GEN_URI) continue;
      const ASN1_IA5STRING* uri = gn->d.uniformResourceIdentifier;
      out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                       static_cast<std::size_t>(ASN1_STRING_length(uri)));
    }
  }
  return out;
}

std::vector<std::string> ocsp_urls(X509* cert)
{
  std::vector<std::string> out;
  StringStackPtr urls(X509_get1_ocsp(cert));
  for (int i = 0; urls && i < sk_OPENSSL_STRING_num(urls.get()); ++i) out.emplace_back(sk_OPENSSL_STRING_value(urls.get(), i));
  return out;
}

std::string join(const std::vector<std::string>& items, const char* sep = ", ")
{
  std::string out;
  for (const auto& s : items) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

/// Why a CRL that verifies with the issuer's key cannot be used at `now` ("" when usable)
/// (core:revocation/internal/crl/crl.go validateCRL). thisUpdate is not checked, as upstream.
std::string crl_problem(const CrlSet::Entry& e, TimePoint now)
{
  if (!e.info.next_update) return describe_crl(e.info) + " has no nextUpdate";
  if (now > *e.info.next_update) return describe_crl(e.info) + " is stale since " + format_rfc3339(*e.info.next_update);
  const STACK_OF(X509_EXTENSION)* exts = X509_CRL_get0_extensions(e.crl.get());
  for (int i = 0; i < sk_X509_EXTENSION_num(exts); ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts, i);
    if (!X509_EXTENSION_get_critical(ext)) continue;
    int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
    // Issuing Distribution Point is accepted (its scope is ignored, as upstream); Delta CRL
    // Indicator is handled by the delta logic.
    if (nid == NID_issuing_distribution_point || nid == NID_delta_crl) continue;
    return describe_crl(e.info) + " has an unsupported critical extension " + oid_text(X509_EXTENSION_get_object(ext));
  }
  return "";
}

bool has_ext(X509_CRL* crl, int nid) { return X509_CRL_get_ext_by_NID(crl, nid, -1) >= 0; }

struct EntryLookup {
  RevocationStatus status = RevocationStatus::ok;
  std::string reason;
};

/// Looks `cert` up in the base (and delta) CRL, as core:revocation/internal/crl/crl.go
/// checkRevocation: invalidity date honoured only with a signing time; certificateHold /
/// removeFromCRL decided by the entry with the latest revocation date; any other reason (or
/// none) revokes; an unknown critical entry extension makes the status unknown.
EntryLookup lookup(X509* cert, const std::vector<const CrlSet::Entry*>& crls, std::optional<TimePoint> signing_time)
{
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
  X509_REVOKED* latest_temp = nullptr;
  long latest_temp_reason = -1;
  TimePoint latest_temp_time{};
  const CrlSet::Entry* latest_temp_crl = nullptr;
  for (const CrlSet::Entry* e : crls) {
    STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(e->crl.get());
    for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
      X509_REVOKED* rev = sk_X509_REVOKED_value(revoked, i);
      if (ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(rev), serial) != 0) continue;
      std::optional<TimePoint> invalidity;
      const STACK_OF(X509_EXTENSION)* exts = X509_REVOKED_get0_extensions(rev);
      for (int k = 0; k < sk_X509_EXTENSION_num(exts); ++k) {
        X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts, k);
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
        if (nid == NID_invalidity_date) {
          int crit = 0;
          AsnGeneralizedTimePtr t(
              static_cast<ASN1_GENERALIZEDTIME*>(X509_REVOKED_get_ext_d2i(rev, NID_invalidity_date, &crit, nullptr)));
          if (!t) {
            ERR_clear_error();
            return {RevocationStatus::unknown, describe_crl(e->info) + ": malformed invalidity date for serial " + hex_serial(serial)};
          }
          try {
            invalidity = to_time_point(t.get());
          } catch (const Error&) {
            return {RevocationStatus::unknown, describe_crl(e->info) + ": malformed invalidity date for serial " + hex_serial(serial)};
          }
        } else if (X509_EXTENSION_get_critical(ext)) {
          return {RevocationStatus::unknown, describe_crl(e->info) + ": unsupported critical extension " +
                                                 oid_text(X509_EXTENSION_get_object(ext)) + " in the entry for serial " +
                                                 hex_serial(serial)};
        }
      }
      // Upstream stops scanning this CRL here (a `break`): the certificate was not yet
      // compromised when it signed.
      if (signing_time && invalidity && *signing_time < *invalidity) break;

      long reason = -1;
      {
        int crit = 0;
        AsnEnumeratedPtr r(static_cast<ASN1_ENUMERATED*>(X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, &crit, nullptr)));
        if (r) reason = ASN1_ENUMERATED_get(r.get());
        ERR_clear_error();
      }
      TimePoint when{};
      try {
        when = to_time_point(X509_REVOKED_get0_revocationDate(rev));
      } catch (const Error&) {
      }
      if (reason == k_reason_certificate_hold || reason == k_reason_remove_from_crl) {
        if (!latest_temp || latest_temp_time < when) {
          latest_temp = rev;
          latest_temp_reason = reason;
          latest_temp_time = when;
          latest_temp_crl = e;
        }
        continue;
      }
      std::string text = describe_crl(e->info) + " lists serial " + hex_serial(serial) + " as revoked since " + format_rfc3339(when);
      if (reason >= 0) text += " (reason code " + std::to_string(reason) + ")";
      return {RevocationStatus::revoked, text};
    }
  }
  if (latest_temp && latest_temp_reason == k_reason_certificate_hold)
    return {RevocationStatus::revoked, describe_crl(latest_temp_crl->info) + " lists serial " + hex_serial(serial) +
                                           " on hold (certificateHold) since " + format_rfc3339(latest_temp_time)};
  return {};
}

/// Picks the best entry: usable ones first, then the latest thisUpdate, then the highest
/// CRL number.
const CrlSet::Entry* freshest(const std::vector<const CrlSet::Entry*>& candidates)
{
  const CrlSet::Entry* best = nullptr;
  for (const CrlSet::Entry* e : candidates) {
    if (!best || best->info.this_update < e->info.this_update) {
      best = e;
    } else if (best->info.this_update == e->info.this_update) {
      AsnIntegerPtr a = crl_integer_ext(best->crl.get(), NID_crl_number);
      AsnIntegerPtr b = crl_integer_ext(e->crl.get(), NID_crl_number);
      if (a && b && ASN1_INTEGER_cmp(a.get(), b.get()) < 0) best = e;
    }
  }
  ERR_clear_error();
  return best;
}

/// CRL check of one certificate against CRLs issued by `issuer` (SPEC §7 CRL, offline).
CertRevocation check_crl(X509* cert, X509* issuer, const std::vector<std::string>& urls, const CrlSet& crls, TimePoint now,
                         std::optional<TimePoint> signing_time)
{
  CertRevocation out;
  out.status = RevocationStatus::unknown;
  EVP_PKEY* issuer_key = X509_get0_pubkey(issuer);
  const X509_NAME* issuer_name = X509_get_subject_name(issuer);
  std::vector<const CrlSet::Entry*> bases;
  std::vector<const CrlSet::Entry*> deltas;
  std::vector<std::string> bad_signatures;
  for (const auto& e : crls.entries()) {
    if (X509_NAME_cmp(X509_CRL_get_issuer(e.crl.get()), issuer_name) != 0) continue;
    // No indirect CRLs: the CRL must be signed by the certificate's own issuer.
    if (!issuer_key || X509_CRL_verify(e.crl.get(), issuer_key) != 1) {
      ERR_clear_error();
      bad_signatures.push_back(describe_crl(e.info) + " does not verify with the issuer's key");
      continue;
    }
    (has_ext(e.crl.get(), NID_delta_crl) ? deltas : bases).push_back(&e);
  }
  if (bases.empty()) {
    out.reason = "no CRL for issuer \"" + subject_for_display(issuer) + "\" (distribution point " + join(urls) + ")";
    if (!bad_signatures.empty()) out.reason += "; " + join(bad_signatures, "; ");
    return out;
  }
  std::vector<const CrlSet::Entry*> usable;
  for (const CrlSet::Entry* e : bases)
    if (crl_problem(*e, now).empty()) usable.push_back(e);
  if (usable.empty()) {
    const CrlSet::Entry* best = freshest(bases);
    out.reason = crl_problem(*best, now);
    out.crl = best->info;
    out.crl->fresh = is_fresh(best->info, now);
    return out;
  }
  const CrlSet::Entry* base = freshest(usable);
  out.crl = base->info;
  out.crl->fresh = true;
  std::vector<const CrlSet::Entry*> selected{base};

  // Delta CRLs (RFC 5280 §5.2.4). Upstream fetches a delta only through the base CRL's
  // Freshest CRL extension; offline we take the delta from the given CRLs: same issuer,
  // verified, fresh, Delta CRL Indicator <= base CRL number < delta CRL number. A delta
  // given without such a base reference is ignored.
  if (has_ext(base->crl.get(), NID_freshest_crl)) {
    AsnIntegerPtr base_number = crl_integer_ext(base->crl.get(), NID_crl_number);
    std::vector<const CrlSet::Entry*> matching;
    for (const CrlSet::Entry* d : deltas) {
      if (!crl_problem(*d, now).empty() || !base_number) continue;
      AsnIntegerPtr indicator = crl_integer_ext(d->crl.get(), NID_delta_crl);
      AsnIntegerPtr number = crl_integer_ext(d->crl.get(), NID_crl_number);
      if (!indicator || !number) continue;
      if (ASN1_INTEGER_cmp(indicator.get(), base_number.get()) > 0) continue;
      if (ASN1_INTEGER_cmp(number.get(), base_number.get()) <= 0) continue;
      matching.push_back(d);
    }
    ERR_clear_error();
    if (matching.empty()) {
      out.reason = describe_crl(base->info) + " refers to a delta CRL (Freshest CRL) but no matching fresh delta CRL was given";
      return out;
    }
    selected.push_back(freshest(matching));
  } else if (X509_get_ext_by_NID(cert, NID_freshest_crl, -1) >= 0) {
    // core:revocation/internal/crl/crl.go: "freshest CRL from certificate extension is not supported".
    out.reason = "the certificate has a Freshest CRL extension, which is not supported without one in the base CRL";
    return out;
  }

  EntryLookup found = lookup(cert, selected, signing_time);
  out.status = found.status;
  out.reason = found.reason;
  return out;
}

} // namespace

void CrlSet::add_path(const std::filesystem::path& path)
{
  namespace fs = std::filesystem;
  auto read = [](const fs::path& file) {
    std::error_code ec;
    auto size = fs::file_size(file, ec);
    if (ec) throw Error(Errc::io, file.string() + ": " + ec.message());
    if (size > k_max_crl_file_size) throw Error(Errc::size_exceeds_limit, file.string() + ": CRL file larger than 32 MiB");
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(Errc::io, file.string() + ": cannot open");
    std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw Error(Errc::io, file.string() + ": read error");
    return data;
  };
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec) throw Error(Errc::io, path.string() + ": " + ec.message());
  if (fs::is_directory(status)) {
    std::vector<fs::path> files;
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec))
      if (it->is_regular_file()) files.push_back(it->path());
    if (ec) throw Error(Errc::io, path.string() + ": " + ec.message());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) add_bytes(read(f), f.string());
    return;
  }
  if (!fs::is_regular_file(status)) throw Error(Errc::io, path.string() + ": not a regular file or directory");
  add_bytes(read(path), path.string());
}

void CrlSet::add_bytes(std::string_view data, const std::string& source)
{
  std::vector<X509CrlPtr> parsed;
  if (data.find("-----BEGIN") != std::string_view::npos) {
    BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    for (;;) {
      X509_CRL* crl = PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr);
      if (!crl) break;
      parsed.emplace_back(crl);
    }
    ERR_clear_error();
    if (parsed.empty()) throw Error(Errc::invalid_argument, source + ": no X509 CRL in PEM data");
  } else {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(data.data());
    const unsigned char* end = p + data.size();
    while (p < end) {
      X509_CRL* crl = d2i_X509_CRL(nullptr, &p, static_cast<long>(end - p));
      if (!crl) throw Error(Errc::invalid_argument, source + ": not a PEM or DER CRL: " + openssl_error());
      parsed.emplace_back(crl);
    }
    if (parsed.empty()) throw Error(Errc::invalid_argument, source + ": empty CRL file");
  }
  std::vector<Entry> added;
  for (auto& crl : parsed) {
    CrlInfo info;
    try {
      info = make_info(crl.get(), source);
    } catch (const Error& e) {
      throw Error(Errc::invalid_argument, source + ": " + e.what());
    }
    added.push_back(Entry{std::move(crl), std::move(info)});
  }
  for (auto& e : added) m_crls.push_back(std::move(e));
}

std::vector<CrlInfo> CrlSet::describe(TimePoint now) const
{
  std::vector<CrlInfo> out;
  for (const auto& e : m_crls) {
    CrlInfo info = e.info;
    info.fresh = is_fresh(info, now);
    out.push_back(std::move(info));
  }
  return out;
}

RevocationResult check_revocation(const Chain& chain, const CrlSet& crls, TimePoint now, std::optional<TimePoint> signing_time,
                                  RevocationPurpose purpose)
{
  const char* what = purpose == RevocationPurpose::timestamping ? "timestamping" : "signing";
  RevocationResult result;
  if (chain.empty()) {
    result.status = RevocationStatus::unknown;
    result.reason = std::string(what) + " certificate chain is empty: revocation status is unknown";
    return result;
  }
  // Upstream re-validates the chain first (core:revocation/revocation.go ValidateContext);
  // callers have validated it, so only the issuer links the CRL checks rely on are checked.
  for (std::size_t i = 0; i + 1 < chain.size(); ++i) {
    X509* cert = chain[i].get();
    X509* issuer = chain[i + 1].get();
    EVP_PKEY* key = X509_get0_pubkey(issuer);
    if (X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(issuer)) != 0 || !key || X509_verify(cert, key) != 1) {
      ERR_clear_error();
      result.status = RevocationStatus::unknown;
      result.reason = std::string(what) + " certificate with subject \"" + subject_for_display(chain[0].get()) +
                      "\" revocation status is unknown: invalid certificate chain: certificate \"" + subject_for_display(cert) +
                      "\" is not issued by \"" + subject_for_display(issuer) + "\"";
      return result;
    }
  }

  // The root (last certificate) is never checked.
  for (std::size_t i = 0; i + 1 < chain.size(); ++i) {
    X509* cert = chain[i].get();
    X509* issuer = chain[i + 1].get();
    CertRevocation r;
    std::string cdp_error;
    std::vector<std::string> crl_urls = cdp_urls(cert, &cdp_error);
    std::vector<std::string> ocsp = ocsp_urls(cert);
    if (!cdp_error.empty()) {
      r.status = RevocationStatus::unknown;
      r.reason = cdp_error;
    } else if (crl_urls.empty() && ocsp.empty()) {
      r.status = RevocationStatus::ok;  // not revocable
    } else if (crl_urls.empty()) {
      // Upstream would ask the OCSP responder; offline that is impossible, and without CDPs
      // there is no CRL fallback.
      r.status = RevocationStatus::unknown;
      r.reason = "OCSP (" + join(ocsp) + ") cannot be checked offline and the certificate has no CRL distribution point";
    } else {
      // With OCSP URLs too, upstream tries OCSP first and falls back to the CRL when OCSP is
      // unknown — which it always is offline.
      r = check_crl(cert, issuer, crl_urls, crls, now, signing_time);
    }
    r.index = i;
    r.subject = subject_for_display(cert);
    result.certs.push_back(std::move(r));
  }

  // ngo:verifier/verifier.go revocationFinalResult: any revoked → revoked, else any unknown →
  // unknown; the subject named is the one closest to the leaf.
  const CertRevocation* revoked = nullptr;
  const CertRevocation* unknown = nullptr;
  for (const auto& r : result.certs) {
    if (r.status == RevocationStatus::revoked && !revoked) revoked = &r;
    if (r.status == RevocationStatus::unknown && !unknown) unknown = &r;
  }
  if (revoked) {
    result.status = RevocationStatus::revoked;
    result.reason = std::string(what) + " certificate with subject \"" + revoked->subject + "\" is revoked";
  } else if (unknown) {
    result.status = RevocationStatus::unknown;
    result.reason =
        std::string(what) + " certificate with subject \"" + unknown->subject + "\" revocation status is unknown: " + unknown->reason;
  }
  return result;
}

std::vector<std::string> crl_distribution_points(X509* cert)
{
  std::string error;
  return cdp_urls(cert, &error);
}

} // namespace ferry::verify
