#include <ferry/trust_material.hpp>

#include <ferry/bundle.hpp>
#include <ferry/error.hpp>
#include <ferry/manifest.hpp>
#include <ferry/store/layout.hpp>
#include <ferry/media_type.hpp>
#include <ferry/util/file.hpp>
#include <ferry/verify/revocation.hpp>
#include <ferry/verify/sigstore.hpp>
#include <ferry/verify/trust_policy.hpp>
#include <ferry/verify/trust_store.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <regex>
#include <set>

namespace fs = std::filesystem;
using nlohmann::json;

namespace ferry {

namespace {

std::string read_file(const fs::path& p, std::size_t limit)
{
  FileReader r(p);
  return read_all(r, limit, p.string());
}

} // namespace

std::string CosignIdentityPolicy::to_json() const
{
  json j = json::object();
  auto put = [&](const char* key, const std::string& v) {
    if (!v.empty()) j[key] = v;
  };
  put("certificateIdentity", identity);
  put("certificateIdentityRegexp", identity_regexp);
  put("certificateOidcIssuer", issuer);
  put("certificateOidcIssuerRegexp", issuer_regexp);
  if (ignore_tlog) j["insecureIgnoreTlog"] = true;
  if (ignore_sct) j["insecureIgnoreSct"] = true;
  if (use_signed_timestamps) j["useSignedTimestamps"] = true;
  return j.dump(2) + "\n";
}

CosignIdentityPolicy CosignIdentityPolicy::parse(std::string_view text, const std::string& where)
{
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception&) {
    throw Error(Errc::invalid_manifest, where + ": not JSON");
  }
  if (!j.is_object()) throw Error(Errc::invalid_manifest, where + ": not a JSON object");
  CosignIdentityPolicy p;
  for (const auto& [key, value] : j.items()) {
    std::string* text_field = key == "certificateIdentity"           ? &p.identity
                              : key == "certificateIdentityRegexp"   ? &p.identity_regexp
                              : key == "certificateOidcIssuer"       ? &p.issuer
                              : key == "certificateOidcIssuerRegexp" ? &p.issuer_regexp
                                                                     : nullptr;
    bool* flag = key == "insecureIgnoreTlog"    ? &p.ignore_tlog
                 : key == "insecureIgnoreSct"   ? &p.ignore_sct
                 : key == "useSignedTimestamps" ? &p.use_signed_timestamps
                                                : nullptr;
    if (text_field) {
      if (!value.is_string()) throw Error(Errc::invalid_manifest, where + ": " + key + " is not a string");
      *text_field = value.get<std::string>();
    } else if (flag) {
      if (!value.is_boolean()) throw Error(Errc::invalid_manifest, where + ": " + key + " is not a boolean");
      *flag = value.get<bool>();
    } else {
      throw Error(Errc::invalid_manifest, where + ": unknown key \"" + key + "\"");
    }
  }
  for (const auto* re : {&p.identity_regexp, &p.issuer_regexp}) {
    if (re->empty()) continue;
    try {
      std::regex compiled(*re);
    } catch (const std::regex_error&) {
      throw Error(Errc::invalid_manifest, where + ": regexp \"" + *re + "\" does not compile");
    }
  }
  return p;
}

std::vector<TrustFile> collect_cosign_material(const std::optional<fs::path>& trusted_root, const std::vector<fs::path>& keys,
                                               const CosignIdentityPolicy& policy)
{
  std::vector<TrustFile> files;
  if (trusted_root) {
    std::string bytes = read_file(*trusted_root, 16 << 20);
    verify::sigstore::TrustedRoot::parse(bytes, trusted_root->string());  // validates it
    files.push_back({std::string(k_title_trusted_root), std::string(k_media_type_trusted_root), std::move(bytes)});
  }
  std::set<std::string> names;
  for (const auto& k : keys) {
    std::string bytes = read_file(k, 1 << 20);
    verify::sigstore::parse_public_key(bytes, k.string());
    std::string name = k.filename().string();
    if (!is_safe_trust_title(std::string(k_title_cosign_keys) + name))
      throw Error(Errc::invalid_argument, k.string() + ": a key file name may hold only letters, digits, '.', '_' and '-'");
    if (!names.insert(name).second) throw Error(Errc::invalid_argument, k.string() + ": two keys named " + name);
    files.push_back({std::string(k_title_cosign_keys) + name, std::string(k_media_type_cosign_key), std::move(bytes)});
  }
  if (!policy.empty())
    files.push_back({std::string(k_title_cosign_policy), std::string(k_media_type_cosign_policy), policy.to_json()});
  return files;
}

std::vector<TrustFile> collect_trust_material(const std::optional<fs::path>& policy,
                                              const std::optional<fs::path>& trust_store,
                                              const std::vector<fs::path>& crls)
{
  std::vector<TrustFile> files;
  if (policy) {
    verify::TrustPolicyDocument::load(*policy);  // validates the whole document
    std::string name = policy->filename() == "trustpolicy.oci.json" ? "trustpolicy.oci.json" : "trustpolicy.json";
    files.push_back({name, std::string(k_media_type_policy), read_file(*policy, 4 << 20)});
  }
  if (trust_store) {
    fs::path root = *trust_store;
    if (!fs::exists(root / "x509") && fs::exists(root / "truststore" / "x509")) root /= "truststore";
    if (!fs::is_directory(root / "x509"))
      throw Error(Errc::not_found, trust_store->string() + ": not a Notation trust store (no x509/ directory)");
    verify::TrustStore store(root);
    for (const char* type : {"ca", "signingAuthority", "tsa"}) {
      fs::path tdir = root / "x509" / type;
      if (!fs::is_directory(tdir)) continue;
      std::vector<fs::path> names;
      for (const auto& e : fs::directory_iterator(tdir)) names.push_back(e.path());
      std::sort(names.begin(), names.end());
      for (const auto& named : names) {
        std::string name = named.filename().string();
        store.load(type, name);  // validates every file as notation would
        std::vector<fs::path> certs;
        for (const auto& f : fs::directory_iterator(named)) certs.push_back(f.path());
        std::sort(certs.begin(), certs.end());
        for (const auto& f : certs)
          files.push_back({"truststore/x509/" + std::string(type) + "/" + name + "/" + f.filename().string(),
                           std::string(k_media_type_cert), read_file(f, 1 << 20)});
      }
    }
  }
  std::vector<std::string> taken;
  for (const auto& c : crls) {
    std::vector<fs::path> paths;
    if (fs::is_directory(c)) {
      for (const auto& e : fs::directory_iterator(c))
        if (e.is_regular_file()) paths.push_back(e.path());
      std::sort(paths.begin(), paths.end());
    } else {
      paths.push_back(c);
    }
    for (const auto& p : paths) {
      verify::CrlSet check;
      check.add_path(p);  // must parse
      std::string base = p.stem().string();
      std::string clean;
      for (char ch : base) clean += (std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-') ? ch : '_';
      if (clean.empty()) clean = "crl";
      std::string title = "crl/" + clean + ".crl";
      for (int i = 2; std::find(taken.begin(), taken.end(), title) != taken.end(); ++i)
        title = "crl/" + clean + "-" + std::to_string(i) + ".crl";
      taken.push_back(title);
      files.push_back({title, std::string(k_media_type_crl), read_file(p, 32 << 20)});
    }
  }
  return files;
}

FileArtifact build_file_artifact(std::string_view artifact_type, const std::vector<TrustFile>& files)
{
  FileArtifact a;
  Descriptor config;
  config.media_type = media_type::k_oci_empty;
  config.digest = Digest::of("{}");
  config.size = 2;
  a.blobs.emplace_back(config, "{}");
  json layers = json::array();
  for (const auto& f : files) {
    Descriptor d;
    d.media_type = f.media_type;
    d.digest = Digest::of(f.bytes);
    d.size = f.bytes.size();
    json l = d.to_json_basic();
    l["annotations"] = {{std::string(k_annotation_title), f.title}};
    layers.push_back(l);
    if (std::none_of(a.blobs.begin(), a.blobs.end(), [&](const auto& b) { return b.first.digest == d.digest; }))
      a.blobs.emplace_back(d, f.bytes);
  }
  json m = {{"schemaVersion", 2},
            {"mediaType", media_type::k_oci_manifest},
            {"artifactType", artifact_type},
            {"config", config.to_json_basic()},
            {"layers", layers}};
  a.manifest_bytes = m.dump();
  a.manifest.media_type = media_type::k_oci_manifest;
  a.manifest.digest = Digest::of(a.manifest_bytes);
  a.manifest.size = a.manifest_bytes.size();
  a.manifest.artifact_type = std::string(artifact_type);
  return a;
}

TrustArtifact build_trust_artifact(const std::vector<TrustFile>& files)
{
  return build_file_artifact(media_type::k_ferry_trust, files);
}

bool is_safe_trust_title(const std::string& title)
{
  static const std::regex component("^[A-Za-z0-9_.-]+$");
  if (title.empty() || title.size() > 1024 || title[0] == '/') return false;
  std::size_t start = 0;
  for (;;) {
    auto slash = title.find('/', start);
    std::string c = title.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (c.empty() || c == "." || c == ".." || !std::regex_match(c, component)) return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return title == "trustpolicy.json" || title == "trustpolicy.oci.json" || title.rfind("truststore/x509/", 0) == 0 ||
         title.rfind("crl/", 0) == 0 || title == k_title_trusted_root || title == k_title_cosign_policy ||
         (title.rfind(k_title_cosign_keys, 0) == 0 && title.find('/', k_title_cosign_keys.size()) == std::string::npos);
}

std::vector<std::pair<std::string, Descriptor>> trust_artifact_files(const Descriptor& manifest, const std::string& bytes)
{
  Manifest m = Manifest::parse(bytes, manifest.media_type, manifest.digest.str());
  if (!is_trust_artifact(m))
    throw Error(Errc::invalid_manifest, "trust material " + manifest.digest.str() + " is not a trust artifact");
  std::vector<std::pair<std::string, Descriptor>> out;
  std::set<std::string> titles;
  for (const auto& l : m.layers) {
    std::string title = l.annotation(std::string(k_annotation_title));
    if (!is_safe_trust_title(title))
      throw Error(Errc::invalid_manifest, "trust material " + manifest.digest.str() + ": file \"" + title + "\" has an unsafe name");
    if (!titles.insert(title).second)
      throw Error(Errc::invalid_manifest, "trust material " + manifest.digest.str() + ": file \"" + title + "\" is listed twice");
    out.emplace_back(title, l);
  }
  return out;
}

std::vector<TrustFile> carried_trust_files(const LayoutReader& bundle, const Digest& pin)
{
  const std::string where = bundle.path().string();
  auto contents = classify(bundle);
  if (!contents.trust)
    throw Error(Errc::verification_failed, where + ": --trust-pin given, but the bundle carries no trust material");
  if (contents.trust->digest != pin)
    throw Error(Errc::verification_failed, where + ": the bundle's trust material is " + contents.trust->digest.str() +
                                               ", not the pinned " + pin.str() + "; refusing to use it");
  std::vector<TrustFile> files;
  for (const auto& [title, desc] : trust_artifact_files(*contents.trust, *bundle.metadata().get(pin))) {
    const std::string* bytes = bundle.kept(desc.digest);
    if (!bytes || bytes->size() != desc.size)
      throw Error(Errc::verification_failed, where + ": trust material file \"" + title + "\" (" + desc.digest.str() +
                                                 ") is missing or damaged");
    files.push_back({title, desc.media_type, *bytes});
  }
  return files;
}

void materialise_trust_files(const std::vector<TrustFile>& files, const fs::path& dir)
{
  for (const auto& f : files) {
    if (!is_safe_trust_title(f.title))
      throw Error(Errc::invalid_manifest, "trust material file \"" + f.title + "\" has an unsafe name");
    fs::path p = dir / f.title;
    fs::create_directories(p.parent_path());
    write_file_atomic(p, f.bytes);
  }
}

} // namespace ferry
