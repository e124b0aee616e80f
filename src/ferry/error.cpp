#include <ferry/error.hpp>

#include <cerrno>
#include <filesystem>
#include <string_view>

namespace ferry {

const char* errc_name(Errc code)
{
  switch (code) {
  case Errc::not_found: return "not_found";
  case Errc::digest_mismatch: return "digest_mismatch";
  case Errc::size_exceeds_limit: return "size_exceeds_limit";
  case Errc::invalid_reference: return "invalid_reference";
  case Errc::invalid_manifest: return "invalid_manifest";
  case Errc::invalid_digest: return "invalid_digest";
  case Errc::invalid_argument: return "invalid_argument";
  case Errc::unsupported: return "unsupported";
  case Errc::unauthorized: return "unauthorized";
  case Errc::denied: return "denied";
  case Errc::network: return "network";
  case Errc::io: return "io";
  case Errc::no_space: return "no_space";
  case Errc::verification_failed: return "verification_failed";
  case Errc::internal: return "internal";
  }
  return "unknown";
}

int exit_code_for(Errc code)
{
  switch (code) {
  case Errc::verification_failed: return 3;
  case Errc::invalid_argument: return 2;
  default: return 1;
  }
}

Errc errc_for_errno(int err) { return err == ENOSPC || err == EDQUOT ? Errc::no_space : Errc::io; }

void rethrow_with_context(const std::string& context)
{
  try {
    throw;
  } catch (const Error& e) {
    std::string_view what = e.what();
    if (what.size() > context.size() + 1 && what.substr(0, context.size()) == context &&
        what.substr(context.size(), 2) == ": ")
      throw;  // it names the context already
    throw Error(e.code(), context + ": " + e.what());
  } catch (const std::filesystem::filesystem_error& e) {
    throw Error(e.code() == std::errc::no_space_on_device ? Errc::no_space : Errc::io, context + ": " + e.code().message());
  } catch (const std::bad_alloc&) {
    throw Error(Errc::internal, context + ": out of memory");
  } catch (const std::exception& e) {
    throw Error(Errc::internal, context + ": " + e.what());
  }
}

} // namespace ferry
