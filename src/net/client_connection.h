// One client connection to a Synod node, for the client library: connects,
// says Hello{0}, sends ClientRequests, delivers ClientResponses.
//
// It does not retry, reconnect or match responses to requests: the client
// library above it does (it knows which node to try next and which requests are
// safe to resend). Once closed, a ClientConnection stays closed; make a new one.
//
// Threading: runs on the caller's asio::io_context; call every function on that
// io_context's thread. Handlers are called on it too, never from inside a call
// into this class. A handler may destroy the ClientConnection.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "net/frame.h"
#include "proto/synod.pb.h"

namespace asio {
class io_context;
}  // namespace asio

namespace synod::net {

struct ClientConnectionOptions {
  std::uint64_t cluster_id = 0;  // must match the node's, or the node closes the connection
  std::size_t max_frame_bytes = kDefaultMaxFrameBytes;  // bound on a response's size
  // Bound on requests queued but not yet written (while connecting, or when the
  // node reads slowly); send() refuses beyond it.
  std::size_t max_queue_bytes = std::size_t{64} << 20;
  // A connect that has not completed in this time fails (on_closed).
  std::chrono::milliseconds connect_timeout{5000};
};

struct ClientConnectionHandlers {
  // Optional: the TCP connection is up (Hello and the requests queued so far are going out).
  std::function<void()> on_connected;
  std::function<void(proto::ClientResponse&&)> on_response;
  // The connection failed or ended, with a reason for logs and errors ("connect
  // to 127.0.0.1:7000 failed: Connection refused", "closed by the node", "frame
  // for cluster 7, this is cluster 8"). Called at most once; not called after
  // close() or destruction.
  std::function<void(std::string reason)> on_closed;
};

class ClientConnection {
 public:
  ClientConnection(asio::io_context& io, ClientConnectionOptions options,
                   ClientConnectionHandlers handlers);
  ~ClientConnection();  // close()
  ClientConnection(const ClientConnection&) = delete;
  ClientConnection& operator=(const ClientConnection&) = delete;

  // Starts connecting to "HOST:PORT" (a name is resolved asynchronously). False
  // with *error (if not null) when the address is malformed or connect() was
  // called before; every later failure arrives through on_closed.
  bool connect(const std::string& address, std::string* error);

  // Queues a request; requests sent before the connection is up go out once it
  // is. False (nothing queued) when the connection is closed, the request
  // exceeds max_frame_bytes, or the queue already holds max_queue_bytes.
  bool send(const proto::ClientRequest& request);

  // Closes the connection now; queued requests are discarded. Idempotent.
  void close();

  bool is_open() const;       // connecting or connected, not closed
  bool is_connected() const;  // the TCP connection is up
  const std::string& address() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace synod::net
