#include <ferry/verify/openssl.hpp>

#include <ferry/digest.hpp>
#include <ferry/error.hpp>

#include <openssl/err.h>
#include <openssl/pem.h>

#include <cstdio>
#include <cstring>
#include <ctime>

namespace ferry::verify {

std::string openssl_error()
{
  std::string out;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out;
}

X509Ptr parse_der_certificate(std::string_view der)
{
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  X509Ptr cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) throw Error(Errc::invalid_argument, "malformed certificate: " + openssl_error());
  if (p != reinterpret_cast<const unsigned char*>(der.data()) + der.size())
    throw Error(Errc::invalid_argument, "malformed certificate: trailing data after the DER certificate");
  return cert;
}

Chain parse_certificates(std::string_view data, const std::string& source)
{
  Chain out;
  if (data.find("-----BEGIN") != std::string_view::npos) {
    BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    for (;;) {
      X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
      if (!c) break;
      out.emplace_back(c);
    }
    ERR_clear_error();
    if (out.empty()) throw Error(Errc::invalid_argument, source + ": no certificate in PEM data");
    return out;
  }
  const unsigned char* p = reinterpret_cast<const unsigned char*>(data.data());
  const unsigned char* end = p + data.size();
  while (p < end) {
    X509* c = d2i_X509(nullptr, &p, static_cast<long>(end - p));
    if (!c) throw Error(Errc::invalid_argument, source + ": not a PEM or DER certificate: " + openssl_error());
    out.emplace_back(c);
  }
  if (out.empty()) throw Error(Errc::invalid_argument, source + ": empty certificate file");
  return out;
}

X509Ptr clone(X509* cert)
{
  X509_up_ref(cert);
  return X509Ptr(cert);
}

std::string der_bytes(X509* cert)
{
  unsigned char* buf = nullptr;
  int n = i2d_X509(cert, &buf);
  if (n < 0) throw Error(Errc::internal, "i2d_X509 failed");
  std::string out(reinterpret_cast<char*>(buf), static_cast<std::size_t>(n));
  OPENSSL_free(buf);
  return out;
}

std::string sha256_thumbprint(X509* cert) { return Digest::of(der_bytes(cert)).hex(); }

namespace {
std::string name_string(X509_NAME* name)
{
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}
} // namespace

std::string subject_for_display(X509* cert) { return name_string(X509_get_subject_name(cert)); }
std::string issuer_for_display(X509* cert) { return name_string(X509_get_issuer_name(cert)); }

TimePoint to_time_point(const ASN1_TIME* t)
{
  struct tm tm {};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) throw Error(Errc::invalid_argument, "malformed ASN.1 time");
  return TimePoint(std::chrono::seconds(timegm(&tm)));
}

TimePoint not_before(X509* cert) { return to_time_point(X509_get0_notBefore(cert)); }
TimePoint not_after(X509* cert) { return to_time_point(X509_get0_notAfter(cert)); }

std::string format_rfc3339(TimePoint t)
{
  std::time_t tt = static_cast<std::time_t>(t.time_since_epoch().count());
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string format_rfc1123z(TimePoint t)
{
  std::time_t tt = static_cast<std::time_t>(t.time_since_epoch().count());
  struct tm tm {};
  gmtime_r(&tt, &tm);
  static const char* const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

TimePoint parse_rfc3339(std::string_view text, const std::string& what)
{
  auto bad = [&]() -> Error {
    return Error(Errc::invalid_argument, what + ": invalid RFC 3339 time \"" + std::string(text.substr(0, 64)) + "\"");
  };
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
  if (text.size() < 20) throw bad();
  auto num = [&](std::size_t pos, std::size_t len) {
    int v = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (text[i] < '0' || text[i] > '9') throw bad();
      v = v * 10 + (text[i] - '0');
    }
    return v;
  };
  if (text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't' && text[10] != ' ') || text[13] != ':' ||
      text[16] != ':')
    throw bad();
  struct tm tm {};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(5, 2) - 1;
  tm.tm_mday = num(8, 2);
  tm.tm_hour = num(11, 2);
  tm.tm_min = num(14, 2);
  tm.tm_sec = num(17, 2);
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
    throw bad();
  std::size_t pos = 19;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    if (pos == start) throw bad();
  }
  if (pos >= text.size()) throw bad();
  long offset = 0;
  if (text[pos] == 'Z' || text[pos] == 'z') {
    ++pos;
  } else if (text[pos] == '+' || text[pos] == '-') {
    if (pos + 6 != text.size() || text[pos + 3] != ':') throw bad();
    offset = (num(pos + 1, 2) * 60 + num(pos + 4, 2)) * 60;
    if (text[pos] == '-') offset = -offset;
    pos += 6;
  } else {
    throw bad();
  }
  if (pos != text.size()) throw bad();
  return TimePoint(std::chrono::seconds(timegm(&tm) - offset));
}

} // namespace ferry::verify
