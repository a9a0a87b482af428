#include "bench/machine.h"

#include <sched.h>

#include <openssl/crypto.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace tlsengine {
namespace bench {

int Nproc() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
  return CPU_COUNT(&set);
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (absl::StartsWith(line, "model name")) {
      size_t colon = line.find(':');
      return colon == std::string::npos ? line : line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return absl::StrCat(one, " ", five, " ", fifteen);
}

std::string MachineHeader(absl::Time started) {
  return absl::StrCat("date: ", absl::FormatTime("%Y-%m-%d %H:%M:%S %Z", started, absl::UTCTimeZone()), "\n",
                      "machine: nproc ", Nproc(), ", ", CpuModel(), ", load average ", LoadAverage(), " at start\n",
                      "OpenSSL: ", OpenSSL_version(OPENSSL_VERSION), "\n");
}

bool AppendResults(const char* program, const std::string& path, absl::Time started, const std::string& heading,
                   const std::string& header, const std::string& body) {
  bool fresh = !std::ifstream(path).good();
  std::ofstream out(path, std::ios::app);
  if (fresh) out << "# Benchmark results\n\nWritten by `bench/run` (bench/README.md), newest last.\n";
  out << "\n## " << absl::FormatTime("%Y-%m-%d", started, absl::UTCTimeZone()) << (heading.empty() ? "" : ": ")
      << heading << "\n\n```\n" << header << "```\n\n" << body;
  out.close();
  if (!out) {
    std::fprintf(stderr, "%s: cannot write %s\n", program, path.c_str());
    return false;
  }
  std::printf("appended to %s\n", path.c_str());
  return true;
}

}  // namespace bench
}  // namespace tlsengine
