// Writer: the single thread that owns every LMDB write transaction (LMDB allows one writer).
//
// It takes everything queued (up to group_bytes_max), applies each submit()'s ops in one write
// transaction, commits once (one durable sync for the whole group), publishes the new log
// states and then runs the completions. A write whose ops break a precondition fails alone: the
// group is re-applied without it. MDB_MAP_FULL grows the map and retries the group; a commit
// that fails (ENOSPC, EIO) fails every write of the group and changes nothing.
#pragma once

#include <atomic>

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "lmdb_util.h"
#include "quorumq/storage/partition_log.h"
#include "quorumq/storage/storage.h"

namespace quorumq::storage {

class Writer {
 public:
  // `manual`: no thread; run_pending() commits on the caller's thread (simulation).
  Writer(Storage* storage, EnvHandle* env, bool manual = false);
  ~Writer();  // completes what is queued, then joins

  void submit(std::vector<WriteOp> ops, WriteCallback done);
  // Runs `fn` alone in its own write transaction on the writer thread and waits for it.
  // fn returns 0 to commit, an LMDB error code to abort. For creating/dropping databases.
  int run_control(std::function<int(MDB_txn*)> fn);
  WriterStats stats() const;
  // The last group commit failed for lack of space (cleared by the next one that succeeds).
  bool disk_full() const { return disk_full_.load(std::memory_order_relaxed); }
  bool on_writer_thread() const { return !manual_ && std::this_thread::get_id() == thread_.get_id(); }
  bool manual() const { return manual_; }
  std::size_t run_pending(bool all);
  void discard_pending();
  std::size_t pending() const;

 private:
  std::atomic<bool> disk_full_{false};
  struct Pending {
    std::vector<WriteOp> ops;
    WriteCallback done;
    std::size_t bytes = 0;
  };
  struct Control {
    std::function<int(MDB_txn*)> fn;
    std::promise<int>* result;
  };
  // Scratch log states for the open group, on top of each log's wstate_.
  using Scratch = std::map<PartitionLog*, LogState>;

  void run();
  // Takes the next group (up to group_bytes_max) off the queue; with mu_ held.
  void take_group_locked(std::vector<Pending>& group);
  void run_controls(std::deque<Control>& controls);
  void commit_group(std::vector<Pending>& group);
  // Applies one write; returns an Error with code ok on success. Sets lmdb_rc on an LMDB failure
  // that must abort the whole group (map full, I/O).
  Error apply(MDB_txn* txn, Pending& p, Scratch& scratch, WriteResult& out, int& lmdb_rc);
  Error apply_append(MDB_txn* txn, AppendOp& op, Scratch& s, WriteResult& out, int& rc);
  Error apply_append_at(MDB_txn* txn, AppendAtOp& op, Scratch& s, WriteResult& out, int& rc);
  Error apply_truncate(MDB_txn* txn, PartitionLog* log, log_index from, Scratch& s, int& rc);
  Error apply_trim(MDB_txn* txn, PartitionLog* log, log_index before, Scratch& s, int& rc);
  Error apply_reset(MDB_txn* txn, const ResetLogOp& op, Scratch& s, int& rc);
  int put_logstate(MDB_txn* txn, PartitionLog* log, const LogState& st);
  bool grow_map();
  Error commit_error(int rc, const std::vector<Pending>& group) const;

  Storage* storage_;
  EnvHandle* env_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;
  std::deque<Control> controls_;
  bool stopping_ = false;
  WriterStats stats_;
  const bool manual_;
  std::thread thread_;
};

}  // namespace quorumq::storage
