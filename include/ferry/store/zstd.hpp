#pragma once
/// The one zstd decoder (design §8): a Reader of the decompressed content of a zstd stream
/// (any number of frames; skippable frames are skipped, as zstd's seekable format needs).
#include <ferry/util/reader.hpp>

#include <memory>
#include <string>

namespace ferry {

/// True when the first four bytes of the file behind `fd` are zstd's frame magic.
bool has_zstd_magic(int fd);

/// Decompresses `compressed` to its end. With `background`, decompression runs on its own
/// thread a few MiB ahead of the reader, so that the reader's parsing and hashing overlap it
/// on the second core (issue 5). A stream that ends inside a frame, or is not zstd, throws
/// Errc::invalid_manifest naming `what`.
class ZstdReader : public Reader {
public:
  ZstdReader(std::unique_ptr<Reader> compressed, std::string what, bool background);
  ~ZstdReader() override;
  ZstdReader(const ZstdReader&) = delete;
  ZstdReader& operator=(const ZstdReader&) = delete;
  std::size_t read(char* buf, std::size_t n) override;

private:
  struct Impl;
  std::unique_ptr<Impl> m_impl;
};

} // namespace ferry
