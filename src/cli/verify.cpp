// ferry verify: offline integrity and Notary Project signature verification.
#include "common.hpp"

#include <ferry/error.hpp>
#include <ferry/util/reader.hpp>
#include <ferry/verify/verifier.hpp>



namespace ferry::cli {

namespace {

using namespace ferry::verify;

void print_human(const VerifyReport& r, bool integrity_only)
{
  std::printf("%s: integrity %s (%zu blobs, %s)\n", r.bundle.c_str(), r.problems.empty() ? "ok" : "FAILED", r.blobs,
              human_bytes(r.bytes).c_str());
  for (const auto& p : r.problems) std::printf("  problem: %s\n", p.message.c_str());
  if (!integrity_only) {
    for (const auto& a : r.artifacts) {
      std::printf("%s %s %s: %s", a.verified ? "✓" : "✗", a.reference.c_str(), a.desc.digest.str().c_str(),
                  a.verified ? "verified" : "NOT verified");
      if (a.policy) std::printf(" (policy \"%s\", %s)", a.policy->c_str(), level_name(a.level));
      if (!a.verified && !a.reason.empty()) std::printf(": %s", a.reason.c_str());
      std::printf("\n");
      for (const auto& s : a.signatures) {
        std::printf("  signature %s (%s): %s\n", s.manifest.digest.str().c_str(), s.envelope_media_type.c_str(),
                    s.verified ? "verified" : "failed");
        for (const auto& c : s.checks) {
          std::printf("    %-19s %-7s", c.name.c_str(), check_result_name(c.result));
          if (c.result != CheckResult::skipped || c.action == verify::Action::skip) std::printf(" [%s]", action_name(c.action));
          if (!c.reason.empty()) std::printf(" %s", c.reason.c_str());
          std::printf("\n");
        }
      }
    }
    for (const auto& c : r.crls)
      std::printf("CRL %s from %s: thisUpdate %s, nextUpdate %s, %s\n", c.source.c_str(), c.issuer.c_str(),
                  format_rfc3339(c.this_update).c_str(), c.next_update ? format_rfc3339(*c.next_update).c_str() : "none",
                  c.fresh ? "fresh" : "STALE");
  }
  std::printf("verification %s\n", r.verified ? "passed" : "FAILED");
}

} // namespace

void register_verify(CLI::App& app, const GlobalOptions&, Action& action)
{
  auto* cmd = app.add_subcommand("verify", "Verify a bundle offline: integrity and Notary Project signatures");
  struct State {
    std::string bundle;
    std::string format;
    TrustFlags trust;
    bool integrity_only = false;
    OutputOptions out;
  };
  auto s = std::make_shared<State>();
  cmd->add_option("bundle", s->bundle, "Bundle (*.tar, *.tar.zst or a layout directory)")->required();
  cmd->add_option("--format", s->format, "Override the bundle format: tar, tar.zst or dir");
  s->trust.add_to(*cmd);
  cmd->add_flag("--integrity-only", s->integrity_only, "Check digests and the graph only; no trust material needed");
  cmd->add_flag("--json", s->out.json, "Print the report as JSON on stdout");
  cmd->callback([s, &action] {
    action = [s] {
      BundleFormat format = s->format.empty() ? format_from_path(s->bundle) : parse_format(s->format);
      VerifyOptions opts = s->trust.build(s->bundle, format, s->integrity_only);
      auto report = verify_bundle(s->bundle, format, opts);
      if (s->out.json) print_json(verify_report_json(report));
      else print_human(report, opts.integrity_only);
      if (!report.verified) {
        // One line on stderr saying why, as for every failure (design §2).
        std::string why;
        if (!report.problems.empty())
          why = report.problems.front().message +
                (report.problems.size() > 1 ? " (and " + std::to_string(report.problems.size() - 1) + " more problems)" : "");
        else if (report.artifacts.empty())
          why = "the bundle has no artifact to verify";
        else
          for (const auto& a : report.artifacts)
            if (!a.verified) {
              why = a.reference + ": " + a.reason;
              break;
            }
        std::fprintf(stderr, "ferry: error: %s: verification failed: %s\n", s->bundle.c_str(), why.c_str());
      }
      return report.verified ? 0 : 3;
    };
  });
}

} // namespace ferry::cli
