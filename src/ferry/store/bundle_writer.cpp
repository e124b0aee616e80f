// The bundle writer's format-independent half: tar headers, the plan, and the choice of the
// writer for each format (one file per format: writer_tar.cpp, writer_zstd.cpp,
// writer_dir.cpp).
#include <ferry/store/bundle_writer.hpp>

#include "writer_plan.hpp"

#include <cstring>

namespace fs = std::filesystem;

namespace ferry {

// ---------------------------------------------------------------- tar headers

namespace {

void put_octal(char* field, std::size_t width, std::uint64_t value)
{
  // width - 1 zero-padded octal digits and a NUL.
  for (std::size_t i = width - 1; i-- > 0;) {
    field[i] = static_cast<char>('0' + (value & 7));
    value >>= 3;
  }
  field[width - 1] = '\0';
}

std::string ustar_block(const std::string& name, std::uint64_t size, char type)
{
  std::string h(512, '\0');
  std::memcpy(&h[0], name.data(), std::min<std::size_t>(name.size(), 100));
  put_octal(&h[100], 8, 0644);
  put_octal(&h[108], 8, 0);
  put_octal(&h[116], 8, 0);
  put_octal(&h[124], 12, size);
  put_octal(&h[136], 12, 0);
  std::memset(&h[148], ' ', 8);
  h[156] = type;
  std::memcpy(&h[257], "ustar", 6);
  std::memcpy(&h[263], "00", 2);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  put_octal(&h[148], 7, sum);
  h[155] = ' ';
  return h;
}

// "<length> key=value\n", where length counts the whole record.
std::string pax_record(const std::string& key, const std::string& value)
{
  std::size_t body = 1 + key.size() + 1 + value.size() + 1;
  std::size_t len = body + 1;
  while (std::to_string(len).size() + body != len) len = std::to_string(len).size() + body;
  return std::to_string(len) + " " + key + "=" + value + "\n";
}

constexpr std::uint64_t k_ustar_max_size = 077777777777ull;

} // namespace

std::string tar_header(const std::string& name, std::uint64_t size)
{
  std::string pax;
  if (name.size() > 100) pax += pax_record("path", name);
  if (size > k_ustar_max_size) pax += pax_record("size", std::to_string(size));
  std::string out;
  if (!pax.empty()) {
    out = ustar_block("PaxHeader/" + name.substr(name.rfind('/') + 1).substr(0, 80), pax.size(), 'x');
    out += pax;
    out.append(tar_padding(pax.size()), '\0');
  }
  out += ustar_block(name, size > k_ustar_max_size ? 0 : size, '0');
  return out;
}

std::unique_ptr<BundleWriter> BundleWriter::create(const fs::path& given, BundleFormat format, const std::string& index_json,
                                                   std::vector<BundleItem> items, const Options& options)
{
  // "out/" names the directory "out": the partial output goes beside it, never inside.
  fs::path path = given.has_filename() ? given : given.parent_path();
  try {
    if (options.volume_size && format == BundleFormat::dir)
      throw Error(Errc::invalid_argument, "--max-size splits an archive into volumes: name the output .tar, .tar.zst or "
                                          ".tar.gz, not a directory");
    Options opts = options;
    if (opts.volume_size) opts.resume = false;
    detail::Plan plan = detail::make_plan(format, index_json, std::move(items), opts.zstd_level);
    switch (format) {
    case BundleFormat::tar: return detail::make_tar_writer(path, std::move(plan), opts);
    case BundleFormat::tar_zst: return detail::make_zstd_writer(path, std::move(plan), opts);
    case BundleFormat::tar_gz: return detail::make_gzip_writer(path, std::move(plan), opts);
    case BundleFormat::dir: return detail::make_dir_writer(path, std::move(plan), opts);
    }
    throw Error(Errc::invalid_argument, "unknown bundle format");
  } catch (...) {
    rethrow_with_context(path.string());
  }
}

} // namespace ferry
