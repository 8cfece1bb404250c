// Always-on assertions for programmer errors (TigerBeetle style): a broken invariant logs
// where it broke and aborts, in every build type. Expected failures are values, not asserts.
#pragma once

namespace quorumq::detail {
[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const char* msg) noexcept;
}

#define QQ_ASSERT(cond)                                                                 \
  do {                                                                                  \
    if (!(cond)) [[unlikely]] ::quorumq::detail::assert_fail(#cond, __FILE__, __LINE__, ""); \
  } while (0)
#define QQ_ASSERT_MSG(cond, msg)                                                          \
  do {                                                                                    \
    if (!(cond)) [[unlikely]] ::quorumq::detail::assert_fail(#cond, __FILE__, __LINE__, msg); \
  } while (0)
