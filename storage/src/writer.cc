#include "writer.h"

#include <sys/statvfs.h>

#include <chrono>
#include <future>

#include "quorumq/protocol/assert.h"
#include "quorumq/protocol/record_batch.h"

namespace quorumq::storage {
namespace {

std::size_t op_bytes(const WriteOp& op) {
  std::size_t n = 64;
  if (const auto* a = std::get_if<AppendOp>(&op))
    for (const auto& b : a->batches) n += b.size();
  if (const auto* a = std::get_if<AppendAtOp>(&op))
    for (const auto& b : a->batches) n += b.size();
  return n;
}

Error invalid(std::string msg) { return {errc::invalid_argument, std::move(msg)}; }
const Error kOk{};

// Cheap structural check; the broker validated the CRC when the batch arrived.
bool plausible_batch(const std::vector<std::uint8_t>& b) {
  if (b.size() < kBatchHeaderSize) return false;
  BatchView v(b);
  return v.batch_length() == b.size() && v.magic() == kBatchMagic;
}

}  // namespace

Writer::Writer(Storage* storage, EnvHandle* env, bool manual) : storage_(storage), env_(env), manual_(manual) {
  if (!manual_) thread_ = std::thread([this] { run(); });
}

Writer::~Writer() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (manual_) run_pending(true);  // as the thread would: complete what is queued
  else thread_.join();
}

std::size_t Writer::run_pending(bool all) {
  QQ_ASSERT(manual_);
  std::size_t done = 0;
  for (;;) {
    std::vector<Pending> group;
    std::deque<Control> controls;
    {
      std::lock_guard lk(mu_);
      controls.swap(controls_);
      take_group_locked(group);
    }
    run_controls(controls);
    if (group.empty()) return done;
    done += group.size();
    commit_group(group);
    if (!all) return done;
  }
}

void Writer::discard_pending() {
  QQ_ASSERT(manual_);
  std::deque<Pending> dropped;
  {
    std::lock_guard lk(mu_);
    dropped.swap(queue_);
  }
}

std::size_t Writer::pending() const {
  std::lock_guard lk(mu_);
  return queue_.size();
}

void Writer::take_group_locked(std::vector<Pending>& group) {
  std::size_t bytes = 0;
  while (!queue_.empty() && (group.empty() || bytes + queue_.front().bytes <= storage_->options_.group_bytes_max)) {
    bytes += queue_.front().bytes;
    group.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
}

void Writer::run_controls(std::deque<Control>& controls) {
  for (auto& c : controls) {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_->env, nullptr, 0, &txn);
    if (rc == 0) {
      rc = c.fn(txn);
      if (rc == 0) rc = mdb_txn_commit(txn);
      else mdb_txn_abort(txn);
    }
    c.result->set_value(rc);
  }
}

void Writer::submit(std::vector<WriteOp> ops, WriteCallback done) {
  Pending p{std::move(ops), std::move(done), 0};
  for (const auto& op : p.ops) p.bytes += op_bytes(op);
  {
    std::unique_lock lk(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(p));
      // Wake the writer after letting go of the lock, or it wakes only to block on it (an extra
      // context switch on every produce; seen in scripts/latency_budget.sh traces).
      lk.unlock();
      cv_.notify_one();
      return;
    }
  }
  p.done(std::unexpected(Error{errc::closed, "storage is closing; retry on another broker"}));
}

int Writer::run_control(std::function<int(MDB_txn*)> fn) {
  QQ_ASSERT_MSG(!on_writer_thread(), "open_log/drop_log from a storage completion would deadlock");
  std::promise<int> result;
  auto fut = result.get_future();
  {
    std::lock_guard lk(mu_);
    controls_.push_back(Control{std::move(fn), &result});
  }
  if (manual_) {
    // Queued writes go first, as on the thread (a control never overtakes earlier submits'
    // commit in the log's published state); then the control itself.
    std::deque<Control> controls;
    {
      std::lock_guard lk(mu_);
      controls.swap(controls_);
    }
    run_controls(controls);
    return fut.get();
  }
  cv_.notify_one();
  return fut.get();
}

WriterStats Writer::stats() const {
  std::lock_guard lk(mu_);
  return stats_;
}

void Writer::run() {
  std::vector<Pending> group;
  for (;;) {
    std::deque<Control> controls;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [&] { return stopping_ || !queue_.empty() || !controls_.empty(); });
      controls.swap(controls_);
      take_group_locked(group);
      if (group.empty() && controls.empty() && stopping_) return;
    }
    run_controls(controls);
    if (!group.empty()) commit_group(group);
    group.clear();
  }
}

void Writer::commit_group(std::vector<Pending>& group) {
  std::vector<bool> excluded(group.size(), false);
  std::vector<Error> errors(group.size());
  std::vector<WriteResult> results(group.size());
  Scratch scratch;
  for (;;) {
    scratch.clear();
    for (auto& r : results) r.appends.clear();
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env_->env, nullptr, 0, &txn);
    bool retry = false;
    if (rc == 0) {
      for (std::size_t i = 0; i < group.size() && rc == 0; ++i) {
        if (excluded[i]) continue;
        Error e = apply(txn, group[i], scratch, results[i], rc);
        if (rc != 0) break;
        if (e.code != errc::ok) {
          // Its earlier ops may already be in the txn: re-apply the group without it.
          errors[i] = std::move(e);
          excluded[i] = true;
          retry = true;
          break;
        }
      }
      if (retry) {
        mdb_txn_abort(txn);
        continue;
      }
      if (rc == MDB_MAP_FULL) {
        mdb_txn_abort(txn);
        if (grow_map()) continue;
      } else if (rc != 0) {
        mdb_txn_abort(txn);
      } else {
        const auto t0 = std::chrono::steady_clock::now();
        rc = mdb_txn_commit(txn);  // one durable sync for every write in the group
        const auto ns = static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
        std::lock_guard lk(mu_);
        stats_.commit_ns_total += ns;
        if (ns > stats_.commit_ns_max) stats_.commit_ns_max = ns;
      }
    }
    if (rc == MDB_MAP_FULL && grow_map()) continue;
    if (rc != 0) {
      const Error e = commit_error(rc, group);
      disk_full_.store(e.code == errc::disk_full, std::memory_order_relaxed);
      for (std::size_t i = 0; i < group.size(); ++i)
        if (!excluded[i]) errors[i] = e, excluded[i] = true;
      scratch.clear();  // nothing of this group is stored: publish no new log state
    } else {
      disk_full_.store(false, std::memory_order_relaxed);
    }
    break;
  }

  // Publish what is durable before anyone hears of it.
  for (auto& [log, st] : scratch) {
    log->wstate_ = st;
    std::lock_guard lk(log->mu_);
    log->state_ = st;
  }
  {
    std::lock_guard lk(mu_);
    ++stats_.commits;
    for (std::size_t i = 0; i < group.size(); ++i) {
      ++stats_.writes;
      if (excluded[i]) {
        ++stats_.failed_writes;
        continue;
      }
      for (const auto& op : group[i].ops) {
        if (const auto* a = std::get_if<AppendOp>(&op)) {
          stats_.appended_batches += a->batches.size();
          for (const auto& b : a->batches) stats_.appended_bytes += b.size();
        } else if (const auto* a2 = std::get_if<AppendAtOp>(&op)) {
          stats_.appended_batches += a2->batches.size();
          for (const auto& b : a2->batches) stats_.appended_bytes += b.size();
        }
      }
    }
  }
  for (std::size_t i = 0; i < group.size(); ++i) {
    if (excluded[i]) group[i].done(std::unexpected(std::move(errors[i])));
    else group[i].done(std::move(results[i]));
  }
}

// LMDB reports a short write as EIO, and a write that runs out of space part-way is short: a
// failed commit on a filesystem with (almost) no room left is a full disk, not broken hardware.
Error Writer::commit_error(int rc, const std::vector<Pending>& group) const {
  const std::string what = "committing a group of writes to " + storage_->options_.dir.string();
  if (rc == EIO) {
    std::size_t bytes = 0;
    for (const auto& p : group) bytes += p.bytes;
    struct statvfs fs;
    if (::statvfs(storage_->options_.dir.c_str(), &fs) == 0 &&
        static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize < 2 * bytes + (1u << 20))
      return lmdb_error(ENOSPC, what);
  }
  return lmdb_error(rc, what);
}

bool Writer::grow_map() {
  std::unique_lock lk(env_->resize_mu);  // waits for read transactions to end
  const std::uint64_t next = env_->map_size_bytes * 2;
  if (mdb_env_set_mapsize(env_->env, next) != 0) return false;
  env_->map_size_bytes = next;
  std::lock_guard slk(mu_);
  ++stats_.map_resizes;
  return true;
}

Error Writer::apply(MDB_txn* txn, Pending& p, Scratch& scratch, WriteResult& out, int& rc) {
  for (auto& op : p.ops) {
    Error e;
    if (auto* a = std::get_if<AppendOp>(&op)) {
      e = apply_append(txn, *a, scratch, out, rc);
    } else if (auto* b = std::get_if<AppendAtOp>(&op)) {
      e = apply_append_at(txn, *b, scratch, out, rc);
    } else if (auto* t = std::get_if<TruncateSuffixOp>(&op)) {
      e = apply_truncate(txn, t->log, t->from, scratch, rc);
    } else if (auto* tp = std::get_if<TrimPrefixOp>(&op)) {
      e = apply_trim(txn, tp->log, tp->before, scratch, rc);
    } else if (auto* r = std::get_if<ResetLogOp>(&op)) {
      e = apply_reset(txn, *r, scratch, rc);
    } else if (auto* h = std::get_if<PutHardStateOp>(&op)) {
      const std::string key = "raft:" + h->group;
      std::uint64_t v[3] = {h->state.term.value, static_cast<std::uint64_t>(static_cast<std::int64_t>(h->state.vote.value)),
                            h->state.commit.value};
      MDB_val k = as_val(key), d = as_val(v, sizeof v);
      rc = mdb_put(txn, env_->meta_dbi, &k, &d, 0);
    } else if (auto* o = std::get_if<PutOffsetOp>(&op)) {
      std::string key = o->group;
      key.push_back('\0');
      key += o->topic;
      key.push_back('\0');
      const BeKey pk(static_cast<std::uint32_t>(o->partition));
      key.append(reinterpret_cast<const char*>(pk.b + 4), 4);
      std::string val(8, '\0');
      std::memcpy(val.data(), &o->value.offset, 8);
      val += o->value.metadata;
      MDB_val k = as_val(key), d = as_val(val);
      rc = mdb_put(txn, env_->offsets_dbi, &k, &d, 0);
    } else if (auto* od = std::get_if<DeleteOffsetOp>(&op)) {
      std::string key = od->group;
      key.push_back('\0');
      key += od->topic;
      key.push_back('\0');
      const BeKey pk(static_cast<std::uint32_t>(od->partition));
      key.append(reinterpret_cast<const char*>(pk.b + 4), 4);
      MDB_val k = as_val(key);
      rc = mdb_del(txn, env_->offsets_dbi, &k, nullptr);
      if (rc == MDB_NOTFOUND) rc = 0;
    } else if (auto* ot = std::get_if<DeleteTopicOffsetsOp>(&op)) {
      // Keys are group \0 topic \0 partition: the topic's keys are spread over every group.
      MDB_cursor* cur = nullptr;
      rc = mdb_cursor_open(txn, env_->offsets_dbi, &cur);
      MDB_val k, d;
      int crc = rc == 0 ? mdb_cursor_get(cur, &k, &d, MDB_FIRST) : rc;
      while (rc == 0 && crc == 0) {
        const std::string_view key(static_cast<const char*>(k.mv_data), k.mv_size);
        const auto z = key.find('\0');
        const auto rest = z == std::string_view::npos ? std::string_view() : key.substr(z + 1);
        if (rest.size() == ot->topic.size() + 5 && rest.starts_with(ot->topic) && rest[ot->topic.size()] == '\0')
          rc = mdb_cursor_del(cur, 0);
        if (rc == 0) crc = mdb_cursor_get(cur, &k, &d, MDB_NEXT);
      }
      if (cur) mdb_cursor_close(cur);
    } else if (auto* m = std::get_if<PutMetaOp>(&op)) {
      const std::string key = "m:" + m->key;
      MDB_val k = as_val(key), d = as_val(m->value.data(), m->value.size());
      rc = mdb_put(txn, env_->meta_dbi, &k, &d, 0);
    } else if (auto* dm = std::get_if<DeleteMetaOp>(&op)) {
      const std::string key = "m:" + dm->key;
      MDB_val k = as_val(key);
      rc = mdb_del(txn, env_->meta_dbi, &k, nullptr);
      if (rc == MDB_NOTFOUND) rc = 0;
    }
    if (rc != 0 || e.code != errc::ok) return e;
  }
  return kOk;
}

namespace {
LogState& touch(Writer*, std::map<PartitionLog*, LogState>& s, PartitionLog* log, const LogState& w) {
  auto it = s.find(log);
  if (it == s.end()) it = s.emplace(log, w).first;
  return it->second;
}
}  // namespace

// Writes stamped batches at st.last_index + 1 onward.
static int put_batches(MDB_txn* txn, unsigned dbi, LogState& st, std::vector<std::vector<std::uint8_t>>& batches,
                       AppendResult& r) {
  r.first_index = st.last_index.next();
  r.base_offset = st.next_offset;
  for (auto& b : batches) {
    const BatchView v(b);
    const log_index idx = st.last_index.next();
    const BeKey key(idx.value);
    MDB_val k = key.val(), d = as_val(b.data(), b.size());
    const int rc = mdb_put(txn, dbi, &k, &d, MDB_APPEND);
    if (rc != 0) return rc;
    st.last_index = idx;
    st.last_term = term_t{v.term()};
    st.next_offset = offset_t{st.next_offset.value + v.offset_count()};
  }
  r.last_index = st.last_index;
  r.next_offset = st.next_offset;
  return 0;
}

Error Writer::apply_append(MDB_txn* txn, AppendOp& op, Scratch& s, WriteResult& out, int& rc) {
  if (op.log->dropped_) return invalid("log " + op.log->name() + " was deleted");
  LogState& st = touch(this, s, op.log, op.log->wstate_);
  if (op.term < st.last_term)
    return invalid("append to " + op.log->name() + " with term " + std::to_string(op.term.value) +
                   " below the log's last term " + std::to_string(st.last_term.value));
  std::int64_t off = st.next_offset.value;
  for (auto& b : op.batches) {
    if (!plausible_batch(b)) return invalid("append to " + op.log->name() + ": not a record batch");
    stamp_batch(b, off, op.term.value);
    off += BatchView(b).offset_count();
  }
  AppendResult r;
  rc = put_batches(txn, op.log->dbi_, st, op.batches, r);
  if (rc == 0) out.appends.push_back(r);
  return kOk;
}

Error Writer::apply_append_at(MDB_txn* txn, AppendAtOp& op, Scratch& s, WriteResult& out, int& rc) {
  if (op.log->dropped_) return invalid("log " + op.log->name() + " was deleted");
  LogState& st = touch(this, s, op.log, op.log->wstate_);
  if (op.first > st.last_index.next() || op.first < st.first_index)
    return invalid("append to " + op.log->name() + " at index " + std::to_string(op.first.value) +
                   " outside [" + std::to_string(st.first_index.value) + ", " +
                   std::to_string(st.last_index.value + 1) + "]");
  if (op.first <= st.last_index) {
    Error e = apply_truncate(txn, op.log, op.first, s, rc);
    if (rc != 0 || e.code != errc::ok) return e;
  }
  // An empty log (fresh, fully truncated, or reset to a leader's first index) continues at the
  // offset its leader stamped: after a reset the follower does not know it until this batch.
  if (st.empty() && !op.batches.empty() && plausible_batch(op.batches.front())) {
    st.next_offset = offset_t{BatchView(op.batches.front()).base_offset()};
    st.start_offset = st.next_offset;
  }
  std::int64_t off = st.next_offset.value;
  std::uint64_t term = st.last_term.value;
  for (const auto& b : op.batches) {
    if (!plausible_batch(b)) return invalid("append to " + op.log->name() + ": not a record batch");
    const BatchView v(b);
    if (v.base_offset() != off)
      return invalid("append to " + op.log->name() + ": batch base offset " + std::to_string(v.base_offset()) +
                     " but the log continues at " + std::to_string(off));
    if (v.term() < term) return invalid("append to " + op.log->name() + ": terms must not decrease");
    term = v.term();
    off += v.offset_count();
  }
  AppendResult r;
  rc = put_batches(txn, op.log->dbi_, st, op.batches, r);
  if (rc == 0) out.appends.push_back(r);
  return kOk;
}

Error Writer::apply_truncate(MDB_txn* txn, PartitionLog* log, log_index from, Scratch& s, int& rc) {
  if (log->dropped_) return invalid("log " + log->name() + " was deleted");
  LogState& st = touch(this, s, log, log->wstate_);
  if (from > st.last_index) return kOk;  // nothing there
  if (from < st.first_index)
    return invalid("truncate " + log->name() + " from " + std::to_string(from.value) +
                   " below its first index " + std::to_string(st.first_index.value));
  Cursor c(txn, log->dbi_);
  if ((rc = c.rc()) != 0) return kOk;
  const BeKey key(from.value);
  MDB_val k = key.val(), d;
  rc = mdb_cursor_get(c.get(), &k, &d, MDB_SET_KEY);
  if (rc != 0) return kOk;
  const std::int64_t new_next = BatchView(as_span(d)).base_offset();
  term_t new_last_term = st.prev_term;
  if (from > st.first_index) {
    MDB_val pk, pd;
    rc = mdb_cursor_get(c.get(), &pk, &pd, MDB_PREV);
    if (rc != 0) return kOk;
    new_last_term = term_t{BatchView(as_span(pd)).term()};
    rc = mdb_cursor_get(c.get(), &pk, &pd, MDB_NEXT);
    if (rc != 0) return kOk;
  }
  // Delete [from, last] from the end: simple and robust against cursor-after-delete subtleties.
  for (;;) {
    MDB_val lk, ld;
    rc = mdb_cursor_get(c.get(), &lk, &ld, MDB_LAST);
    if (rc == MDB_NOTFOUND) break;
    if (rc != 0) return kOk;
    if (from_be(lk) < from.value) break;
    rc = mdb_cursor_del(c.get(), 0);
    if (rc != 0) return kOk;
  }
  rc = 0;
  st.last_index = log_index{from.value - 1};
  st.last_term = new_last_term;
  st.next_offset = offset_t{new_next};
  return kOk;
}

Error Writer::apply_trim(MDB_txn* txn, PartitionLog* log, log_index before, Scratch& s, int& rc) {
  if (log->dropped_) return invalid("log " + log->name() + " was deleted");
  LogState& st = touch(this, s, log, log->wstate_);
  if (before <= st.first_index) return kOk;
  if (before > st.last_index.next())
    return invalid("trim " + log->name() + " before " + std::to_string(before.value) +
                   " beyond its end " + std::to_string(st.last_index.value + 1));
  Cursor c(txn, log->dbi_);
  if ((rc = c.rc()) != 0) return kOk;
  term_t prev_term = st.prev_term;
  offset_t start_offset = st.next_offset;
  for (;;) {
    MDB_val k, d;
    rc = mdb_cursor_get(c.get(), &k, &d, MDB_FIRST);
    if (rc != 0) break;
    const BatchView v(as_span(d));
    if (from_be(k) >= before.value) {
      start_offset = offset_t{v.base_offset()};
      break;
    }
    prev_term = term_t{v.term()};
    rc = mdb_cursor_del(c.get(), 0);
    if (rc != 0) return kOk;
  }
  if (rc == MDB_NOTFOUND || rc == EINVAL) rc = 0;
  if (rc != 0) return kOk;
  st.first_index = before;
  st.prev_term = prev_term;
  st.start_offset = start_offset;
  if (st.empty()) st.last_term = prev_term;
  rc = put_logstate(txn, log, st);
  return kOk;
}

Error Writer::apply_reset(MDB_txn* txn, const ResetLogOp& op, Scratch& s, int& rc) {
  if (op.log->dropped_) return invalid("log " + op.log->name() + " was deleted");
  LogState& st = touch(this, s, op.log, op.log->wstate_);
  rc = mdb_drop(txn, op.log->dbi_, 0);  // empty the database, keep the handle
  if (rc != 0) return kOk;
  st.first_index = op.start;
  st.last_index = log_index{op.start.value - 1};
  st.prev_term = st.last_term = op.prev_term;
  st.start_offset = st.next_offset = op.start_offset;
  rc = put_logstate(txn, op.log, st);
  return kOk;
}

int Writer::put_logstate(MDB_txn* txn, PartitionLog* log, const LogState& st) {
  LogStart ls{st.first_index.value, st.prev_term.value, st.start_offset.value};
  const std::string key = logstate_key(log->name());
  MDB_val k = as_val(key), d = as_val(&ls, sizeof ls);
  return mdb_put(txn, env_->meta_dbi, &k, &d, 0);
}

}  // namespace quorumq::storage
