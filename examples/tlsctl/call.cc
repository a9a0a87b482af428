// `tlsctl call`: one request to the control service, from the command
// line. The flags are parsed here; adapters/grpc/call.h does the call.
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "adapters/grpc/call.h"
#include "examples/tlsctl/commands.h"

namespace tlsengine {
namespace tlsctl {

int RunCall(int argc, char** argv) {
  control::ClientOptions o;
  bool list = false;
  std::vector<std::string> rest;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](std::string* into) {
      if (i + 1 >= argc) return false;
      *into = argv[++i];
      return true;
    };
    bool ok = true;
    if (a == "--control") {
      ok = value(&o.address);
    } else if (a == "--control-cert") {
      ok = value(&o.cert_file);
    } else if (a == "--control-key") {
      ok = value(&o.key_file);
    } else if (a == "--control-ca") {
      ok = value(&o.ca_file);
    } else if (a == "--control-token-file") {
      ok = value(&o.token_file);
    } else if (a == "--servername") {
      ok = value(&o.server_name);
    } else if (a == "--list") {
      list = true;
    } else if (absl::StartsWith(a, "--")) {
      ok = false;
    } else {
      rest.push_back(a);
    }
    if (!ok) {
      std::cerr << "usage: call [--control ADDRESS] [--control-cert F --control-key F --control-ca F] "
                   "[--control-token-file F] [--servername NAME] (--list | METHOD ['JSON'])\n";
      return 2;
    }
  }
  if (list) {
    absl::StatusOr<std::vector<std::string>> methods = control::ListMethods(o);
    if (!methods.ok()) {
      std::cerr << "error: " << absl::StatusCodeToString(methods.status().code()) << ": "
                << methods.status().message() << "\n";
      return 1;
    }
    for (const std::string& m : *methods) std::cout << m << "\n";
    return 0;
  }
  if (rest.empty() || rest.size() > 2) {
    std::cerr << "usage: call [--control ADDRESS] METHOD ['JSON'] | call --list\n";
    return 2;
  }
  absl::Status s = control::CallMethod(o, rest[0], rest.size() > 1 ? rest[1] : "{}",
                                       [](const std::string& line) { std::cout << line << std::endl; });
  if (!s.ok()) {
    std::cerr << "error: " << absl::StatusCodeToString(s.code()) << ": " << s.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace tlsctl
}  // namespace tlsengine
