// Storage errors: expected failures are values (std::expected<T, storage::Error>), each with a
// code for programs and a sentence for people that names the partition/offset and what to do.
#pragma once

#include <string>
#include <system_error>

namespace quorumq::storage {

enum class errc {
  ok = 0,
  not_a_data_dir,    // the directory holds something that is not a quorumq data dir
  newer_format,      // written by a newer quorumq; refuse rather than misread it
  io_error,          // the OS or LMDB failed in a way we do not classify further
  disk_full,         // ENOSPC (or the map could not grow): nothing from this write was stored
  corrupt,           // a stored batch failed its CRC or structure check
  out_of_range,      // index/offset outside the log
  invalid_argument,  // a caller broke a precondition that depends on data (e.g. index gap)
  closed,            // storage is shutting down
  too_many_logs,     // the LMDB named-database limit was reached
  in_use,            // another Storage (this or another process) has the directory open
};

const std::error_category& storage_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), storage_category()}; }

struct Error {
  errc code = errc::ok;
  std::string message;  // names what failed and what to do about it
  std::error_code ec() const noexcept { return make_error_code(code); }
};

}  // namespace quorumq::storage

template <>
struct std::is_error_code_enum<quorumq::storage::errc> : std::true_type {};
