// bench: the engine against plain OpenSSL doing the same work in memory,
// printed as one table (see bench/README.md). Rounds alternate engine,
// plain, engine, plain, ...; each cell is the median [min..max].
//
//   bench --certs=tests/certs                 the full table (7 rounds)
//   bench --quick                             1 round, tiny counts (CI)
//   bench --only=hs13_ecdsa --iterations=200  one side of one figure, for a profiler
#include <malloc.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/figures.h"
#include "bench/machine.h"
#include "bench/pair.h"

#if defined(__SANITIZE_ADDRESS__)
#define TLSENGINE_BENCH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TLSENGINE_BENCH_ASAN 1
#endif
#endif
#ifndef TLSENGINE_BENCH_ASAN
#define TLSENGINE_BENCH_ASAN 0
#endif

namespace tlsengine {
namespace bench {
namespace {

constexpr char kUsage[] =
    "usage: bench [--certs=DIR] [--rounds=N] [--seconds=S] [--connections=N] [--quick]\n"
    "             [--results=FILE] [--label=TEXT] [--figures=NAME,...]\n"
    "       bench --only=NAME [--side=engine|plain] [--iterations=N] [--connections=N]\n"
    "  --certs=DIR        tests/certs of the repository (default: tests/certs)\n"
    "  --rounds=N         rounds per figure, alternating engine and plain (default 7)\n"
    "  --seconds=S        length of one measurement (default 0.4)\n"
    "  --connections=N    connections held at once for the memory figures (default 1000)\n"
    "  --quick            1 round, tiny fixed counts, no openssl speed (CI)\n"
    "  --results=FILE     append the table to FILE (markdown), dated (not with --quick)\n"
    "  --label=TEXT       the heading of that section\n"
    "  --figures=A,B      only these rows of the table (mem: the heap rows); writes nothing\n"
    "  --only=NAME        run only one side of one figure (a row name, or mem), for profiling\n"
    "  --side=engine|plain  with --only (default engine)\n"
    "  --iterations=N     with --only: handshakes, writes or records (default 100)\n";

struct Options {
  std::string certs = "tests/certs";
  int rounds = 7;
  double seconds = 0.4;
  int connections = 1000;
  bool quick = false;
  std::string results;
  std::string label;
  std::string only;
  std::string figures;  // comma-separated row names; "" for all
  std::string side = "engine";
  int64_t iterations = 100;
};

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string key = arg, value;
    if (size_t eq = arg.find('='); eq != std::string::npos) {
      key = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    bool ok = true;
    if (key == "--help" || key == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (key == "--certs") o->certs = value;
    else if (key == "--rounds") ok = absl::SimpleAtoi(value, &o->rounds) && o->rounds > 0;
    else if (key == "--seconds") ok = absl::SimpleAtod(value, &o->seconds) && o->seconds > 0;
    else if (key == "--connections") ok = absl::SimpleAtoi(value, &o->connections) && o->connections > 0;
    else if (key == "--quick") o->quick = true;
    else if (key == "--results") o->results = value;
    else if (key == "--label") o->label = value;
    else if (key == "--only") o->only = value;
    else if (key == "--figures") o->figures = value;
    else if (key == "--side") ok = value == "engine" || value == "plain", o->side = value;
    else if (key == "--iterations") ok = absl::SimpleAtoi(value, &o->iterations) && o->iterations > 0;
    else ok = false;
    if (!ok) {
      std::fprintf(stderr, "bench: bad argument '%s'\n%s", arg.c_str(), kUsage);
      return false;
    }
  }
  return true;
}

absl::StatusOr<std::unique_ptr<Stack>> MakeStack(bool engine, const Config& config) {
  return engine ? MakeEngineStack(config) : MakePlainStack(config);
}

// ---- The machine (see also bench/machine.h) ----

// AES-128-GCM MB/s on 16 KB blocks from `openssl speed` (0 when it fails).
double OpenSslSpeed() {
  FILE* p = popen("openssl speed -seconds 1 -evp aes-128-gcm 2>/dev/null", "r");
  if (p == nullptr) return 0;
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
  pclose(p);
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    if (!absl::StartsWithIgnoreCase(line, "AES-128-GCM")) continue;
    std::vector<absl::string_view> cols = absl::StrSplit(line, ' ', absl::SkipEmpty());
    absl::string_view last = cols.back();
    double kb = 0;  // "3667148.80k": thousands of bytes per second
    if (absl::ConsumeSuffix(&last, "k") && absl::SimpleAtod(last, &kb)) return kb / 1000.0;
  }
  return 0;
}

// ---- The table ----

struct Samples {
  std::vector<double> values;
  double Median() const {
    std::vector<double> v = values;
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  }
  double Min() const { return *std::min_element(values.begin(), values.end()); }
  double Max() const { return *std::max_element(values.begin(), values.end()); }
};

std::string Num(double v) {
  return v >= 100 ? absl::StrFormat("%.0f", v) : v >= 10 ? absl::StrFormat("%.1f", v) : absl::StrFormat("%.2f", v);
}

std::string Cell(const Samples& s) {
  if (s.values.size() == 1) return Num(s.values[0]);
  return absl::StrCat(Num(s.Median()), " [", Num(s.Min()), "..", Num(s.Max()), "]");
}

struct Row {
  std::string name, title, engine, plain, ratio;
};

std::string Table(const std::vector<Row>& rows) {
  std::string out = "| name | figure | engine | plain | engine/plain |\n|---|---|---|---|---|\n";
  for (const Row& r : rows) absl::StrAppend(&out, "| ", r.name, " | ", r.title, " | ", r.engine, " | ", r.plain, " | ", r.ratio, " |\n");
  return out;
}

std::string Bytes(double b) { return absl::StrFormat("%.0f B", b); }
std::string Diff(double engine, double plain) { return absl::StrFormat("%+.0f B", engine - plain); }

// ---- Runs ----

int RunOnly(const Options& o) {
  const bool engine = o.side == "engine";
  if (o.only == "mem") {
    absl::StatusOr<std::unique_ptr<Stack>> stack = MakeStack(engine, MemoryConfig(o.certs));
    absl::StatusOr<MemoryFigures> m = stack.ok() ? MeasureMemory(**stack, o.connections) : stack.status();
    if (!m.ok()) return std::fprintf(stderr, "bench: %s\n", m.status().ToString().c_str()), 1;
    std::printf("%s mem: after handshake %.0f B, idle after 16 KB each way %.0f B\n", o.side.c_str(),
                m->after_handshake, m->idle);
    return 0;
  }
  for (const Figure& f : RateFigures(o.certs)) {
    if (f.name != o.only) continue;
    absl::StatusOr<std::unique_ptr<Stack>> stack = MakeStack(engine, f.config);
    absl::StatusOr<double> rate = stack.ok() ? MeasureRate(f, **stack, {absl::ZeroDuration(), o.iterations})
                                             : stack.status();
    if (!rate.ok()) return std::fprintf(stderr, "bench: %s\n", rate.status().ToString().c_str()), 1;
    std::printf("%s %s: %s over %lld iterations\n", o.side.c_str(), f.name.c_str(), Num(*rate).c_str(),
                static_cast<long long>(o.iterations));
    return 0;
  }
  std::fprintf(stderr, "bench: no figure named '%s'\n", o.only.c_str());
  return 2;
}

// Quick mode's fixed counts: enough to run every path once or a few times.
int64_t QuickIterations(Kind kind) {
  switch (kind) {
    case Kind::kHandshake:
    case Kind::kResume: return 3;
    case Kind::kBulk: return 8;
    case Kind::kRecords: return 50;
  }
  return 1;
}

absl::Status RunTable(const Options& o, std::vector<Row>* rows, double* bulk_aes[2]) {
  auto wanted = [&](const std::string& name) {
    return o.figures.empty() || absl::StrContains(absl::StrCat(",", o.figures, ","), absl::StrCat(",", name, ","));
  };
  for (const Figure& f : RateFigures(o.certs)) {
    if (!wanted(f.name)) continue;
    std::unique_ptr<Stack> stacks[2];  // engine, plain
    for (int side = 0; side < 2; ++side) {
      absl::StatusOr<std::unique_ptr<Stack>> s = MakeStack(side == 0, f.config);
      if (!s.ok()) return absl::Status(s.status().code(), absl::StrCat(f.name, ": ", s.status().message()));
      stacks[side] = *std::move(s);
    }
    // Both sides must negotiate the same thing, or the ratio means nothing.
    absl::StatusOr<std::string> e = Negotiated(f, *stacks[0]);
    absl::StatusOr<std::string> p = Negotiated(f, *stacks[1]);
    if (!e.ok() || !p.ok()) {
      return absl::InternalError(absl::StrCat(f.name, ": ", e.status().ToString(), " / ", p.status().ToString()));
    }
    if (*e != *p) return absl::InternalError(absl::StrCat(f.name, ": engine ", *e, " but plain ", *p));
    Budget budget;
    if (o.quick) budget.iterations = QuickIterations(f.kind);
    else budget.time = absl::Seconds(o.seconds);
    Samples samples[2];
    for (int round = 0; round < o.rounds; ++round) {
      for (int side = 0; side < 2; ++side) {
        absl::StatusOr<double> rate = MeasureRate(f, *stacks[side], budget);
        if (!rate.ok()) {
          return absl::Status(rate.status().code(),
                              absl::StrCat(f.name, " (", side == 0 ? "engine" : "plain", "): ", rate.status().message()));
        }
        samples[side].values.push_back(*rate);
      }
    }
    if (f.name == "bulk_aes128gcm") {
      *bulk_aes[0] = samples[0].Median();
      *bulk_aes[1] = samples[1].Median();
    }
    rows->push_back({f.name, absl::StrCat(f.title, " (", *e, ")"), Cell(samples[0]), Cell(samples[1]),
                     absl::StrFormat("%.2f", samples[0].Median() / samples[1].Median())});
    std::fflush(stdout);
  }

  const std::string titles[4] = {
      "heap B/server conn after handshake (after SSL_free_buffers / engine ReleaseBuffers)",
      "heap B/server conn after handshake (without those calls)",
      "heap B/server conn idle after 16 KB each way (after SSL_free_buffers / engine ReleaseBuffers)",
      "heap B/server conn idle after 16 KB each way (without those calls)",
  };
  const std::string names[4] = {"mem_handshake", "mem_handshake_nofree", "mem_idle", "mem_idle_nofree"};
  if (!wanted("mem")) {
    // not asked for
  } else if (TLSENGINE_BENCH_ASAN) {
    for (int i = 0; i < 4; ++i) rows->push_back({names[i], titles[i], "n/a (ASan)", "n/a (ASan)", "n/a"});
  } else {
    const int connections = o.quick ? 10 : o.connections;
    MemoryFigures m[2];
    for (int side = 0; side < 2; ++side) {
      absl::StatusOr<std::unique_ptr<Stack>> s = MakeStack(side == 0, MemoryConfig(o.certs));
      absl::StatusOr<MemoryFigures> f = s.ok() ? MeasureMemory(**s, connections) : s.status();
      if (!f.ok()) return f.status();
      m[side] = *f;
    }
    // Both sides have a release call (SSL_free_buffers, TlsConnection::ReleaseBuffers).
    const double engine[4] = {m[0].after_handshake_released, m[0].after_handshake, m[0].idle_released, m[0].idle};
    const double plain[4] = {m[1].after_handshake_released, m[1].after_handshake, m[1].idle_released, m[1].idle};
    for (int i = 0; i < 4; ++i) {
      rows->push_back({names[i], absl::StrCat(titles[i], ", ", connections, " held"), Bytes(engine[i]),
                       Bytes(plain[i]), Diff(engine[i], plain[i])});
    }
  }

  const std::string speed_title = "crypto limit: `openssl speed -seconds 1 -evp aes-128-gcm`, 16 KB blocks, MB/s";
  if (!o.figures.empty()) {
    // only the rows asked for
  } else if (o.quick) {
    rows->push_back({"speed_aes128gcm", speed_title, "skipped (--quick)", "skipped (--quick)", "-"});
  } else {
    double speed = OpenSslSpeed();
    if (speed <= 0) return absl::InternalError("openssl speed: no AES-128-GCM line");
    rows->push_back({"speed_aes128gcm", speed_title, "-", Num(speed),
                     absl::StrFormat("bulk_aes128gcm at %.0f%% (engine), %.0f%% (plain) of it",
                                     100 * *bulk_aes[0] / speed, 100 * *bulk_aes[1] / speed)});
  }
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, &o)) return 2;
  if (!o.only.empty()) return RunOnly(o);
  if (o.quick) o.rounds = 1;

  const absl::Time started = absl::Now();
  std::string header = absl::StrCat(
      MachineHeader(started),
      "build: ", TLSENGINE_BENCH_ASAN ? "ASan (timings and heap figures meaningless)" : "optimised", "\n",
      "method: ", o.rounds, " round(s) per figure alternating engine, plain; ",
      o.quick ? "fixed tiny counts (--quick)" : absl::StrCat(o.seconds, " s per measurement"),
      "; rates per second of the benchmark thread's CPU time (the machine is shared)"
      "; cells are median [min..max]; ratio = engine/plain of the medians (higher is better for the engine)\n");
  std::cout << header << std::flush;

  std::vector<Row> rows;
  double bulk_engine = 0, bulk_plain = 0;
  double* bulk[2] = {&bulk_engine, &bulk_plain};
  absl::Status status = RunTable(o, &rows, bulk);
  std::string table = Table(rows);
  std::cout << "\n" << table;
  if (!status.ok()) {
    std::fprintf(stderr, "bench: %s\n", status.ToString().c_str());
    return 1;
  }
  std::printf("\ntotal: %.1f s\n", absl::ToDoubleSeconds(absl::Now() - started));

  const bool writes = !o.quick && o.figures.empty() && !o.results.empty();
  return writes && !AppendResults("bench", o.results, started, o.label, header, table) ? 1 : 0;
}

}  // namespace
}  // namespace bench
}  // namespace tlsengine

int main(int argc, char** argv) { return tlsengine::bench::Main(argc, argv); }
