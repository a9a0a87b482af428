#include "tests/testlib/keylog.h"

#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace tlsengine {
namespace testing {

absl::StatusOr<KeylogEntries> ParseKeylog(absl::string_view text) {
  KeylogEntries out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (line[0] == '#') continue;
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    if (parts.size() != 3) return absl::InvalidArgumentError(absl::StrCat("not three fields: ", line));
    bool hex = parts[1].size() == 64;
    for (char c : parts[1]) hex = hex && absl::ascii_isxdigit(static_cast<unsigned char>(c));
    if (!hex) return absl::InvalidArgumentError(absl::StrCat("not a 32-byte client random in hex: ", line));
    out.emplace(parts[0], parts[1] + " " + parts[2]);
  }
  return out;
}

absl::StatusOr<KeylogEntries> ReadKeylog(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseKeylog(text.str());
}

std::vector<std::string> KeylogLabels(const std::string& version) {
  if (version == "TLSv1.2") return {"CLIENT_RANDOM"};
  return {"CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0",
          "SERVER_TRAFFIC_SECRET_0", "EXPORTER_SECRET"};
}

}  // namespace testing
}  // namespace tlsengine
