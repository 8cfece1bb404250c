// The disk's fsync ceiling: how many 4 KiB write + fdatasync rounds per second the directory's
// file system allows. Printed before a run so throughput reads as a fraction of what the disk
// allows (a durable acks=quorum commit costs at least one such round per group commit).
#pragma once

#include <chrono>
#include <expected>
#include <filesystem>
#include <string>

namespace quorumq::bench {

struct FsyncCeiling {
  double fsyncs_per_s = 0;
  double mean_us = 0;
  std::uint64_t rounds = 0;
};

std::expected<FsyncCeiling, std::string> probe_fsync(const std::filesystem::path& dir,
                                                     std::chrono::milliseconds duration = std::chrono::milliseconds(1000));

}  // namespace quorumq::bench
