// ferry sign: Notary Project signatures added to a bundle as referrers, offline.
#include <ferry/sign.hpp>

#include <ferry/bundle.hpp>
#include <ferry/error.hpp>
#include <ferry/media_type.hpp>
#include <ferry/remote/curl_http_client.hpp>
#include <ferry/store/volumes.hpp>
#include <ferry/store/bundle_writer.hpp>
#include <ferry/util/reader.hpp>

#include <nlohmann/json.hpp>

#include <set>

namespace fs = std::filesystem;

namespace ferry::sign {

namespace {

std::string display_reference(const BundleRoot& root)
{
  if (root.source) return root.source->str();
  if (!root.tag.empty()) return root.tag;
  return root.desc.digest.str();
}

bool root_matches(const BundleRoot& root, const std::string& ref)
{
  if (Digest::is_valid(ref)) return root.desc.digest.str() == ref;
  if (root.tag == ref) return true;
  if (!root.source) return false;
  if (root.source->str() == ref) return true;
  try {
    // `alpine:3` names docker.io/library/alpine:3 (distribution's normalisation).
    return Reference::parse(ref).str() == root.source->str();
  } catch (const Error&) {
    return false;
  }
}

/// The roots named by `refs` (all when empty), each once, in index.json order.
std::vector<BundleRoot> select_roots(const BundleContents& contents, const std::vector<std::string>& refs,
                                     const fs::path& bundle)
{
  if (contents.roots.empty()) throw Error(Errc::not_found, bundle.string() + ": the bundle has no root to sign");
  std::set<Digest> wanted;
  for (const auto& ref : refs) {
    bool any = false;
    for (const auto& r : contents.roots)
      if (root_matches(r, ref)) {
        wanted.insert(r.desc.digest);
        any = true;
      }
    if (!any) throw Error(Errc::not_found, bundle.string() + ": no root matches \"" + ref + "\"");
  }
  std::vector<BundleRoot> out;
  std::set<Digest> seen;
  for (const auto& r : contents.roots)
    if ((refs.empty() || wanted.count(r.desc.digest)) && seen.insert(r.desc.digest).second) out.push_back(r);
  return out;
}

/// index.json with the new signature entries: every existing entry kept as it was (key
/// order and unknown fields included), the new ones after the referrers, before the trust
/// artifact (the order save writes).
std::string rewrite_index(const std::string& old_index, const std::vector<SignatureManifest>& sigs, const fs::path& bundle)
{
  nlohmann::ordered_json index = nlohmann::ordered_json::parse(old_index, nullptr, false);
  if (index.is_discarded() || !index.is_object())
    throw Error(Errc::invalid_manifest, bundle.string() + ": index.json is not a JSON object");
  auto& manifests = index["manifests"];
  if (manifests.is_null()) manifests = nlohmann::ordered_json::array();
  if (!manifests.is_array()) throw Error(Errc::invalid_manifest, bundle.string() + ": index.json \"manifests\" is not an array");
  std::size_t pos = manifests.size();
  for (std::size_t i = 0; i < manifests.size(); ++i) {
    const auto& e = manifests[i];
    if (!e.is_object()) continue;
    const auto ann = e.find("annotations");
    bool trust = e.value("artifactType", std::string()) == media_type::k_ferry_trust ||
                 (ann != e.end() && ann->is_object() &&
                  ann->value(std::string(k_annotation_ref_name), std::string()) == k_trust_ref_name);
    if (trust) {
      pos = i;
      break;
    }
  }
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (std::size_t i = 0; i < pos; ++i) out.push_back(manifests[i]);
  for (const auto& s : sigs) {
    // oras-go's descriptor as the OCI store lists it: ocispec.Descriptor field order.
    nlohmann::ordered_json e;
    e["mediaType"] = s.desc.media_type;
    e["digest"] = s.desc.digest.str();
    e["size"] = s.desc.size;
    nlohmann::ordered_json ann = nlohmann::ordered_json::object();
    for (const auto& [k, v] : s.desc.annotations) ann[k] = v;
    e["annotations"] = ann;
    e["artifactType"] = s.desc.artifact_type;
    out.push_back(std::move(e));
  }
  for (std::size_t i = pos; i < manifests.size(); ++i) out.push_back(manifests[i]);
  manifests = std::move(out);
  return index.dump();
}

} // namespace

SignResult sign_bundle(const SignOptions& options, const Logger& log)
{
  // "dir/" would put the partial output inside the bundle it replaces.
  fs::path bundle = options.bundle;
  while (!bundle.has_filename() && bundle.has_parent_path() && bundle != bundle.root_path()) bundle = bundle.parent_path();
  SignResult result;
  result.bundle = bundle;
  result.format = options.format.value_or(format_from_path(bundle));
  // Signing rewrites the bundle as one file; it does not write volumes.
  if (has_volume_suffix(bundle) && result.format != BundleFormat::dir)
    throw Error(Errc::invalid_argument, bundle.string() + ": a bundle saved as volumes (--max-size) cannot be signed in "
                                                          "place; sign a bundle saved without --max-size");
  std::error_code ec;
  if (!fs::exists(bundle, ec)) throw Error(Errc::not_found, bundle.string() + ": no such bundle");
  if (options.timestamp_url.empty() != options.tsa_ca_file.empty())
    throw Error(Errc::invalid_argument, "--timestamp-url and --tsa-ca go together");

  // Everything that can fail cheaply before the bundle is read.
  SigningIdentity id = load_identity_files(options.key_file, options.cert_file);
  verify::Chain tsa_roots;
  if (!options.tsa_ca_file.empty()) {
    try {
      FileReader r(options.tsa_ca_file);
      tsa_roots = verify::parse_certificates(read_all(r, 4 << 20, options.tsa_ca_file.string()), options.tsa_ca_file.string());
    } catch (...) {
      rethrow_with_context("--tsa-ca");
    }
  }
  verify::TimePoint signing_time = options.time.value_or(
      std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()));
  result.alg = id.alg;
  result.signing_time = signing_time;
  if (options.expiry) result.expiry = signing_time + *options.expiry;
  X509* leaf = id.chain.front().get();
  if (signing_time < verify::not_before(leaf) || signing_time > verify::not_after(leaf))
    log("warning: the signing certificate is not valid at the signing time " + verify::format_rfc3339(signing_time) +
        " (valid " + verify::format_rfc3339(verify::not_before(leaf)) + " to " +
        verify::format_rfc3339(verify::not_after(leaf)) + "); the signature will verify only with a timestamp");

  LayoutReader::Options read;
  read.limits = options.limits;
  auto reader = LayoutReader::open(bundle, result.format, read);
  result.format = reader->format();
  BundleContents contents = classify_complete(*reader);
  std::vector<BundleRoot> roots = select_roots(contents, options.references, bundle);

  std::unique_ptr<remote::HttpClient> own_http;
  remote::HttpClient* http = options.http;
  if (!options.timestamp_url.empty() && !http) {
    own_http = std::make_unique<remote::CurlHttpClient>();
    http = own_http.get();
  }

  std::vector<SignatureManifest> sigs;
  std::vector<Envelope> envelopes;
  for (const auto& root : roots) {
    std::string ref = display_reference(root);
    try {
      EnvelopeRequest req;
      req.target.media_type = root.desc.media_type;
      req.target.digest = root.desc.digest;
      req.target.size = root.desc.size;
      req.signing_time = signing_time;
      req.expiry = result.expiry;
      req.signing_agent = options.signing_agent;
      if (!options.timestamp_url.empty())
        req.timestamper = [&](std::string_view sig) {
          return request_timestamp(*http, options.timestamp_url, sig, tsa_roots, id.chain, signing_time);
        };
      Envelope env = make_envelope(options.envelope, id, req);
      SignatureManifest sm = make_signature_manifest(req.target, env, id.chain, signing_time);
      result.signatures.push_back({ref, req.target, sm.desc, sm.envelope, static_cast<bool>(req.timestamper)});
      sigs.push_back(std::move(sm));
      envelopes.push_back(std::move(env));
    } catch (...) {
      rethrow_with_context(ref);
    }
  }

  // Rewrite through the one bundle writer: oci-layout + index.json, the old manifests, the
  // new manifests, the new small blobs, then every other old blob in its order (design §3).
  std::string index = rewrite_index(reader->index_json(), sigs, bundle);
  std::vector<BundleItem> items;
  std::set<Digest> planned;
  auto known = [&](const Descriptor& d, std::string bytes) {
    if (planned.insert(d.digest).second) items.push_back({d, std::move(bytes)});
  };
  bool added = false;
  auto add_new = [&] {
    if (added) return;
    added = true;
    for (const auto& s : sigs) known(s.desc, s.bytes);
    Descriptor empty;
    empty.media_type = media_type::k_oci_empty;
    empty.digest = Digest::parse(k_empty_json_digest);
    empty.size = k_empty_json.size();
    known(empty, std::string(k_empty_json));
    for (std::size_t i = 0; i < sigs.size(); ++i) known(sigs[i].envelope, envelopes[i].bytes);
  };
  std::vector<Descriptor> copied;
  for (const auto& d : reader->blob_order()) {
    Descriptor desc;
    desc.media_type = "application/octet-stream";
    desc.digest = d;
    desc.size = reader->blob(d)->size;
    if (auto bytes = reader->metadata().get(d)) {
      known(desc, *bytes);
      continue;
    }
    add_new();  // after the old manifests, before the first other blob
    if (planned.insert(d).second) {
      items.push_back({desc, std::nullopt});
      copied.push_back(desc);
    }
  }
  add_new();
  BundleWriter::Options wopts;
  wopts.resume = false;
  auto writer = BundleWriter::create(bundle, result.format, index, std::move(items), wopts);
  reader->for_each_blob(copied, [&](const Descriptor& d, Reader& data) {
    try {
      writer->write(d, data);
    } catch (...) {
      rethrow_with_context(bundle.string() + ": " + blob_path(d.digest));
    }
  });
  reader.reset();
  writer->commit();
  return result;
}

} // namespace ferry::sign
