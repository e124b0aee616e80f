// ferry save: registry → bundle.
#include "common.hpp"

#include <ferry/store/volumes.hpp>
#include <ferry/error.hpp>
#include <ferry/inventory.hpp>

#include <filesystem>
#include <set>

namespace ferry::cli {

namespace {

nlohmann::json to_json(const SaveResult& r, const std::optional<ImageSetExpansion>& expansion)
{
  nlohmann::json roots = nlohmann::json::array();
  auto names = root_ref_names(r.roots);
  for (std::size_t i = 0; i < r.roots.size(); ++i) {
    const auto& root = r.roots[i];
    nlohmann::json j = {{"reference", root.source ? root.source->str() : ""},
                        {"digest", root.desc.digest.str()},
                        {"mediaType", root.desc.media_type},
                        {"size", root.desc.size}};
    if (!root.tag.empty()) j["tag"] = root.tag;
    if (!names[i].empty()) j["refName"] = names[i];
    if (root.desc.platform) j["platform"] = platform_json(*root.desc.platform);
    roots.push_back(j);
  }
  return {{"schemaVersion", 2}, {"command", "save"},          {"output", r.output.string()},
          {"format", format_name(r.format)}, {"roots", roots}, {"manifests", r.manifests},
          {"referrers", r.referrers},        {"blobs", r.blobs}, {"bytes", r.bytes},
          {"trustPin", r.trust_pin ? nlohmann::json(r.trust_pin->str()) : nlohmann::json(nullptr)},
          {"failures", r.failures},
          {"resumed", {{"blobs", r.resumed_blobs}, {"continuedBlobs", r.continued_blobs}, {"bytes", r.resumed_bytes}}},
          {"dryRun", r.dry_run},
          {"plan", r.dry_run ? plan_json(r.plan) : nlohmann::json(nullptr)},
          {"partial", r.partial ? nlohmann::json(r.partial->string()) : nlohmann::json(nullptr)},
          {"delta", delta_json(r.delta)},
          {"imageSet", expansion ? imageset_json(*expansion) : nlohmann::json(nullptr)}};
}

} // namespace

void register_save(CLI::App& app, const GlobalOptions& global, Action& action)
{
  auto* cmd = app.add_subcommand("save", "Copy images and all their referrers from registries into a bundle");
  struct State {
    std::vector<std::string> refs;
    std::string images_file;
    std::string output;
    std::string format;
    std::vector<std::string> platforms;
    bool no_referrers = false;
    std::vector<std::string> artifact_types;
    std::string trust_policy;
    std::string trust_store;
    std::vector<std::string> crls;
    bool fetch_crls = false;
    CosignFlags cosign;
    bool keep_going = false;
    bool no_resume = false;
    std::string max_size;
    bool dry_run = false;
    std::string have;
    std::string since;
    OutputOptions out;
    RegistryFlags registry;
  };
  auto s = std::make_shared<State>();
  cmd->add_option("references", s->refs, "Image references (registry/repo:tag or @digest)");
  cmd->add_option("-f,--images-file", s->images_file,
                  "File with one reference per line (# comments), or skopeo sync's YAML (--src yaml): every tag, "
                  "a tag list, images-by-tag-regex, images-by-semver, with per-registry tls-verify, cert-dir, credentials");
  cmd->add_option("-o,--output", s->output, "Bundle to write: *.tar, *.tar.zst, *.tar.gz/*.tgz, or a directory (another archive suffix is an error)")->required();
  cmd->add_option("--format", s->format, "Override the format: tar, tar.zst, tar.gz or dir (any output name then)");
  cmd->add_option("--platform", s->platforms, "Keep only this platform os/arch[/variant] of an index (repeatable); refused for an index with a signature, "
                  "which covers the whole index")
      ->allow_extra_args(false);
  cmd->add_flag("--no-referrers", s->no_referrers, "Do not copy referrers (signatures, SBOMs)");
  cmd->add_option("--artifact-type", s->artifact_types, "Copy only referrers of this artifact type (repeatable)")
      ->allow_extra_args(false);
  cmd->add_option("--trust-policy", s->trust_policy, "Carry this Notation trust policy in the bundle");
  cmd->add_option("--trust-store", s->trust_store, "Carry this Notation trust store (directory holding x509/) in the bundle");
  cmd->add_option("--crl", s->crls, "Carry this CRL file, or every CRL in this directory (repeatable)")->allow_extra_args(false);
  s->cosign.add_to(*cmd, true);
  cmd->add_flag("--keep-going", s->keep_going,
                "Save the other references when one cannot be resolved or fetched (exit code 1 all the same)");
  cmd->add_flag("--no-resume", s->no_resume,
                "Start afresh: ignore (and replace) what an interrupted save left in OUTPUT.partial");
  cmd->add_option("--max-size,--volume-size", s->max_size,
                  "Split an archive bundle into volumes OUTPUT.001, OUTPUT.002, ... of at most SIZE bytes each (K, M, G, T: "
                  "powers of 1024; e.g. 4095M for FAT32, whose files stop one byte short of 4G; 4.3G for a DVD); verify, inspect and push take OUTPUT.001. A save "
                  "into volumes does not resume (an interrupted one starts afresh)");
  cmd->add_flag("--fetch-crls", s->fetch_crls,
                "Download the CRLs the saved signatures name (distribution points) and carry them");
  cmd->add_flag("--dry-run", s->dry_run,
                "Resolve the references and walk their graphs, print the plan (every entry, total bytes) and write nothing");
  auto* have = cmd->add_option("--have", s->have,
                  "Write a delta: leave out the blobs this inventory (ferry inventory -o FILE) says the far side has");
  cmd->add_option("--since", s->since,
                  "Write a delta: leave out the blobs of this earlier bundle (its first volume, for volumes)")
      ->excludes(have);
  cmd->add_flag("--json", s->out.json, "Print the result as JSON on stdout");
  s->registry.add_to(*cmd);
  cmd->callback([s, &global, &action] {
    action = [s, &global] {
      SaveOptions opts;
      opts.references = s->refs;
      std::optional<ImageSet> set;
      if (!s->images_file.empty()) {
        set = load_image_set(s->images_file, s->registry.options);
        if (!set->yaml)  // the plain list: its references as before
          for (const auto& e : set->entries) opts.references.push_back(e.reference->str());
      }
      if (opts.references.empty() && !(set && set->yaml))
        throw Error(Errc::invalid_argument, "save: give at least one reference or --images-file");
      opts.output = s->output;
      if (!s->format.empty()) opts.format = parse_format(s->format);
      for (const auto& p : s->platforms) opts.platforms.push_back(Platform::parse(p));
      opts.graph.referrers = !s->no_referrers;
      opts.keep_going = s->keep_going;
      opts.resume = !s->no_resume;
      if (!s->max_size.empty()) opts.volume_size = parse_size(s->max_size, "--max-size");
      opts.dry_run = s->dry_run;
      opts.progress = global.progress.get();
      opts.graph.artifact_types = s->artifact_types;
      if (!s->have.empty()) opts.have = std::make_shared<Inventory>(Inventory::load(s->have));
      if (!s->since.empty()) {
        LayoutReader::Options ro;
        ro.depth = ReadDepth::head;
        auto base = LayoutReader::open(s->since, format_from_path(s->since), ro);
        opts.have = std::make_shared<Inventory>(inventory_bundle(*base));
      }
      if (!s->registry.options.username.empty()) {
        // Explicit credentials belong to one registry (design §8): never hand them to others.
        std::set<std::string> registries;
        for (const auto& r : opts.references) registries.insert(Reference::parse(r).registry);
        if (set)
          for (const auto& e : set->entries) registries.insert(e.registry);
        if (registries.size() > 1)
          throw Error(Errc::invalid_argument,
                      "--username applies to one registry, but the references name " + std::to_string(registries.size()) +
                          "; use --registry-config for several");
      }
      if (!s->trust_policy.empty() || !s->trust_store.empty() || !s->crls.empty()) {
        std::optional<std::filesystem::path> policy, store;
        if (!s->trust_policy.empty()) policy = s->trust_policy;
        if (!s->trust_store.empty()) store = s->trust_store;
        std::vector<std::filesystem::path> crls(s->crls.begin(), s->crls.end());
        try {
          opts.trust = collect_trust_material(policy, store, crls);
        } catch (const Error& e) {
          throw Error(e.code() == Errc::invalid_argument ? Errc::invalid_manifest : e.code(), e.what());
        }
      }
      if (s->cosign.any()) {
        s->cosign.check();
        std::optional<std::filesystem::path> root;
        if (!s->cosign.trusted_root.empty()) root = s->cosign.trusted_root;
        std::vector<std::filesystem::path> keys(s->cosign.keys.begin(), s->cosign.keys.end());
        try {
          for (auto& f : collect_cosign_material(root, keys, s->cosign.policy)) opts.trust.push_back(std::move(f));
        } catch (const Error& e) {
          throw Error(e.code() == Errc::invalid_argument ? Errc::invalid_manifest : e.code(), e.what());
        }
      }
      s->registry.finish();
      opts.concurrency = s->registry.concurrency;
      remote::Registries registries(s->registry.options);
      if (s->fetch_crls)
        opts.fetch_crl = [&registries](const std::string& url) {
          if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
            throw Error(Errc::unsupported, "CRL distribution point " + url + ": only http and https are fetched");
          remote::HttpRequest req;
          req.url = url;
          auto resp = registries.transport().send(req);
          if (resp.status != 200)
            throw Error(Errc::network, "GET " + url + ": HTTP " + std::to_string(resp.status));
          return resp.read_body(32 << 20);
        };
      auto log = make_logger(global);
      RepositoryOpener opener = [&](const std::string& reg, const std::string& repo) { return registries.open(reg, repo); };
      std::optional<ImageSetExpansion> expansion;
      if (set && set->yaml) {
        opener = shared_opener(registries);
        // Every entry is expanded (tags listed) before anything is fetched.
        expansion = expand(*set, opener, log);
        for (const auto& r : expansion->references()) opts.references.push_back(r.str());
        opts.imageset_record = expansion->record_json();
        if (opts.references.empty())
          throw Error(Errc::not_found, s->images_file + ": the image set selects no image");
      }
      auto result = save(opts, opener, log);
      if (s->out.json) {
        print_json(to_json(result, expansion));
      } else if (result.dry_run) {
        if (expansion) print_imageset(*expansion);
        print_plan(result.plan);
        summary_line("dry run, nothing written: %s would hold %s, %s, %s, %s, %s", result.output.c_str(),
                     counted(result.roots.size(), "image").c_str(), counted(result.referrers, "referrer").c_str(),
                     counted(result.manifests, "manifest").c_str(), counted(result.blobs, "blob").c_str(),
                     human_bytes(result.bytes).c_str());
        if (result.delta)
          summary_line("delta of %s (base %s): would leave out %s, %s, that the base holds", result.delta->base_source.c_str(),
                       result.delta->base.str().c_str(), counted(result.delta->left_out.size(), "blob").c_str(),
                       human_bytes(result.delta->left_out_bytes()).c_str());
        if (result.partial)
          out_line("%s holds an interrupted save: a real run resumes from it (--no-resume starts afresh)",
                   result.partial->c_str());
      } else {
        auto names = root_ref_names(result.roots);
        for (std::size_t i = 0; i < result.roots.size(); ++i) {
          const auto& root = result.roots[i];
          // The name other tools select it by (oci-archive:BUNDLE:NAME), when not its tag.
          std::string as = names[i] != root.tag ? " as " + names[i] : "";
          out_line("saved %s %s%s", root.source ? root.source->str().c_str() : "", root.desc.digest.str().c_str(), as.c_str());
        }
        summary_line("%s: %s, %s, %s, %s, %s%s", result.output.c_str(), counted(result.roots.size(), "image").c_str(),
                     counted(result.referrers, "referrer").c_str(), counted(result.manifests, "manifest").c_str(),
                     counted(result.blobs, "blob").c_str(), human_bytes(result.bytes).c_str(),
                     time_and_rate(global, result.bytes - result.resumed_bytes).c_str());
        if (result.resumed_bytes)
          out_line("resumed: %s already in the partial output, %zu continued from a checkpoint (%s kept)",
                   counted(result.resumed_blobs, "blob").c_str(), result.continued_blobs,
                   human_bytes(result.resumed_bytes).c_str());
        if (result.delta)
          summary_line("delta of %s (base %s): left out %s, %s, that the base holds", result.delta->base_source.c_str(),
                       result.delta->base.str().c_str(), counted(result.delta->left_out.size(), "blob").c_str(),
                       human_bytes(result.delta->left_out_bytes()).c_str());
        if (result.trust_pin)
          summary_line("trust pin: %s (give it to the verifying side out of band: ferry verify --trust-pin %s)",
                   result.trust_pin->str().c_str(), result.trust_pin->str().c_str());
      }
      // --keep-going: the others were saved; every reference left out is an error.
      for (const auto& f : result.failures) err_line("ferry: error: %s", f.c_str());
      return result.failures.empty() ? 0 : 1;
    };
  });
}

} // namespace ferry::cli
