// Runs `netbench --quick` once (three echo servers on 127.0.0.1, tiny
// counts) and checks that it exits 0 and prints every row. No speed is
// asserted: this only keeps the loopback benchmark from rotting.
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "bench/quick_run.h"
#include "gtest/gtest.h"

namespace {

using tlsengine::bench::QuickOutput;

const QuickOutput& QuickRun() { return tlsengine::bench::QuickRun("timeout 240 bench/netbench --quick --certs=tests/certs 2>&1"); }

TEST(NetbenchQuick, ExitsZero) {
  const QuickOutput& run = QuickRun();
  ASSERT_TRUE(WIFEXITED(run.status)) << run.out;
  EXPECT_EQ(WEXITSTATUS(run.status), 0) << run.out;
}

TEST(NetbenchQuick, PrintsTheMachineAndVersions) {
  const std::string& out = QuickRun().out;
  EXPECT_NE(out.find("machine: nproc "), std::string::npos) << out;
  EXPECT_NE(out.find("OpenSSL: OpenSSL 3"), std::string::npos) << out;
  EXPECT_NE(out.find("Node: "), std::string::npos) << out;
}

TEST(NetbenchQuick, NoFigureFailed) {
  const std::string& out = QuickRun().out;
  EXPECT_EQ(out.find("failed"), std::string::npos) << out;
}

class NetbenchRow : public ::testing::TestWithParam<const char*> {};

TEST_P(NetbenchRow, IsPrinted) {
  const std::string& out = QuickRun().out;
  EXPECT_NE(out.find(std::string("\n| ") + GetParam() + " | "), std::string::npos) << out;
}

INSTANTIATE_TEST_SUITE_P(AllRows, NetbenchRow,
                         ::testing::Values("hs13_ecdsa", "hs13_rsa", "resume13", "hs12_ecdsa", "echo_16k",
                                           "idle_kb_50", "idle_kb_100", "hs_cpu_1loop", "hs_cpu_2loops",
                                           "hs_wall_1loop", "hs_wall_2loops", "mb_cpu_1loop", "mb_cpu_2loops",
                                           "resume_2loops"));

}  // namespace
