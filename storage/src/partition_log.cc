#include "quorumq/storage/partition_log.h"

#include "lmdb_util.h"
#include "quorumq/protocol/record_batch.h"

namespace quorumq::storage {
namespace {

Error corrupt_error(const std::string& log, std::uint64_t index, std::int64_t offset, BatchError e) {
  return {errc::corrupt, "corrupt batch in partition " + log + " at index " + std::to_string(index) +
                             " (offset " + std::to_string(offset) + "): " + to_string(e) +
                             "; it is not served. Repair this replica from the leader or restore a backup"};
}

// A stored value must be a valid batch whose header matches its key's position.
BatchError check(const MDB_val& d) {
  if (d.mv_size < kBatchHeaderSize) return BatchError::too_short;
  return BatchView(as_span(d)).validate();
}

// The log's first and last index as this read transaction sees them. The published state may be
// a commit ahead of or behind the transaction's snapshot (a trim, truncation or append committed
// in between), so searches are bounded by what the snapshot holds, never by the state alone.
struct Bounds {
  std::uint64_t first = 1, last = 0;
  bool empty() const { return first > last; }
};
int snapshot_bounds(MDB_txn* txn, unsigned dbi, Bounds& b) {
  Cursor c(txn, dbi);
  if (c.rc() != 0) return c.rc();
  MDB_val k, d;
  int rc = mdb_cursor_get(c.get(), &k, &d, MDB_FIRST);
  if (rc == MDB_NOTFOUND) return 0;
  if (rc != 0) return rc;
  b.first = from_be(k);
  rc = mdb_cursor_get(c.get(), &k, &d, MDB_LAST);
  if (rc != 0) return rc;
  b.last = from_be(k);
  return 0;
}

Error trimmed_error(const std::string& log, std::int64_t offset) {
  return {errc::out_of_range, "offset " + std::to_string(offset) + " of partition " + log +
                                  " was removed by retention: reset the consumer to earliest"};
}

}  // namespace

PartitionLog::PartitionLog(Storage* storage, std::string name, unsigned dbi, LogState state)
    : storage_(storage), name_(std::move(name)), dbi_(dbi), state_(state), wstate_(state) {}

LogState PartitionLog::state() const {
  std::lock_guard lk(mu_);
  return state_;
}

std::expected<ReadResult, Error> PartitionLog::read(offset_t from, std::size_t max_bytes, offset_t end) const {
  // Batch headers carry raw offsets: compare in int64 inside, offset_t at the API.
  const std::int64_t from_offset = from.value;
  std::int64_t end_offset = end.value;
  LogState st;
  {
    std::lock_guard lk(mu_);
    if (dropped_) return std::unexpected(Error{errc::out_of_range, "partition " + name_ + " was deleted"});
    st = state_;
  }
  if (from < st.start_offset || from > st.next_offset)
    return std::unexpected(Error{errc::out_of_range,
                                 "offset " + std::to_string(from_offset) + " is outside partition " + name_ + " [" +
                                     std::to_string(st.start_offset.value) + ", " + std::to_string(st.next_offset.value) +
                                     "]: reset the consumer to earliest or latest"});
  ReadResult out;
  out.next_offset = from;
  end_offset = std::min(end_offset, st.next_offset.value);
  if (from_offset >= end_offset || st.empty()) return out;

  ReadTxn txn(*storage_->env_);
  if (txn.rc() != 0) return std::unexpected(lmdb_error(txn.rc(), "reading partition " + name_));
  Bounds bounds;
  if (const int brc = snapshot_bounds(txn.get(), dbi_, bounds); brc != 0)
    return std::unexpected(lmdb_error(brc, "reading partition " + name_));
  if (bounds.empty()) return out;
  // Binary search for the first entry whose offsets end after from_offset; base offsets grow
  // with the index, so "base + count > from" is monotonic.
  std::uint64_t lo = bounds.first, hi = bounds.last + 1;
  while (lo < hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    const BeKey key(mid);
    MDB_val k = key.val(), d;
    const int rc = mdb_get(txn.get(), dbi_, &k, &d);
    if (rc != 0) return std::unexpected(lmdb_error(rc, "reading partition " + name_ + " at index " + std::to_string(mid)));
    if (d.mv_size < kBatchHeaderSize) return std::unexpected(corrupt_error(name_, mid, -1, BatchError::too_short));
    const BatchView v(as_span(d));
    if (v.base_offset() + v.offset_count() > from_offset) hi = mid;
    else lo = mid + 1;
  }
  Cursor c(txn.get(), dbi_);
  const BeKey key(lo);
  MDB_val k = key.val(), d;
  int rc = mdb_cursor_get(c.get(), &k, &d, MDB_SET_KEY);
  while (rc == 0) {
    const std::uint64_t idx = from_be(k);
    if (d.mv_size < kBatchHeaderSize) {
      if (out.batches == 0) return std::unexpected(corrupt_error(name_, idx, out.next_offset.value, BatchError::too_short));
      break;
    }
    const BatchView v(as_span(d));
    if (v.base_offset() >= end_offset) break;
    if (out.batches == 0 && idx == bounds.first && v.base_offset() > from_offset)
      return std::unexpected(trimmed_error(name_, from_offset));  // trimmed since state() was read
    if (v.type() == BatchType::data && v.record_count() > 0) {
      if (out.batches > 0 && out.bytes.size() + d.mv_size > max_bytes) break;
      if (const BatchError e = check(d); e != BatchError::ok) {
        if (out.batches == 0) return std::unexpected(corrupt_error(name_, idx, v.base_offset(), e));
        break;  // serve what precedes it; the next read reports it
      }
      const auto s = as_span(d);
      out.bytes.insert(out.bytes.end(), s.begin(), s.end());
      out.next_offset = offset_t{v.base_offset() + v.offset_count()};
      ++out.batches;
    }
    rc = mdb_cursor_get(c.get(), &k, &d, MDB_NEXT);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return std::unexpected(lmdb_error(rc, "reading partition " + name_));
  return out;
}

std::expected<std::vector<StoredEntry>, Error> PartitionLog::entries(log_index lo, log_index hi,
                                                                     std::size_t max_bytes) const {
  const LogState st = state();
  if (lo < st.first_index || hi > st.last_index || lo > hi)
    return std::unexpected(Error{errc::out_of_range, "entries [" + std::to_string(lo.value) + ", " +
                                                         std::to_string(hi.value) + "] outside partition " + name_});
  std::vector<StoredEntry> out;
  std::size_t bytes = 0;
  ReadTxn txn(*storage_->env_);
  if (txn.rc() != 0) return std::unexpected(lmdb_error(txn.rc(), "reading partition " + name_));
  Cursor c(txn.get(), dbi_);
  const BeKey key(lo.value);
  MDB_val k = key.val(), d;
  int rc = mdb_cursor_get(c.get(), &k, &d, MDB_SET_KEY);
  while (rc == 0) {
    const std::uint64_t idx = from_be(k);
    if (idx > hi.value) break;
    if (!out.empty() && bytes + d.mv_size > max_bytes) break;
    if (const BatchError e = check(d); e != BatchError::ok) {
      if (out.empty()) return std::unexpected(corrupt_error(name_, idx, -1, e));
      break;
    }
    const auto s = as_span(d);
    out.push_back(StoredEntry{log_index{idx}, std::vector<std::uint8_t>(s.begin(), s.end())});
    bytes += d.mv_size;
    rc = mdb_cursor_get(c.get(), &k, &d, MDB_NEXT);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return std::unexpected(lmdb_error(rc, "reading partition " + name_));
  if (out.empty())  // [lo, hi] was trimmed or truncated since state() was read
    return std::unexpected(Error{errc::out_of_range, "entries [" + std::to_string(lo.value) + ", " +
                                                         std::to_string(hi.value) + "] no longer in partition " + name_});
  return out;
}

std::expected<VerifyResult, Error> PartitionLog::verify(log_index lo, log_index hi, std::size_t max_bytes) const {
  VerifyResult out;
  out.next = hi.next();
  const LogState st = state();
  lo = std::max(lo, st.first_index);
  hi = std::min(hi, st.last_index);
  if (lo > hi) return out;
  ReadTxn txn(*storage_->env_);
  if (txn.rc() != 0) return std::unexpected(lmdb_error(txn.rc(), "reading partition " + name_));
  Cursor c(txn.get(), dbi_);
  const BeKey key(lo.value);
  MDB_val k = key.val(), d;
  int rc = mdb_cursor_get(c.get(), &k, &d, MDB_SET_RANGE);
  while (rc == 0) {
    const std::uint64_t idx = from_be(k);
    if (idx > hi.value) break;
    if (out.bytes > 0 && out.bytes + d.mv_size > max_bytes) {
      out.next = log_index{idx};
      return out;
    }
    if (check(d) != BatchError::ok) {
      out.damaged = log_index{idx};
      out.next = log_index{idx};
      return out;
    }
    out.bytes += d.mv_size;
    rc = mdb_cursor_get(c.get(), &k, &d, MDB_NEXT);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return std::unexpected(lmdb_error(rc, "reading partition " + name_));
  out.next = hi.next();
  return out;
}

std::expected<void, Error> PartitionLog::for_each_header(
    log_index lo, log_index hi, const std::function<void(log_index, std::span<const std::uint8_t>)>& f) const {
  const LogState st = state();
  lo = std::max(lo, st.first_index);
  hi = std::min(hi, st.last_index);
  if (lo > hi) return {};
  ReadTxn txn(*storage_->env_);
  if (txn.rc() != 0) return std::unexpected(lmdb_error(txn.rc(), "reading partition " + name_));
  Cursor c(txn.get(), dbi_);
  const BeKey key(lo.value);
  MDB_val k = key.val(), d;
  int rc = mdb_cursor_get(c.get(), &k, &d, MDB_SET_RANGE);
  while (rc == 0) {
    const std::uint64_t idx = from_be(k);
    if (idx > hi.value) break;
    if (d.mv_size >= kBatchHeaderSize) f(log_index{idx}, as_span(d).first(kBatchHeaderSize));
    rc = mdb_cursor_get(c.get(), &k, &d, MDB_NEXT);
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return std::unexpected(lmdb_error(rc, "reading partition " + name_));
  return {};
}

std::optional<term_t> PartitionLog::term_at(log_index index) const {
  const LogState st = state();
  if (index.value + 1 == st.first_index.value) return st.prev_term;
  if (index < st.first_index || index > st.last_index) return std::nullopt;
  if (index == st.last_index) return st.last_term;
  ReadTxn txn(*storage_->env_);
  if (txn.rc() != 0) return std::nullopt;
  const BeKey key(index.value);
  MDB_val k = key.val(), d;
  if (mdb_get(txn.get(), dbi_, &k, &d) != 0 || d.mv_size < kBatchHeaderSize) return std::nullopt;
  return term_t{BatchView(as_span(d)).term()};
}

std::optional<log_index> PartitionLog::index_of_offset(offset_t off) const {
  const LogState st = state();
  if (off < st.start_offset || off >= st.next_offset) return std::nullopt;
  const std::int64_t offset = off.value;  // compared with raw batch-header offsets below
  ReadTxn txn(*storage_->env_);
  if (txn.rc() != 0) return std::nullopt;
  Bounds bounds;
  if (snapshot_bounds(txn.get(), dbi_, bounds) != 0 || bounds.empty()) return std::nullopt;
  std::uint64_t lo = bounds.first, hi = bounds.last + 1;
  while (lo < hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    const BeKey key(mid);
    MDB_val k = key.val(), d;
    if (mdb_get(txn.get(), dbi_, &k, &d) != 0 || d.mv_size < kBatchHeaderSize) return std::nullopt;
    const BatchView v(as_span(d));
    if (v.base_offset() + v.offset_count() > offset) hi = mid;
    else lo = mid + 1;
  }
  if (lo > bounds.last) return std::nullopt;
  if (lo == bounds.first) {  // the offset may have been trimmed since state() was read
    const BeKey key(lo);
    MDB_val k = key.val(), d;
    if (mdb_get(txn.get(), dbi_, &k, &d) != 0 || d.mv_size < kBatchHeaderSize ||
        BatchView(as_span(d)).base_offset() > offset)
      return std::nullopt;
  }
  return log_index{lo};
}

std::expected<offset_t, Error> PartitionLog::offset_for_timestamp(std::int64_t ts_ms) const {
  const LogState st = state();
  ReadTxn txn(*storage_->env_);
  if (txn.rc() != 0) return std::unexpected(lmdb_error(txn.rc(), "reading partition " + name_));
  Cursor c(txn.get(), dbi_);
  MDB_val k, d;
  int rc = mdb_cursor_get(c.get(), &k, &d, MDB_FIRST);
  while (rc == 0) {
    if (d.mv_size >= kBatchHeaderSize) {
      const BatchView v(as_span(d));
      if (v.type() == BatchType::data && v.record_count() > 0 && v.max_timestamp_ms() >= ts_ms) {
        if (check(d) != BatchError::ok)
          return std::unexpected(corrupt_error(name_, from_be(k), v.base_offset(), check(d)));
        std::int64_t found = v.base_offset() + v.offset_count();
        v.for_each_record([&](const RecordView& r) {
          if (r.timestamp_ms >= ts_ms && r.offset < found) found = r.offset;
        });
        return offset_t{found};
      }
    }
    rc = mdb_cursor_get(c.get(), &k, &d, MDB_NEXT);
  }
  return st.next_offset;
}

log_index PartitionLog::retention_point(std::optional<std::uint64_t> retain_bytes,
                                        std::optional<std::int64_t> min_timestamp_ms, log_index limit) const {
  const LogState st = state();
  log_index point = st.first_index;
  if (st.empty() || (!retain_bytes && !min_timestamp_ms)) return point;
  ReadTxn txn(*storage_->env_);
  if (txn.rc() != 0) return point;
  Cursor c(txn.get(), dbi_);
  MDB_val k, d;
  // Count batch bytes, the unit retain_bytes is in (page counts would over-trim small batches).
  std::uint64_t total = 0;
  int rc = 0;
  if (retain_bytes) {
    for (rc = mdb_cursor_get(c.get(), &k, &d, MDB_FIRST); rc == 0; rc = mdb_cursor_get(c.get(), &k, &d, MDB_NEXT))
      total += d.mv_size;
    if (rc != MDB_NOTFOUND) return point;
  }
  rc = mdb_cursor_get(c.get(), &k, &d, MDB_FIRST);
  while (rc == 0) {
    const std::uint64_t idx = from_be(k);
    if (idx >= limit.value || idx >= st.last_index.value) break;  // always keep the last entry
    const bool over_bytes = retain_bytes && total > *retain_bytes;
    bool too_old = false;
    if (min_timestamp_ms && d.mv_size >= kBatchHeaderSize) {
      const BatchView v(as_span(d));
      too_old = v.type() != BatchType::data || v.record_count() == 0 || v.max_timestamp_ms() < *min_timestamp_ms;
    }
    if (!over_bytes && !too_old) break;
    total -= std::min<std::uint64_t>(total, d.mv_size);
    point = log_index{idx + 1};
    rc = mdb_cursor_get(c.get(), &k, &d, MDB_NEXT);
  }
  return point;
}

std::uint64_t PartitionLog::size_bytes() const {
  ReadTxn txn(*storage_->env_);
  if (txn.rc() != 0) return 0;
  MDB_stat s;
  if (mdb_stat(txn.get(), dbi_, &s) != 0) return 0;
  return static_cast<std::uint64_t>(s.ms_branch_pages + s.ms_leaf_pages + s.ms_overflow_pages) * s.ms_psize;
}

}  // namespace quorumq::storage
