// RedisServer: the RESP2 front end of a node (synod --redis-listen HOST:PORT).
// It accepts Redis clients on the node's event loop, parses their commands
// (resp.h), turns each into a kv request (commands.h) and hands it to the node
// through `Submit`, which runs it exactly like a native request: a write goes
// through the log (durable on a majority before the reply; a follower
// forwards it to the leader), a read follows the node's read consistency.
//
// Pipelining: every command that arrived in one read is submitted in the same
// event-loop turn, so the node proposes them together (one slot, one sync).
// Replies go out in request order, whatever order the requests complete in.
// Each connection sees its own requests in order: a read waits for the
// connection's earlier writes, a write for its earlier reads (runs of one kind
// go together, so pipelined writes still share a slot).
// Back-pressure: a connection with max_pending replies outstanding is not read
// from until some are sent. A protocol error is answered and the connection
// closed (as Redis does); nothing else is affected.
#pragma once

#include <asio.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "proto/synod.pb.h"
#include "resp/resp.h"

namespace synod::resp {

struct ServerOptions {
  std::string listen;                // HOST:PORT
  std::size_t max_connections = 10000;
  std::size_t max_pending = 4096;   // replies outstanding per connection
  Limits limits;
};

class RedisServer {
 public:
  using Done = std::function<void(proto::ClientResponse&&)>;
  // write: true for a write. Must call done exactly once (possibly at once).
  using Submit = std::function<void(bool write, std::string payload, Done done)>;

  RedisServer(asio::io_context& io, ServerOptions options, Submit submit);
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Binds and starts accepting. False with *error (e.g. the port is taken).
  bool start(std::string* error);
  // Closes the listener and every connection. Callbacks still due find their
  // connection gone and do nothing.
  void stop();
  std::uint16_t port() const;


 private:
  class Session;
  void accept();

  asio::io_context& io_;
  ServerOptions options_;
  Submit submit_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  std::uint64_t next_id_ = 1;
  std::unordered_map<std::uint64_t, std::shared_ptr<Session>> sessions_;
  bool stopped_ = false;
};

}  // namespace synod::resp
