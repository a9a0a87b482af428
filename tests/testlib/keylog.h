// NSS key-log files (SSLKEYLOGFILE format) for tests that compare the
// secrets two ends of one connection logged.
#ifndef TLSENGINE_TESTS_TESTLIB_KEYLOG_H_
#define TLSENGINE_TESTS_TESTLIB_KEYLOG_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tlsengine {
namespace testing {

// label -> "client_random secret", one entry per line.
using KeylogEntries = std::multimap<std::string, std::string>;

// Parses NSS key-log lines, skipping empty lines and comment lines ('#').
// A line without exactly three fields, or whose client random is not 32
// bytes in hex, is kInvalidArgument.
absl::StatusOr<KeylogEntries> ParseKeylog(absl::string_view text);
// The same, of the file at `path` (kNotFound when it cannot be opened).
absl::StatusOr<KeylogEntries> ReadKeylog(const std::string& path);

// The labels one connection of TLS `version` ("TLSv1.2" or "TLSv1.3")
// logs: TLS 1.2 its master secret (CLIENT_RANDOM), TLS 1.3 its handshake and
// traffic secrets and the exporter secret (RFC 8446 §7.1).
std::vector<std::string> KeylogLabels(const std::string& version);

}  // namespace testing
}  // namespace tlsengine

#endif  // TLSENGINE_TESTS_TESTLIB_KEYLOG_H_
