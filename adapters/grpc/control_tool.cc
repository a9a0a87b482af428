// tlsctl-control: the control service's faces for shells and tests until
// tlsctl wires them in (tlsctl daemon / serve / call call the same library).
//
//   tlsctl-control daemon [--control ADDRESS] [--control-cert F --control-key F --control-ca F]
//   tlsctl-control serve  [--control ADDRESS] --cert F --key F [--host H] [--port N] [--mode echo|hold]
//   tlsctl-control call   [--control ADDRESS] (--list | METHOD ['JSON'])
#include <iostream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "adapters/grpc/call.h"
#include "adapters/grpc/daemon.h"

namespace {

using tlsengine::control::Controller;

int Usage() {
  std::cerr << "usage: tlsctl-control daemon [--control ADDRESS] [--control-cert F --control-key F --control-ca F]\n"
               "       tlsctl-control serve [--control ADDRESS] --cert F --key F [--host H] [--port N] [--mode M]\n"
               "       tlsctl-control call [--control ADDRESS] (--list | METHOD ['JSON'])\n";
  return 2;
}

int Run(int argc, char** argv, bool serve) {
  std::string address, cert, key, host = "127.0.0.1", mode = "echo";
  int port = 0;
  tlsengine::control::DaemonOptions options;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return Usage();
    std::string v = argv[++i];
    if (a == "--control") {
      address = v;
    } else if (a == "--control-cert") {
      options.control_cert = v;
    } else if (a == "--control-key") {
      options.control_key = v;
    } else if (a == "--control-ca") {
      options.control_ca = v;
    } else if (serve && a == "--cert") {
      cert = v;
    } else if (serve && a == "--key") {
      key = v;
    } else if (serve && a == "--host") {
      host = v;
    } else if (serve && a == "--mode") {
      mode = v;
    } else if (serve && a == "--port") {
      if (!absl::SimpleAtoi(v, &port)) return Usage();
    } else {
      return Usage();
    }
  }
  if (serve && (cert.empty() || key.empty())) return Usage();
  std::function<absl::Status(Controller&)> setup;
  if (serve) {
    // The served listener is made through the service, so every control
    // method sees it.
    setup = [&](Controller& c) -> absl::Status {
      tlsengine::control::v1::CreateContextRequest ctx;
      ctx.add_cert_file(cert);
      ctx.add_key_file(key);
      absl::StatusOr<tlsengine::control::v1::CreateContextResponse> made = c.CreateContext(ctx);
      if (!made.ok()) return made.status();
      tlsengine::control::v1::ListenRequest listen;
      listen.set_context_id(made->context_id());
      listen.set_host(host);
      listen.set_port(port);
      listen.set_mode(mode);
      absl::StatusOr<tlsengine::control::v1::ListenResponse> l = c.Listen(listen);
      if (!l.ok()) return l.status();
      std::cerr << "serve: " << l->listener_id() << " on " << l->address().address() << ":" << l->address().port()
                << " (" << mode << ", context " << made->context_id() << ")" << std::endl;
      return absl::OkStatus();
    };
  }
  absl::Status s = tlsengine::control::RunControlService(address, options, setup);
  if (!s.ok()) {
    std::cerr << "error: " << absl::StatusCodeToString(s.code()) << ": " << s.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  std::string cmd = argv[1];
  if (cmd == "daemon") return Run(argc, argv, false);
  if (cmd == "serve") return Run(argc, argv, true);
  if (cmd == "call") return tlsengine::control::CallMain(argc - 1, argv + 1);
  return Usage();
}
