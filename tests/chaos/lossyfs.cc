// lossyfs: a FUSE filesystem that loses what was not fsynced when it dies — the power failure
// of one machine, for the chaos suite (what Jepsen's lazyfs does).
//
//   lossyfs BACKING_DIR MOUNTPOINT        (foreground; SIGKILL it to "cut the power")
//
// Every file of MOUNTPOINT is the file of the same name in BACKING_DIR plus, in this process's
// memory only, the pages written since the file's last fsync/fdatasync (and its size). Reads see
// both. fsync/fdatasync writes the dirty pages to BACKING_DIR and syncs it; writes through a
// handle opened with O_SYNC/O_DSYNC go to BACKING_DIR at once. Killing the process drops every
// dirty page: after `fusermount3 -u -z MOUNTPOINT` and a new lossyfs on the same BACKING_DIR, the
// files hold exactly what was synced. Metadata operations (create, rename, unlink, truncate,
// mkdir) go to BACKING_DIR at once (a simplification: the data is what LMDB's durability rests
// on). Single-threaded (-s): one request at a time, no locking needed.
// MOUNTPOINT/.lossyfs (read-only, virtual) says how much is at stake right now:
// "dirty_pages N\nsyncs N\n" — what a power cut would drop, and how many syncs were made.
#define FUSE_USE_VERSION 31
#include <fuse.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr off_t kPage = 4096;
std::string g_backing;

struct FileState {
  int fd = -1;          // on the backing file, O_RDWR
  int opens = 0;
  off_t size = 0;       // logical size (dirty writes may extend it)
  std::map<off_t, std::vector<char>> dirty;  // page index -> page
};
std::map<std::string, std::unique_ptr<FileState>> g_files;  // by path
std::map<uint64_t, std::pair<std::string, bool>> g_handles;  // fh -> (path, synchronous writes)
uint64_t g_next_fh = 1;

std::uint64_t g_syncs = 0;
constexpr const char* kStatus = "/.lossyfs";
constexpr std::uint64_t kStatusFh = ~0ull;

std::string status_text() {
  std::size_t dirty = 0;
  for (const auto& [p, f] : g_files) dirty += f->dirty.size();
  return "dirty_pages " + std::to_string(dirty) + "\nsyncs " + std::to_string(g_syncs) + "\n";
}

std::string real(const char* path) { return g_backing + path; }

FileState* state_of(const char* path) {
  auto it = g_files.find(path);
  return it == g_files.end() ? nullptr : it->second.get();
}

int load_page(FileState& f, off_t page, std::vector<char>& out) {
  out.assign(kPage, 0);
  const ssize_t n = ::pread(f.fd, out.data(), kPage, page * kPage);
  return n < 0 ? -errno : 0;
}

int flush(FileState& f, bool data_only) {
  for (auto& [page, buf] : f.dirty) {
    const off_t at = page * kPage;
    const off_t len = std::min<off_t>(kPage, f.size - at);
    if (len <= 0) continue;
    const ssize_t w = ::pwrite(f.fd, buf.data(), static_cast<size_t>(len), at);
    if (w != len) return w < 0 ? -errno : -ENOSPC;
  }
  f.dirty.clear();
  ++g_syncs;
  struct stat st{};
  if (::fstat(f.fd, &st) == 0 && st.st_size < f.size && ::ftruncate(f.fd, f.size) != 0) return -errno;
  return (data_only ? ::fdatasync(f.fd) : ::fsync(f.fd)) == 0 ? 0 : -errno;
}

int op_getattr(const char* path, struct stat* st, fuse_file_info*) {
  if (std::strcmp(path, kStatus) == 0) {
    *st = {};
    st->st_mode = S_IFREG | 0444;
    st->st_nlink = 1;
    st->st_size = 4096;
    return 0;
  }
  if (::lstat(real(path).c_str(), st) != 0) return -errno;
  if (FileState* f = state_of(path)) st->st_size = f->size;
  return 0;
}

int op_readdir(const char* path, void* buf, fuse_fill_dir_t fill, off_t, fuse_file_info*, fuse_readdir_flags) {
  DIR* d = ::opendir(real(path).c_str());
  if (!d) return -errno;
  while (dirent* e = ::readdir(d)) fill(buf, e->d_name, nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  ::closedir(d);
  return 0;
}

int op_mkdir(const char* path, mode_t mode) { return ::mkdir(real(path).c_str(), mode) == 0 ? 0 : -errno; }
int op_rmdir(const char* path) { return ::rmdir(real(path).c_str()) == 0 ? 0 : -errno; }
int op_unlink(const char* path) {
  g_files.erase(path);  // open handles keep working on nothing new: fine for our use
  return ::unlink(real(path).c_str()) == 0 ? 0 : -errno;
}
int op_rename(const char* from, const char* to, unsigned int flags) {
  if (flags) return -EINVAL;
  if (FileState* f = state_of(from)) {
    if (int r = flush(*f, false)) return r;
  }
  if (::rename(real(from).c_str(), real(to).c_str()) != 0) return -errno;
  auto it = g_files.find(from);
  if (it != g_files.end()) {
    g_files[to] = std::move(it->second);
    g_files.erase(it);
  }
  for (auto& [fh, h] : g_handles)
    if (h.first == from) h.first = to;
  return 0;
}

int open_common(const char* path, fuse_file_info* fi, bool create, mode_t mode) {
  FileState* f = state_of(path);
  if (!f) {
    int flags = O_RDWR | (create ? O_CREAT : 0);
    int fd = ::open(real(path).c_str(), flags, mode);
    if (fd < 0 && errno == EACCES) fd = ::open(real(path).c_str(), O_RDONLY);
    if (fd < 0) return -errno;
    auto st = std::make_unique<FileState>();
    st->fd = fd;
    struct stat s{};
    ::fstat(fd, &s);
    st->size = s.st_size;
    f = st.get();
    g_files[path] = std::move(st);
  }
  if ((fi->flags & O_TRUNC) && f->size > 0) {
    f->dirty.clear();
    f->size = 0;
    if (::ftruncate(f->fd, 0) != 0) return -errno;
  }
  ++f->opens;
  fi->fh = g_next_fh++;
  g_handles[fi->fh] = {path, (fi->flags & (O_SYNC | O_DSYNC)) != 0};
  fi->keep_cache = 1;
  return 0;
}

int op_open(const char* path, fuse_file_info* fi) {
  if (std::strcmp(path, kStatus) == 0) {
    fi->fh = kStatusFh;
    fi->direct_io = 1;
    return 0;
  }
  return open_common(path, fi, false, 0);
}
int op_create(const char* path, mode_t mode, fuse_file_info* fi) { return open_common(path, fi, true, mode); }

int op_release(const char*, fuse_file_info* fi) {
  if (fi->fh == kStatusFh) return 0;
  auto h = g_handles.find(fi->fh);
  if (h == g_handles.end()) return 0;
  if (FileState* f = state_of(h->second.first.c_str())) {
    if (--f->opens == 0 && f->dirty.empty()) {
      ::close(f->fd);
      g_files.erase(h->second.first);
    }
    // With dirty pages the state stays (unsynced data outlives close, as in a page cache).
  }
  g_handles.erase(h);
  return 0;
}

int op_read(const char* path, char* buf, size_t size, off_t off, fuse_file_info* fi) {
  if (fi->fh == kStatusFh) {
    const std::string t = status_text();
    if (off >= static_cast<off_t>(t.size())) return 0;
    const size_t n = std::min(size, t.size() - static_cast<size_t>(off));
    std::memcpy(buf, t.data() + off, n);
    return static_cast<int>(n);
  }
  FileState* f = state_of(path);
  if (!f) return -EBADF;
  if (off >= f->size) return 0;
  size = static_cast<size_t>(std::min<off_t>(static_cast<off_t>(size), f->size - off));
  size_t done = 0;
  while (done < size) {
    const off_t at = off + static_cast<off_t>(done);
    const off_t page = at / kPage, in = at % kPage;
    const size_t n = std::min<size_t>(size - done, static_cast<size_t>(kPage - in));
    auto d = f->dirty.find(page);
    if (d != f->dirty.end()) {
      std::memcpy(buf + done, d->second.data() + in, n);
    } else {
      const ssize_t r = ::pread(f->fd, buf + done, n, at);
      if (r < 0) return -errno;
      if (static_cast<size_t>(r) < n) std::memset(buf + done + r, 0, n - static_cast<size_t>(r));
    }
    done += n;
  }
  return static_cast<int>(size);
}

int op_write(const char* path, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  FileState* f = state_of(path);
  if (!f) return -EBADF;
  const bool sync = g_handles[fi->fh].second;
  size_t done = 0;
  while (done < size) {
    const off_t at = off + static_cast<off_t>(done);
    const off_t page = at / kPage, in = at % kPage;
    const size_t n = std::min<size_t>(size - done, static_cast<size_t>(kPage - in));
    auto d = f->dirty.find(page);
    if (d == f->dirty.end() && !sync) {
      std::vector<char> p;
      if (int r = load_page(*f, page, p)) return r;
      d = f->dirty.emplace(page, std::move(p)).first;
    }
    if (d != f->dirty.end()) std::memcpy(d->second.data() + in, buf + done, n);
    done += n;
  }
  f->size = std::max<off_t>(f->size, off + static_cast<off_t>(size));
  if (sync) {  // O_DSYNC: this write is durable when it returns
    const ssize_t w = ::pwrite(f->fd, buf, size, off);
    if (w != static_cast<ssize_t>(size)) return w < 0 ? -errno : -ENOSPC;
    ++g_syncs;
    if (::fdatasync(f->fd) != 0) return -errno;
  }
  return static_cast<int>(size);
}

int op_fsync(const char* path, int datasync, fuse_file_info*) {
  FileState* f = state_of(path);
  return f ? flush(*f, datasync != 0) : 0;
}

int op_truncate(const char* path, off_t size, fuse_file_info*) {
  if (FileState* f = state_of(path)) {
    std::erase_if(f->dirty, [&](const auto& kv) { return kv.first * kPage >= size; });
    f->size = size;
    return ::ftruncate(f->fd, size) == 0 ? 0 : -errno;
  }
  return ::truncate(real(path).c_str(), size) == 0 ? 0 : -errno;
}

int op_statfs(const char*, struct statvfs* st) { return ::statvfs(g_backing.c_str(), st) == 0 ? 0 : -errno; }
int op_chmod(const char* path, mode_t mode, fuse_file_info*) { return ::chmod(real(path).c_str(), mode) == 0 ? 0 : -errno; }
int op_access(const char* path, int mask) { return ::access(real(path).c_str(), mask) == 0 ? 0 : -errno; }
int op_utimens(const char* path, const timespec tv[2], fuse_file_info*) {
  return ::utimensat(AT_FDCWD, real(path).c_str(), tv, 0) == 0 ? 0 : -errno;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s BACKING_DIR MOUNTPOINT   (SIGKILL = power loss: unsynced writes are gone)\n", argv[0]);
    return 2;
  }
  char resolved[PATH_MAX];
  if (!::realpath(argv[1], resolved)) {
    std::perror(argv[1]);
    return 2;
  }
  g_backing = resolved;
  fuse_operations ops{};
  ops.getattr = op_getattr;
  ops.readdir = op_readdir;
  ops.mkdir = op_mkdir;
  ops.rmdir = op_rmdir;
  ops.unlink = op_unlink;
  ops.rename = op_rename;
  ops.open = op_open;
  ops.create = op_create;
  ops.release = op_release;
  ops.read = op_read;
  ops.write = op_write;
  ops.fsync = op_fsync;
  ops.truncate = op_truncate;
  ops.statfs = op_statfs;
  ops.chmod = op_chmod;
  ops.access = op_access;
  ops.utimens = op_utimens;
  std::vector<char*> args = {argv[0], argv[2], const_cast<char*>("-f"), const_cast<char*>("-s")};
  return fuse_main(static_cast<int>(args.size()), args.data(), &ops, nullptr);
}
