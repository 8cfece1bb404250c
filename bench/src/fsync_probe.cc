#include "fsync_probe.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace quorumq::bench {

std::expected<FsyncCeiling, std::string> probe_fsync(const std::filesystem::path& dir,
                                                     std::chrono::milliseconds duration) {
  const auto file = dir / ".quorumq-bench-fsync-probe";
  const int fd = ::open(file.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) return std::unexpected("cannot create " + file.string() + ": " + std::strerror(errno));
  std::vector<char> block(4096, 'f');
  FsyncCeiling c;
  const auto start = std::chrono::steady_clock::now();
  auto now = start;
  std::string error;
  // Rewrite the same block (like a log's tail page): the cost measured is the sync, not allocation.
  while (now - start < duration) {
    if (::pwrite(fd, block.data(), block.size(), 0) != static_cast<ssize_t>(block.size()) || ::fdatasync(fd) != 0) {
      error = std::string("write/fdatasync failed: ") + std::strerror(errno);
      break;
    }
    ++c.rounds;
    now = std::chrono::steady_clock::now();
  }
  ::close(fd);
  std::filesystem::remove(file);
  if (!error.empty()) return std::unexpected(error);
  const double secs = std::chrono::duration<double>(now - start).count();
  c.fsyncs_per_s = static_cast<double>(c.rounds) / secs;
  c.mean_us = secs * 1e6 / static_cast<double>(c.rounds);
  return c;
}

}  // namespace quorumq::bench
