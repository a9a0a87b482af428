// The quick tests' one run of a benchmark: its exit status and everything
// it printed, run once per test binary and shared by every test case.
//
//   const QuickOutput& run = QuickRun("bench/bench --quick --certs=tests/certs 2>&1");
#ifndef TLSENGINE_BENCH_QUICK_RUN_H_
#define TLSENGINE_BENCH_QUICK_RUN_H_

#include <cstdio>
#include <string>

namespace tlsengine {
namespace bench {

struct QuickOutput {
  std::string out;
  int status = -1;  // as from pclose
};

// Runs `command` (through the shell) the first time; later calls return
// that run, whatever their command. Not thread-safe before the first return.
inline const QuickOutput& QuickRun(const char* command) {
  static const QuickOutput* run = [command] {
    auto* r = new QuickOutput;  // never freed: read by every test
    FILE* p = popen(command, "r");
    if (p == nullptr) return r;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof(buf), p)) r->out.append(buf, n);
    r->status = pclose(p);
    return r;
  }();
  return *run;
}

}  // namespace bench
}  // namespace tlsengine

#endif  // TLSENGINE_BENCH_QUICK_RUN_H_
