// A bundle in a directory: one directory descriptor, every name below it opened relative to
// it with O_NOFOLLOW (design §8: no symbolic link is followed out of the bundle, and a path
// replaced while ferry runs cannot redirect a read).
#include "readers.hpp"

#include <ferry/error.hpp>
#include <ferry/util/file.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace ferry::detail {

namespace {

// A file opened by the reader, read with pread from its start.
class OwnedFileReader : public Reader {
public:
  OwnedFileReader(UniqueFd fd, std::uint64_t size, std::string what)
    : m_fd(std::move(fd)), m_region(m_fd.get(), 0, size, std::move(what))
  {
  }
  std::size_t read(char* buf, std::size_t n) override { return m_region.read(buf, n); }

private:
  UniqueFd m_fd;
  RegionReader m_region;
};

struct DirFree {
  void operator()(DIR* d) const { ::closedir(d); }
};

class DirReader : public LayoutReader {
public:
  DirReader(const fs::path& path, const Options& options) : LayoutReader(path, BundleFormat::dir, options)
  {
    // The bundle path itself may be a link the user made; nothing below it may.
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      throw Error(err == ENOENT || err == ENOTDIR ? Errc::not_found : Errc::io,
                  path.string() + ": " + (err == ENOENT || err == ENOTDIR ? "no such bundle directory" : std::strerror(err)));
    }
    m_dir = UniqueFd(fd);
  }

  bool random_access() const override { return true; }

  void for_each_blob(const std::vector<Descriptor>& wanted, const std::function<void(const Descriptor&, Reader&)>& fn) override
  {
    std::map<Digest, Descriptor> order;  // name order, the order of the walk
    for (const auto& d : wanted) order.emplace(d.digest, d);
    for (const auto& [d, desc] : order) {
      auto r = fetch(desc);
      fn(desc, *r);
    }
  }

protected:
  void walk(const std::function<bool(WalkEntry&)>& fn) override
  {
    m_listed = 0;
    auto top = list(m_dir.get(), "");
    // oci-layout and index.json first, as in an archive ferry writes.
    auto rank = [](const Listed& l) { return l.name == "oci-layout" ? 0 : l.name == "index.json" ? 1 : 2; };
    std::stable_sort(top.begin(), top.end(), [&](const Listed& a, const Listed& b) { return rank(a) < rank(b); });
    for (auto& l : top) {
      if (!visit(m_dir.get(), l, fn)) return;
      if (l.path.role != LayoutPath::Role::directory) continue;
      UniqueFd blobs = open_dir(m_dir.get(), "blobs");
      for (auto& alg : list(blobs.get(), "blobs/")) {
        if (!visit(blobs.get(), alg, fn)) return;
        if (alg.path.role != LayoutPath::Role::directory) continue;
        UniqueFd dir = open_dir(blobs.get(), alg.name);
        for (auto& f : list(dir.get(), alg.path.path + "/"))
          if (!visit(dir.get(), f, fn)) return;
        m_alg_dirs[alg.name] = std::move(dir);
      }
    }
  }

  std::unique_ptr<Reader> open_blob(const Digest& digest) override
  {
    auto it = m_alg_dirs.find(digest.algorithm());
    if (it == m_alg_dirs.end()) throw Error(Errc::not_found, m_path.string() + ": blob " + digest.str() + " is missing");
    return open_file(it->second.get(), digest.hex(), blob_path(digest), true);
  }

  std::optional<BlobFile> blob_file(const Digest& digest) const override
  {
    auto alg = m_alg_dirs.find(digest.algorithm());
    auto seen = m_blob_ids.find(BlobKey::of(digest));
    if (alg == m_alg_dirs.end() || seen == m_blob_ids.end())
      throw Error(Errc::not_found, m_path.string() + ": blob " + digest.str() + " is missing");
    std::string path = m_path.string() + ": " + blob_path(digest);
    int fd = ::openat(alg->second.get(), digest.hex().c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw Error(Errc::digest_mismatch, path + " is gone since it was verified: " + std::strerror(errno));
    UniqueFd file(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !(FileId::of(st) == seen->second))
      throw Error(Errc::digest_mismatch, path + " changed since it was verified; refusing to send it");
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return BlobFile{std::move(file), 0, static_cast<std::uint64_t>(st.st_size)};
  }

private:
  // What identifies a file's content without reading it: replaced or written to, one of
  // these changes (the change time cannot be set back by its owner).
  struct FileId {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = 0;
    struct timespec mtime {}, ctime {};
    static FileId of(const struct stat& st) { return {st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim}; }
    bool operator==(const FileId& o) const
    {
      return dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
             mtime.tv_nsec == o.mtime.tv_nsec && ctime.tv_sec == o.ctime.tv_sec && ctime.tv_nsec == o.ctime.tv_nsec;
    }
  };

  struct Listed {
    std::string name;  ///< in its directory
    LayoutPath path;
    std::uint64_t size = 0;
  };

  UniqueFd open_dir(int parent, const std::string& name)
  {
    int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) throw Error(Errc::invalid_manifest, m_path.string() + ": entry \"" + name + "\": " + std::strerror(errno));
    return UniqueFd(fd);
  }

  // The entries of one directory, each through layout_path, in name order.
  std::vector<Listed> list(int dirfd, const std::string& prefix)
  {
    int fd = ::dup(dirfd);
    if (fd < 0) throw Error(Errc::io, m_path.string() + ": " + std::strerror(errno));
    std::unique_ptr<DIR, DirFree> dir(::fdopendir(fd));
    if (!dir) {
      ::close(fd);
      throw Error(Errc::io, m_path.string() + ": " + std::strerror(errno));
    }
    ::rewinddir(dir.get());
    std::vector<Listed> out;
    while (dirent* d = ::readdir(dir.get())) {
      std::string name = d->d_name;
      if (name == "." || name == "..") continue;
      if (m_listed++ >= m_options.limits.max_entries)
        throw Error(Errc::invalid_manifest, m_path.string() + ": more than " + std::to_string(m_options.limits.max_entries) +
                                                " entries; refusing to read further (--max-entries raises the limit)");
      struct stat st {};
      if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        throw Error(Errc::io, m_path.string() + ": " + prefix + name + ": " + std::strerror(errno));
      EntryType type = S_ISREG(st.st_mode)   ? EntryType::file
                       : S_ISDIR(st.st_mode) ? EntryType::directory
                       : S_ISLNK(st.st_mode) ? EntryType::symlink
                                             : EntryType::other;
      Listed l;
      l.path = layout_path(prefix + name, type, m_path.string());
      // A blob's file as listed, before anything read it: what blob_file() checks against.
      if (l.path.role == LayoutPath::Role::blob && l.path.digest)
        m_blob_ids.insert_or_assign(BlobKey::of(*l.path.digest), FileId::of(st));
      l.name = std::move(name);
      l.size = type == EntryType::file ? static_cast<std::uint64_t>(st.st_size) : 0;
      out.push_back(std::move(l));
    }
    std::sort(out.begin(), out.end(), [](const Listed& a, const Listed& b) { return a.name < b.name; });
    return out;
  }

  bool visit(int dirfd, const Listed& l, const std::function<bool(WalkEntry&)>& fn)
  {
    std::unique_ptr<Reader> content;
    WalkEntry w{l.path, l.path.path, l.size, 0, [&, dirfd]() -> Reader& {
                  if (!content) content = open_file(dirfd, l.name, l.path.path, false);
                  return *content;
                }};
    return fn(w);
  }

  // A regular file below the bundle, never through a link; the open does not block on a
  // FIFO planted in its place.
  std::unique_ptr<Reader> open_file(int dirfd, const std::string& name, const std::string& path, bool blob)
  {
    int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == ENOENT && blob) throw Error(Errc::not_found, m_path.string() + ": blob " + path + " is missing");
      throw Error(err == ELOOP ? Errc::invalid_manifest : Errc::io,
                  m_path.string() + ": entry \"" + path + "\"" + (err == ELOOP ? " is a symbolic link" : ": " + std::string(std::strerror(err))));
    }
    UniqueFd file(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
      throw Error(Errc::invalid_manifest, m_path.string() + ": entry \"" + path + "\" is not a regular file");
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return std::make_unique<OwnedFileReader>(std::move(file), static_cast<std::uint64_t>(st.st_size),
                                             m_path.string() + ": " + path);
  }

  UniqueFd m_dir;
  std::map<std::string, UniqueFd> m_alg_dirs;
  std::uint64_t m_listed = 0;
  std::map<BlobKey, FileId> m_blob_ids;
};

} // namespace

std::unique_ptr<LayoutReader> open_dir_layout(const fs::path& path, const LayoutReader::Options& options)
{
  return std::make_unique<DirReader>(path, options);
}

} // namespace ferry::detail
