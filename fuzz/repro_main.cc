// Runs fuzz inputs without libFuzzer: each file given, `--runs N` times
// (default 1), printing the digest of what the engines wrote, so that a
// crash or a nondeterminism can be replayed and compared.
//   bazel run //fuzz:server_engine_repro -- --runs 3 $PWD/crash-1234
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "fuzz/common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  int runs = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
      continue;
    }
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "cannot read %s\n", argv[i]);
      return 2;
    }
    std::stringstream s;
    s << in.rdbuf();
    const std::string input = s.str();
    for (int r = 0; r < runs; ++r) {
      LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()), input.size());
      std::printf("%s run %d: digest %016llx\n", argv[i], r + 1,
                  static_cast<unsigned long long>(tlsengine::fuzz::OutputDigest()));
    }
  }
  return 0;
}
