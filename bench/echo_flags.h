// The command line both loopback echo servers take (engine_echo.cc and
// plain_echo.cc), parsed once:
//
//   EchoFlags f;
//   if (!ParseEchoFlags(argc, argv, "plain_echo", &f)) return 1;  // usage printed
//   for (size_t i = 0; i < f.keys.size(); ++i) Load(f.certs[i], f.keys[i]);
#ifndef TLSENGINE_BENCH_ECHO_FLAGS_H_
#define TLSENGINE_BENCH_ECHO_FLAGS_H_

#include <string>
#include <vector>

namespace tlsengine {
namespace bench {

struct EchoFlags {
  std::vector<std::string> keys;   // --key=k1.pem,k2.pem
  std::vector<std::string> certs;  // --cert=c1-chain.pem,c2-chain.pem (one per key)
  int loops = 1;                   // --loops=N (N > 0)
};

// Parses --key, --cert and --loops. On a bad or unknown argument, or keys
// and certs that do not pair up, prints "<name>: usage: ..." to stderr and
// returns false.
bool ParseEchoFlags(int argc, char** argv, const char* name, EchoFlags* flags);

}  // namespace bench
}  // namespace tlsengine

#endif  // TLSENGINE_BENCH_ECHO_FLAGS_H_
