// ferry push: bundle → registry (and what push and copy share, see transfer.hpp).
#include "common.hpp"
#include "transfer.hpp"

#include <ferry/error.hpp>
#include <ferry/inventory.hpp>
#include <ferry/verify/openssl.hpp>

#include <cstdio>
#include <cstdlib>

namespace ferry::cli {

namespace {

void log_verification(const verify::VerifyReport& r, const Logger& log)
{
  std::size_t verified = 0;
  for (const auto& a : r.artifacts) verified += a.verified ? 1 : 0;
  log(std::string("verification ") + (r.verified ? "passed" : "FAILED") + ": integrity " +
      (r.problems.empty() ? "ok" : "FAILED") + " (" + counted(r.blobs, "blob") + ", " + human_bytes(r.bytes) + "); " +
      std::to_string(verified) + " of " + counted(r.artifacts.size(), "artifact") + " verified" + referrer_count(r));
  for (const auto& p : r.problems.listed) log("  problem: " + p.message);
  if (r.problems.total > r.problems.listed.size())
    log("  ... and " + counted(r.problems.total - r.problems.listed.size(), "more problem") +
        " (--max-problems lists more, --json lists as many)");
  for (const auto& a : r.artifacts) {
    std::string line = std::string("  ") + (a.verified ? "✓ " : "✗ ") + a.reference + " " + a.desc.digest.str();
    if (a.policy) line += " (policy \"" + *a.policy + "\", " + verify::level_name(a.level) + ")";
    if (!a.verified && !a.reason.empty()) line += ": " + a.reason;
    log(line);
    // Each referrer with its own verdict, as ferry verify shows it (issue 14).
    for (const auto& x : a.referrers) log("    " + referrer_verdict_line(x, false));
  }
}

nlohmann::json proof_json(const Proof& p)
{
  nlohmann::json missing = nlohmann::json::array();
  for (const auto& g : p.missing) {
    nlohmann::json j = {{"kind", proof_gap_kind_name(g.kind)},
                        {"repository", g.repository},
                        {"digest", g.digest.str()},
                        {"detail", g.detail},
                        {"message", g.str()}};
    if (!g.tag.empty()) j["tag"] = g.tag;
    if (g.subject) j["subject"] = g.subject->str();
    missing.push_back(j);
  }
  return {{"ok", p.ok()},
          {"checked", {{"manifests", p.checked.manifests}, {"tags", p.checked.tags}, {"referrers", p.checked.referrers}}},
          {"missing", missing}};
}

} // namespace

void VerifyGate::add_to(CLI::App& cmd)
{
  auto* flag = cmd.add_flag("--verify", enabled,
                            "Verify the content first (as ferry verify, with the trust options below); send nothing if it fails");
  std::size_t before = cmd.get_options(std::function<bool(CLI::Option*)>{}).size();
  cmd.add_flag("--only-verified", only_verified,
               "With --verify: send nothing if a manifest would be pushed that no verified signature covers "
               "(an unsigned SBOM or other referrer, a root a policy admits without checking)");
  trust.add_to(cmd);
  // Every trust option (whatever TrustFlags registers) is accepted only with --verify.
  auto options = cmd.get_options(std::function<bool(CLI::Option*)>{});
  for (std::size_t i = before; i < options.size(); ++i) options[i]->needs(flag);
}

void VerifyGate::check(const std::filesystem::path& bundle, BundleFormat format) const
{
  if (!enabled) return;
  // The statement is the one of the repository each image lands in (issue 13 §4), never
  // one the caller or the bundle names.
  if (!trust.scope.empty())
    throw Error(Errc::invalid_argument, "--scope chooses the trust policy statement of ferry verify; with --verify, push and copy "
                                        "use the statement of the repository each image lands in");
  trust.check(bundle, format, /*integrity_only=*/false);
}

std::optional<verify::VerifyOptions> VerifyGate::build(const LayoutReader* bundle) const
{
  if (!enabled) return std::nullopt;
  return trust.build(bundle, /*integrity_only=*/false);
}

std::function<void()> test_hook(const char* name)
{
  const char* command = std::getenv(name);
  if (!command || !*command) return {};
  std::string cmd = command;
  std::string var = name;
  return [cmd, var] {
    std::fflush(nullptr);
    int status = std::system(cmd.c_str());
    if (status != 0) throw Error(Errc::internal, var + " (test-only) failed with status " + std::to_string(status));
  };
}

nlohmann::json transfer_json(const PushResult& r, nlohmann::json doc)
{
  {  // one shape for every outcome (src/cli/schema/push.schema.json)
    nlohmann::json roots = nlohmann::json::array();
    for (const auto& root : r.roots)
      roots.push_back({{"destination", root.destination}, {"digest", root.desc.digest.str()}, {"mediaType", root.desc.media_type}});
    doc["roots"] = roots;
    doc["blobs"] = {{"pushed", r.blobs_pushed}, {"skipped", r.blobs_skipped}, {"mounted", r.blobs_mounted}, {"bytes", r.bytes_pushed}};
    doc["manifests"] = {{"pushed", r.manifests_pushed}, {"skipped", r.manifests_skipped}};
    nlohmann::json moved = nlohmann::json::array();
    for (const auto& m : r.tags_moved)
      moved.push_back({{"repository", m.repository},
                       {"tag", m.tag},
                       {"previousDigest", m.previous.str()},
                       {"digest", m.desc.digest.str()},
                       {"mediaType", m.desc.media_type}});
    doc["tags"] = {{"written", r.tags_written}, {"unchanged", r.tags_unchanged}, {"moved", moved}};
    doc["referrers"] = {{"pushed", r.referrers_pushed}, {"skipped", r.referrers_skipped}};
    doc["fallbackIndexesWritten"] = r.fallback_indexes_written;
    doc["referrersApi"] = r.referrers_api;
    doc["bundleDigest"] = r.bundle_digest ? nlohmann::json(r.bundle_digest->str()) : nlohmann::json(nullptr);
    if (r.verification) {
      nlohmann::json unverified = nlohmann::json::array();
      for (const auto& u : r.unverified)
        unverified.push_back({{"digest", u.desc.digest.str()},
                              {"mediaType", u.desc.media_type},
                              {"artifactType", u.artifact_type},
                              {"reason", u.reason}});
      doc["unverifiedManifests"] = unverified;
    } else {
      doc["unverifiedManifests"] = nullptr;
    }
    doc["verification"] = r.verification ? verify_report_json(*r.verification) : nlohmann::json(nullptr);
    doc["proof"] = r.dry_run || r.verification_failed() ? nlohmann::json(nullptr) : proof_json(r.proof);
    doc["dryRun"] = r.dry_run;
    if (r.dry_run) doc["plan"] = plan_json(r.plan);
  }
  return doc;
}

int report_transfer(const PushResult& r, bool json, nlohmann::json doc, const std::string& verb, const std::string& subject,
                    const Logger& log, const GlobalOptions& global, nlohmann::json* collect)
{
  if (r.verification) log_verification(*r.verification, log);
  if (json) {
    if (collect)
      *collect = transfer_json(r, std::move(doc));
    else
      print_json(transfer_json(r, std::move(doc)));
  }
  if (r.verification_failed()) {
    err_line("ferry: error: %s: %s; nothing was sent", subject.c_str(), refusal_reason(r).c_str());
    return 3;
  }
  std::string moved = r.tags_moved.empty() ? "" : " (" + std::to_string(r.tags_moved.size()) + " moved)";
  if (!json && r.dry_run) {
    print_plan(r.plan);
    summary_line("dry run, nothing sent: would push %s (%s) and mount %zu, %zu already there; manifests: %zu to "
             "push, %zu already there; tags: %zu to write%s, %zu unchanged; referrers: %zu to push, %zu already there",
             counted(r.blobs_pushed, "blob").c_str(), human_bytes(r.bytes_pushed).c_str(), r.blobs_mounted, r.blobs_skipped, r.manifests_pushed,
             r.manifests_skipped, r.tags_written, moved.c_str(), r.tags_unchanged, r.referrers_pushed, r.referrers_skipped);
  } else if (!json) {
    for (const auto& root : r.roots) {
      // A root whose tag moved says from where (the tag's last root, see the proof).
      std::string note;
      for (const auto& m : r.tags_moved)
        if (root.destination == m.repository + ":" + m.tag && root.desc.digest == m.desc.digest)
          note = " (tag moved from " + m.previous.str() + ")";
      out_line("%s %s %s%s", verb.c_str(), root.destination.c_str(), root.desc.digest.str().c_str(), note.c_str());
    }
    summary_line("blobs: %zu pushed (%s), %zu mounted, %zu already there; manifests: %zu pushed, %zu already there; tags: %zu "
             "written%s, %zu unchanged; referrers: %zu pushed, %zu already there (%s written)%s",
             r.blobs_pushed, human_bytes(r.bytes_pushed).c_str(), r.blobs_mounted, r.blobs_skipped, r.manifests_pushed,
             r.manifests_skipped, r.tags_written, moved.c_str(), r.tags_unchanged, r.referrers_pushed, r.referrers_skipped,
             counted(r.fallback_indexes_written, "fallback index", "fallback indexes").c_str(),
             time_and_rate(global, r.bytes_pushed).c_str());
    std::fflush(stdout);
    for (const auto& g : r.proof.missing) err_line("  missing: %s", g.str().c_str());
  }
  if (!r.proof.ok()) {
    err_line("ferry: error: %s: proof failed: %s", subject.c_str(), r.proof.summary().c_str());
    return 1;
  }
  return 0;
}

void register_push(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto* cmd = app.add_subcommand("push", "Push a bundle into a registry with every digest, tag and referrer");
  struct State {
    std::string bundle;
    std::string target;
    std::string format;
    std::vector<std::string> maps;
    std::string have;
    bool no_clobber = false;
    bool dry_run = false;
    OutputOptions out;
    RegistryFlags registry;
    VerifyGate verify;
    LimitFlags limits;
  };
  auto s = std::make_shared<State>();
  cmd->add_option("bundle", s->bundle, "Bundle to push (*.tar, *.tar.zst, *.tar.gz/*.tgz or a layout directory)")->required();
  cmd->add_option("target", s->target, "host[:port][/namespace]; images land at TARGET/<source repository>")->required();
  cmd->add_option("--format", s->format, "Override the bundle format: tar, tar.zst, tar.gz or dir");
  cmd->add_option("--map", s->maps,
                  "Rename a source repository (SRC_REPO=DST_REPO) or one tag of it (SRC_REPO:TAG=DST_REPO:TAG); "
                  "referrers follow their image (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--have", s->have,
                  "Inventory of the destination registry (ferry inventory REGISTRY -o FILE): blobs it holds in another "
                  "repository are mounted there, not uploaded")
      ->type_name("FILE");
  cmd->add_flag("--no-clobber", s->no_clobber,
                "Refuse to move an existing destination tag to another digest: send nothing and fail naming the tag");
  cmd->add_flag("--dry-run", s->dry_run,
                "Print the plan (what would be uploaded, mounted, already there; manifests; tags to write, move or leave) and send nothing");
  cmd->add_flag("--json", s->out.json, "Print the result as JSON on stdout");
  s->registry.add_to(*cmd);
  s->verify.add_to(*cmd);
  s->limits.add_to(*cmd, true);
  cmd->callback([s, &global, &action] {
    action = [s, &global] {
      PushOptions opts;
      opts.target = s->target;
      BundleFormat format = s->format.empty() ? format_from_path(s->bundle) : parse_format(s->format);
      for (const auto& m : s->maps) opts.map.push_back(PushMap::parse(m));
      opts.no_clobber = s->no_clobber;
      if (!s->have.empty()) opts.have = std::make_shared<Inventory>(Inventory::load(s->have));
      s->verify.check(s->bundle, format);
      // The bundle is opened once: verification, the trust material it carries and every
      // byte pushed come from this one reader (issue 13 §3).
      auto bundle = LayoutReader::open(s->bundle, format,
                                       s->limits.options(s->verify.enabled ? ReadDepth::verify : ReadDepth::structure));
      opts.verify = s->verify.build(bundle.get());
      opts.only_verified = s->verify.only_verified;
      opts.after_verify = test_hook("FERRY_TEST_HOOK_AFTER_VERIFY");
      opts.before_proof = test_hook("FERRY_TEST_HOOK_BEFORE_PROOF");
      opts.dry_run = s->dry_run;
      opts.progress = global.progress.get();
      s->registry.finish();
      opts.concurrency = s->registry.concurrency;
      remote::Registries registries(s->registry.options);
      auto log = make_logger(global);
      if (auto note = ignored_entries_note(*bundle); !note.empty()) log(note);
      auto result =
          push(*bundle, opts, [&](const std::string& reg, const std::string& repo) { return registries.open(reg, repo); }, log);
      nlohmann::json doc = {{"schemaVersion", 2}, {"command", "push"}, {"target", s->target},
                            {"ignoredEntries", bundle->ignored_entries()}};
      std::string subject = result.verification_failed() ? s->bundle : "push to " + s->target;
      return report_transfer(result, s->out.json, doc, "pushed", subject, log, global);
    };
  });
}

} // namespace ferry::cli
