// What the benchmark tables say about the machine they ran on: the cores
// this process may use, the CPU model and the load average (shared by the
// in-memory bench and the loopback netbench).
//
//   std::printf("machine: nproc %d, %s, load average %s\n", Nproc(),
//               CpuModel().c_str(), LoadAverage().c_str());
#ifndef TLSENGINE_BENCH_MACHINE_H_
#define TLSENGINE_BENCH_MACHINE_H_

#include <string>

namespace tlsengine {
namespace bench {

// Cores in this process's affinity mask (0 when it cannot be read).
int Nproc();
// The "model name" of /proc/cpuinfo ("unknown CPU" when absent).
std::string CpuModel();
// The three load averages of /proc/loadavg ("1.00 0.80 0.50").
std::string LoadAverage();

}  // namespace bench
}  // namespace tlsengine

#endif  // TLSENGINE_BENCH_MACHINE_H_
