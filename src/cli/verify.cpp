// ferry verify: offline integrity and Notary Project signature verification.
#include "common.hpp"
#include "report_html.hpp"

#include <ferry/delta.hpp>
#include <ferry/error.hpp>
#include <ferry/inventory.hpp>
#include <ferry/remote/registries.hpp>
#include <ferry/util/reader.hpp>
#include <ferry/verify/verifier.hpp>



namespace ferry::cli {

namespace {

using namespace ferry::verify;

void print_human(const VerifyReport& r, bool integrity_only, bool require_referrers, const GlobalOptions& global)
{
  out_line("%s: integrity %s (%s, %s)", r.bundle.c_str(), r.problems.empty() ? "ok" : "FAILED",
           counted(r.blobs, "blob").c_str(), human_bytes(r.bytes).c_str());
  if (r.bundle_digest) out_line("bundle digest (of index.json): %s", r.bundle_digest->str().c_str());
  if (r.delta)
    out_line("delta of %s %s (base %s): %s, %s, left out%s", r.delta->base_kind.c_str(), r.delta->base_source.c_str(),
             r.delta->base.str().c_str(), counted(r.delta->left_out.size(), "blob").c_str(),
             human_bytes(r.delta->left_out_bytes()).c_str(),
             r.delta_base.empty() ? ", not checked" : (", checked against the " + r.delta_base).c_str());
  for (const auto& p : r.problems.listed) out_line("  problem: %s", p.message.c_str());
  if (r.problems.total > r.problems.listed.size())
    out_line("  ... and %s (--max-problems lists more, --json lists as many)",
             counted(r.problems.total - r.problems.listed.size(), "more problem").c_str());
  if (!integrity_only) {
    auto print_signatures = [](const std::vector<SignatureVerdict>& sigs, const std::string& indent) {
      for (const auto& s : sigs) {
        if (s.kind == "cosign") {
          // One line per cosign signature: which manifest (and layer), what it signs, who.
          std::string line = strprintf("%scosign %s %s", indent.c_str(), s.format.c_str(), s.manifest.digest.str().c_str());
          if (s.layer && s.format != "sigstore-bundle") line += strprintf(" layer %zu", *s.layer);
          if (!s.detail.empty()) line += " (" + s.detail + ")";
          if (!s.signer.empty()) line += " by " + s.signer;
          if (s.signing_time) line += ", signed " + format_rfc3339(*s.signing_time);
          line += s.verified ? ": verified" : ": failed";
          print_line(stdout, line);
        } else {
          out_line("%ssignature %s (%s): %s", indent.c_str(), s.manifest.digest.str().c_str(), s.envelope_media_type.c_str(),
                   s.verified ? "verified" : "failed");
        }
        for (const auto& c : s.checks) {
          std::string line = strprintf("%s  %-19s %-7s", indent.c_str(), c.name.c_str(), check_result_name(c.result));
          if (c.result != CheckResult::skipped || c.action == verify::Action::skip)
            line += strprintf(" [%s]", action_name(c.action));
          if (!c.reason.empty()) line += " " + c.reason;
          print_line(stdout, line);
        }
      }
    };
    for (const auto& a : r.artifacts) {
      std::string line = strprintf("%s %s %s: %s", a.verified ? "✓" : "✗", a.reference.c_str(), a.desc.digest.str().c_str(),
                                   a.verified ? "verified" : "NOT verified");
      if (a.policy) line += strprintf(" (policy \"%s\", %s)", a.policy->c_str(), level_name(a.level));
      if (!a.verified && !a.reason.empty()) line += ": " + a.reason;
      print_line(stdout, line);
      print_signatures(a.signatures, "  ");
      // Each referrer (and other signed manifest of the graph) with its own verdict, under its root.
      for (const auto& x : a.referrers) {
        line = "  " + referrer_verdict_line(x, true);
        if (!x.verified && !require_referrers && r.problems.empty()) line += " (reported, not fatal without --require-referrer-signatures)";
        print_line(stdout, line);
        print_signatures(x.signatures, "    ");
      }
    }
    for (const auto& c : r.crls)
      out_line("CRL %s from %s: thisUpdate %s, nextUpdate %s, %s", c.source.c_str(), c.issuer.c_str(),
               format_rfc3339(c.this_update).c_str(), c.next_update ? format_rfc3339(*c.next_update).c_str() : "none",
               c.fresh ? "fresh" : "STALE");
  }
  summary_line("verification %s: %s%s, %s, %s%s", r.verified ? "passed" : "FAILED",
               counted(r.artifacts.size(), "artifact").c_str(), referrer_count(r).c_str(), counted(r.blobs, "blob").c_str(),
               human_bytes(r.bytes).c_str(), time_and_rate(global, r.bytes).c_str());
}

} // namespace

void register_verify(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto* cmd = app.add_subcommand("verify", "Verify a bundle offline: integrity, Notary Project and cosign/Sigstore signatures");
  struct State {
    std::string bundle;
    std::string format;
    TrustFlags trust;
    LimitFlags limits;
    bool integrity_only = false;
    OutputOptions out;
    std::string report;
    std::vector<std::string> bases;
    std::vector<std::string> base_inventories;
    std::string against;
    RegistryFlags registry;
  };
  auto s = std::make_shared<State>();
  cmd->add_option("bundle", s->bundle, "Bundle (*.tar, *.tar.zst, *.tar.gz/*.tgz or a layout directory)")->required();
  cmd->add_option("--format", s->format, "Override the bundle format: tar, tar.zst, tar.gz or dir");
  s->trust.add_to(*cmd);
  s->limits.add_to(*cmd, true);
  auto* integrity = cmd->add_flag("--integrity-only", s->integrity_only, "Check digests and the graph only; no trust material needed");
  // It asks for signatures to be checked, which --integrity-only does not do.
  cmd->get_option("--require-referrer-signatures")->excludes(integrity);
  cmd->add_flag("--json", s->out.json, "Print the report as JSON on stdout");
  cmd->add_option("--report", s->report, "Also write the report to this file as a self-contained HTML page");
  // A delta bundle (issue 16): what holds the blobs it leaves out.
  auto* base = cmd->add_option("--base", s->bases,
                               "A delta bundle's base: a bundle holding the blobs the delta leaves out (each is read and "
                               "hashed); repeatable")
                   ->check(CLI::ExistingPath);
  auto* base_inv = cmd->add_option("--base-inventory", s->base_inventories,
                                   "A delta bundle's base as an inventory (ferry inventory -o): the blobs the delta leaves "
                                   "out must be listed in it; repeatable")
                       ->check(CLI::ExistingFile);
  auto* against = cmd->add_option("--against", s->against,
                                  "A delta bundle's base is the registry it goes to (host[:port][/namespace], as push "
                                  "takes it): each blob the delta leaves out must be there (HEAD; reads only)");
  base->excludes(base_inv)->excludes(against);
  base_inv->excludes(against);
  s->registry.add_to(*cmd);
  for (const char* name : {"--plain-http", "--insecure", "--ca-file", "--registry-config", "--username", "--password-stdin",
                           "--concurrency", "--timeout"})
    cmd->get_option(name)->needs(against);
  cmd->callback([s, &global, &action] {
    action = [s, &global] {
      BundleFormat format = s->format.empty() ? format_from_path(s->bundle) : parse_format(s->format);
      s->trust.check(s->bundle, format, s->integrity_only);
      // A report that could not be written is found out before verifying, not after.
      if (!s->report.empty()) check_report_path(s->report);
      // The bundle is read once: its one scan hashes every blob, and the trust material it
      // carries (with --trust-pin) comes from that same read.
      auto bundle = LayoutReader::open(s->bundle, format, s->limits.options(ReadDepth::verify));
      VerifyOptions opts = s->trust.build(bundle.get(), s->integrity_only);
      DeltaBaseCheck delta_base;
      std::optional<remote::Registries> registries;
      if (!s->bases.empty()) {
        std::vector<std::shared_ptr<LayoutReader>> bases;
        for (const auto& b : s->bases)
          bases.push_back(LayoutReader::open(b, format_from_path(b), s->limits.options(ReadDepth::structure)));
        delta_base = delta_base_bundles(std::move(bases));
      } else if (!s->base_inventories.empty()) {
        std::vector<std::pair<std::string, Inventory>> bases;
        for (const auto& b : s->base_inventories) bases.emplace_back(b, Inventory::load(b));
        delta_base = delta_base_inventories(std::move(bases));
      } else if (!s->against.empty()) {
        s->registry.finish();
        registries.emplace(s->registry.options);
        delta_base = delta_base_against(
            *bundle, s->against,
            [&](const std::string& reg, const std::string& repo) { return registries->open(reg, repo); },
            s->registry.concurrency);
      }
      auto report = verify_bundle(*bundle, opts, {}, delta_base);
      if (s->out.json || !s->report.empty()) {
        // One document for --json and --report, so the two cannot disagree.
        auto doc = verify_report_json(report);
        doc["trust"] = s->trust.report_json(opts.integrity_only);
        doc["ignoredEntries"] = bundle->ignored_entries();
        if (!s->report.empty()) write_report(s->report, verify_report_html(doc));
        if (s->out.json) print_json(doc);
      }
      if (!s->out.json) {
        if (auto note = ignored_entries_note(*bundle); !note.empty()) make_logger(global)(note);
        print_human(report, opts.integrity_only, opts.require_referrer_signatures, global);
      }
      if (!report.verified)  // one line on stderr saying why, as for every failure (design §2)
        err_line("ferry: error: %s: verification failed: %s", s->bundle.c_str(), verification_failure(report).c_str());
      return report.verified ? 0 : 3;
    };
  });
}

} // namespace ferry::cli
