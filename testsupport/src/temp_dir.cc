#include "quorumq/testsupport/temp_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace quorumq::testsupport {

namespace fs = std::filesystem;

TempDir::TempDir(const std::string& prefix, const fs::path& base) {
  const fs::path root = base.empty() ? fs::temp_directory_path() : base;
  std::string tmpl = (root / (prefix + "-XXXXXX")).string();
  if (!::mkdtemp(tmpl.data()))
    throw std::runtime_error("mkdtemp under " + root.string() + " failed: " + std::strerror(errno));
  path_ = tmpl;
}

TempDir::~TempDir() {
  if (keep_) return;
  if (const char* keep = std::getenv("QUORUMQ_TEST_KEEP"); keep && *keep == '1') {
    std::fprintf(stderr, "kept %s\n", path_.c_str());
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace quorumq::testsupport
