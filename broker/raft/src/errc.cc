#include "quorumq/raft/errc.h"

namespace quorumq::raft {
namespace {
class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "quorumq.raft"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::not_leader: return "not the leader";
      case errc::leadership_transfer_pending: return "leadership transfer in progress";
      case errc::invalid_transfer_target: return "invalid leadership transfer target";
    }
    return "unknown raft error";
  }
};
}  // namespace

const std::error_category& raft_category() noexcept {
  static const Category category;
  return category;
}
}  // namespace quorumq::raft
