// Runs `bench --quick` once and checks that it exits 0 and prints every row
// of the table. No speed is asserted: this only keeps the benchmark from
// rotting.
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "bench/quick_run.h"
#include "gtest/gtest.h"

namespace {

using tlsengine::bench::QuickOutput;

const QuickOutput& QuickRun() { return tlsengine::bench::QuickRun("bench/bench --quick --certs=tests/certs 2>&1"); }

TEST(BenchQuick, ExitsZero) {
  const QuickOutput& run = QuickRun();
  ASSERT_TRUE(WIFEXITED(run.status)) << run.out;
  EXPECT_EQ(WEXITSTATUS(run.status), 0) << run.out;
}

TEST(BenchQuick, PrintsTheMachine) {
  const std::string& out = QuickRun().out;
  EXPECT_NE(out.find("machine: nproc "), std::string::npos) << out;
  EXPECT_NE(out.find("OpenSSL: OpenSSL 3"), std::string::npos) << out;
}

class BenchRow : public ::testing::TestWithParam<const char*> {};

TEST_P(BenchRow, IsPrinted) {
  const std::string& out = QuickRun().out;
  EXPECT_NE(out.find(std::string("\n| ") + GetParam() + " | "), std::string::npos) << out;
}

INSTANTIATE_TEST_SUITE_P(AllRows, BenchRow,
                         ::testing::Values("hs13_ecdsa", "hs13_rsa", "hs12_ecdsa", "resume13", "bulk_aes128gcm",
                                           "bulk_chacha20", "rec1", "rec100", "mem_handshake",
                                           "mem_handshake_nofree", "mem_idle", "mem_idle_nofree",
                                           "speed_aes128gcm"));

}  // namespace
