// TempDir: a fresh directory under a base (default: the system temp dir), removed with its
// contents on destruction — unless kept: keep(), or QUORUMQ_TEST_KEEP=1 in the environment
// (then its path is printed to stderr for a post-mortem of broker logs and data).
#pragma once

#include <filesystem>
#include <string>

namespace quorumq::testsupport {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "quorumq-test", const std::filesystem::path& base = {});
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  void keep(bool k = true) { keep_ = k; }

 private:
  std::filesystem::path path_;
  bool keep_ = false;
};

}  // namespace quorumq::testsupport
