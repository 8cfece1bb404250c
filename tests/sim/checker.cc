#include "checker.h"

#include <cstring>

namespace quorumq::sim {

std::uint64_t payload_key(const raft::Entry& e) {
  if (!e.payload || e.payload->size() < sizeof(std::uint64_t)) return 0;
  std::uint64_t k;
  std::memcpy(&k, e.payload->data(), sizeof k);
  return k;
}

void Checker::fail(std::string what) {
  if (failure_.empty()) failure_ = std::move(what);
}

void Checker::check_fact(int node, std::uint64_t index, std::uint64_t term, std::uint64_t key,
                         std::optional<std::uint64_t> prev_term) {
  auto [it, inserted] = facts_.try_emplace({index, term}, Fact{key, prev_term});
  if (inserted) return;
  Fact& f = it->second;
  if (f.key != key) {
    fail("log matching: node " + std::to_string(node) + " has a different entry at index " +
         std::to_string(index) + " term " + std::to_string(term));
  }
  if (prev_term) {
    if (!f.prev_term) {
      f.prev_term = prev_term;
    } else if (*f.prev_term != *prev_term) {
      fail("log matching: node " + std::to_string(node) + " differs before index " +
           std::to_string(index) + " term " + std::to_string(term));
    }
  }
}

void Checker::observe_entries(int node, const std::vector<raft::Entry>& entries,
                              std::optional<term_t> prev_term) {
  std::optional<std::uint64_t> prev;
  if (prev_term) prev = prev_term->value;
  for (const raft::Entry& e : entries) {
    check_fact(node, e.index.value, e.term.value, payload_key(e), prev);
    prev = e.term.value;
  }
}

void Checker::observe_leader(int node, term_t term, const raft::Raft& r) {
  auto [it, inserted] = leader_of_term_.try_emplace(term.value, node);
  if (!inserted) {
    if (it->second != node) {
      fail("election safety: nodes " + std::to_string(it->second) + " and " +
           std::to_string(node) + " both lead term " + std::to_string(term.value));
    }
    return;
  }
  // A new leader: leader completeness (paper §5.4.1).
  const auto& log = r.log();
  for (const auto& [index, c] : committed_) {
    if (index < log.first_index().value) continue;  // removed by retention: committed anyway
    auto t = log.term(log_index(index));
    if (!t || t->value != c.term) {
      fail("leader completeness: new leader " + std::to_string(node) + " of term " +
           std::to_string(term.value) + " lacks committed index " + std::to_string(index));
      return;
    }
  }
}

void Checker::observe_applied(int node, const raft::Entry& e) {
  const std::uint64_t key = payload_key(e);
  auto [it, inserted] = committed_.try_emplace(e.index.value, Committed{e.term.value, key});
  if (!inserted) {
    if (it->second.term != e.term.value || it->second.key != key) {
      fail("state machine safety: node " + std::to_string(node) + " applied a different entry at " +
           std::to_string(e.index.value));
    }
    return;
  }
  if (key != 0) {
    auto [kit, fresh] = committed_keys_.try_emplace(key, e.index.value);
    if (!fresh && kit->second != e.index.value) {
      fail("proposal " + std::to_string(key) + " committed twice");
    }
  }
}

void Checker::observe_removed(int node, const raft::Entry& e) {
  auto it = committed_.find(e.index.value);
  if (it != committed_.end() && it->second.term == e.term.value) {
    fail("node " + std::to_string(node) + " removed committed entry " +
         std::to_string(e.index.value));
  }
}

}  // namespace quorumq::sim
