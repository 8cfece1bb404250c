#include "partition.h"

#include <spdlog/spdlog.h>

#include "quorumq/protocol/record_batch.h"
#include "state_record.h"

namespace quorumq::broker {

namespace {

std::string producer_snapshot_key(const std::string& group) { return "producers:" + group; }

std::vector<std::uint8_t> encode_producer_snapshot(std::uint64_t index, std::uint64_t term,
                                                   const std::vector<ProducerStateTable::Durable>& table) {
  flatbuffers::FlatBufferBuilder fbb(64 + table.size() * 96);
  std::vector<flatbuffers::Offset<state::ProducerEntry>> entries;
  entries.reserve(table.size());
  for (const auto& d : table) {
    std::vector<state::RecentBatch> recent;
    recent.reserve(d.recent.size());
    for (const auto& r : d.recent) recent.emplace_back(r.first_seq, r.last_seq, r.base_offset);
    const auto rv = fbb.CreateVectorOfStructs(recent);
    entries.push_back(state::CreateProducerEntry(fbb, d.pid, d.epoch, d.next_seq, d.last_index, rv));
  }
  const auto ev = fbb.CreateVector(entries);
  const auto body = state::CreateProducerSnapshot(fbb, index, term, ev);
  return finish_state_record(fbb, state::Body::ProducerSnapshot, body.Union());
}

struct ProducerSnapshot {
  std::uint64_t index = 0;
  std::uint64_t term = 0;
  std::vector<ProducerStateTable::Durable> producers;
};

// nullopt when there is none or it is unreadable (then the log's headers are read instead).
std::optional<ProducerSnapshot> load_producer_snapshot(storage::Storage& storage, const std::string& group) {
  const auto bytes = storage.meta(producer_snapshot_key(group));
  if (!bytes) return std::nullopt;
  const auto rec = read_state_record(*bytes);
  const auto* s = rec ? rec->as<state::ProducerSnapshot>() : nullptr;
  if (!s) {
    spdlog::warn("{}: stored producer snapshot unreadable; rebuilding the producer table from the log", group);
    return std::nullopt;
  }
  ProducerSnapshot out{s->index(), s->term(), {}};
  if (s->producers()) {
    out.producers.reserve(s->producers()->size());
    for (const auto* p : *s->producers()) {
      ProducerStateTable::Durable d{p->pid(), p->epoch(), p->next_seq(), p->last_index(), {}};
      if (p->recent())
        for (const auto* r : *p->recent()) d.recent.push_back({r->first_seq(), r->last_seq(), r->base_offset()});
      out.producers.push_back(std::move(d));
    }
  }
  return out;
}

}  // namespace

using wire::ErrorCode;

SplitResult split_and_validate(std::span<const std::uint8_t> records, std::uint32_t max_batch_bytes) {
  SplitResult r;
  std::size_t at = 0;
  while (at < records.size()) {
    const auto rest = records.subspan(at);
    if (rest.size() < kBatchHeaderSize) {
      r.status.code = ErrorCode::corrupt_message;
      r.status.message = "truncated record batch header at byte " + std::to_string(at);
      return r;
    }
    const std::uint32_t len = BatchView(rest).batch_length();
    if (len > max_batch_bytes) {
      r.status.code = ErrorCode::message_too_large;
      r.status.message = "record batch of " + std::to_string(len) + " bytes exceeds the limit of " +
                  std::to_string(max_batch_bytes) +
                  " (the topic's max.message.bytes, or the broker's --max-message-bytes): send smaller batches";
      return r;
    }
    if (len < kBatchHeaderSize || len > rest.size()) {
      r.status.code = ErrorCode::corrupt_message;
      r.status.message = "record batch length " + std::to_string(len) + " does not fit the request";
      return r;
    }
    const BatchView v(rest.first(len));
    if (const BatchError e = v.validate(); e != BatchError::ok) {
      r.status.code = ErrorCode::corrupt_message;
      r.status.message = std::string("record batch ") + std::to_string(r.batches.size()) + ": " + to_string(e);
      return r;
    }
    if (v.type() != BatchType::data || v.record_count() == 0) {
      r.status.code = ErrorCode::invalid_request;
      r.status.message = "producers may only send data batches with at least one record";
      return r;
    }
    r.batches.push_back(rest.first(len));
    at += len;
  }
  if (r.batches.empty()) {
    r.status.code = ErrorCode::invalid_request;
    r.status.message = "produce request for a partition carries no record batch";
  }
  return r;
}

namespace {
// Control batch payloads in a partition log: an OffsetCommit or OffsetDelete state record
// (broker/schema/state.fbs). Earlier builds wrote kind 1 (commit) / kind 2 (delete), a u16 group
// length, the group, the offset, a u32 metadata length, the metadata (host order, little-endian).
constexpr std::uint8_t kLegacyOffsetCommit = 1;
constexpr std::uint8_t kLegacyOffsetDelete = 2;

std::vector<std::uint8_t> encode_offset_commit(const OffsetCommitItem& c) {
  flatbuffers::FlatBufferBuilder fbb(128 + c.group.size() + c.metadata.size());
  // Strings by length: metadata is the client's opaque bytes (a NUL inside must survive).
  const auto group = fbb.CreateString(c.group);
  const auto metadata = fbb.CreateString(c.metadata);
  const auto b = state::CreateOffsetCommit(fbb, group, c.offset, metadata);
  return finish_state_record(fbb, state::Body::OffsetCommit, b.Union());
}

std::vector<std::uint8_t> encode_offset_delete(const std::string& group) {
  flatbuffers::FlatBufferBuilder fbb(64 + group.size());
  const auto b = state::CreateOffsetDelete(fbb, fbb.CreateString(group));
  return finish_state_record(fbb, state::Body::OffsetDelete, b.Union());
}

std::optional<OffsetCommitItem> decode_legacy(std::span<const std::uint8_t> p, std::uint8_t kind) {
  OffsetCommitItem c;
  if (p.size() < 3 || p[0] != kind) return std::nullopt;
  std::uint16_t glen;
  std::memcpy(&glen, p.data() + 1, 2);
  std::size_t at = 3;
  if (p.size() < at + glen + 12) return std::nullopt;
  c.group.assign(reinterpret_cast<const char*>(p.data() + at), glen);
  at += glen;
  std::memcpy(&c.offset, p.data() + at, 8);
  at += 8;
  std::uint32_t mlen;
  std::memcpy(&mlen, p.data() + at, 4);
  at += 4;
  if (p.size() - at != mlen) return std::nullopt;
  c.metadata.assign(reinterpret_cast<const char*>(p.data() + at), mlen);
  return c;
}

// A commit or a delete (offset -1, `deleted` set); nullopt: neither, or unreadable.
struct OffsetRecord {
  OffsetCommitItem item;
  bool deleted = false;
};
std::optional<OffsetRecord> decode_offset_record(std::span<const std::uint8_t> p) {
  if (is_state_record(p)) {
    const auto rec = read_state_record(p);
    if (!rec) return std::nullopt;
    if (const auto* c = rec->as<state::OffsetCommit>())
      return OffsetRecord{{state_str(c->group()), c->offset(), state_str(c->metadata())}, false};
    if (const auto* d = rec->as<state::OffsetDelete>()) return OffsetRecord{{state_str(d->group()), -1, {}}, true};
    return std::nullopt;
  }
  if (auto c = decode_legacy(p, kLegacyOffsetCommit)) return OffsetRecord{std::move(*c), false};
  if (auto d = decode_legacy(p, kLegacyOffsetDelete)) return OffsetRecord{std::move(*d), true};
  return std::nullopt;
}

ProduceResult from_propose(ProposeResult r) { return {std::move(r.status), r.base_offset}; }
}  // namespace

Partition::Partition(std::string topic, std::int32_t id, std::vector<node_id> replicas, storage::Storage& storage,
                     storage::PartitionLog* log, Metrics& metrics)
    : topic_(std::move(topic)), id_(id), replicas_(std::move(replicas)), storage_(storage), log_(log),
      metrics_(metrics), group_name_(topic_ + "/" + std::to_string(id_)) {
  // Producer state: rebuilt in on_start() from the committed part of the log only.
  // Committed offsets applied before the last restart (the log tail re-applies the rest).
  for (const auto& g : storage_.groups())
    if (auto c = storage_.committed_offset(g, topic_, id_)) offsets_[g] = *c;
}

Partition::~Partition() { stop(); }

void Partition::start(GroupOptions opts, Transport& transport, Executor& exec) {
  group_name_ = opts.name;
  group_ = std::make_shared<ReplicatedLog>(std::move(opts), storage_, log_, transport, exec, this);
  group_->start();
}

void Partition::stop() {
  if (closed_.exchange(true)) return;
  if (group_) group_->stop();
  wake_all();
}

void Partition::on_start(log_index applied, std::int64_t applied_end_offset) {
  hw_.store(applied_end_offset);
  applied_ = applied;
  if (sim_regression::producer_state_from_uncommitted_tail) {
    rebuild_producer_state(log_->state().last_index);  // the old rule (simulation only)
    return;
  }
  rebuild_producer_state(applied);  // entries after `applied` are replayed as they are applied
}

void Partition::replay_producer(std::span<const std::uint8_t> batch, std::uint64_t index) {
  const BatchView v(batch);
  if (v.type() == BatchType::data && v.producer_id() >= 0)
    producers_.replay(v.producer_id(), v.producer_epoch(), v.base_sequence(), static_cast<std::int32_t>(v.record_count()),
                      v.base_offset(), index);
}

void Partition::apply(const raft::Entry& e, std::span<const std::uint8_t> batch) {
  apply_entry(e, batch);
  maybe_snapshot_producers(e);
}

void Partition::apply_entry(const raft::Entry& e, std::span<const std::uint8_t> batch) {
  applied_ = std::max(applied_, e.index);
  if (batch.size() < kBatchHeaderSize) return;
  const BatchView v(batch);
  if (v.type() == BatchType::data) {
    replay_producer(batch, e.index.value);
    if (v.producer_id() >= 0)
      applied_producers_.replay(v.producer_id(), v.producer_epoch(), v.base_sequence(),
                                static_cast<std::int32_t>(v.record_count()), v.base_offset(), e.index.value);
  } else if (v.type() == BatchType::control) {
    const auto rec = decode_offset_record(batch_payload(v));
    if (rec && !rec->deleted) {
      const auto* c = &rec->item;
      {
        std::lock_guard lk(offsets_mu_);
        offsets_[c->group] = {c->offset, c->metadata};
      }
      // Persisted for fast restarts; queued before the next Raft write, which records the
      // applied index, so "applied" never runs ahead of what these writes stored.
      std::vector<storage::WriteOp> ops;
      ops.emplace_back(storage::PutOffsetOp{c->group, topic_, id_, {c->offset, c->metadata}});
      storage_.submit(std::move(ops), [](auto) {});
    } else if (rec) {
      const auto* d = &rec->item;
      {
        std::lock_guard lk(offsets_mu_);
        offsets_.erase(d->group);
      }
      std::vector<storage::WriteOp> ops;
      ops.emplace_back(storage::DeleteOffsetOp{d->group, topic_, id_});
      storage_.submit(std::move(ops), [](auto) {});
    }
  }
  const std::int64_t end = v.base_offset() + v.offset_count();
  if (end > hw_.load()) {
    hw_.store(end, std::memory_order_release);
    wake_all();
  }
}

// A new leader's tail (entries after the commit index) all commits under it before it serves
// produce requests (leader_ready), possibly before they are applied here: count them now so a
// retried batch of the tail is recognised. If this replica stops leading before that, on_role
// forgets them again.
void Partition::on_leader(const std::vector<raft::Entry>& tail) {
  for (const auto& e : tail)
    if (e.payload && e.payload->size() >= kBatchHeaderSize) replay_producer(*e.payload);
}

void Partition::on_role(raft::Role role) {
  const bool leading = role == raft::Role::leader;
  // No longer leading: drop what only a leader knew (its uncommitted tail, reservations,
  // acks=leader batches): the next leader may truncate them. Back to the committed state.
  if (leading_ && !leading && !sim_regression::producer_state_from_uncommitted_tail) producers_ = applied_producers_;
  leading_ = leading;
}

void Partition::rebuild_producer_state(log_index upto) {
  producers_.clear();
  applied_since_snapshot_ = 0;
  const auto st = log_->state();
  if (st.empty() || upto.value < st.first_index.value) {
    applied_producers_ = producers_;
    return;
  }
  const std::uint64_t last = std::min(upto.value, st.last_index.value);
  // A producer silent for longer than kProducerWindow entries is forgotten (as Kafka expires
  // producer ids).
  const std::uint64_t window_lo = last >= kProducerWindow ? last - kProducerWindow + 1 : 1;
  std::uint64_t lo = std::max(window_lo, st.first_index.value);
  // The snapshot counts only if it is of this log (its entry is still there with its term) and
  // not ahead of what is applied (a crash between storing it and the next applied index).
  if (auto snap = load_producer_snapshot(storage_, group_name_)) {
    const auto term = log_->term_at(log_index{snap->index});
    if (snap->index <= last && snap->index + 1 >= st.first_index.value && term && term->value == snap->term) {
      for (const auto& d : snap->producers) producers_.restore(d);
      lo = std::max(lo, snap->index + 1);
    }
  }
  // Headers only (about one page per entry, not the whole tail): the entries themselves are
  // CRC-checked at start (the unapplied tail) or in the background (the rest); a damage found
  // there reopens the group, which rebuilds this table again.
  if (lo <= last) {
    auto r = log_->for_each_header(log_index{lo}, log_index{last}, [this](log_index i, std::span<const std::uint8_t> header) {
      replay_producer(header, i.value);
    });
    if (!r)
      spdlog::warn("partition {}/{}: could not read the log tail to rebuild producer state: {}", topic_, id_,
                   r.error().message);
  }
  producers_.expire_before(window_lo);
  applied_producers_ = producers_;
}

void Partition::maybe_snapshot_producers(const raft::Entry& e) {
  if (++applied_since_snapshot_ < partition_tuning::producer_snapshot_every) return;
  applied_since_snapshot_ = 0;
  if (e.index.value >= kProducerWindow) applied_producers_.expire_before(e.index.value - kProducerWindow + 1);
  // Queued before the next Raft write like the offsets above: it rides in that LMDB commit.
  std::vector<storage::WriteOp> ops;
  ops.emplace_back(storage::PutMetaOp{producer_snapshot_key(group_name_),
                                      encode_producer_snapshot(e.index.value, e.term.value, applied_producers_.durable())});
  storage_.submit(std::move(ops), [](auto) {});
}

void Partition::produce(std::vector<std::vector<std::uint8_t>> batches, wire::Acks acks, ProduceCallback done) {
  if (closed_.load() || !group_) {
    done({{wire::ErrorCode::not_leader, "partition " + topic_ + "/" + std::to_string(id_) + " is not served here", {}}, -1});
    return;
  }
  // One callback for the whole set: answered with the first batch's offset once all are in.
  struct Join {
    std::mutex mu;
    std::size_t left;
    ProduceResult first;
    bool have_error = false;
    ProduceCallback done;
  };
  auto join = std::make_shared<Join>();
  join->left = batches.size();
  join->done = std::move(done);
  auto finish_one = [join](std::size_t i, ProduceResult r) {
    std::unique_lock lk(join->mu);
    if (i == 0 && !join->have_error) join->first.base_offset = r.base_offset;
    if (!r.status.ok() && !join->have_error) {
      join->have_error = true;
      join->first = std::move(r);
    }
    if (--join->left == 0) {
      auto cb = std::move(join->done);
      auto res = std::move(join->first);
      lk.unlock();
      cb(std::move(res));
    }
  };
  const AckLevel level = acks == wire::Acks::quorum ? AckLevel::quorum : AckLevel::leader;
  group_->locked([&] {
    if (auto err = group_->check_can_propose_locked()) {
      for (std::size_t i = 0; i < batches.size(); ++i) finish_one(i, ProduceResult{*err, -1});
      return;
    }
    for (std::size_t i = 0; i < batches.size(); ++i) {
      const BatchView v(batches[i]);
      const std::int64_t pid = v.producer_id();
      if (pid >= 0) {
        const auto r = producers_.check_and_reserve(pid, v.producer_epoch(), v.base_sequence(),
                                                    static_cast<std::int32_t>(v.record_count()));
        switch (r.check) {
          case SeqCheck::accept: break;
          case SeqCheck::duplicate:
            metrics_.produce_duplicates.fetch_add(1, std::memory_order_relaxed);
            finish_one(i, {{wire::ErrorCode::duplicate_sequence, "batch already written", {}}, r.duplicate_offset});
            continue;
          case SeqCheck::in_flight:
            finish_one(i, {{wire::ErrorCode::request_timed_out,
                            "an earlier copy of this batch is still being replicated; retry", {}}, -1});
            continue;
          case SeqCheck::out_of_order:
            finish_one(i, {{wire::ErrorCode::out_of_order_sequence,
                            "producer " + std::to_string(pid) + " sent sequence " + std::to_string(v.base_sequence()) +
                                " out of order; the producer must reset (new producer id)",
                            {}},
                           -1});
            continue;
          case SeqCheck::fenced:
            finish_one(i, {{wire::ErrorCode::invalid_producer_epoch,
                            "a newer instance of this producer exists (epoch fenced)", {}}, -1});
            continue;
        }
      }
      const auto epoch = v.producer_epoch();
      const auto seq = v.base_sequence();
      const auto count = static_cast<std::int32_t>(v.record_count());
      group_->propose_locked(std::move(batches[i]), level,
                             [this, self = shared_from_this(), finish_one, i, pid, epoch, seq, count](ProposeResult r) {
                               if (pid >= 0) {
                                 if (r.status.ok())
                                   producers_.on_durable(pid, epoch, seq, count, r.base_offset);
                                 else
                                   producers_.on_failed(pid);
                               }
                               finish_one(i, from_propose(std::move(r)));
                             });
    }
  });
}

void Partition::commit_offset(OffsetCommitItem item, ProduceCallback done) {
  if (closed_.load() || !group_) {
    done({{wire::ErrorCode::not_coordinator, "partition not served here", {}}, -1});
    return;
  }
  group_->locked([&] {
    if (auto err = group_->check_can_propose_locked()) {
      ProduceResult r{*err, -1};
      r.status.code = wire::ErrorCode::not_coordinator;
      done(std::move(r));
      return;
    }
    auto batch = make_payload_batch(BatchType::control, encode_offset_commit(item));
    group_->propose_locked(std::move(batch), AckLevel::quorum,
                           [done = std::move(done)](ProposeResult r) mutable { done(from_propose(std::move(r))); });
  });
}

void Partition::delete_offset(const std::string& group, ProduceCallback done) {
  if (closed_.load() || !group_) {
    done({{wire::ErrorCode::not_coordinator, "partition not served here", {}}, -1});
    return;
  }
  group_->locked([&] {
    if (auto err = group_->check_can_propose_locked()) {
      ProduceResult r{*err, -1};
      r.status.code = wire::ErrorCode::not_coordinator;
      done(std::move(r));
      return;
    }
    auto batch = make_payload_batch(BatchType::control, encode_offset_delete(group));
    group_->propose_locked(std::move(batch), AckLevel::quorum,
                           [done = std::move(done)](ProposeResult r) mutable { done(from_propose(std::move(r))); });
  });
}

std::vector<std::pair<std::string, storage::CommittedOffset>> Partition::committed_offsets() const {
  std::lock_guard lk(offsets_mu_);
  return {offsets_.begin(), offsets_.end()};
}

std::optional<storage::CommittedOffset> Partition::committed_offset(const std::string& group) const {
  std::lock_guard lk(offsets_mu_);
  auto it = offsets_.find(group);
  if (it == offsets_.end()) return std::nullopt;
  return it->second;
}

std::uint64_t Partition::add_waiter(std::function<void()> wake) {
  std::lock_guard lk(waiters_mu_);
  const auto id = next_waiter_++;
  waiters_.emplace(id, std::move(wake));
  return id;
}

void Partition::remove_waiter(std::uint64_t id) {
  std::lock_guard lk(waiters_mu_);
  waiters_.erase(id);
}

void Partition::wake_all() {
  std::map<std::uint64_t, std::function<void()>> w;
  {
    std::lock_guard lk(waiters_mu_);
    w.swap(waiters_);
  }
  for (auto& [_, f] : w) f();
}

}  // namespace quorumq::broker
