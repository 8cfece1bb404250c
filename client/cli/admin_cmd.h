// `quorumq admin ...`: operator tasks that talk to a broker's admin HTTP port or to files, not
// to the client protocol. Kept apart from the other subcommands (commands.h) so the CLI's main
// only has to call add_admin_commands().
#pragma once

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

namespace quorumq::cli {

// Adds `admin backup` and `admin restore` to `app`; their exit code (0 ok, 1 failed) lands in `rc`.
void add_admin_commands(CLI::App& app, int& rc);

// POST http://ADMIN_ADDR/v1/backup?to=DIR: a hot backup of that broker's data directory into DIR
// on the broker's filesystem (absolute, empty or new). Prints what the broker answered.
int admin_backup(const std::string& broker_admin_addr, const std::string& to_dir, std::uint32_t timeout_ms,
                 const std::string& token_file = {});

// Copies a backup (a directory holding data.mdb, made by `admin backup` or by hand from a stopped
// broker) into a new, empty data directory, synced to disk; start a broker on it afterwards.
int admin_restore(const std::string& from_dir, const std::string& data_dir);

}  // namespace quorumq::cli
