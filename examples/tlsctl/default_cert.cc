#include "examples/tlsctl/default_cert.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "core/certificate.h"
#include "core/secure_context.h"

namespace tlsengine {
namespace tlsctl {
namespace {

absl::Status ErrnoError(absl::string_view what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " '", path, "': ", std::strerror(errno)));
}

absl::Status MakeDirs(const std::string& dir) {
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i != dir.size() && dir[i] != '/') continue;
    std::string prefix = dir.substr(0, i);
    if (mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) return ErrnoError("cannot create", prefix);
  }
  return absl::OkStatus();
}

bool ReadWhole(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

// Writes `data` to a temporary file beside `path`, then renames it over.
absl::Status WriteAtomically(const std::string& path, const std::string& data, mode_t mode) {
  std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError("cannot write", tmp);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      absl::Status s = ErrnoError("cannot write", tmp);
      close(fd);
      unlink(tmp.c_str());
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    absl::Status s = ErrnoError("cannot write", tmp);
    unlink(tmp.c_str());
    return s;
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status s = ErrnoError("cannot rename into", path);
    unlink(tmp.c_str());
    return s;
  }
  return absl::OkStatus();
}

// From the kernel's CSPRNG (getrandom(2); it blocks only until the pool is
// first seeded at boot).
absl::Status RandomBytes(absl::Span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(absl::StrCat("getrandom: ", std::strerror(errno)));
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// The cached pair is usable: it parses, the key matches, and it is valid
// for at least another day.
absl::StatusOr<std::string> Usable(const GeneratedIdentity& id, absl::Time now) {
  absl::StatusOr<CertificateInfo> info = CertificateInfo::FromPem(id.cert_pem);
  if (!info.ok()) return info.status();
  if (absl::FromUnixSeconds(info->valid_to_unix) < now + absl::Hours(24) ||
      absl::FromUnixSeconds(info->valid_from_unix) > now) {
    return absl::OutOfRangeError("expired or not yet valid");
  }
  SecureContextOptions o;
  o.key = {id.key_pem};
  o.cert = {id.cert_pem};
  absl::StatusOr<std::shared_ptr<const SecureContext>> ctx = SecureContext::Create(o);
  if (!ctx.ok()) return ctx.status();
  return info->fingerprint256;
}

}  // namespace

absl::StatusOr<std::string> DefaultCacheDir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg != nullptr && xdg[0] == '/') return absl::StrCat(xdg, "/tlsengine/tlsctl");
  const char* home = std::getenv("HOME");
  if (home != nullptr && home[0] == '/') return absl::StrCat(home, "/.cache/tlsengine/tlsctl");
  return absl::FailedPreconditionError("neither XDG_CACHE_HOME nor HOME is set to an absolute path");
}

absl::StatusOr<CachedIdentity> LoadOrCreateIdentity(const std::string& dir, absl::Time now) {
  CachedIdentity out;
  out.cert_path = dir + "/localhost.pem";
  out.key_path = dir + "/localhost-key.pem";
  if (ReadWhole(out.cert_path, &out.identity.cert_pem) && ReadWhole(out.key_path, &out.identity.key_pem)) {
    absl::StatusOr<std::string> fp = Usable(out.identity, now);
    if (fp.ok()) {
      out.fingerprint256 = *fp;
      return out;
    }
  }
  absl::Status s = MakeDirs(dir);
  if (!s.ok()) return s;
  uint8_t serial[16];
  s = RandomBytes(absl::MakeSpan(serial));
  if (!s.ok()) return s;
  absl::StatusOr<GeneratedIdentity> id = GenerateSelfSigned("localhost", now, serial);
  if (!id.ok()) return id.status();
  out.identity = *std::move(id);
  // The key first: a reader that finds the new certificate finds its key.
  s = WriteAtomically(out.key_path, out.identity.key_pem, 0600);
  if (s.ok()) s = WriteAtomically(out.cert_path, out.identity.cert_pem, 0644);
  if (!s.ok()) return s;
  absl::StatusOr<CertificateInfo> info = CertificateInfo::FromPem(out.identity.cert_pem);
  if (!info.ok()) return info.status();
  out.fingerprint256 = info->fingerprint256;
  out.generated = true;
  return out;
}

}  // namespace tlsctl
}  // namespace tlsengine
