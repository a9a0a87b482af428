// The file a unix socket was bound to (or a file made), removed later only while its name
// still refers to that same inode, and only in the directory it was bound
// in. Unlinking by path instead follows whatever the path's directories are
// by then: a user who can rename a directory on the path (between bind and
// close) would choose what a root daemon unlinks.
//
//   bind(fd, "/run/app/s.sock") ...
//   BoundName name = BoundName::Record("/run/app/s.sock");
//   ...
//   name.Remove();   // unlinkat(dir of /run/app at bind time, "s.sock")
//
// Used by epoll::Server (listen on a path) and the gRPC control daemon.
#ifndef TLSENGINE_ADAPTERS_EPOLL_BOUND_NAME_H_
#define TLSENGINE_ADAPTERS_EPOLL_BOUND_NAME_H_

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <utility>

namespace tlsengine {
namespace epoll {

class BoundName {
 public:
  BoundName() = default;
  // Right after bind() (or creating the file): opens the directory `path`
  // is in (without following a symlink in its last component) and
  // remembers the device and inode now at the name, which must be of
  // `type` (S_IFSOCK, S_IFREG). Empty (Remove does nothing) when that
  // fails.
  static BoundName Record(const std::string& path, mode_t type = S_IFSOCK) {
    BoundName b;
    size_t slash = path.rfind('/');
    b.name_ = slash == std::string::npos ? path : path.substr(slash + 1);
    b.dir_fd_ = ::open(DirOf(path).c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st {};
    if (b.dir_fd_ < 0 || b.name_.empty() || ::fstatat(b.dir_fd_, b.name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        (st.st_mode & S_IFMT) != type) {
      b.Close();
      return b;
    }
    b.dev_ = st.st_dev;
    b.ino_ = st.st_ino;
    return b;
  }
  BoundName(BoundName&& o) noexcept { *this = std::move(o); }
  BoundName& operator=(BoundName&& o) noexcept {
    if (this != &o) {
      Close();
      dir_fd_ = std::exchange(o.dir_fd_, -1);
      name_ = std::move(o.name_);
      dev_ = o.dev_;
      ino_ = o.ino_;
    }
    return *this;
  }
  BoundName(const BoundName&) = delete;
  BoundName& operator=(const BoundName&) = delete;
  ~BoundName() { Close(); }

  // The directory part of `path`: "." for a bare name, "/" at the root.
  static std::string DirOf(const std::string& path) {
    size_t slash = path.rfind('/');
    return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  }

  bool empty() const { return dir_fd_ < 0; }
  // Unlinks the name if it still refers to the bound inode; true when it
  // did. Afterwards empty.
  bool Remove() {
    if (dir_fd_ < 0) return false;
    struct stat st {};
    bool same = ::fstatat(dir_fd_, name_.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == dev_ &&
                st.st_ino == ino_;
    bool removed = same && ::unlinkat(dir_fd_, name_.c_str(), 0) == 0;
    Close();
    return removed;
  }

 private:
  void Close() {
    if (dir_fd_ >= 0) ::close(dir_fd_);
    dir_fd_ = -1;
  }
  int dir_fd_ = -1;
  std::string name_;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace epoll
}  // namespace tlsengine

#endif  // TLSENGINE_ADAPTERS_EPOLL_BOUND_NAME_H_
