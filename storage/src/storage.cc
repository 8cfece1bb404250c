#include "quorumq/storage/storage.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <map>
#include <random>

#include "lmdb_util.h"
#include "quorumq/protocol/assert.h"
#include "quorumq/protocol/record_batch.h"
#include "quorumq/storage/partition_log.h"
#include "writer.h"

namespace quorumq::storage {

namespace {
class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "quorumq.storage"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::ok: return "ok";
      case errc::not_a_data_dir: return "not a quorumq data directory";
      case errc::newer_format: return "data directory written by a newer quorumq";
      case errc::io_error: return "storage I/O error";
      case errc::disk_full: return "disk full";
      case errc::corrupt: return "corrupt data";
      case errc::out_of_range: return "offset or index out of range";
      case errc::invalid_argument: return "invalid argument";
      case errc::closed: return "storage closed";
      case errc::too_many_logs: return "too many partition logs";
      case errc::in_use: return "data directory in use";
    }
    return "unknown storage error";
  }
};

std::string new_dir_id() {
  std::random_device rd;
  std::mt19937_64 g((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(g()),
                static_cast<unsigned long long>(g()));
  return buf;
}

// A directory without data.mdb may hold only a filesystem's lost+found, or the lock.mdb that
// LMDB creates just before data.mdb (a process killed in between must be able to start again).
bool looks_empty(const std::filesystem::path& dir) {
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const auto n = e.path().filename().string();
    if (n != "lost+found" && n != "lock.mdb") return false;
  }
  return true;
}

int get_string(MDB_txn* txn, MDB_dbi dbi, std::string_view key, std::string& out) {
  MDB_val k = as_val(key), d;
  const int rc = mdb_get(txn, dbi, &k, &d);
  if (rc == 0) out.assign(static_cast<const char*>(d.mv_data), d.mv_size);
  return rc;
}

// Reads a log's durable state: its entries' bounds plus its recorded start.
int load_log_state(MDB_txn* txn, MDB_dbi meta, MDB_dbi dbi, const std::string& name, LogState& st) {
  LogStart ls;
  std::string raw;
  int rc = get_string(txn, meta, logstate_key(name), raw);
  if (rc == 0 && raw.size() == sizeof ls) std::memcpy(&ls, raw.data(), sizeof ls);
  else if (rc != 0 && rc != MDB_NOTFOUND) return rc;
  st.first_index = log_index{ls.start_index};
  st.last_index = log_index{ls.start_index - 1};
  st.prev_term = st.last_term = term_t{ls.prev_term};
  st.start_offset = st.next_offset = offset_t{ls.start_offset};
  Cursor c(txn, dbi);
  if (c.rc() != 0) return c.rc();
  MDB_val k, d;
  rc = mdb_cursor_get(c.get(), &k, &d, MDB_FIRST);
  if (rc == MDB_NOTFOUND) return 0;
  if (rc != 0) return rc;
  st.first_index = log_index{from_be(k)};
  st.start_offset = offset_t{BatchView(as_span(d)).base_offset()};
  rc = mdb_cursor_get(c.get(), &k, &d, MDB_LAST);
  if (rc != 0) return rc;
  const BatchView last(as_span(d));
  if (d.mv_size < kBatchHeaderSize) return MDB_CORRUPTED;
  st.last_index = log_index{from_be(k)};
  st.last_term = term_t{last.term()};
  st.next_offset = offset_t{last.base_offset() + last.offset_count()};
  return 0;
}
}  // namespace

const std::error_category& storage_category() noexcept {
  static const Category c;
  return c;
}

Storage::Storage(StorageOptions options) : options_(std::move(options)) {}

Storage::~Storage() {
  writer_.reset();  // drains and joins before the environment closes
}

std::expected<std::unique_ptr<Storage>, Error> Storage::open(const StorageOptions& options) {
  namespace fs = std::filesystem;
  const fs::path& dir = options.dir;
  const std::string where = "data directory " + dir.string();
  std::error_code ec;
  bool fresh = false;
  if (!fs::exists(dir, ec)) {
    if (!options.create_if_missing)
      return std::unexpected(Error{errc::not_a_data_dir, where + " does not exist"});
    fs::create_directories(dir, ec);
    if (ec)
      return std::unexpected(Error{errc::io_error, "cannot create " + where + ": " + ec.message() +
                                                       " (check the path and its permissions)"});
    fresh = true;
  } else if (!fs::is_directory(dir, ec)) {
    return std::unexpected(Error{errc::not_a_data_dir, where + " is not a directory"});
  } else if (!fs::exists(dir / "data.mdb", ec)) {
    if (!looks_empty(dir))
      return std::unexpected(Error{errc::not_a_data_dir,
                                   where + " is not empty and holds no quorumq data (data.mdb): point "
                                           "--data-dir at an empty or existing quorumq directory"});
    fresh = true;
  }

  std::unique_ptr<Storage> s(new Storage(options));
  s->env_ = std::make_unique<EnvHandle>();
  EnvHandle& h = *s->env_;
  h.map_size_bytes = options.map_size_bytes;
  h.dir_lock_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (h.dir_lock_fd < 0)
    return std::unexpected(Error{errc::io_error, "cannot open " + where + ": " + std::strerror(errno)});
  if (::flock(h.dir_lock_fd, LOCK_EX | LOCK_NB) != 0)
    return std::unexpected(Error{errc::in_use, where + " is in use by another broker (or another Storage in this "
                                                       "process): stop it, or give this one its own --data-dir"});
  int rc = mdb_env_create(&h.env);
  if (rc == 0) rc = mdb_env_set_maxdbs(h.env, options.max_logs + 2);
  if (rc == 0) rc = mdb_env_set_mapsize(h.env, options.map_size_bytes);
  // Never MDB_NOSYNC in a broker: only the deterministic simulation turns syncs off (a simulated
  // crash cannot lose the page cache, so it loses exactly what was not committed).
  const unsigned sync_flags = options.simulation_no_sync ? MDB_NOSYNC : 0u;
  if (rc == 0) rc = mdb_env_open(h.env, dir.c_str(), MDB_NOTLS | MDB_NORDAHEAD | sync_flags, 0640);
  if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
    return std::unexpected(Error{errc::not_a_data_dir, where + ": data.mdb is not an LMDB file quorumq can read"});
  if (rc != 0) return std::unexpected(lmdb_error(rc, "opening " + where));
  {
    int dead = 0;  // reader slots of killed processes would pin old pages: free them
    mdb_reader_check(h.env, &dead);
    // The file may have grown past our default map size in an earlier life.
    MDB_envinfo info;
    mdb_env_info(h.env, &info);
    h.map_size_bytes = std::max<std::uint64_t>(h.map_size_bytes, info.me_mapsize);
  }

  MDB_txn* txn = nullptr;
  rc = mdb_txn_begin(h.env, nullptr, 0, &txn);
  if (rc != 0) return std::unexpected(lmdb_error(rc, "starting a transaction in " + where));
  auto fail = [&](Error e) {
    mdb_txn_abort(txn);
    return std::unexpected(std::move(e));
  };
  MDB_dbi main_dbi;
  rc = mdb_dbi_open(txn, nullptr, 0, &main_dbi);
  if (rc != 0) return fail(lmdb_error(rc, "opening the main database of " + where));
  {
    // An existing file must already be ours: it has the meta database.
    MDB_dbi probe;
    const int prc = mdb_dbi_open(txn, "qq_meta", 0, &probe);
    if (prc == MDB_NOTFOUND && !fresh) {
      MDB_stat st;
      mdb_stat(txn, main_dbi, &st);
      if (st.ms_entries != 0)
        return fail(Error{errc::not_a_data_dir, where + " holds an LMDB environment that is not quorumq's"});
    }
  }
  rc = mdb_dbi_open(txn, "qq_meta", MDB_CREATE, &h.meta_dbi);
  if (rc == 0) rc = mdb_dbi_open(txn, "qq_offsets", MDB_CREATE, &h.offsets_dbi);
  if (rc != 0) return fail(lmdb_error(rc, "opening the metadata of " + where));

  std::string version;
  rc = get_string(txn, h.meta_dbi, "format_version", version);
  if (rc == MDB_NOTFOUND) {
    const std::uint32_t v = kFormatVersion;
    s->dir_id_ = new_dir_id();
    MDB_val k = as_val("format_version"), d = as_val(&v, sizeof v);
    rc = mdb_put(txn, h.meta_dbi, &k, &d, 0);
    MDB_val k2 = as_val("dir_id"), d2 = as_val(s->dir_id_);
    if (rc == 0) rc = mdb_put(txn, h.meta_dbi, &k2, &d2, 0);
    if (rc != 0) return fail(lmdb_error(rc, "initialising " + where));
  } else if (rc != 0) {
    return fail(lmdb_error(rc, "reading the format version of " + where));
  } else {
    std::uint32_t v = 0;
    if (version.size() != sizeof v)
      return fail(Error{errc::not_a_data_dir, where + ": unreadable format version record"});
    std::memcpy(&v, version.data(), sizeof v);
    if (v > kFormatVersion)
      return fail(Error{errc::newer_format, where + " has format version " + std::to_string(v) +
                                                " but this quorumq reads up to " + std::to_string(kFormatVersion) +
                                                ": run a newer quorumq on it"});
    if (get_string(txn, h.meta_dbi, "dir_id", s->dir_id_) != 0)
      return fail(Error{errc::not_a_data_dir, where + ": missing directory id"});
  }

  // Open every partition log (named databases are keys of the main database).
  std::vector<std::string> names;
  {
    Cursor c(txn, main_dbi);
    MDB_val k, d;
    MDB_val start = as_val("log:");
    k = start;
    int crc = mdb_cursor_get(c.get(), &k, &d, MDB_SET_RANGE);
    while (crc == 0) {
      std::string_view key(static_cast<const char*>(k.mv_data), k.mv_size);
      if (!key.starts_with("log:")) break;
      names.emplace_back(key.substr(4));
      crc = mdb_cursor_get(c.get(), &k, &d, MDB_NEXT);
    }
  }
  std::map<std::string, std::unique_ptr<PartitionLog>> logs;
  for (const auto& name : names) {
    MDB_dbi dbi;
    rc = mdb_dbi_open(txn, log_db_name(name).c_str(), 0, &dbi);
    if (rc != 0) return fail(lmdb_error(rc, "opening log " + name + " in " + where));
    LogState st;
    rc = load_log_state(txn, h.meta_dbi, dbi, name, st);
    if (rc != 0) return fail(lmdb_error(rc, "reading the bounds of log " + name + " in " + where));
    logs.emplace(name, std::make_unique<PartitionLog>(s.get(), name, dbi, st));
  }
  rc = mdb_txn_commit(txn);
  if (rc != 0) return std::unexpected(lmdb_error(rc, "initialising " + where));
  s->logs_ = std::move(logs);
  s->writer_ = std::make_unique<Writer>(s.get(), &h, s->options_.manual_writer);
  return s;
}

std::expected<PartitionLog*, Error> Storage::open_log(const std::string& name) {
  {
    std::lock_guard lk(logs_mu_);
    if (auto it = logs_.find(name); it != logs_.end()) return it->second.get();
  }
  if (name.empty() || name.size() > 400)
    return std::unexpected(Error{errc::invalid_argument, "log name must be 1..400 bytes"});
  MDB_dbi dbi = 0;
  const int rc = writer_->run_control([&](MDB_txn* txn) {
    return mdb_dbi_open(txn, log_db_name(name).c_str(), MDB_CREATE, &dbi);
  });
  if (rc != 0) return std::unexpected(lmdb_error(rc, "creating log " + name));
  std::lock_guard lk(logs_mu_);
  auto [it, inserted] = logs_.emplace(name, nullptr);
  if (inserted) it->second = std::make_unique<PartitionLog>(this, name, dbi, LogState{});
  return it->second.get();
}

std::vector<std::string> Storage::list_logs() const {
  std::lock_guard lk(logs_mu_);
  std::vector<std::string> out;
  for (const auto& [n, _] : logs_) out.push_back(n);
  return out;
}

std::expected<void, Error> Storage::drop_log(const std::string& name) {
  PartitionLog* log = nullptr;
  {
    std::lock_guard lk(logs_mu_);
    auto it = logs_.find(name);
    if (it == logs_.end()) return {};
    log = it->second.get();
  }
  const int rc = writer_->run_control([&](MDB_txn* txn) {
    // Mark it first, on the writer thread (the writer reads dropped_ without a lock), and under
    // mu_ so readers stop using the database handle mdb_drop is about to close.
    {
      std::lock_guard llk(log->mu_);
      log->dropped_ = true;
    }
    const std::string key = logstate_key(name);  // must outlive mdb_del
    MDB_val k = as_val(key);
    int r = mdb_del(txn, env_->meta_dbi, &k, nullptr);
    if (r != 0 && r != MDB_NOTFOUND) return r;
    return mdb_drop(txn, log->dbi_, 1);
  });
  if (rc != 0) return std::unexpected(lmdb_error(rc, "deleting log " + name));
  std::lock_guard lk(logs_mu_);
  auto it = logs_.find(name);
  // Readers may still hold the pointer: keep the object, marked dropped, until we close.
  graveyard_.push_back(std::move(it->second));
  logs_.erase(it);
  return {};
}

void Storage::submit(std::vector<WriteOp> ops, WriteCallback done) { writer_->submit(std::move(ops), std::move(done)); }

std::expected<WriteResult, Error> Storage::write_sync(std::vector<WriteOp> ops) {
  QQ_ASSERT_MSG(!writer_->on_writer_thread(), "write_sync from a storage completion would deadlock");
  std::promise<std::expected<WriteResult, Error>> p;
  auto f = p.get_future();
  submit(std::move(ops), [&p](std::expected<WriteResult, Error> r) { p.set_value(std::move(r)); });
  if (writer_->manual()) writer_->run_pending(true);  // nobody else will
  return f.get();
}

std::size_t Storage::run_pending(bool all) { return writer_->run_pending(all); }
void Storage::discard_pending() { writer_->discard_pending(); }
std::size_t Storage::pending_writes() const { return writer_->pending(); }

std::optional<HardState> Storage::hard_state(const std::string& group) const {
  ReadTxn txn(*env_);
  if (txn.rc() != 0) return std::nullopt;
  std::string raw;
  if (get_string(txn.get(), env_->meta_dbi, "raft:" + group, raw) != 0 || raw.size() != 24) return std::nullopt;
  std::uint64_t v[3];
  std::memcpy(v, raw.data(), sizeof v);
  return HardState{term_t{v[0]}, node_id{static_cast<std::int32_t>(static_cast<std::int64_t>(v[1]))}, log_index{v[2]}};
}

namespace {
std::string offset_prefix(const std::string& group) {
  std::string key = group;
  key.push_back('\0');
  return key;
}
CommittedOffset decode_offset(const MDB_val& d) {
  CommittedOffset o;
  if (d.mv_size >= 8) {
    std::memcpy(&o.offset, d.mv_data, 8);
    o.metadata.assign(static_cast<const char*>(d.mv_data) + 8, d.mv_size - 8);
  }
  return o;
}
}  // namespace

std::optional<CommittedOffset> Storage::committed_offset(const std::string& group, const std::string& topic,
                                                         std::int32_t partition) const {
  ReadTxn txn(*env_);
  if (txn.rc() != 0) return std::nullopt;
  std::string key = offset_prefix(group) + topic;
  key.push_back('\0');
  const BeKey pk(static_cast<std::uint32_t>(partition));
  key.append(reinterpret_cast<const char*>(pk.b + 4), 4);
  MDB_val k = as_val(key), d;
  if (mdb_get(txn.get(), env_->offsets_dbi, &k, &d) != 0) return std::nullopt;
  return decode_offset(d);
}

std::vector<Storage::GroupOffset> Storage::group_offsets(const std::string& group) const {
  std::vector<GroupOffset> out;
  ReadTxn txn(*env_);
  if (txn.rc() != 0) return out;
  Cursor c(txn.get(), env_->offsets_dbi);
  const std::string prefix = offset_prefix(group);
  MDB_val k = as_val(prefix), d;
  int rc = mdb_cursor_get(c.get(), &k, &d, MDB_SET_RANGE);
  while (rc == 0) {
    std::string_view key(static_cast<const char*>(k.mv_data), k.mv_size);
    if (!key.starts_with(prefix)) break;
    std::string_view rest = key.substr(prefix.size());
    const auto z = rest.find('\0');
    if (z != std::string_view::npos && rest.size() == z + 5) {
      const auto* p = reinterpret_cast<const unsigned char*>(rest.data() + z + 1);
      const std::int32_t part = static_cast<std::int32_t>((std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
                                                          (std::uint32_t{p[2]} << 8) | p[3]);
      out.push_back({std::string(rest.substr(0, z)), part, decode_offset(d)});
    }
    rc = mdb_cursor_get(c.get(), &k, &d, MDB_NEXT);
  }
  return out;
}

std::vector<std::string> Storage::groups() const {
  std::vector<std::string> out;
  ReadTxn txn(*env_);
  if (txn.rc() != 0) return out;
  Cursor c(txn.get(), env_->offsets_dbi);
  MDB_val k, d;
  int rc = mdb_cursor_get(c.get(), &k, &d, MDB_FIRST);
  while (rc == 0) {
    std::string_view key(static_cast<const char*>(k.mv_data), k.mv_size);
    std::string g(key.substr(0, key.find('\0')));
    if (out.empty() || out.back() != g) out.push_back(g);
    rc = mdb_cursor_get(c.get(), &k, &d, MDB_NEXT);
  }
  return out;
}

std::optional<std::vector<std::uint8_t>> Storage::meta(const std::string& key) const {
  ReadTxn txn(*env_);
  if (txn.rc() != 0) return std::nullopt;
  const std::string k2 = "m:" + key;
  MDB_val k = as_val(k2), d;
  if (mdb_get(txn.get(), env_->meta_dbi, &k, &d) != 0) return std::nullopt;
  const auto s = as_span(d);
  return std::vector<std::uint8_t>(s.begin(), s.end());
}

WriterStats Storage::stats() const { return writer_->stats(); }
bool Storage::disk_full() const { return writer_->disk_full(); }

std::uint64_t Storage::used_bytes() const {
  MDB_envinfo info;
  MDB_stat st;
  std::shared_lock lk(env_->resize_mu);
  if (mdb_env_info(env_->env, &info) != 0 || mdb_env_stat(env_->env, &st) != 0) return 0;
  return static_cast<std::uint64_t>(info.me_last_pgno + 1) * st.ms_psize;
}

std::expected<void, Error> Storage::backup(const std::filesystem::path& to_dir) const {
  std::error_code ec;
  namespace fs = std::filesystem;
  const bool created = fs::create_directories(to_dir, ec);
  if (ec) return std::unexpected(Error{errc::io_error, "cannot create backup directory " + to_dir.string() + ": " + ec.message()});
  if (!looks_empty(to_dir))
    return std::unexpected(Error{errc::invalid_argument, "backup directory " + to_dir.string() + " is not empty: choose an empty one"});
  // The copy holds every message: nobody but the broker's user may read it while it is written
  // (LMDB creates the file with the umask's mode), and afterwards it gets the live file's mode.
  if (created) fs::permissions(to_dir, fs::perms::owner_all, ec);
  {
    std::shared_lock lk(env_->resize_mu);
    const int rc = mdb_env_copy2(env_->env, to_dir.c_str(), MDB_CP_COMPACT);
    if (rc != 0) return std::unexpected(lmdb_error(rc, "copying the environment to " + to_dir.string()));
  }
  const auto live = fs::status(options_.dir / "data.mdb", ec).permissions();
  const auto mode = ec ? (fs::perms::owner_read | fs::perms::owner_write)
                       : live & (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  fs::permissions(to_dir / "data.mdb", mode, ec);
  if (ec) return std::unexpected(Error{errc::io_error, "cannot restrict the mode of " + (to_dir / "data.mdb").string() + ": " + ec.message()});
  return {};
}

}  // namespace quorumq::storage
