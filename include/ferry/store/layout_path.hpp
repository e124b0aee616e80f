#pragma once
/// The one place where an archive entry or a directory entry becomes a path of the layout
/// (design §8). Every reader of every format goes through layout_path(); whatever it refuses,
/// every command refuses.
#include <ferry/digest.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace ferry {

/// What kind of file system object an entry is.
enum class EntryType {
  file,       ///< a regular file with its content in the entry
  directory,  ///< a directory
  symlink,    ///< a symbolic link
  other,      ///< a hard link, a device, a FIFO, a socket, a sparse file
};

/// The longest name of a top-level file outside the layout (Role::extra): a file name
/// (NAME_MAX); longer names are refused.
inline constexpr std::size_t k_max_extra_name = 255;

struct LayoutPath {
  enum class Role {
    oci_layout,  ///< `oci-layout`
    index_json,  ///< `index.json`
    blob,        ///< `blobs/<alg>/<hex>`
    directory,   ///< `blobs` or `blobs/<alg>`
    ignored,     ///< the archive's root directory itself (`./`, `.`), as GNU tar writes it
    extra,       ///< another regular file at the top level (`manifest.json` of `ctr export` or
                 ///< `docker save`, `repositories`): never read, never pushed, reported
  };
  Role role = Role::ignored;
  /// The canonical path: `oci-layout`, `index.json`, `blobs/sha256/<hex>`, `blobs`, ...
  std::string path;
  /// The blob's digest (Role::blob).
  std::optional<Digest> digest;
};

/// Canonicalises the entry name `raw` and checks it against the layout's entry rules
/// (image-spec image-layout.md; design §8):
///  - a leading `./` is dropped once, a directory's trailing `/` is dropped, and `.` / `./`
///    (the archive's own root) is ignored — GNU tar's `tar -C dir -cf x.tar .` writes these;
///  - a name that is empty, absolute, holds a NUL or another control character, an empty
///    segment (`a//b`), `.` or `..` is not canonical and is refused;
///  - `oci-layout`, `index.json` and `blobs/<alg>/<hex>` (a valid digest) are the layout's
///    files; any other regular file at the top level (no `/`, at most k_max_extra_name
///    bytes) is Role::extra, a file another tool keeps beside the layout (the image-spec
///    allows them); a file anywhere else (under `blobs/`, in a directory) is refused;
///  - only `blobs` and `blobs/<alg>` may be directories (a directory of another tool is
///    refused: none writes one into a layout, and a subtree ferry skipped would be a place
///    for content no command looked at), and nothing may be of another type.
/// Throws Errc::invalid_manifest as `<where>: unsafe entry name "<raw>" (<reason>)`,
/// `<where>: entry "<raw>" is a symbolic link`, `... unexpected entry "<raw>" ...`.
LayoutPath layout_path(std::string_view raw, EntryType type, const std::string& where);

} // namespace ferry
