#pragma once
/// RFC 3161 timestamp countersignatures on Notary Project signatures
/// (../shared/notation/SPEC.md §6 step 6, via OpenSSL's CMS/TS API).
#include <ferry/verify/openssl.hpp>
#include <ferry/verify/revocation.hpp>

#include <chrono>
#include <string>

namespace ferry::verify {

struct TimestampResult {
  bool ok = false;
  std::string reason;  ///< why it failed ("" when ok)
  TimePoint gen_time{};
  std::chrono::seconds accuracy{0};
  Chain tsa_chain;  ///< the TSA chain built from the token's certificates to a trusted root
  RevocationResult tsa_revocation;
};

/// Verifies `token` (a TimeStampToken: CMS SignedData with id-ct-TSTInfo, BER accepted)
/// over the primitive `signature` bytes: messageImprint == H(signature) with the token's
/// hash (SHA-256/384/512); signer identified by ESS SigningCertificateV2; the TSA chain
/// built from the token's certificates to one of `tsa_roots` at genTime with EKU
/// timeStamping and validate_timestamping_chain; every certificate of `signing_chain`
/// valid over [genTime − accuracy, genTime + accuracy]; and the TSA chain not revoked or
/// unknown per `crls` at `now` (check_revocation, timestamping purpose).
TimestampResult verify_timestamp(std::string_view token, std::string_view signature, const Chain& tsa_roots,
                                 const Chain& signing_chain, const CrlSet& crls, TimePoint now);

} // namespace ferry::verify
