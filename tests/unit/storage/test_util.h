// Helpers shared by the storage tests: temporary directories, batch builders, record decoding.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "quorumq/protocol/record_batch.h"
#include "quorumq/storage/partition_log.h"
#include "quorumq/storage/storage.h"

namespace quorumq::storage::test {

namespace fs = std::filesystem;

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/qq-storage-test-XXXXXX";
    char* p = ::mkdtemp(tmpl.data());
    if (!p) std::abort();
    path = p;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// A data batch whose record values are `<prefix>-<i>` padded with 'x' to `value_size` bytes.
inline std::vector<std::uint8_t> data_batch(const std::string& prefix, int records, std::int64_t ts_ms = 1000,
                                            std::size_t value_size = 0) {
  BatchBuilder b;
  for (int i = 0; i < records; ++i) {
    std::string v = prefix + "-" + std::to_string(i);
    if (v.size() < value_size) v.resize(value_size, 'x');
    b.add(std::nullopt, v, ts_ms);
  }
  return b.finish();
}

inline std::vector<std::uint8_t> noop_batch() {
  const std::uint8_t payload[] = {1, 2, 3};
  return make_payload_batch(BatchType::noop, payload);
}

struct Rec {
  std::int64_t offset;
  std::string value;
  bool operator==(const Rec&) const = default;
};

// Decodes concatenated batches (ReadResult::bytes) into records; fails the test on bad bytes.
inline std::vector<Rec> records_of(std::span<const std::uint8_t> bytes) {
  std::vector<Rec> out;
  std::size_t at = 0;
  while (at < bytes.size()) {
    EXPECT_GE(bytes.size() - at, kBatchHeaderSize);
    if (bytes.size() - at < kBatchHeaderSize) break;
    const std::uint32_t len = BatchView(bytes.subspan(at)).batch_length();
    EXPECT_LE(len, bytes.size() - at);
    if (len > bytes.size() - at) break;
    const BatchView v(bytes.subspan(at, len));
    EXPECT_EQ(v.validate(), BatchError::ok);
    v.for_each_record([&](const RecordView& r) { out.push_back({r.offset, std::string(r.value.value_or(""))}); });
    at += len;
  }
  return out;
}

inline std::unique_ptr<Storage> open_storage(const fs::path& dir) {
  StorageOptions o;
  o.dir = dir;
  o.map_size_bytes = 1ull << 30;
  auto s = Storage::open(o);
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().message);
  return s ? std::move(*s) : nullptr;
}

inline PartitionLog* open_log(Storage& s, const std::string& name) {
  auto l = s.open_log(name);
  EXPECT_TRUE(l.has_value()) << (l ? "" : l.error().message);
  return l ? *l : nullptr;
}

// One AppendOp written durably; fails the test if it fails.
inline AppendResult append(Storage& s, PartitionLog* log, std::vector<std::vector<std::uint8_t>> batches,
                           std::uint64_t term = 1) {
  std::vector<WriteOp> ops;
  ops.push_back(AppendOp{log, std::move(batches), term_t{term}});
  auto r = s.write_sync(std::move(ops));
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
  if (!r || r->appends.size() != 1) return {};
  return r->appends[0];
}

template <typename Op>
std::expected<WriteResult, Error> write1(Storage& s, Op op) {
  std::vector<WriteOp> ops;
  ops.push_back(std::move(op));
  return s.write_sync(std::move(ops));
}

// All records from `from` to the end of the log.
inline std::vector<Rec> read_all(const PartitionLog& log, std::int64_t from = -1) {
  const LogState st = log.state();
  auto r = log.read(from < 0 ? st.start_offset : offset_t{from}, 1u << 30, st.next_offset);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
  return r ? records_of(r->bytes) : std::vector<Rec>{};
}

}  // namespace quorumq::storage::test
