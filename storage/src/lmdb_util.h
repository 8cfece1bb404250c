// Private LMDB helpers: RAII transactions, big-endian keys, error mapping.
#pragma once

#include <lmdb.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>

#include "quorumq/storage/error.h"

namespace quorumq::storage {

// Everything about the LMDB environment that the public headers do not need to see.
struct EnvHandle {
  MDB_env* env = nullptr;
  MDB_dbi meta_dbi = 0;     // "qq_meta": format version, dir id, log states, hard states, meta
  MDB_dbi offsets_dbi = 0;  // "qq_offsets": consumer group committed offsets
  // Readers hold it shared for the life of a read transaction; the writer holds it exclusively
  // to grow the map (mdb_env_set_mapsize needs no live transaction in the process).
  mutable std::shared_mutex resize_mu;
  std::uint64_t map_size_bytes = 0;
  // The data directory, open with an exclusive flock(): one Storage per directory, machine-wide
  // (LMDB would let a second process write too, behind our in-memory log states' back).
  int dir_lock_fd = -1;
  ~EnvHandle() {
    if (env) mdb_env_close(env);
    if (dir_lock_fd >= 0) ::close(dir_lock_fd);  // releases the lock
  }
};

inline MDB_val as_val(const void* p, std::size_t n) { return MDB_val{n, const_cast<void*>(p)}; }
inline MDB_val as_val(std::string_view s) { return as_val(s.data(), s.size()); }
inline std::span<const std::uint8_t> as_span(const MDB_val& v) {
  return {static_cast<const std::uint8_t*>(v.mv_data), v.mv_size};
}

struct BeKey {
  unsigned char b[8];
  explicit BeKey(std::uint64_t v) {
    for (int i = 7; i >= 0; --i) {
      b[i] = static_cast<unsigned char>(v & 0xFF);
      v >>= 8;
    }
  }
  MDB_val val() const { return as_val(b, 8); }
};
inline std::uint64_t from_be(const MDB_val& v) {
  std::uint64_t r = 0;
  const auto* p = static_cast<const unsigned char*>(v.mv_data);
  for (std::size_t i = 0; i < 8 && i < v.mv_size; ++i) r = (r << 8) | p[i];
  return r;
}

inline Error lmdb_error(int rc, std::string_view what) {
  std::string msg = std::string(what) + ": " + mdb_strerror(rc);
  if (rc == ENOSPC || rc == MDB_MAP_FULL)
    return {errc::disk_full, msg + " (the disk holding the data directory is full: free space or "
                                   "add capacity; nothing from this write was stored)"};
  if (rc == MDB_DBS_FULL)
    return {errc::too_many_logs, msg + " (raise the partition limit, --max-partitions)"};
  if (rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND || rc == MDB_INVALID)
    return {errc::corrupt, msg + " (the LMDB file is damaged: restore this broker from a replica "
                                 "or a backup)"};
  return {errc::io_error, msg};
}

// Read transaction for one call: short-lived by design (a long one pins freed pages).
class ReadTxn {
 public:
  explicit ReadTxn(const EnvHandle& h) : lock_(h.resize_mu) {
    rc_ = mdb_txn_begin(h.env, nullptr, MDB_RDONLY, &txn_);
    if (rc_ != 0) txn_ = nullptr;
  }
  ~ReadTxn() {
    if (txn_) mdb_txn_abort(txn_);
  }
  ReadTxn(const ReadTxn&) = delete;
  ReadTxn& operator=(const ReadTxn&) = delete;
  int rc() const { return rc_; }
  MDB_txn* get() const { return txn_; }

 private:
  std::shared_lock<std::shared_mutex> lock_;
  MDB_txn* txn_ = nullptr;
  int rc_ = 0;
};

class Cursor {
 public:
  Cursor(MDB_txn* txn, MDB_dbi dbi) { rc_ = mdb_cursor_open(txn, dbi, &c_); }
  ~Cursor() {
    if (c_) mdb_cursor_close(c_);
  }
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  int rc() const { return rc_; }
  MDB_cursor* get() const { return c_; }

 private:
  MDB_cursor* c_ = nullptr;
  int rc_ = 0;
};

// On-disk record for a log's start (kept in qq_meta under "logstate:<name>").
struct LogStart {
  std::uint64_t start_index = 1;
  std::uint64_t prev_term = 0;
  std::int64_t start_offset = 0;
};
inline std::string logstate_key(const std::string& name) { return "logstate:" + name; }
inline std::string log_db_name(const std::string& name) { return "log:" + name; }

}  // namespace quorumq::storage
