// Replays a fuzz target's checked-in corpus (fuzz/corpus/TARGET) as a
// regression test, on the system OpenSSL, and checks reproducibility: each
// input run twice must write the same bytes.
#include <dirent.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz/common.h"
#include "gtest/gtest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<std::string> CorpusFiles() {
  std::string dir = std::string("fuzz/corpus/") + FUZZ_TARGET_NAME;
  std::vector<std::string> files;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') files.push_back(dir + "/" + e->d_name);
    }
    closedir(d);
  }
  return files;
}

TEST(Replay, EveryCorpusInputRunsAndReproduces) {
  std::vector<std::string> files = CorpusFiles();
  ASSERT_FALSE(files.empty()) << "no corpus for " << FUZZ_TARGET_NAME;
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    const std::string input = s.str();
    const auto* data = reinterpret_cast<const uint8_t*>(input.data());
    LLVMFuzzerTestOneInput(data, input.size());
    uint64_t first = tlsengine::fuzz::OutputDigest();
    LLVMFuzzerTestOneInput(data, input.size());
    EXPECT_EQ(first, tlsengine::fuzz::OutputDigest()) << file << " did not reproduce";
  }
  std::printf("%zu inputs replayed\n", files.size());
}

}  // namespace
