#include "net/transport.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <array>
#include <asio.hpp>
#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "net/client_connection.h"

namespace synod::net {
namespace {

using asio::ip::tcp;
using namespace std::chrono_literals;

constexpr std::uint64_t kCluster = 7;

proto::PeerMessage heartbeat(std::uint32_t from, std::uint32_t to, std::uint64_t round) {
  proto::PeerMessage m;
  m.set_from(from);
  m.set_to(to);
  m.mutable_heartbeat()->set_round(round);
  m.mutable_heartbeat()->mutable_ballot()->set_node(from);
  return m;
}

proto::PeerMessage big_accept(std::uint32_t from, std::uint32_t to, std::size_t bytes) {
  proto::PeerMessage m;
  m.set_from(from);
  m.set_to(to);
  m.mutable_accept()->set_slot(1);
  m.mutable_accept()->mutable_value()->add_commands(std::string(bytes, 'v'));
  return m;
}

std::string loopback(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// A port nobody listens on (right now).
std::uint16_t free_port() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

// A node's transport and what it received.
struct Node {
  Node(asio::io_context& io, std::uint32_t id, TransportOptions options = {}) {
    options.node_id = id;
    options.cluster_id = kCluster;
    options.logger = logger();
    TransportHandlers h;
    h.on_peer_message = [this](proto::PeerMessage&& m) { peer_messages.push_back(std::move(m)); };
    h.on_client_request = [this](ConnectionId c, proto::ClientRequest&& r) {
      requests.emplace_back(c, r);
      // Echo: the response carries the write's payload back.
      proto::ClientResponse response;
      response.set_request_id(r.request_id());
      response.set_result(r.write().payload() + std::string(response_padding, '.'));
      if (echo) transport->send_response(c, response);
    };
    h.on_client_disconnect = [this](ConnectionId c) { disconnected.push_back(c); };
    transport = std::make_unique<Transport>(io, std::move(options), std::move(h));
  }

  void start() {
    std::string error;
    ASSERT_TRUE(transport->start(&error)) << error;
  }
  std::string address() const { return loopback(transport->port()); }
  PeerLinkStatus link(std::uint32_t id) const {
    for (const auto& s : transport->peer_status()) {
      if (s.id == id) return s;
    }
    ADD_FAILURE() << "no link to peer " << id;
    return {};
  }

  // Log lines go to a string the test can search.
  std::shared_ptr<spdlog::logger> logger() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log_text);
    auto l = std::make_shared<spdlog::logger>("net-test", sink);
    l->set_level(spdlog::level::debug);
    l->flush_on(spdlog::level::debug);
    return l;
  }
  std::string log() const { return log_text.str(); }

  std::ostringstream log_text;
  std::unique_ptr<Transport> transport;
  std::vector<proto::PeerMessage> peer_messages;
  std::vector<std::pair<ConnectionId, proto::ClientRequest>> requests;
  std::vector<ConnectionId> disconnected;
  bool echo = true;
  std::size_t response_padding = 0;  // bytes the echo adds to the payload
};

// A raw TCP connection that writes whatever a test wants and notices when the
// other end closes it. Its read handler holds the shared state, so it is safe to
// destroy the connection with a read pending.
struct RawConnection {
  struct State {
    std::array<char, 4096> buffer{};
    std::string received;
    bool closed = false;
  };

  RawConnection(asio::io_context& io, std::uint16_t port, bool reading = true) : socket(io) {
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    if (reading) read(socket, state);
  }
  static void read(tcp::socket& s, std::shared_ptr<State> st) {
    s.async_read_some(asio::buffer(st->buffer),
                      [&s, st](const asio::error_code& ec, std::size_t n) {
                        if (ec) {
                          st->closed = true;
                          return;
                        }
                        st->received.append(st->buffer.data(), n);
                        read(s, st);
                      });
  }
  bool closed() const { return state->closed; }
  void write(const std::string& bytes) { asio::write(socket, asio::buffer(bytes)); }
  void hello(std::uint32_t id, std::uint64_t cluster = kCluster) {
    proto::Envelope e;
    e.mutable_hello()->set_node_id(id);
    write(encode_frame(cluster, e));
  }
  void peer(const proto::PeerMessage& m) {
    proto::Envelope e;
    *e.mutable_peer() = m;
    write(encode_frame(kCluster, e));
  }

  std::shared_ptr<State> state = std::make_shared<State>();
  tcp::socket socket;
};

class TransportTest : public ::testing::Test {
 protected:
  // Runs the io_context until pred() holds; false after the timeout.
  template <class Pred>
  bool run_until(Pred pred, std::chrono::milliseconds timeout = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      if (io.stopped()) io.restart();
      io.run_one_for(10ms);
    }
    return true;
  }
  void run_for(std::chrono::milliseconds d) {
    const auto deadline = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < deadline) {
      if (io.stopped()) io.restart();
      io.run_one_for(5ms);
    }
  }

  // A client that sends one write and waits for its echo.
  bool client_round_trip(std::uint16_t port, const std::string& payload) {
    std::vector<proto::ClientResponse> responses;
    std::string closed_reason;
    ClientConnectionOptions options;
    options.cluster_id = kCluster;
    ClientConnectionHandlers h;
    h.on_response = [&](proto::ClientResponse&& r) { responses.push_back(std::move(r)); };
    h.on_closed = [&](std::string reason) { closed_reason = std::move(reason); };
    ClientConnection client(io, options, h);
    std::string error;
    if (!client.connect(loopback(port), &error)) return false;
    proto::ClientRequest request;
    request.set_request_id(77);
    request.mutable_write()->set_payload(payload);
    client.send(request);
    run_until([&] { return !responses.empty() || !closed_reason.empty(); });
    return responses.size() == 1 && responses[0].request_id() == 77 &&
           responses[0].result() == payload;
  }

  asio::io_context io;
};

TEST_F(TransportTest, PeersExchangeMessagesBothWays) {
  Node a(io, 1), b(io, 2);
  a.start();
  b.start();
  std::string error;
  ASSERT_TRUE(a.transport->set_peer(2, b.address(), &error)) << error;
  ASSERT_TRUE(b.transport->set_peer(1, a.address(), &error)) << error;
  for (std::uint64_t r = 1; r <= 3; ++r) a.transport->send_peer(2, heartbeat(1, 2, r));
  for (std::uint64_t r = 1; r <= 2; ++r) b.transport->send_peer(1, heartbeat(2, 1, r));
  ASSERT_TRUE(
      run_until([&] { return b.peer_messages.size() == 3 && a.peer_messages.size() == 2; }));
  for (std::uint64_t r = 1; r <= 3; ++r) {
    EXPECT_EQ(b.peer_messages[r - 1].from(), 1u);
    EXPECT_EQ(b.peer_messages[r - 1].heartbeat().round(), r);  // in order
  }
  EXPECT_EQ(a.peer_messages[1].heartbeat().round(), 2u);

  const PeerLinkStatus link = a.link(2);
  EXPECT_TRUE(link.connected);
  EXPECT_TRUE(link.inbound_connected);
  EXPECT_EQ(link.address, b.address());
  EXPECT_EQ(link.dropped, 0u);
  EXPECT_EQ(a.transport->counters().peer_connects, 1u);
  EXPECT_EQ(b.transport->counters().frames_in, 4u);  // Hello + 3
  // Messages sent while the link was connecting were queued, not dropped.
  EXPECT_EQ(a.transport->counters().peer_messages_dropped, 0u);
}

TEST_F(TransportTest, WritesAreBatchedPerTurn) {
  Node a(io, 1), b(io, 2);
  a.start();
  b.start();
  std::string error;
  ASSERT_TRUE(a.transport->set_peer(2, b.address(), &error));
  ASSERT_TRUE(b.transport->set_peer(1, a.address(), &error));
  a.transport->send_peer(2, heartbeat(1, 2, 0));
  ASSERT_TRUE(run_until([&] { return b.peer_messages.size() == 1; }));
  ASSERT_TRUE(run_until([&] { return a.link(2).queued_bytes == 0; }));
  // 100 messages in one turn: one write, delivered in order.
  const std::uint64_t writes_before = a.transport->counters().writes;
  for (std::uint64_t r = 1; r <= 100; ++r) a.transport->send_peer(2, heartbeat(1, 2, r));
  EXPECT_GT(a.link(2).queued_bytes, 0u);
  ASSERT_TRUE(run_until([&] { return b.peer_messages.size() == 101; }));
  EXPECT_EQ(a.transport->counters().writes, writes_before + 1);
  for (std::uint64_t r = 0; r <= 100; ++r) EXPECT_EQ(b.peer_messages[r].heartbeat().round(), r);
  EXPECT_EQ(a.link(2).queued_bytes, 0u);
}

TEST_F(TransportTest, PeerThatIsDownAtFirstGetsMessagesOnceItComesUp) {
  const std::uint16_t port_b = free_port();
  TransportOptions options;
  options.reconnect_max = 200ms;  // keeps the test quick
  Node a(io, 1, options);
  a.start();
  std::string error;
  ASSERT_TRUE(a.transport->set_peer(2, loopback(port_b), &error));
  // B is down: the first message queues while connecting, then the connect is
  // refused; what is sent while backing off is dropped and counted.
  for (int i = 0; i < 20; ++i) {
    a.transport->send_peer(2, heartbeat(1, 2, 0));
    run_for(10ms);
  }
  EXPECT_FALSE(a.link(2).connected);
  EXPECT_GT(a.link(2).dropped, 0u);
  EXPECT_NE(a.log().find("cannot reach peer 2"), std::string::npos) << a.log();

  // B comes up on that port; A keeps sending, as the consensus core would.
  TransportOptions b_options;
  b_options.listen = loopback(port_b);
  Node b(io, 2, b_options);
  b.start();
  ASSERT_TRUE(b.transport->set_peer(1, a.address(), &error));
  std::uint64_t round = 1;
  ASSERT_TRUE(run_until([&] {
    a.transport->send_peer(2, heartbeat(1, 2, round++));
    run_for(10ms);
    return !b.peer_messages.empty();
  }));
  EXPECT_TRUE(a.link(2).connected);

  // B restarts: A notices, reconnects, and delivers again.
  b.transport.reset();
  Node b2(io, 2, b_options);
  b2.start();
  ASSERT_TRUE(b2.transport->set_peer(1, a.address(), &error));
  ASSERT_TRUE(run_until([&] {
    a.transport->send_peer(2, heartbeat(1, 2, round++));
    run_for(10ms);
    return !b2.peer_messages.empty();
  }));
  EXPECT_GE(a.transport->counters().peer_connects, 2u);
}

TEST_F(TransportTest, ClientRequestGetsResponse) {
  Node server(io, 1);
  server.start();
  std::vector<proto::ClientResponse> responses;
  bool connected = false;
  ClientConnectionOptions options;
  options.cluster_id = kCluster;
  ClientConnectionHandlers h;
  h.on_connected = [&] { connected = true; };
  h.on_response = [&](proto::ClientResponse&& r) { responses.push_back(std::move(r)); };
  h.on_closed = [&](std::string reason) { ADD_FAILURE() << "closed: " << reason; };
  ClientConnection client(io, options, h);
  std::string error;
  ASSERT_TRUE(client.connect(server.address(), &error)) << error;
  for (std::uint64_t id = 1; id <= 2; ++id) {  // sent before the connection is up
    proto::ClientRequest request;
    request.set_request_id(id);
    request.mutable_write()->set_payload("payload " + std::to_string(id));
    ASSERT_TRUE(client.send(request));
  }
  ASSERT_TRUE(run_until([&] { return responses.size() == 2; }));
  EXPECT_TRUE(connected);
  EXPECT_EQ(responses[0].request_id(), 1u);
  EXPECT_EQ(responses[1].result(), "payload 2");
  ASSERT_EQ(server.requests.size(), 2u);
  const ConnectionId id = server.requests[0].first;
  EXPECT_EQ(server.transport->counters().client_connections, 1u);

  // The client goes away: the server hears of it, and responses to it go nowhere.
  client.close();
  EXPECT_FALSE(client.is_open());
  ASSERT_TRUE(run_until([&] { return server.disconnected.size() == 1; }));
  EXPECT_EQ(server.disconnected[0], id);
  server.transport->send_response(id, proto::ClientResponse());     // no-op
  server.transport->send_response(12345, proto::ClientResponse());  // never existed
}

TEST_F(TransportTest, ClientByHostName) {
  Node server(io, 1);
  server.start();
  // "localhost" goes through the asynchronous resolver; it may resolve to ::1
  // first, where nothing listens, and asio then tries the next address.
  std::vector<proto::ClientResponse> responses;
  std::string closed;
  ClientConnectionOptions options;
  options.cluster_id = kCluster;
  ClientConnectionHandlers h;
  h.on_response = [&](proto::ClientResponse&& r) { responses.push_back(std::move(r)); };
  h.on_closed = [&](std::string reason) { closed = reason; };
  ClientConnection client(io, options, h);
  std::string error;
  ASSERT_TRUE(client.connect("localhost:" + std::to_string(server.transport->port()), &error));
  proto::ClientRequest request;
  request.set_request_id(5);
  client.send(request);
  ASSERT_TRUE(run_until([&] { return !responses.empty() || !closed.empty(); }));
  EXPECT_TRUE(closed.empty()) << closed;
}

// Each bad connection is closed; a client on the same server keeps working.
class BadConnectionTest : public TransportTest {
 protected:
  void expect_closed(const std::string& bytes, const std::string& log_text) {
    Node server(io, 1);
    server.start();
    std::string error;
    ASSERT_TRUE(server.transport->set_peer(2, "127.0.0.1:1", &error));
    ASSERT_TRUE(client_round_trip(server.transport->port(), "before"));
    RawConnection raw(io, server.transport->port());
    raw.write(bytes);
    ASSERT_TRUE(run_until([&] { return raw.closed(); })) << "connection was not closed";
    EXPECT_NE(server.log().find(log_text), std::string::npos) << server.log();
    EXPECT_TRUE(client_round_trip(server.transport->port(), "after"));
    EXPECT_TRUE(server.peer_messages.empty());
    counters = server.transport->counters();
  }
  TransportCounters counters;
};

TEST_F(BadConnectionTest, HttpRequest) {
  expect_closed("GET / HTTP/1.1\r\n\r\n", "bad magic 0x47455420");
  EXPECT_EQ(counters.bad_frames, 1u);
  EXPECT_EQ(counters.rejected_connections, 1u);
}

TEST_F(BadConnectionTest, OversizedFrameHeader) {
  std::string header = "SYND";
  header += std::string("\x01\x00\x00\x00", 4);
  header += std::string("\0\0\0\0\0\0\0\x07", 8);  // cluster 7
  header += std::string("\x7f\xff\xff\xff", 4);    // 2 GiB - 1
  expect_closed(header, "frame of 2147483647 bytes exceeds the maximum 67108864");
  EXPECT_EQ(counters.bad_frames, 1u);
}

TEST_F(BadConnectionTest, OtherCluster) {
  proto::Envelope e;
  e.mutable_hello()->set_node_id(0);
  expect_closed(encode_frame(8, e), "frame for cluster 8, this is cluster 7");
}

TEST_F(BadConnectionTest, UnknownPeerId) {
  proto::Envelope e;
  e.mutable_hello()->set_node_id(9);
  expect_closed(encode_frame(kCluster, e), "unknown peer id 9 from 127.0.0.1:");
  EXPECT_EQ(counters.rejected_connections, 1u);
  EXPECT_EQ(counters.bad_frames, 0u);
}

TEST_F(BadConnectionTest, OwnNodeIdInHello) {
  proto::Envelope e;
  e.mutable_hello()->set_node_id(1);
  expect_closed(encode_frame(kCluster, e), "(that is this node's own id)");
}

TEST_F(BadConnectionTest, RequestBeforeHello) {
  proto::Envelope e;
  e.mutable_request()->set_request_id(1);
  expect_closed(encode_frame(kCluster, e), "expected a Hello first, got a ClientRequest");
}

TEST_F(BadConnectionTest, PeerMessageFromAClient) {
  proto::Envelope hello;
  hello.mutable_hello()->set_node_id(0);
  proto::Envelope peer;
  *peer.mutable_peer() = heartbeat(2, 1, 1);
  expect_closed(encode_frame(kCluster, hello) + encode_frame(kCluster, peer),
                "unexpected PeerMessage from a client");
}

TEST_F(BadConnectionTest, RequestFromAPeer) {
  proto::Envelope hello;
  hello.mutable_hello()->set_node_id(2);
  proto::Envelope request;
  request.mutable_request()->set_request_id(1);
  expect_closed(encode_frame(kCluster, hello) + encode_frame(kCluster, request),
                "unexpected ClientRequest from a peer");
}

TEST_F(TransportTest, SilentConnectionIsClosedAfterHelloTimeout) {
  TransportOptions options;
  options.hello_timeout = 200ms;
  Node server(io, 1, options);
  server.start();
  RawConnection raw(io, server.transport->port());
  ASSERT_TRUE(run_until([&] { return raw.closed(); }, 3s));
  EXPECT_NE(server.log().find("no Hello within 200 ms"), std::string::npos) << server.log();
  EXPECT_EQ(server.transport->counters().rejected_connections, 1u);
}

TEST_F(TransportTest, PeerMessageWithWrongSenderIsDropped) {
  Node server(io, 1);
  server.start();
  std::string error;
  ASSERT_TRUE(server.transport->set_peer(2, "127.0.0.1:1", &error));
  ASSERT_TRUE(server.transport->set_peer(3, "127.0.0.1:1", &error));
  RawConnection raw(io, server.transport->port());
  raw.hello(2);
  raw.peer(heartbeat(3, 1, 1));  // claims to be from 3 on 2's connection
  raw.peer(heartbeat(2, 4, 2));  // not addressed to this node
  raw.peer(heartbeat(2, 1, 3));  // good
  ASSERT_TRUE(run_until([&] { return server.peer_messages.size() == 1; }));
  EXPECT_EQ(server.peer_messages[0].heartbeat().round(), 3u);
  EXPECT_EQ(server.transport->counters().peer_messages_refused, 2u);
  EXPECT_FALSE(raw.closed());  // dropped, not disconnected
  EXPECT_TRUE(server.link(2).inbound_connected);
}

TEST_F(TransportTest, ReconnectingPeerReplacesItsOldConnection) {
  Node server(io, 1);
  server.start();
  std::string error;
  ASSERT_TRUE(server.transport->set_peer(2, "127.0.0.1:1", &error));
  RawConnection first(io, server.transport->port());
  first.hello(2);
  first.peer(heartbeat(2, 1, 1));
  ASSERT_TRUE(run_until([&] { return server.peer_messages.size() == 1; }));
  RawConnection second(io, server.transport->port());
  second.hello(2);
  second.peer(heartbeat(2, 1, 2));
  ASSERT_TRUE(run_until([&] { return server.peer_messages.size() == 2 && first.closed(); }));
  EXPECT_FALSE(second.closed());
  EXPECT_TRUE(server.link(2).inbound_connected);
}

TEST_F(TransportTest, SendQueueBoundDropsRatherThanGrows) {
  // A "peer" that accepts and never reads: the kernel buffers fill, then the
  // transport's queue, then messages are dropped.
  tcp::acceptor sink(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket sunk(io);
  sink.async_accept(sunk, [](const asio::error_code&) {});
  constexpr std::size_t kBound = 256 * 1024;
  constexpr std::size_t kMessage = 32 * 1024;
  TransportOptions options;
  options.max_peer_queue_bytes = kBound;
  Node a(io, 1, options);
  a.start();
  std::string error;
  ASSERT_TRUE(a.transport->set_peer(2, loopback(sink.local_endpoint().port()), &error));
  const auto message = big_accept(1, 2, kMessage);
  std::size_t max_queued = 0;
  // 2000 x 32 KiB = 64 MiB, far more than loopback socket buffers hold.
  for (int i = 0; i < 2000; ++i) {
    a.transport->send_peer(2, message);
    max_queued = std::max(max_queued, a.link(2).queued_bytes);
    if (i % 8 == 0) io.poll();
  }
  run_for(50ms);
  const PeerLinkStatus link = a.link(2);
  EXPECT_TRUE(link.connected);  // the link stays up; only messages are dropped
  EXPECT_GT(link.dropped, 0u);
  EXPECT_LE(max_queued, kBound);
  EXPECT_EQ(a.transport->counters().peer_messages_dropped, link.dropped);
  EXPECT_NE(a.log().find("its send queue is full"), std::string::npos) << a.log();
}

TEST_F(TransportTest, StalledLinkIsClosedAndReopened) {
  tcp::acceptor sink(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::vector<std::unique_ptr<tcp::socket>> sunk;
  std::function<void()> accept = [&] {
    sunk.push_back(std::make_unique<tcp::socket>(io));
    sink.async_accept(*sunk.back(), [&](const asio::error_code& ec) {
      if (!ec) accept();
    });
  };
  accept();
  TransportOptions options;
  options.write_stall_timeout = 300ms;
  Node a(io, 1, options);
  a.start();
  std::string error;
  ASSERT_TRUE(a.transport->set_peer(2, loopback(sink.local_endpoint().port()), &error));
  const auto message = big_accept(1, 2, 64 * 1024);
  ASSERT_TRUE(run_until(
      [&] {
        a.transport->send_peer(2, message);
        io.poll();
        return a.transport->counters().peer_connects >= 2;
      },
      10s));
  EXPECT_NE(a.log().find("no write progress"), std::string::npos) << a.log();
}

TEST_F(TransportTest, OversizedOutgoingMessageIsDroppedNotSent) {
  TransportOptions options;
  options.max_frame_bytes = 1024;
  Node a(io, 1, options), b(io, 2, options);
  a.start();
  b.start();
  std::string error;
  ASSERT_TRUE(a.transport->set_peer(2, b.address(), &error));
  ASSERT_TRUE(b.transport->set_peer(1, a.address(), &error));
  a.transport->send_peer(2, big_accept(1, 2, 2000));
  a.transport->send_peer(2, heartbeat(1, 2, 1));
  ASSERT_TRUE(run_until([&] { return b.peer_messages.size() == 1; }));
  EXPECT_EQ(b.peer_messages[0].heartbeat().round(), 1u);
  EXPECT_EQ(a.link(2).dropped, 1u);
  EXPECT_EQ(b.transport->counters().bad_frames, 0u);
}

TEST_F(TransportTest, OversizedResponseBecomesAnError) {
  TransportOptions options;
  options.max_frame_bytes = 1024;
  Node server(io, 1, options);
  server.response_padding = 100;
  server.start();
  std::vector<proto::ClientResponse> responses;
  ClientConnectionOptions client_options;
  client_options.cluster_id = kCluster;
  client_options.max_frame_bytes = 1024;
  ClientConnectionHandlers h;
  h.on_response = [&](proto::ClientResponse&& r) { responses.push_back(std::move(r)); };
  ClientConnection client(io, client_options, h);
  std::string error;
  ASSERT_TRUE(client.connect(server.address(), &error));
  proto::ClientRequest request;
  request.set_request_id(3);
  request.mutable_write()->set_payload(std::string(800, 'x'));  // echoed: 900 bytes + overhead
  ASSERT_TRUE(client.send(request));
  ASSERT_TRUE(run_until([&] { return !responses.empty(); }));
  EXPECT_EQ(responses[0].request_id(), 3u);
  EXPECT_EQ(responses[0].code(), proto::ClientResponse::OK);
  // Now one whose response is over the limit (the request is not).
  request.set_request_id(4);
  request.mutable_write()->set_payload(std::string(1000, 'x'));
  ASSERT_TRUE(client.send(request));
  ASSERT_TRUE(run_until([&] { return responses.size() == 2; }));
  EXPECT_EQ(responses[1].request_id(), 4u);
  EXPECT_EQ(responses[1].code(), proto::ClientResponse::BACKEND_ERROR);
  EXPECT_NE(responses[1].error().find("exceeds the frame limit"), std::string::npos);
}

TEST_F(TransportTest, ClientThatStopsReadingIsDisconnected) {
  TransportOptions options;
  options.max_client_queue_bytes = 256 * 1024;
  Node server(io, 1, options);
  server.start();
  RawConnection raw(io, server.transport->port(), /*reading=*/false);
  raw.hello(0);
  ASSERT_TRUE(run_until([&] { return server.transport->counters().client_connections == 1; }));
  const ConnectionId id = 1;
  proto::ClientResponse big;
  big.set_result(std::string(64 * 1024, 'r'));
  for (int i = 0; i < 2000 && server.disconnected.empty(); ++i) {
    server.transport->send_response(id, big);
    io.poll();
  }
  ASSERT_TRUE(run_until([&] { return server.disconnected.size() == 1; }));
  EXPECT_NE(server.log().find("is not reading its responses"), std::string::npos);
}

TEST_F(TransportTest, SendToUnknownPeerIsDropped) {
  Node a(io, 1);
  a.start();
  a.transport->send_peer(5, heartbeat(1, 5, 1));
  a.transport->send_peer(5, heartbeat(1, 5, 2));
  EXPECT_EQ(a.transport->counters().peer_messages_dropped, 2u);
  EXPECT_NE(a.log().find("unknown peer 5"), std::string::npos);
}

TEST_F(TransportTest, SendToSelfIsABug) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Node a(io, 1);
  a.start();
  EXPECT_DEATH(a.transport->send_peer(1, heartbeat(1, 1, 1)), "loop its own messages back");
}

TEST_F(TransportTest, StartErrors) {
  Node a(io, 1);
  a.start();
  {
    TransportOptions options;
    options.listen = a.address();
    Node b(io, 2, options);
    std::string error;
    EXPECT_FALSE(b.transport->start(&error));
    EXPECT_NE(error.find("cannot listen on " + a.address()), std::string::npos) << error;
    EXPECT_NE(error.find("in use"), std::string::npos) << error;
  }
  {
    TransportOptions options;
    options.listen = "nonsense";
    Node b(io, 2, options);
    std::string error;
    EXPECT_FALSE(b.transport->start(&error));
    EXPECT_NE(error.find("expected HOST:PORT"), std::string::npos) << error;
  }
  {
    TransportOptions options;
    options.peers[3] = "host:99999";
    Node b(io, 2, options);
    std::string error;
    EXPECT_FALSE(b.transport->start(&error));
    EXPECT_NE(error.find("peer 3"), std::string::npos) << error;
  }
  {
    Node b(io, 0);
    std::string error;
    EXPECT_FALSE(b.transport->start(&error));
    EXPECT_NE(error.find("node id must be nonzero"), std::string::npos) << error;
  }
  {
    TransportOptions options;
    options.listen = "no-such-host.invalid:0";
    Node b(io, 2, options);
    std::string error;
    EXPECT_FALSE(b.transport->start(&error));
    EXPECT_NE(error.find("cannot resolve"), std::string::npos) << error;
  }
}

TEST_F(TransportTest, PeersFromOptionsIncludingSelf) {
  Node b(io, 2);
  b.start();
  TransportOptions options;
  options.peers = {{1, "127.0.0.1:1"}, {2, b.address()}};  // the whole cluster, self included
  Node a(io, 1, options);
  a.start();
  std::string error;
  ASSERT_TRUE(b.transport->set_peer(1, a.address(), &error));
  ASSERT_EQ(a.transport->peer_status().size(), 1u);
  a.transport->send_peer(2, heartbeat(1, 2, 1));
  ASSERT_TRUE(run_until([&] { return b.peer_messages.size() == 1; }));
}

TEST_F(TransportTest, RemovedPeerIsRefused) {
  Node a(io, 1), b(io, 2);
  a.start();
  b.start();
  std::string error;
  ASSERT_TRUE(a.transport->set_peer(2, b.address(), &error));
  ASSERT_TRUE(b.transport->set_peer(1, a.address(), &error));
  a.transport->send_peer(2, heartbeat(1, 2, 1));
  ASSERT_TRUE(run_until([&] { return b.peer_messages.size() == 1; }));
  b.transport->remove_peer(1);
  EXPECT_TRUE(b.transport->peer_status().empty());
  // A reconnects and is refused as unknown, again and again, with backoff.
  ASSERT_TRUE(run_until([&] {
    a.transport->send_peer(2, heartbeat(1, 2, 2));
    run_for(10ms);
    return a.transport->counters().peer_connects >= 4;
  }));
  EXPECT_EQ(b.peer_messages.size(), 1u);
  EXPECT_NE(b.log().find("unknown peer id 1"), std::string::npos) << b.log();
  const std::string log = a.log();
  const auto first = log.find("dropped right after connecting");
  ASSERT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find("dropped right after connecting", first + 1), std::string::npos) << log;
}

TEST_F(TransportTest, StopClosesEverythingAndCallsNothing) {
  Node a(io, 1), b(io, 2);
  a.start();
  b.start();
  std::string error;
  ASSERT_TRUE(a.transport->set_peer(2, b.address(), &error));
  ASSERT_TRUE(b.transport->set_peer(1, a.address(), &error));
  RawConnection client(io, b.transport->port());
  client.hello(0);
  a.transport->send_peer(2, heartbeat(1, 2, 1));
  ASSERT_TRUE(run_until([&] { return b.peer_messages.size() == 1; }));
  a.transport->send_peer(2, heartbeat(1, 2, 2));  // still queued when b stops
  b.transport->stop();
  b.transport->stop();  // idempotent
  ASSERT_TRUE(run_until([&] { return client.closed(); }));
  run_for(100ms);
  EXPECT_EQ(b.peer_messages.size(), 1u);
  EXPECT_TRUE(b.disconnected.empty());
  EXPECT_FALSE(a.link(2).connected);
  b.transport->send_peer(1, heartbeat(2, 1, 1));  // dropped, no crash
  // Destroying a transport with handlers still queued is safe.
  a.transport->send_peer(2, heartbeat(1, 2, 3));
  a.transport.reset();
  run_for(50ms);
}

TEST_F(TransportTest, CallbackMayStopTheTransport) {
  Node a(io, 1), b(io, 2);
  a.start();
  b.start();
  std::string error;
  ASSERT_TRUE(a.transport->set_peer(2, b.address(), &error));
  int delivered = 0;
  TransportHandlers h;
  // Rebuild b with a handler that destroys its own transport on the first message.
  TransportOptions options;
  options.node_id = 3;
  options.cluster_id = kCluster;
  options.logger = b.logger();
  std::unique_ptr<Transport> c;
  h.on_peer_message = [&](proto::PeerMessage&&) {
    ++delivered;
    c.reset();
  };
  c = std::make_unique<Transport>(io, options, h);
  ASSERT_TRUE(c->start(&error)) << error;
  ASSERT_TRUE(c->set_peer(1, a.address(), &error));
  ASSERT_TRUE(a.transport->set_peer(3, loopback(c->port()), &error));
  for (int r = 0; r < 10; ++r) a.transport->send_peer(3, heartbeat(1, 3, r));
  ASSERT_TRUE(run_until([&] { return c == nullptr; }));
  run_for(50ms);
  EXPECT_EQ(delivered, 1);
}

}  // namespace
}  // namespace synod::net
