#include "bench/echo_flags.h"

#include <cstdio>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace tlsengine {
namespace bench {

bool ParseEchoFlags(int argc, char** argv, const char* name, EchoFlags* flags) {
  bool ok = true;
  for (int i = 1; i < argc && ok; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--key=")) {
      flags->keys = absl::StrSplit(a, ',');
    } else if (absl::ConsumePrefix(&a, "--cert=")) {
      flags->certs = absl::StrSplit(a, ',');
    } else if (absl::ConsumePrefix(&a, "--loops=")) {
      ok = absl::SimpleAtoi(a, &flags->loops) && flags->loops > 0;
    } else {
      ok = false;
    }
  }
  ok = ok && !flags->keys.empty() && flags->keys.size() == flags->certs.size();
  if (!ok) std::fprintf(stderr, "%s: usage: %s --key=K[,K2] --cert=C[,C2] [--loops=N] (one cert per key)\n", name, name);
  return ok;
}

}  // namespace bench
}  // namespace tlsengine
