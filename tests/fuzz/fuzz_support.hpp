#pragma once
// Shared helpers of the libFuzzer targets: a scratch file that parsers which read files can be pointed at.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace unmix::fuzz {

/// A file in $TMPDIR (or /tmp) with the given suffix, created once per process and removed at exit;
/// write() replaces its contents.
class ScratchFile {
public:
  explicit ScratchFile(const std::string& suffix) {
    const char* dir = std::getenv("TMPDIR");
    std::string tmpl = std::string(dir && *dir ? dir : "/tmp") + "/unmix-fuzz-XXXXXX" + suffix;
    const int fd = mkstemps(tmpl.data(), static_cast<int>(suffix.size()));
    if (fd < 0) {
      std::perror("mkstemps");
      std::abort();
    }
    close(fd);
    path_ = tmpl;
  }
  ~ScratchFile() { std::remove(path_.c_str()); }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  const std::string& path() const { return path_; }
  void write(const uint8_t* data, std::size_t size) const {
    std::FILE* f = std::fopen(path_.c_str(), "wb");
    if (!f) {
      std::perror("fopen");
      std::abort();
    }
    if (size && std::fwrite(data, 1, size, f) != size) std::abort();
    std::fclose(f);
  }

private:
  std::string path_;
};

/// A check that must hold for every input; a failure is reported to libFuzzer as a crash.
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
    std::abort();
  }
}

} // namespace unmix::fuzz
