#include "adapters/grpc/call.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/create_channel_posix.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/client_unary_call.h>
#include <grpcpp/support/client_interceptor.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "adapters/fd/sys_status.h"
#include "adapters/grpc/control.grpc.pb.h"
#include "adapters/grpc/daemon.h"
#include "core/errors.h"

namespace tlsengine {
namespace control {
namespace {

namespace pb = ::google::protobuf;

absl::Status FromGrpc(const grpc::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

absl::StatusOr<std::string> ReadFile(const std::string& option, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(option, ": cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The token `tlsctl daemon --control-token-file` wrote: a file of ours (or
// root's) that no one else can read, not a symlink. A file another user
// could have put there is not sent anywhere.
absl::StatusOr<std::string> ReadToken(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return fdio::SysError(absl::StrCat("--control-token-file: cannot read ", path), errno,
                          absl::StatusCode::kInvalidArgument);
  }
  struct stat st {};
  char buf[256];
  ssize_t n = -1;
  std::string why;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    why = "is not a regular file";
  } else if (st.st_uid != geteuid() && st.st_uid != 0) {
    why = absl::StrCat("belongs to uid ", st.st_uid, ", not to you (uid ", geteuid(), ") or root");
  } else if ((st.st_mode & 077) != 0) {
    why = "can be read or written by other users (want mode 0600)";
  } else if ((n = read(fd, buf, sizeof buf)) <= 0 || n == static_cast<ssize_t>(sizeof buf)) {
    why = "does not hold a token";
  }
  close(fd);
  if (!why.empty()) return absl::PermissionDeniedError(absl::StrCat("--control-token-file: ", path, " ", why));
  return std::string(absl::StripAsciiWhitespace(absl::string_view(buf, static_cast<size_t>(n))));
}

// Adds "authorization: Bearer TOKEN" to every call on the channel.
class TokenInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit TokenInterceptor(const std::string& value) : value_(value) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    if (m->QueryInterceptionHookPoint(grpc::experimental::InterceptionHookPoints::PRE_SEND_INITIAL_METADATA)) {
      m->GetSendInitialMetadata()->insert({kControlTokenMetadata, value_});
    }
    m->Proceed();
  }

 private:
  const std::string value_;
};

class TokenInterceptorFactory final : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit TokenInterceptorFactory(std::string token) : value_(absl::StrCat("Bearer ", token)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(grpc::experimental::ClientRpcInfo*) override {
    return new TokenInterceptor(value_);
  }

 private:
  const std::string value_;
};

// Connects to the unix socket at `path` and checks, with SO_PEERCRED, that
// the process listening there runs as us (or as root, who can read what we
// send anyway) before anything is sent: a socket another user put in place
// of the daemon's gets nothing. The connected descriptor then carries the
// channel, so nothing can be swapped between the check and the call.
absl::StatusOr<int> ConnectToOwnSocket(const std::string& path) {
  sockaddr_un sa{};
  if (path.empty() || path.size() >= sizeof sa.sun_path) {
    return absl::InvalidArgumentError(absl::StrCat("--control: bad unix socket path \"", path, "\""));
  }
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());
  // Non-blocking: a unix connect completes at once or fails (EAGAIN when
  // the backlog is full), it never waits.
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fdio::SysError("--control: socket", errno, absl::StatusCode::kUnavailable);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    int err = errno;
    close(fd);
    absl::Status failed =
        fdio::SysError(absl::StrCat("--control: cannot connect to ", path), err, absl::StatusCode::kUnavailable);
    return MakeError(failed.code(), NodeCode(failed), absl::StrCat(failed.message(), " (is the daemon running?)"));
  }
  ucred peer{};
  socklen_t len = sizeof peer;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0 || len != sizeof peer) {
    close(fd);
    return absl::PermissionDeniedError(absl::StrCat("--control: cannot tell who serves ", path));
  }
  if (peer.uid != geteuid() && peer.uid != 0) {
    close(fd);
    return absl::PermissionDeniedError(absl::StrCat("--control: ", path, " is served by uid ", peer.uid,
                                                    " (pid ", peer.pid, "), not by you (uid ", geteuid(),
                                                    ") or root; nothing was sent"));
  }
  return fd;
}

void SetDeadline(grpc::ClientContext* ctx, absl::Duration d) {
  if (d > absl::ZeroDuration()) ctx->set_deadline(std::chrono::system_clock::now() + absl::ToChronoMilliseconds(d));
}

// The parts of grpc/reflection/v1alpha/reflection.proto this client uses,
// in a pool of its own: Debian installs the reflection library but not its
// generated headers, and the wire format needs only the field numbers.
constexpr char kReflectionProto[] = R"pb(
  name: "tlsctl_reflection_client.proto"
  package: "grpc.reflection.v1alpha"
  syntax: "proto3"
  message_type {
    name: "ServerReflectionRequest"
    field { name: "host" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "file_containing_symbol" number: 4 label: LABEL_OPTIONAL type: TYPE_STRING }
    field { name: "list_services" number: 7 label: LABEL_OPTIONAL type: TYPE_STRING }
  }
  message_type {
    name: "ServerReflectionResponse"
    field { name: "file_descriptor_response" number: 4 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".grpc.reflection.v1alpha.FileDescriptorResponse" }
    field { name: "list_services_response" number: 6 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".grpc.reflection.v1alpha.ListServiceResponse" }
    field { name: "error_response" number: 7 label: LABEL_OPTIONAL type: TYPE_MESSAGE type_name: ".grpc.reflection.v1alpha.ErrorResponse" }
  }
  message_type {
    name: "FileDescriptorResponse"
    field { name: "file_descriptor_proto" number: 1 label: LABEL_REPEATED type: TYPE_BYTES }
  }
  message_type {
    name: "ListServiceResponse"
    field { name: "service" number: 1 label: LABEL_REPEATED type: TYPE_MESSAGE type_name: ".grpc.reflection.v1alpha.ServiceResponse" }
  }
  message_type {
    name: "ServiceResponse"
    field { name: "name" number: 1 label: LABEL_OPTIONAL type: TYPE_STRING }
  }
  message_type {
    name: "ErrorResponse"
    field { name: "error_code" number: 1 label: LABEL_OPTIONAL type: TYPE_INT32 }
    field { name: "error_message" number: 2 label: LABEL_OPTIONAL type: TYPE_STRING }
  }
)pb";

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ClientOptions& o) {
  std::string target = o.address.empty() ? DefaultControlAddress() : o.address;
  if (absl::StartsWith(target, "/")) target = absl::StrCat("unix:", target);
  if (absl::StartsWith(target, "unix-abstract:")) {
    return absl::InvalidArgumentError("--control: abstract unix sockets have no owner to check; give a path");
  }
  bool tls = !o.cert_file.empty() || !o.key_file.empty() || !o.ca_file.empty();
  if (!tls && !absl::StartsWith(target, "unix:")) {
    // Plain TCP: nothing says who listens but the address. The daemon holds
    // its numeric loopback address alone, but a name ("localhost") may
    // resolve to another address too (::1 as well as 127.0.0.1), where
    // another user may listen and take the token and the request.
    absl::StatusOr<bool> loopback = IsLoopbackTcp(target);
    if (!loopback.ok() || !*loopback || absl::StartsWith(target, "localhost:")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--control: ", target,
          ": without TLS, TCP goes only to a numeric loopback address (127.0.0.1:PORT or [::1]:PORT), where no "
          "other user can listen in the service's place; nothing was sent"));
    }
  }
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> interceptors;
  if (!o.token_file.empty()) {
    absl::StatusOr<std::string> token = ReadToken(o.token_file);
    if (!token.ok()) return token.status();
    interceptors.push_back(std::make_unique<TokenInterceptorFactory>(*token));
  }
  if (tls) {
    grpc::SslCredentialsOptions ssl;
    if (!o.ca_file.empty()) {
      absl::StatusOr<std::string> ca = ReadFile("--control-ca", o.ca_file);
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *ca;
    }
    if (!o.cert_file.empty() || !o.key_file.empty()) {
      absl::StatusOr<std::string> cert = ReadFile("--control-cert", o.cert_file);
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key = ReadFile("--control-key", o.key_file);
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
    }
    creds = grpc::SslCredentials(ssl);
    if (!o.server_name.empty()) args.SetSslTargetNameOverride(o.server_name);
  } else if (absl::StartsWith(target, "unix:")) {
    // Without TLS nothing else says who the server is: its uid must.
    std::string path = target.substr(5);
    if (absl::StartsWith(path, "//")) path = path.substr(2);  // unix:///abs
    absl::StatusOr<int> fd = ConnectToOwnSocket(path);
    if (!fd.ok()) return fd.status();
    return grpc::experimental::CreateCustomInsecureChannelWithInterceptorsFromFd(target, *fd, args,
                                                                                 std::move(interceptors));
  }
  return grpc::experimental::CreateCustomChannelWithInterceptors(target, creds, args, std::move(interceptors));
}

absl::Status CallMethod(const ClientOptions& o, const std::string& method, const std::string& json,
                        const std::function<void(const std::string&)>& out) {
  const pb::ServiceDescriptor* service = v1::GetCiphersRequest::descriptor()->file()->FindServiceByName("TlsControl");
  std::string name = method;
  for (const std::string& prefix : {service->full_name() + "/", service->full_name() + ".",
                                    std::string(service->name()) + ".", std::string("/") + service->full_name() + "/"}) {
    if (absl::StartsWith(name, prefix)) name = name.substr(prefix.size());
  }
  const pb::MethodDescriptor* m = service->FindMethodByName(name);
  if (m == nullptr || m->client_streaming()) {
    return absl::InvalidArgumentError(absl::StrCat("no method \"", method, "\" in ", service->full_name(),
                                                   " (call --list shows them)"));
  }
  const pb::Message* in_proto = pb::MessageFactory::generated_factory()->GetPrototype(m->input_type());
  const pb::Message* out_proto = pb::MessageFactory::generated_factory()->GetPrototype(m->output_type());
  std::unique_ptr<pb::Message> request(in_proto->New());
  pb::util::JsonParseOptions parse;
  if (pb::util::Status s = pb::util::JsonStringToMessage(json.empty() ? "{}" : json, request.get(), parse); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(m->input_type()->name(), ": ", s.message().as_string()));
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(o);
  if (!channel.ok()) return channel.status();
  pb::util::JsonPrintOptions print;
  print.always_print_primitive_fields = true;
  auto emit = [&](const pb::Message& reply) {
    std::string line;
    if (!pb::util::MessageToJsonString(reply, &line, print).ok()) line = "{}";
    out(line);
  };
  std::string path = absl::StrCat("/", service->full_name(), "/", m->name());
  grpc::ClientContext ctx;
  if (!m->server_streaming()) {
    SetDeadline(&ctx, o.timeout);
    grpc::internal::RpcMethod rpc(path.c_str(), grpc::internal::RpcMethod::NORMAL_RPC);
    std::unique_ptr<pb::Message> reply(out_proto->New());
    grpc::Status s = grpc::internal::BlockingUnaryCall<pb::Message, pb::Message>(channel->get(), rpc, &ctx, *request,
                                                                                 reply.get());
    if (!s.ok()) return FromGrpc(s);
    emit(*reply);
    return absl::OkStatus();
  }
  SetDeadline(&ctx, o.stream_timeout);
  grpc::internal::RpcMethod rpc(path.c_str(), grpc::internal::RpcMethod::SERVER_STREAMING);
  std::unique_ptr<grpc::ClientReader<pb::Message>> reader(
      grpc::internal::ClientReaderFactory<pb::Message>::Create(channel->get(), rpc, &ctx, *request));
  std::unique_ptr<pb::Message> reply(out_proto->New());
  while (reader->Read(reply.get())) {
    emit(*reply);
    reply->Clear();
  }
  return FromGrpc(reader->Finish());
}

absl::StatusOr<std::vector<std::string>> ListMethods(const ClientOptions& o) {
  pb::FileDescriptorProto file;
  if (!pb::TextFormat::ParseFromString(kReflectionProto, &file)) return absl::InternalError("reflection descriptor");
  pb::DescriptorPool local;
  const pb::FileDescriptor* fd = local.BuildFile(file);
  if (fd == nullptr) return absl::InternalError("reflection descriptor does not build");
  pb::DynamicMessageFactory factory(&local);
  const pb::Descriptor* req_type = fd->FindMessageTypeByName("ServerReflectionRequest");
  const pb::Descriptor* resp_type = fd->FindMessageTypeByName("ServerReflectionResponse");

  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(o);
  if (!channel.ok()) return channel.status();
  grpc::ClientContext ctx;
  SetDeadline(&ctx, o.timeout);
  grpc::internal::RpcMethod rpc("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                grpc::internal::RpcMethod::BIDI_STREAMING);
  std::unique_ptr<grpc::ClientReaderWriter<pb::Message, pb::Message>> stream(
      grpc::internal::ClientReaderWriterFactory<pb::Message, pb::Message>::Create(channel->get(), rpc, &ctx));
  // One request, one reply.
  auto ask = [&](const std::string& field, const std::string& value) -> absl::StatusOr<std::unique_ptr<pb::Message>> {
    std::unique_ptr<pb::Message> req(factory.GetPrototype(req_type)->New());
    req->GetReflection()->SetString(req.get(), req_type->FindFieldByName(field), value);
    if (!stream->Write(*req)) return absl::UnavailableError("reflection stream closed");
    std::unique_ptr<pb::Message> resp(factory.GetPrototype(resp_type)->New());
    if (!stream->Read(resp.get())) return absl::UnavailableError("reflection stream closed");
    return resp;
  };
  absl::StatusOr<std::unique_ptr<pb::Message>> services = ask("list_services", "*");
  if (!services.ok()) {
    stream->WritesDone();
    absl::Status finished = FromGrpc(stream->Finish());
    return finished.ok() ? services.status() : finished;
  }
  std::vector<std::string> names;
  const pb::Message& list =
      (*services)->GetReflection()->GetMessage(**services, resp_type->FindFieldByName("list_services_response"));
  const pb::FieldDescriptor* service_field = list.GetDescriptor()->FindFieldByName("service");
  for (int i = 0; i < list.GetReflection()->FieldSize(list, service_field); ++i) {
    const pb::Message& s = list.GetReflection()->GetRepeatedMessage(list, service_field, i);
    names.push_back(s.GetReflection()->GetString(s, s.GetDescriptor()->FindFieldByName("name")));
  }
  // Each service's file (and the files it imports) into a pool of our own.
  pb::DescriptorPool pool;
  std::vector<pb::FileDescriptorProto> pending;
  std::set<std::string> seen;
  for (const std::string& name : names) {
    absl::StatusOr<std::unique_ptr<pb::Message>> files = ask("file_containing_symbol", name);
    if (!files.ok()) break;
    const pb::Message& fr =
        (*files)->GetReflection()->GetMessage(**files, resp_type->FindFieldByName("file_descriptor_response"));
    const pb::FieldDescriptor* bytes = fr.GetDescriptor()->FindFieldByName("file_descriptor_proto");
    for (int i = 0; i < fr.GetReflection()->FieldSize(fr, bytes); ++i) {
      pb::FileDescriptorProto p;
      if (p.ParseFromString(fr.GetReflection()->GetRepeatedString(fr, bytes, i)) && seen.insert(p.name()).second) {
        pending.push_back(p);
      }
    }
  }
  stream->WritesDone();
  absl::Status finished = FromGrpc(stream->Finish());
  if (!finished.ok()) return finished;
  // Dependencies first: build what can be built until nothing changes.
  for (bool progress = true; progress && !pending.empty();) {
    progress = false;
    for (auto it = pending.begin(); it != pending.end();) {
      bool ready = true;
      for (const std::string& dep : it->dependency()) ready = ready && pool.FindFileByName(dep) != nullptr;
      if (ready && pool.BuildFile(*it) != nullptr) {
        it = pending.erase(it);
        progress = true;
      } else {
        ++it;
      }
    }
  }
  std::vector<std::string> out;
  for (const std::string& name : names) {
    const pb::ServiceDescriptor* s = pool.FindServiceByName(name);
    if (s == nullptr) {
      out.push_back(name);
      continue;
    }
    for (int i = 0; i < s->method_count(); ++i) {
      const pb::MethodDescriptor* m = s->method(i);
      out.push_back(absl::StrCat(s->full_name(), ".", m->name(), "(", m->client_streaming() ? "stream " : "",
                                 m->input_type()->name(), ") returns (", m->server_streaming() ? "stream " : "",
                                 m->output_type()->name(), ")"));
    }
  }
  return out;
}

}  // namespace control
}  // namespace tlsengine
