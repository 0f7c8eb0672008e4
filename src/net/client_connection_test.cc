#include "net/client_connection.h"

#include <gtest/gtest.h>

#include <asio.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "net/transport.h"

namespace synod::net {
namespace {

using asio::ip::tcp;
using namespace std::chrono_literals;

constexpr std::uint64_t kCluster = 7;

class ClientConnectionTest : public ::testing::Test {
 protected:
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

  std::unique_ptr<ClientConnection> make_client(std::uint64_t cluster = kCluster) {
    ClientConnectionOptions options;
    options.cluster_id = cluster;
    ClientConnectionHandlers h;
    h.on_response = [this](proto::ClientResponse&& r) { responses.push_back(std::move(r)); };
    h.on_closed = [this](std::string reason) { closed.push_back(std::move(reason)); };
    return std::make_unique<ClientConnection>(io, options, h);
  }

  asio::io_context io;
  std::vector<proto::ClientResponse> responses;
  std::vector<std::string> closed;
};

TEST_F(ClientConnectionTest, MalformedAddress) {
  auto client = make_client();
  std::string error;
  EXPECT_FALSE(client->connect("localhost", &error));
  EXPECT_NE(error.find("expected HOST:PORT"), std::string::npos) << error;
  EXPECT_FALSE(client->is_open());
  EXPECT_FALSE(client->send(proto::ClientRequest()));
}

TEST_F(ClientConnectionTest, ConnectRefused) {
  std::uint16_t port;
  {
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }
  auto client = make_client();
  std::string error;
  const std::string address = "127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(client->connect(address, &error)) << error;
  EXPECT_TRUE(client->is_open());
  EXPECT_TRUE(client->send(proto::ClientRequest()));  // queued while connecting
  ASSERT_TRUE(run_until([&] { return !closed.empty(); }));
  EXPECT_NE(closed[0].find("connect to " + address + " failed"), std::string::npos) << closed[0];
  EXPECT_FALSE(client->is_open());
  EXPECT_FALSE(client->send(proto::ClientRequest()));
  std::string again;
  EXPECT_FALSE(client->connect(address, &again));  // one connection per object
}

TEST_F(ClientConnectionTest, WrongClusterIsClosedByTheNode) {
  TransportOptions options;
  options.node_id = 1;
  options.cluster_id = kCluster;
  Transport server(io, options, {});
  std::string error;
  ASSERT_TRUE(server.start(&error)) << error;
  auto client = make_client(kCluster + 1);
  ASSERT_TRUE(client->connect("127.0.0.1:" + std::to_string(server.port()), &error));
  client->send(proto::ClientRequest());
  ASSERT_TRUE(run_until([&] { return !closed.empty(); }));
  EXPECT_NE(closed[0].find("closed the connection"), std::string::npos) << closed[0];
  EXPECT_EQ(server.counters().bad_frames, 1u);
}

TEST_F(ClientConnectionTest, GarbageFromTheServerClosesWithTheReason) {
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  tcp::socket accepted(io);
  acceptor.async_accept(accepted, [&](const asio::error_code& ec) {
    if (!ec) asio::write(accepted, asio::buffer(std::string("HTTP/1.1 400 Bad Request\r\n")));
  });
  auto client = make_client();
  std::string error;
  ASSERT_TRUE(
      client->connect("127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()), &error));
  ASSERT_TRUE(run_until([&] { return !closed.empty(); }));
  EXPECT_NE(closed[0].find("bad magic 0x48545450"), std::string::npos) << closed[0];
  EXPECT_TRUE(responses.empty());
}

TEST_F(ClientConnectionTest, CloseCallsNoHandlerAndHandlersMayDestroyTheConnection) {
  TransportOptions options;
  options.node_id = 1;
  options.cluster_id = kCluster;
  TransportHandlers server_handlers;
  Transport* server_ptr = nullptr;
  server_handlers.on_client_request = [&](ConnectionId id, proto::ClientRequest&& r) {
    proto::ClientResponse response;
    response.set_request_id(r.request_id());
    server_ptr->send_response(id, response);
    server_ptr->send_response(id, response);  // twice: the client dies after the first
  };
  Transport server(io, options, server_handlers);
  server_ptr = &server;
  std::string error;
  ASSERT_TRUE(server.start(&error)) << error;
  const std::string address = "127.0.0.1:" + std::to_string(server.port());

  // close(): no on_closed.
  auto first = make_client();
  ASSERT_TRUE(first->connect(address, &error));
  first->close();
  first->close();
  EXPECT_FALSE(first->is_open());

  // A response handler that destroys its own connection.
  std::unique_ptr<ClientConnection> second;
  int delivered = 0;
  ClientConnectionOptions client_options;
  client_options.cluster_id = kCluster;
  ClientConnectionHandlers h;
  h.on_response = [&](proto::ClientResponse&&) {
    ++delivered;
    second.reset();
  };
  h.on_closed = [&](std::string reason) { closed.push_back(reason); };
  second = std::make_unique<ClientConnection>(io, client_options, h);
  ASSERT_TRUE(second->connect(address, &error));
  proto::ClientRequest request;
  request.set_request_id(1);
  second->send(request);
  ASSERT_TRUE(run_until([&] { return second == nullptr; }));
  const auto deadline = std::chrono::steady_clock::now() + 100ms;
  while (std::chrono::steady_clock::now() < deadline) io.run_one_for(10ms);
  EXPECT_EQ(delivered, 1);
  EXPECT_TRUE(closed.empty());
}

}  // namespace
}  // namespace synod::net
