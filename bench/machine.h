// What the benchmark tables say about the machine they ran on (the cores
// this process may use, the CPU model, the load average, OpenSSL), and the
// one writer of bench/RESULTS.md sections, shared by the in-memory bench and
// the loopback netbench.
//
//   std::string header = MachineHeader(started) + "method: ...\n";
//   if (!AppendResults("netbench", "bench/RESULTS.md", started, "over loopback", header, table)) return 1;
#ifndef TLSENGINE_BENCH_MACHINE_H_
#define TLSENGINE_BENCH_MACHINE_H_

#include <string>

#include "absl/time/time.h"

namespace tlsengine {
namespace bench {

// Cores in this process's affinity mask (0 when it cannot be read).
int Nproc();
// The "model name" of /proc/cpuinfo ("unknown CPU" when absent).
std::string CpuModel();
// The three load averages of /proc/loadavg ("1.00 0.80 0.50").
std::string LoadAverage();

// The table header's first lines: "date: ... UTC", "machine: nproc N, CPU,
// load average ... at start" and "OpenSSL: <version>", each ending in \n.
std::string MachineHeader(absl::Time started);

// Appends a section to the results file at `path` (created with its title
// when absent): "## <date of started>[: heading]", `header` in a code
// block, then `body`; prints "appended to <path>", or "<program>: cannot
// write <path>" to stderr and returns false.
bool AppendResults(const char* program, const std::string& path, absl::Time started, const std::string& heading,
                   const std::string& header, const std::string& body);

}  // namespace bench
}  // namespace tlsengine

#endif  // TLSENGINE_BENCH_MACHINE_H_
