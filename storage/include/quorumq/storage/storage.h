// Storage: one LMDB environment per broker data directory, with one writer thread that commits
// groups of writes from every partition in a single durable transaction ("group commit").
//
// Lifecycle: Storage::open() -> open_log()/submit()/reads from any thread -> destructor, which
// completes every queued write (or fails it with errc::closed if the env already failed) and
// joins the writer.
// Threads: submit() and reads are thread-safe. Completions run on the writer thread, after the
// commit has been synced to disk; keep them short (post to your own executor) and never call
// write_sync()/open_log()/drop_log() from one (that would wait on itself: an assert stops it).
// Durability: a completion with success means the write survives kill -9 and power loss (LMDB
// default sync: data pages, then the meta page, both fdatasync'ed; never MDB_NOSYNC).
#pragma once

#include <atomic>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "quorumq/protocol/types.h"
#include "quorumq/storage/error.h"

namespace quorumq::storage {

class PartitionLog;
class Writer;
struct EnvHandle;

inline constexpr std::uint32_t kFormatVersion = 1;

struct StorageOptions {
  std::filesystem::path dir;
  // Address space reserved for the map; the file grows only as data is written. It is doubled
  // on MDB_MAP_FULL, so this is a starting point, not a cap.
  std::uint64_t map_size_bytes = 64ull << 30;
  unsigned max_logs = 4096;                       // LMDB named databases for partition logs
  std::size_t group_bytes_max = 32u << 20;        // bytes one commit may carry
  bool create_if_missing = true;
  // Deterministic simulation only (tests/sim): no writer thread — queued writes are committed
  // when the caller says so (Storage::run_pending), on the caller's thread, and a simulated
  // crash drops what is still queued (Storage::discard_pending). With `simulation_no_sync`
  // LMDB does not fsync (the process never loses its page cache; a simulated crash loses
  // exactly the writes that were not committed). Never in a broker.
  bool manual_writer = false;
  bool simulation_no_sync = false;
};

// Raft's durable vote state for one consensus group (Raft paper figure 2, "persistent state").
struct HardState {
  term_t term{0};
  node_id vote{-1};      // -1: voted for nobody this term
  log_index commit{0};
  bool operator==(const HardState&) const = default;
};

struct CommittedOffset {
  std::int64_t offset = -1;
  std::string metadata;
};

// An entry as stored: the Raft index is the key; term and base offset live in the batch header.
struct StoredEntry {
  log_index index;
  std::vector<std::uint8_t> batch;
};

// ---- write operations; a submit() applies its ops atomically, in order ----
struct AppendOp {  // the log assigns indexes and offsets (one-node path)
  PartitionLog* log;
  std::vector<std::vector<std::uint8_t>> batches;  // validated record batches; stamped in place
  term_t term{0};
};
struct AppendAtOp {  // Raft path: entries at given indexes, stamped already by the leader
  PartitionLog* log;
  log_index first;  // must be <= last_index + 1; a conflicting suffix from `first` is removed first
  std::vector<std::vector<std::uint8_t>> batches;
};
struct TruncateSuffixOp { PartitionLog* log; log_index from; };   // removes [from, last]
struct TrimPrefixOp { PartitionLog* log; log_index before; };     // removes [first, before)
struct ResetLogOp {  // empties the log; it restarts at `start` (install from a leader's first index)
  PartitionLog* log;
  log_index start;
  term_t prev_term;
  offset_t start_offset;
};
struct PutHardStateOp { std::string group; HardState state; };
struct PutOffsetOp { std::string group; std::string topic; std::int32_t partition; CommittedOffset value; };
struct DeleteOffsetOp { std::string group; std::string topic; std::int32_t partition; };  // absent: no-op
struct DeleteTopicOffsetsOp { std::string topic; };  // every group's offsets of every partition of it
struct PutMetaOp { std::string key; std::vector<std::uint8_t> value; };  // small opaque records
struct DeleteMetaOp { std::string key; };

using WriteOp = std::variant<AppendOp, AppendAtOp, TruncateSuffixOp, TrimPrefixOp, ResetLogOp,
                             PutHardStateOp, PutOffsetOp, DeleteOffsetOp, DeleteTopicOffsetsOp, PutMetaOp,
                             DeleteMetaOp>;

struct AppendResult {
  log_index first_index;
  log_index last_index;
  offset_t base_offset{0};  // offset of the first record written
  offset_t next_offset{0};  // offset after the last record written
};
struct WriteResult {
  std::vector<AppendResult> appends;  // one per AppendOp/AppendAtOp, in op order
};
using WriteCallback = std::move_only_function<void(std::expected<WriteResult, Error>)>;

struct WriterStats {
  std::uint64_t commits = 0;
  std::uint64_t writes = 0;          // submit() calls completed (ok or failed)
  std::uint64_t appended_batches = 0;
  std::uint64_t appended_bytes = 0;
  std::uint64_t failed_writes = 0;
  std::uint64_t map_resizes = 0;
  std::uint64_t commit_ns_total = 0;  // time spent in mdb_txn_commit (the syncs)
  std::uint64_t commit_ns_max = 0;
};

class Storage {
 public:
  static std::expected<std::unique_ptr<Storage>, Error> open(const StorageOptions& options);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  const std::filesystem::path& dir() const { return options_.dir; }
  // Random id made when the directory was created: a member whose id changed lost its disk.
  const std::string& dir_id() const { return dir_id_; }

  // Opens (creating durably if needed) the log called `name`. The pointer lives as long as this
  // Storage, until drop_log(). Thread-safe; blocks on the writer when it has to create.
  std::expected<PartitionLog*, Error> open_log(const std::string& name);
  std::vector<std::string> list_logs() const;
  // Deletes a log and everything in it, durably. The pointer is dangling afterwards.
  std::expected<void, Error> drop_log(const std::string& name);

  // Queues `ops` for the writer; `done` runs once they are durable (or failed, all of them).
  void submit(std::vector<WriteOp> ops, WriteCallback done);
  // submit() and wait: for tests, tools and rare control-path writes, never on a hot path.
  std::expected<WriteResult, Error> write_sync(std::vector<WriteOp> ops);
  // StorageOptions::manual_writer only: commit what is queued (one group commit per call, or
  // all of it), running completions on this thread; how many writes completed.
  std::size_t run_pending(bool all = true);
  // StorageOptions::manual_writer only: a simulated crash — what is queued is dropped, its
  // completions never run (they are destroyed).
  void discard_pending();
  std::size_t pending_writes() const;

  std::optional<HardState> hard_state(const std::string& group) const;
  std::optional<CommittedOffset> committed_offset(const std::string& group, const std::string& topic,
                                                  std::int32_t partition) const;
  struct GroupOffset { std::string topic; std::int32_t partition; CommittedOffset value; };
  std::vector<GroupOffset> group_offsets(const std::string& group) const;
  std::vector<std::string> groups() const;
  std::optional<std::vector<std::uint8_t>> meta(const std::string& key) const;

  WriterStats stats() const;
  // True while the disk is full: the last group commit failed with errc::disk_full and none has
  // succeeded since (writes resume by themselves once space is freed).
  bool disk_full() const;
  // Bytes of the LMDB data file in use (pages in use x page size).
  std::uint64_t used_bytes() const;
  // Consistent copy of the environment into `to_dir` (LMDB online copy, compacting); the broker
  // keeps serving while it runs. The hot backup of the operations work.
  std::expected<void, Error> backup(const std::filesystem::path& to_dir) const;

 private:
  explicit Storage(StorageOptions options);
  friend class Writer;
  friend class PartitionLog;

  StorageOptions options_;
  std::string dir_id_;
  std::unique_ptr<EnvHandle> env_;
  mutable std::mutex logs_mu_;
  std::map<std::string, std::unique_ptr<PartitionLog>> logs_;
  std::vector<std::unique_ptr<PartitionLog>> graveyard_;  // dropped logs, kept for stale readers
  std::unique_ptr<Writer> writer_;
};

}  // namespace quorumq::storage
