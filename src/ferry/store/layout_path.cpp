#include <ferry/store/layout_path.hpp>

#include <ferry/error.hpp>
#include <ferry/util/text.hpp>
#include <ferry/store/layout.hpp>

#include <cctype>

namespace ferry {

namespace {

// A file another tool may keep beside the layout: one short name at the top level that no
// reader could take for a path (a backslash is one on Windows) or, on a case-insensitive
// file system, for one of the layout's own names.
bool is_extra_name(const std::string& name)
{
  if (name.size() > k_max_extra_name || name.find_first_of("/\\") != std::string::npos) return false;
  std::string folded;
  for (char c : name) folded += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return folded != "oci-layout" && folded != "index.json" && folded != "blobs";
}

} // namespace

LayoutPath layout_path(std::string_view raw, EntryType type, const std::string& where)
{
  const std::string quoted = quote_name(raw);
  auto unsafe = [&](const std::string& why) {
    return Error(Errc::invalid_manifest, where + ": unsafe entry name " + quoted + " (" + why + ")");
  };
  auto refuse = [&](const std::string& what) { return Error(Errc::invalid_manifest, where + ": " + what); };
  for (unsigned char c : raw)
    if (c < 0x20 || c == 0x7f) throw unsafe("a control character");
  std::string_view name = raw;
  if (name.substr(0, 2) == "./") name.remove_prefix(2);
  if (type == EntryType::directory && !name.empty() && name.back() == '/') name.remove_suffix(1);
  LayoutPath out;
  if (name.empty() || name == ".") {
    if (type == EntryType::directory && !raw.empty()) return out;  // the archive's root: ignored
    throw unsafe("empty");
  }
  if (name.front() == '/') throw unsafe("an absolute path");
  for (std::size_t start = 0;;) {
    std::size_t slash = name.find('/', start);
    std::string_view segment = name.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (segment.empty()) throw unsafe("an empty path segment");
    if (segment == "." || segment == "..") throw unsafe("\"" + std::string(segment) + "\" in the path");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  out.path = std::string(name);
  if (type == EntryType::symlink) throw refuse("entry " + quoted + " is a symbolic link");
  if (type == EntryType::other) throw refuse("entry " + quoted + " is not a regular file");
  if (type == EntryType::directory) {
    if (out.path == "blobs" || (out.path.rfind("blobs/", 0) == 0 && out.path.find('/', 6) == std::string::npos)) {
      out.role = LayoutPath::Role::directory;
      return out;
    }
    if (out.path == "oci-layout" || out.path == "index.json" || digest_from_blob_path(out.path))
      throw refuse("entry " + quoted + " is a directory, not a regular file");
    throw refuse("unexpected directory " + quoted + " (a bundle holds oci-layout, index.json and blobs/<algorithm>/<hex>)");
  }
  if (out.path == "oci-layout") out.role = LayoutPath::Role::oci_layout;
  else if (out.path == "index.json") out.role = LayoutPath::Role::index_json;
  else if ((out.digest = digest_from_blob_path(out.path))) out.role = LayoutPath::Role::blob;
  else if (out.path == "blobs") throw refuse("entry " + quoted + " is a regular file, not a directory");
  else if (is_extra_name(out.path))
    out.role = LayoutPath::Role::extra;  // another tool's file beside the layout (ctr export's manifest.json)
  else throw refuse("unexpected entry " + quoted + " (a bundle holds oci-layout, index.json, blobs/<algorithm>/<hex> and other files at its top level only)");
  return out;
}

} // namespace ferry
