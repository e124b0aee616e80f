#include <ferry/ops.hpp>

#include <ferry/error.hpp>
#include <ferry/inventory.hpp>
#include <ferry/record.hpp>
#include <ferry/manifest.hpp>
#include <ferry/media_type.hpp>
#include <ferry/store/bundle_writer.hpp>
#include <ferry/util/parallel.hpp>
#include <ferry/util/text.hpp>
#include <ferry/verify/envelope.hpp>
#include <ferry/verify/openssl.hpp>
#include <ferry/verify/integrity.hpp>
#include <ferry/verify/revocation.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>

namespace fs = std::filesystem;

namespace ferry {

namespace {

// An existing output is replaced only when it is a file, or a directory that is empty or
// already an OCI layout: never a user's unrelated directory.
void check_output(const fs::path& output, BundleFormat format)
{
  if (!fs::exists(output)) {
    auto parent = output.has_parent_path() ? output.parent_path() : fs::path(".");
    if (!fs::is_directory(parent)) throw Error(Errc::not_found, output.string() + ": directory " + parent.string() + " does not exist");
    return;
  }
  if (format == BundleFormat::dir) {
    if (!fs::is_directory(output)) throw Error(Errc::io, output.string() + ": exists and is not a directory");
    if (!fs::is_empty(output) && !fs::exists(output / "oci-layout"))
      throw Error(Errc::io, output.string() + ": exists and is not an OCI layout; refusing to replace it");
  } else if (fs::is_directory(output)) {
    throw Error(Errc::io, output.string() + ": is a directory");
  }
}

// Where a signature in the bundle names CRL distribution points and no CRL from that issuer
// travels with it, verify would report revocation as unknown (issue 4): with a CRL fetcher
// the CRLs are downloaded now and returned to be carried; without one, save says so.
// The (certificate, issuer) pairs whose revocation verify will check: each link of the
// signing chain, and each link of the TSA chain inside an RFC 3161 countersignature.
std::vector<std::pair<verify::Chain, verify::RevocationPurpose>> revocable_links(const verify::SignerInfo& info)
{
  std::vector<std::pair<verify::Chain, verify::RevocationPurpose>> out;
  for (std::size_t i = 0; i + 1 < info.chain.size(); ++i) {
    verify::Chain pair;
    pair.push_back(verify::clone(info.chain[i].get()));
    pair.push_back(verify::clone(info.chain[i + 1].get()));
    out.emplace_back(std::move(pair), verify::RevocationPurpose::code_signing);
  }
  if (info.timestamp_token.empty()) return out;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(info.timestamp_token.data());
  verify::CmsPtr cms(d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(info.timestamp_token.size())));
  if (!cms) return out;  // verify reports a token it cannot read
  verify::X509StackPtr certs(CMS_get1_certs(cms.get()));
  for (int i = 0; certs && i < sk_X509_num(certs.get()); ++i)
    for (int j = 0; j < sk_X509_num(certs.get()); ++j) {
      X509* cert = sk_X509_value(certs.get(), i);
      X509* issuer = sk_X509_value(certs.get(), j);
      if (i == j || X509_check_issued(issuer, cert) != X509_V_OK) continue;
      verify::Chain pair;
      pair.push_back(verify::clone(cert));
      pair.push_back(verify::clone(issuer));
      out.emplace_back(std::move(pair), verify::RevocationPurpose::timestamping);
      break;
    }
  return out;
}

// Where a signing or TSA chain in the bundle names CRL distribution points and no CRL from
// that issuer travels with it, verify would report revocation as unknown (issue 4): with a
// CRL fetcher the CRLs are downloaded now and returned to be carried; without one, save
// says so.
std::vector<TrustFile> missing_crls(const Graph& graph, const SaveOptions& options, const Logger& log)
{
  std::vector<TrustFile> fetched;
  verify::CrlSet crls;
  for (const auto& f : options.trust)
    if (f.media_type == k_media_type_crl) crls.add_bytes(f.bytes, f.title);
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  std::set<std::string> said;
  for (const auto& d : graph.referrer_nodes) {
    Manifest m = Manifest::parse(*graph.manifests.get(d), graph.nodes.at(d).media_type, d.str());
    if (!is_signature_manifest(m) || m.layers.size() != 1 || m.layers[0].size > (32u << 20)) continue;
    verify::SignerInfo info;
    try {
      auto envelope = fetch_bytes(*graph.origin.at(m.layers[0].digest), m.layers[0], 32u << 20);
      info = verify::verify_envelope(m.layers[0].media_type, envelope);
    } catch (const verify::IntegrityError&) {
      continue;  // an envelope ferry cannot read is verify's to report, not save's
    }
    for (const auto& [pair, purpose] : revocable_links(info)) {
      auto urls = verify::crl_distribution_points(pair.front().get());
      if (urls.empty()) continue;
      auto r = verify::check_revocation(pair, crls, now, std::nullopt, purpose);
      if (r.status != verify::RevocationStatus::unknown) continue;
      if (!options.fetch_crl) {
        if (said.insert(r.reason).second)
          log("note: signature " + d.short_str() + ": " + r.reason +
              "; carry the CRL with --crl or --fetch-crls, or verify will report revocation as unknown");
        continue;
      }
      for (const auto& url : urls) {
        if (!said.insert(url).second) continue;
        std::string bytes = options.fetch_crl(url);
        try {
          crls.add_bytes(bytes, url);
        } catch (const Error& e) {
          throw Error(Errc::invalid_manifest, "CRL from " + url + ": " + e.what());
        }
        std::string name;
        for (char ch : url.substr(url.find("://") == std::string::npos ? 0 : url.find("://") + 3))
          name += (std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-') ? ch : '_';
        if (name.size() > 4 && name.compare(name.size() - 4, 4, ".crl") == 0) name.resize(name.size() - 4);
        fetched.push_back({"crl/" + name + ".crl", std::string(k_media_type_crl), bytes});
        log("fetched CRL " + url);
      }
    }
  }
  return fetched;
}

// `.tar.zst`: blobs are written in the bundle's order. Meanwhile a pool of `workers` threads
// fetches the small blobs (up to k_prefetch_max bytes) of the next `workers` positions into
// memory; large blobs stream from the registry into the compressor when their turn comes.
// Memory stays bounded by about 2 x workers x k_prefetch_max.
constexpr std::uint64_t k_prefetch_max = 4 << 20;

void write_in_order(BundleWriter& writer, const std::function<std::unique_ptr<Reader>(const Descriptor&)>& fetch,
                    const std::function<void(const Descriptor&)>& stream, unsigned workers)
{
  const auto& pending = writer.pending();
  const std::size_t n = pending.size();
  workers = std::max(1u, workers);
  struct Slot {
    std::string bytes;
    std::exception_ptr error;
    bool ready = false;
  };
  std::vector<Slot> slots(n);
  std::mutex mutex;
  std::condition_variable cv;
  TaskPool pool(workers, workers);  // after `slots`: its threads are joined before they go
  std::size_t submitted = 0;
  for (std::size_t i = 0; i < n; ++i) {
    // Keep the next `workers` small blobs being fetched.
    for (; submitted < std::min(n, i + 1 + workers); ++submitted) {
      const std::size_t k = submitted;
      if (pending[k].get().size > k_prefetch_max) continue;  // streamed by the writer
      pool.submit([&, k] {
        std::string bytes;
        std::exception_ptr error;
        try {
          auto r = fetch(pending[k]);
          bytes = read_all(*r, k_prefetch_max, pending[k].get().digest.str());
        } catch (...) {
          error = std::current_exception();
        }
        std::lock_guard lock(mutex);
        slots[k] = {std::move(bytes), error, true};
        cv.notify_all();
      });
    }
    const Descriptor& d = pending[i];
    try {
      if (d.size > k_prefetch_max) {
        stream(d);
        continue;
      }
      std::string bytes;
      {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return slots[i].ready; });
        if (slots[i].error) std::rethrow_exception(slots[i].error);
        bytes = std::move(slots[i].bytes);
      }
      StringReader r(std::move(bytes));
      writer.write(d, r);
    } catch (...) {
      rethrow_with_context("blob " + d.digest.str());
    }
  }
  pool.finish();
}

// The ways forward save names when it refuses --platform on a signed index
// (refuse_signed_index_subset): every platform, or the platform images by digest, signed
// after saving.
std::string save_ways_forward(const Reference& ref, const std::vector<Descriptor>& chosen)
{
  std::string children;
  for (const auto& c : chosen) children += (children.empty() ? "" : " ") + ref.name() + "@" + c.digest.str();
  return "either drop --platform to save every platform (the signature stays verifiable), or save the platform images by "
         "digest (ferry save " + children + " -o BUNDLE) and sign them after saving (ferry sign BUNDLE --key KEY --cert CHAIN)";
}

// Tags that stay apart (issue 14): several platform images of one index saved with
// --platform each get their own tag (platform_image_tags, as copy names them).
void name_platform_images(std::vector<BundleRoot>& roots, const Logger& log)
{
  if (roots.size() < 2 || roots.front().tag.empty()) return;
  std::vector<Descriptor> images;
  for (const auto& r : roots) images.push_back(r.desc);
  auto tags = platform_image_tags(roots.front().tag, images);
  for (std::size_t i = 0; i < roots.size(); ++i) {
    log("note: " + (roots[i].desc.platform ? roots[i].desc.platform->str() : std::string("the image")) + " of " +
        roots[i].source->str() + " is tagged " + tags[i] + " in the bundle (one tag cannot name several platform images)");
    roots[i].tag = tags[i];
    roots[i].source->tag = tags[i];
  }
}

// The disk filled up while writing the bundle (issue 14): the partial output and its resume
// sidecar are removed, not kept for a re-run — left there they would keep the disk full,
// and a re-run needs the space anyway; an existing bundle at `output` stays as it was.
Error disk_full(const fs::path& output, std::uint64_t bytes, std::unique_ptr<BundleWriter> writer)
{
  fs::path given = output.has_filename() ? output : output.parent_path();
  fs::path partial = given.string() + ".partial";
  writer.reset();  // closes the files (and would keep them for a resume)
  std::error_code ec;
  fs::remove_all(partial, ec);
  fs::remove(given.string() + ".partial.resume", ec);
  fs::remove(given.string() + ".partial.resume.tmp", ec);
  fs::path dir = given.has_parent_path() ? given.parent_path() : fs::path(".");
  auto space = fs::space(dir, ec);
  std::string free = ec ? std::string() : ", " + human_bytes(space.available) + " free there";
  return Error(Errc::no_space, given.string() + ": no space left on device while writing the bundle (its content is " +
                                   human_bytes(bytes) + free + "); removed the partial output " + partial.string() +
                                   "; free some space or write the bundle elsewhere, then run save again");
}

// A delta bundle (issue 16): the blobs of `blobs` that `have` holds with the same size are
// taken out of it and returned as the delta record. Manifests are never blobs here, and the
// blobs of signature-like manifests (Notation envelopes, cosign payloads, Sigstore bundles)
// stay: verify checks signatures from what the bundle carries, whatever the base.
DeltaRecord leave_out(const Graph& graph, std::vector<Descriptor>& blobs, const Inventory& have, const Logger& log)
{
  DeltaRecord delta;
  delta.base_kind = have.kind;
  delta.base = have.digest();
  delta.base_source = have.source;
  std::map<Digest, std::string> suffixes;
  for (const auto& [subject, list] : graph.attachments)
    for (const auto& a : list) suffixes[a.desc.digest] = a.suffix;
  std::set<Digest> carried;
  for (const auto& [d, node] : graph.nodes) {
    if (!media_type::is_manifest(node.media_type) || media_type::is_index(node.media_type)) continue;
    auto bytes = graph.manifests.get(d);
    if (!bytes) continue;
    Manifest m = Manifest::parse(*bytes, node.media_type, d.str());
    auto suffix = suffixes.find(d);
    if (signature_kind(m, suffix != suffixes.end() ? suffix->second : std::string()).empty()) continue;
    if (m.config) carried.insert(m.config->digest);
    for (const auto& l : m.layers) carried.insert(l.digest);
  }
  auto held = have.blobs();
  std::vector<Descriptor> kept;
  for (const auto& b : blobs) {
    auto h = held.find(b.digest);
    if (h == held.end() || carried.count(b.digest)) {
      kept.push_back(b);
      continue;
    }
    if (h->second.size != b.size) {
      log("note: blob " + b.digest.str() + " is in the inventory with size " + std::to_string(h->second.size) +
          ", not " + std::to_string(b.size) + ": carried");
      kept.push_back(b);
      continue;
    }
    delta.left_out.push_back({b.digest, b.size, h->second.repositories});
  }
  std::sort(delta.left_out.begin(), delta.left_out.end(), [](const LeftOutBlob& a, const LeftOutBlob& b) { return a.digest < b.digest; });
  blobs = std::move(kept);
  log("delta against " + have.source + " (" + delta.base.str() + "): leaving out " + counted(delta.left_out.size(), "blob") +
      ", " + human_bytes(delta.left_out_bytes()) + ", the base holds");
  return delta;
}

} // namespace

SaveResult save(const SaveOptions& options, const RepositoryOpener& open, const Logger& log)
{
  if (options.references.empty()) throw Error(Errc::invalid_argument, "save: no references given");
  std::vector<Reference> refs;
  for (const auto& text : options.references) refs.push_back(Reference::parse(text));

  SaveResult result;
  result.output = options.output;
  result.format = options.format ? *options.format : format_for_output(options.output);
  check_output(options.output, result.format);
  if (options.volume_size && result.format == BundleFormat::dir)
    throw Error(Errc::invalid_argument, "--max-size splits an archive into volumes: name the output .tar, .tar.zst or .tar.gz, "
                                        "not a directory");

  auto whole = std::make_unique<Graph>();  // dropped once the writer's plan holds it
  Graph& graph = *whole;
  std::vector<std::shared_ptr<remote::Repository>> repos;
  for (const auto& ref : refs) {
    // Each reference is discovered into its own graph and merged only when complete, so a
    // failed reference leaves nothing behind (--keep-going).
    Graph own;
    std::vector<BundleRoot> own_roots;
    try {
      auto repo = open(ref.registry, ref.repository);
      repos.push_back(repo);
      refuse_signed_index_subset(*repo, ref, options.platforms, options.graph, "save",
                                 [&](const std::vector<Descriptor>& chosen) { return save_ways_forward(ref, chosen); });
      for (const auto& root : resolve_roots(*repo, ref, options.platforms)) {
        log("resolved " + ref.str() + " -> " + root.digest.str() +
            (root.platform ? " (" + root.platform->str() + ")" : ""));
        own.add(*repo, root, options.graph);
        BundleRoot br;
        br.desc = root;
        br.source = ref;
        if (!ref.digest && ref.tag.empty()) br.source->tag = "latest";
        br.tag = br.source->tag;
        own_roots.push_back(std::move(br));
      }
      name_platform_images(own_roots, log);
    } catch (...) {
      try {
        rethrow_with_context(ref.str());
      } catch (const Error& e) {
        if (!options.keep_going) throw;
        log(std::string("skipping ") + ref.str() + " (--keep-going)");
        result.failures.push_back(e.what());
        continue;
      }
    }
    graph.merge(own);
    for (auto& r : own_roots) {
      // The same reference given twice is one root.
      bool again = std::any_of(result.roots.begin(), result.roots.end(), [&](const BundleRoot& x) {
        return x.desc.digest == r.desc.digest && x.tag == r.tag && x.source->str() == r.source->str();
      });
      if (!again) result.roots.push_back(std::move(r));
    }
  }
  if (result.roots.empty())
    throw Error(Errc::not_found, "save: no reference could be saved (" + std::to_string(result.failures.size()) + " failed)");

  auto manifests = graph.manifests_in_order();
  auto blobs = graph.blobs();
  // Small blobs (configs, signature envelopes) before layers (design §3).
  std::stable_partition(blobs.begin(), blobs.end(), [&](const Descriptor& d) { return graph.small_blobs.count(d.digest) != 0; });
  result.manifests = manifests.size();
  result.referrers = graph.referrer_nodes.size() + graph.attachment_nodes.size();
  for (const auto& [d, desc] : graph.nodes) result.bytes += desc.size;
  std::optional<DeltaRecord> delta;
  if (options.have) {
    delta = leave_out(graph, blobs, *options.have, log);
    result.delta = delta;
    result.bytes -= delta->left_out_bytes();
  }
  result.blobs = blobs.size();
  log(std::string(options.dry_run ? "would write " : "writing ") + counted(manifests.size(), "manifest") + " (" +
      counted(result.referrers, "referrer") + ") and " + counted(blobs.size(), "blob") + ", " + human_bytes(result.bytes) +
      ", to " + options.output.string());

  std::vector<TrustFile> trust_files = options.trust;
  if (!options.dry_run)  // a dry run fetches no blob and no CRL
    for (auto& f : missing_crls(graph, options, log)) trust_files.push_back(std::move(f));
  std::optional<TrustArtifact> trust;
  if (!trust_files.empty()) {
    trust = build_trust_artifact(trust_files);
    result.trust_pin = trust->manifest.digest;
  }
  // The whole bundle is planned before a byte is written (issue 5): parents before
  // children (the reverse of the push order) so a streaming reader knows every manifest is
  // wanted when it arrives, then the trust artifact, small blobs, layers (design §3).
  std::vector<BundleItem> items;
  items.reserve(manifests.size() + blobs.size() + 8);
  for (auto it = manifests.rbegin(); it != manifests.rend(); ++it) items.push_back({*it, *graph.manifests.get(it->digest)});
  if (trust) {
    items.push_back({trust->manifest, trust->manifest_bytes});
    for (const auto& [d, bytes] : trust->blobs)
      if (!graph.contains(d.digest)) items.push_back({d, bytes});  // else written with the graph (the empty config)
  }
  BundleRecord record;
  record.imageset = options.imageset_record;
  record.delta = delta;
  std::optional<RecordArtifact> record_artifact;
  if (!record.empty()) {
    record_artifact = build_record_artifact(record);
    items.push_back({record_artifact->manifest, record_artifact->manifest_bytes});
    for (const auto& blob : record_artifact->blobs) {
      const Digest& digest = blob.first.digest;
      if (!graph.contains(digest) &&
          std::none_of(items.begin(), items.end(), [&](const BundleItem& i) { return i.desc.digest == digest; }))
        items.push_back({blob.first, blob.second});
    }
  }
  for (auto& b : blobs) items.push_back({std::move(b), std::nullopt});
  std::vector<Descriptor>().swap(blobs);  // the 1,000-image set holds each descriptor once (issue 18)
  std::string index = build_index_json(result.roots, graph, trust ? std::optional(trust->manifest) : std::nullopt,
                                       record_artifact ? std::optional(record_artifact->manifest) : std::nullopt);
  if (options.dry_run) {
    result.dry_run = true;
    std::map<const Source*, std::string> names;
    for (const auto& r : repos) names[r.get()] = r->display();
    for (const auto& item : items) {
      auto origin = graph.origin.find(item.desc.digest);
      std::string repo = origin != graph.origin.end() ? names[origin->second] : "";
      result.plan.push_back({item.bytes ? "write" : "fetch", repo, item.desc, {}});
    }
    if (delta)
      for (const auto& b : delta->left_out) {
        auto origin = graph.origin.find(b.digest);
        result.plan.push_back({"leave out", origin != graph.origin.end() ? names[origin->second] : "",
                               graph.nodes.at(b.digest), {}});
      }
    fs::path partial = options.output.string() + ".partial";
    if (options.resume && fs::exists(partial)) result.partial = partial;
    return result;
  }
  // `items` and `index` hold every descriptor and manifest to write: of the graph only where
  // each blob comes from is still needed, so it goes before the writer plans (one copy of the
  // 1,000-image set in memory, issue 18).
  const std::map<Digest, Source*> origin = std::move(graph.origin);
  whole.reset();
  BundleWriter::Options wopts;
  wopts.resume = options.resume;
  wopts.volume_size = options.volume_size;
  std::unique_ptr<BundleWriter> writer;
  try {
    writer = BundleWriter::create(options.output, result.format, index, std::move(items), wopts);
    if (writer->reused_bytes() > 0) {
      result.resumed_blobs = writer->reused_blobs();
      result.continued_blobs = writer->continued_blobs();
      result.resumed_bytes = writer->reused_bytes();
      log("resuming " + writer->partial_path().string() + ": " + counted(writer->reused_blobs(), "blob") +
          " already there, " + std::to_string(writer->continued_blobs()) + " to continue from a checkpoint (" +
          human_bytes(writer->reused_bytes()) + " verified on disk)");
    }
    ProgressPhase phase(options.progress, "saving", writer->pending());
    auto fetch = [&](const Descriptor& d) { return with_progress(origin.at(d.digest)->fetch(d), d, options.progress); };
    // One blob from the registry into the bundle; a blob an interrupted save got part of
    // continues from there (a Range request), or from its start when the kept part was bad.
    auto transfer = [&](const Descriptor& d) {
      std::uint64_t from = writer->resume_offset(d.digest);
      if (from > 0) {
        try {
          auto r = with_progress(origin.at(d.digest)->fetch_from(d, from), d, options.progress, from);
          writer->write(d, *r);
          return;
        } catch (const Error& e) {
          if (e.code() != Errc::digest_mismatch && e.code() != Errc::size_exceeds_limit) throw;
          log("blob " + d.digest.short_str() + ": the part kept from an interrupted save does not match; fetching it whole");
        }
      }
      auto r = fetch(d);
      writer->write(d, *r);
    };
    try {
      if (writer->ordered()) write_in_order(*writer, fetch, transfer, options.concurrency);
      else
        parallel_for_each(writer->pending(), options.concurrency, [&](const Descriptor& d) {
          try {
            transfer(d);
          } catch (...) {
            rethrow_with_context("blob " + d.digest.str());
          }
        });
    } catch (const Error& e) {
      if (writer->resumable() && e.code() != Errc::no_space)
        log("kept the partial output " + writer->partial_path().string() + ": run the same command again to resume");
      throw;
    } catch (...) {
      if (writer->resumable())
        log("kept the partial output " + writer->partial_path().string() + ": run the same command again to resume");
      throw;
    }
    writer->commit();
  } catch (const Error& e) {
    if (e.code() != Errc::no_space) throw;
    throw disk_full(options.output, result.bytes, std::move(writer));
  }
  return result;
}

} // namespace ferry
