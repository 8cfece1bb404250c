// A small synchronous cluster for scenario tests: every node persists its Ready immediately
// (MemoryLog is its disk), messages go through one FIFO queue, and a filter can drop any
// message. Nodes are numbered 1..N; voters first, then learners.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "quorumq/raft/memory_log.h"
#include "quorumq/raft/raft.h"

namespace quorumq::raft::test {

inline Payload bytes(const std::string& s) {
  return make_payload(std::vector<std::uint8_t>(s.begin(), s.end()));
}

inline std::string text(const Entry& e) {
  return e.payload ? std::string(e.payload->begin(), e.payload->end()) : std::string();
}

class Harness {
 public:
  struct Node {
    Config cfg;
    MemoryLog disk;
    HardState hs;
    std::unique_ptr<Raft> raft;
    std::vector<Ready> readies;  // every Ready this node produced, for contract checks
  };

  explicit Harness(int voters, int learners = 0,
                   const std::function<void(Config&)>& tweak = {}) {
    std::vector<node_id> v, l;
    for (int i = 1; i <= voters; ++i) v.push_back(node_id(i));
    for (int i = voters + 1; i <= voters + learners; ++i) l.push_back(node_id(i));
    for (int i = 1; i <= voters + learners; ++i) {
      auto n = std::make_unique<Node>();
      n->cfg.id = node_id(i);
      n->cfg.voters = v;
      n->cfg.learners = l;
      n->cfg.rng_seed = 42 + static_cast<std::uint64_t>(i);
      if (tweak) tweak(n->cfg);
      nodes_.push_back(std::move(n));
    }
  }

  // Before start(): give node `id` a durable log with these terms at indexes 1..n.
  void set_log(int id, const std::vector<std::uint64_t>& terms) {
    std::vector<Entry> es;
    for (std::size_t k = 0; k < terms.size(); ++k) {
      es.push_back(Entry{log_index(k + 1), term_t(terms[k]), EntryType::normal,
                         bytes("e" + std::to_string(k + 1) + "t" + std::to_string(terms[k]))});
    }
    node(id).disk.append(es);
    if (!terms.empty() && node(id).hs.term.value < terms.back()) node(id).hs.term = term_t(terms.back());
  }
  void set_term(int id, std::uint64_t term) { node(id).hs.term = term_t(term); }

  void start() {
    for (std::size_t i = 1; i <= nodes_.size(); ++i) start(static_cast<int>(i));
  }
  void start(int id) {
    Node& n = node(id);
    n.cfg.applied = log_index(n.disk.first_index().value - 1);
    n.raft = std::make_unique<Raft>(n.cfg, n.disk, n.hs);
  }
  void crash(int id) { node(id).raft.reset(); }

  Node& node(int id) { return *nodes_.at(static_cast<std::size_t>(id - 1)); }
  Raft& r(int id) { return *node(id).raft; }
  MemoryLog& disk(int id) { return node(id).disk; }
  int size() const { return static_cast<int>(nodes_.size()); }

  void isolate(int id) { isolated_.push_back(id); }
  void heal() { isolated_.clear(); }
  // Sees (and may rewrite) every message before delivery; return false to drop it.
  std::function<bool(Message&)> filter;

  // Persist and send every pending Ready (synchronously), then deliver messages, until quiet.
  void stabilize() {
    for (int round = 0; round < 10000; ++round) {
      bool progress = false;
      for (int id = 1; id <= size(); ++id) progress |= flush(id);
      while (!queue_.empty()) {
        Message m = std::move(queue_.front());
        queue_.pop_front();
        progress = true;
        deliver(m);
      }
      if (!progress) return;
    }
    ADD_FAILURE() << "cluster did not stabilize";
  }

  // Handle node id's Ready (if any); messages are queued, not delivered.
  bool flush(int id) {
    Node& n = node(id);
    if (!n.raft || !n.raft->has_ready()) return false;
    Ready rd = n.raft->ready();
    n.disk.apply_ready(rd);
    if (rd.hard_state) n.hs = *rd.hard_state;
    for (const Message& m : rd.messages_early) queue_.push_back(m);
    for (const Message& m : rd.messages) queue_.push_back(m);
    for (const Entry& e : rd.committed_entries) applied_[id].push_back(e);
    n.raft->advance(rd);
    check(id);
    n.readies.push_back(std::move(rd));
    return true;
  }

  void deliver(Message m) {
    for (int iso : isolated_) {
      if (m.from.value == iso || m.to.value == iso) return;
    }
    if (filter && !filter(m)) return;
    Node& d = node(m.to.value);
    if (!d.raft) return;
    d.raft->step(m);
    check(m.to.value);
  }

  void tick(int id, int times = 1) {
    for (int k = 0; k < times; ++k) {
      if (node(id).raft) {
        r(id).tick();
        check(id);
      }
    }
  }
  void tick_all(int times = 1) {
    for (int k = 0; k < times; ++k) {
      for (int id = 1; id <= size(); ++id) tick(id);
      stabilize();
    }
  }

  // Makes `id` campaign and runs the election to completion.
  void elect(int id) {
    r(id).campaign_now();
    stabilize();
  }

  void check(int id) {
    const std::string v = r(id).find_invariant_violation();
    EXPECT_TRUE(v.empty()) << "node " << id << ": " << v;
  }

  std::vector<std::uint64_t> log_terms(int id) {
    std::vector<std::uint64_t> out;
    const RaftLog& log = r(id).log();
    for (auto i = log.first_index().value; i <= log.last_index().value; ++i) {
      out.push_back(log.term(log_index(i))->value);
    }
    return out;
  }

  const std::vector<Entry>& applied(int id) { return applied_[id]; }
  std::deque<Message>& queue() { return queue_; }

 private:
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<int> isolated_;
  std::deque<Message> queue_;
  std::map<int, std::vector<Entry>> applied_;
};

}  // namespace quorumq::raft::test
