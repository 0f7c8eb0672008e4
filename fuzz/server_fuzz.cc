// server_fuzz: a real synod server (server::Node: transport, Replica, LogStore,
// the kv backend loaded from its .so) running in this process on a loopback
// port, as a one-node cluster, fed over TCP by a client the fuzzer plays.
//
// Input: byte 0 picks the mode (value % 3), the rest is
//   0  a serialized proto::ClientRequest, sent on the client connection (its
//      request_id replaced by a counter, its timeout_ms capped at 300 ms);
//   1  an arbitrary Envelope payload, framed and sent on the client connection;
//   2  arbitrary bytes on a new connection that never says Hello.
//
// Checks: no crash of the node (ASan/UBSan/SYNOD_CHECK in the node's thread
// abort the process too); every request gets exactly one answer, with its
// request_id, within 10 s; the answer parses and the client library maps it
// (result_from_response, decode_kv_result); after modes 1 and 2 the node still
// answers a status request (reconnecting if it closed the client's connection).
//
// Slower than the other fuzzers (a write is a synced RocksDB write and a kv
// apply) and its build needs the whole server: not in the `fuzzers` target the
// CI smoke run builds; build it by name (cmake --build --preset fuzz --target
// server_fuzz). Its regression test runs in every preset.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <thread>

#include "client/kv_ops.h"
#include "fuzz/fuzz.h"
#include "fuzz/quiet_protobuf.h"
#include "fuzz/temp_dir.h"
#include "net/frame.h"
#include "proto/kv.pb.h"
#include "server/config.h"
#include "server/node.h"

namespace synod::fuzz {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kAnswerDeadline = std::chrono::seconds(10);

// A blocking TCP connection speaking Synod frames, as a client.
class Conn {
 public:
  Conn(std::uint16_t port, std::uint64_t cluster, bool hello)
      : cluster_(cluster), decoder_(cluster, net::kDefaultMaxFrameBytes) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    FUZZ_CHECK(fd_ >= 0, "socket() failed");
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    // libFuzzer's timeout alarm (SIGALRM, no SA_RESTART) interrupts blocking
    // calls: an interrupted connect goes on in the background. And thousands
    // of short connections a second can use up the loopback's ephemeral
    // ports (TIME_WAIT): that is the harness's limit, not the node's, so wait
    // for ports instead of failing.
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      int err = errno;
      if (err == EINTR || err == EINPROGRESS || err == EALREADY) {
        pollfd p{fd_, POLLOUT, 0};
        while (::poll(&p, 1, 1000) < 0 && errno == EINTR) {
        }
        socklen_t len = sizeof(err);
        ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0) break;
      }
      if (err == EISCONN) break;
      FUZZ_CHECK(err == EADDRNOTAVAIL && Clock::now() < deadline,
                 "cannot connect to the node on port %u: %s", port, std::strerror(err));
      ::close(fd_);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
      FUZZ_CHECK(fd_ >= 0, "socket() failed");
    }
    if (hello) {
      proto::Envelope e;
      e.mutable_hello()->set_node_id(0);
      send_bytes(net::encode_frame(cluster_, e));
    }
  }
  ~Conn() { ::close(fd_); }

  // Closes with a reset (no TIME_WAIT left behind) instead of a FIN.
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // False when the node closed the connection.
  bool send_bytes(const std::string& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }

  bool send_request(const proto::ClientRequest& r) {
    std::string frame;
    net::append_frame(&frame, cluster_, net::EnvelopeField::kRequest, r);
    return send_bytes(frame);
  }

  enum class Got { kResponse, kClosed, kTimeout };

  // The response to request `id` (other frames are a failure).
  Got await(std::uint64_t id, proto::ClientResponse* out) {
    const auto deadline = Clock::now() + kAnswerDeadline;
    for (;;) {
      proto::Envelope e;
      std::string error;
      const auto s = decoder_.next(&e, &error);
      FUZZ_CHECK(s != net::FrameDecoder::Status::kError, "the node sent a bad frame: %s",
                 error.c_str());
      if (s == net::FrameDecoder::Status::kFrame) {
        FUZZ_CHECK(e.has_response(), "the node sent a client something else than a response");
        FUZZ_CHECK(e.response().request_id() == id,
                   "an answer to request %llu while waiting for %llu (two answers to one?)",
                   static_cast<unsigned long long>(e.response().request_id()),
                   static_cast<unsigned long long>(id));
        *out = e.response();
        return Got::kResponse;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return Got::kTimeout;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[65536];
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Got::kClosed;
      decoder_.feed(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  std::uint64_t cluster_;
  net::FrameDecoder decoder_;
};

class NodeUnderTest {
 public:
  static NodeUnderTest& get() {
    static NodeUnderTest* n = new NodeUnderTest();  // stopped by atexit, never destroyed
    return *n;
  }

  // The client connection, reopened if the node closed it.
  Conn& client() {
    if (!client_) client_ = std::make_unique<Conn>(port_, cluster_, true);
    return *client_;
  }
  void drop_client() { client_.reset(); }
  std::uint16_t port() const { return port_; }
  std::uint64_t cluster() const { return cluster_; }
  std::uint64_t next_id() { return ++request_id_; }

  // Sends `r` (with a fresh id) and returns the node's answer; reconnects once
  // if the connection was closed before the request went out.
  proto::ClientResponse ask(proto::ClientRequest r) {
    r.set_request_id(next_id());
    if (!client().send_request(r)) {
      drop_client();
      FUZZ_CHECK(client().send_request(r), "cannot send to the node");
    }
    proto::ClientResponse out;
    const auto got = client().await(r.request_id(), &out);
    FUZZ_CHECK(got != Conn::Got::kTimeout, "request %llu got no answer within 10 s",
               static_cast<unsigned long long>(r.request_id()));
    FUZZ_CHECK(got == Conn::Got::kResponse, "the node closed the connection of a valid request");
    return out;
  }

  proto::ClientResponse status() {
    proto::ClientRequest r;
    r.mutable_status();
    return ask(r);
  }

 private:
  NodeUnderTest() {
    spdlog::set_level(spdlog::level::err);
    const std::string dir = make_scratch_dir("node");
    dir_ = dir;

    server::Config c;
    c.id = 1;
    c.data_dir = dir;
    c.listen = "127.0.0.1:0";
    c.peers = {{1, "127.0.0.1:0"}};
    c.backends = {"kv"};
    c.request_timeout_ms = 300;
    std::string error;
    FUZZ_CHECK(server::validate(&c, &error), "config: %s", error.c_str());
    cluster_ = c.cluster_id;
    node_ = std::make_unique<server::Node>(c);
    FUZZ_CHECK(node_->start(&error), "the node does not start: %s", error.c_str());
    port_ = node_->port();
    thread_ = std::thread([this] { node_->run(false); });
    std::atexit([] { get().shutdown(); });

    // Wait for the one-node cluster to elect its leader.
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (status().status().role() != "leader") {
      FUZZ_CHECK(Clock::now() < deadline, "the node did not become leader in 20 s");
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  void shutdown() {
    client_.reset();
    node_->stop();
    if (thread_.joinable()) thread_.join();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string dir_;
  std::uint64_t cluster_ = 0;
  std::unique_ptr<server::Node> node_;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::unique_ptr<Conn> client_;
  std::uint64_t request_id_ = 0;
};

client::KvOp kv_op_of(const std::string& payload) {
  proto::KvCommand c;
  if (!c.ParseFromString(payload)) return client::KvOp::kPut;
  switch (c.op()) {
    case proto::KvCommand::GET:
      return client::KvOp::kGet;
    case proto::KvCommand::PUT:
      return client::KvOp::kPut;
    case proto::KvCommand::DELETE:
      return client::KvOp::kDelete;
    case proto::KvCommand::CAS:
      return client::KvOp::kCas;
    case proto::KvCommand::INCREMENT:
      return client::KvOp::kIncrement;
    case proto::KvCommand::LIST:
    case proto::KvCommand::MGET:
    case proto::KvCommand::COUNT:
      return client::KvOp::kList;
    case proto::KvCommand::MPUT:
      return client::KvOp::kPut;
    case proto::KvCommand::MDELETE:
      return client::KvOp::kDelete;
    default:
      return client::KvOp::kGet;
  }
}

void request(NodeUnderTest& node, const std::uint8_t* data, std::size_t size) {
  proto::ClientRequest r;
  if (!r.ParseFromArray(data, static_cast<int>(size))) return;
  r.set_timeout_ms(r.timeout_ms() == 0 ? 0 : 1 + r.timeout_ms() % 300);
  const proto::ClientResponse answer = node.ask(r);
  FUZZ_CHECK(proto::ClientResponse::Code_IsValid(answer.code()), "unknown code %d",
             static_cast<int>(answer.code()));
  const client::Result res = client::result_from_response(answer, "127.0.0.1");
  if (r.has_status()) {
    FUZZ_CHECK(answer.code() == proto::ClientResponse::OK && answer.has_status(), "status");
    return;
  }
  if (!r.has_write() && !r.has_read()) {
    FUZZ_CHECK(answer.code() == proto::ClientResponse::BAD_REQUEST, "a request without an op");
    return;
  }
  const std::string& backend = r.has_write() ? r.write().backend() : r.read().backend();
  const std::string& payload = r.has_write() ? r.write().payload() : r.read().payload();
  if (backend != "kv") {
    FUZZ_CHECK(answer.code() == proto::ClientResponse::BAD_REQUEST, "unknown backend '%s' got %d",
               backend.c_str(), static_cast<int>(answer.code()));
    return;
  }
  const client::Result kv = client::decode_kv_result(kv_op_of(payload), res);
  if (answer.code() == proto::ClientResponse::OK && !answer.result().empty()) {
    FUZZ_CHECK(kv.code != client::Code::kProtocolError, "the client cannot read the kv result: %s",
               kv.message.c_str());
  }
}

void raw_envelope(NodeUnderTest& node, const std::uint8_t* data, std::size_t size) {
  // A frame whose payload is anything: the node answers it, ignores it or
  // closes the connection; it must go on serving either way.
  std::string frame;
  proto::Envelope probe;
  if (probe.ParseFromArray(data, static_cast<int>(size)) && probe.has_request()) return;  // mode 0
  frame = net::encode_frame(node.cluster(), proto::Envelope());
  frame.resize(net::kFrameHeaderBytes);
  const auto n = static_cast<std::uint32_t>(size);
  frame[16] = static_cast<char>(n >> 24);
  frame[17] = static_cast<char>(n >> 16);
  frame[18] = static_cast<char>(n >> 8);
  frame[19] = static_cast<char>(n);
  frame.append(reinterpret_cast<const char*>(data), size);
  if (!node.client().send_bytes(frame)) node.drop_client();
  proto::ClientRequest r;
  r.mutable_status();
  r.set_request_id(node.next_id());
  proto::ClientResponse out;
  if (node.client().send_request(r) &&
      node.client().await(r.request_id(), &out) == Conn::Got::kResponse) {
    return;
  }
  node.drop_client();
  FUZZ_CHECK(node.status().has_status(), "no status after a bad frame");
}

void stranger(NodeUnderTest& node, const std::uint8_t* data, std::size_t size) {
  {
    Conn c(node.port(), node.cluster(), false);
    c.send_bytes(std::string(reinterpret_cast<const char*>(data), size));
    // Mostly a reset, sometimes a clean close (which leaves a TIME_WAIT here).
    if (size == 0 || data[0] % 4 != 0) c.reset();
  }
  FUZZ_CHECK(node.status().has_status(), "no status after a stranger's bytes");
}

}  // namespace
}  // namespace synod::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace synod::fuzz;
  quiet_protobuf();
  if (size == 0) return 0;
  NodeUnderTest& node = NodeUnderTest::get();
  switch (data[0] % 3) {
    case 0:
      request(node, data + 1, size - 1);
      break;
    case 1:
      raw_envelope(node, data + 1, size - 1);
      break;
    default:
      stranger(node, data + 1, size - 1);
      break;
  }
  return 0;
}
