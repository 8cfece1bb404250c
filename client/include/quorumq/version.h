#pragma once

#include "quorumq/export.h"
namespace quorumq {
// The SDK's version, e.g. "0.1.0".
QUORUMQ_API const char* client_version() noexcept;
}  // namespace quorumq
