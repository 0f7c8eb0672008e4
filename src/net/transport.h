// The TCP transport of a Synod node: peer links and client connections, framed
// protobuf (frame.h) over asio.
//
// Threading: everything runs on the one asio::io_context the caller passes in
// (the server runs the consensus core, storage and the transport on a single
// thread). Every public function must be called on that io_context's thread, and
// every handler is called on it. Nothing here is thread-safe.
//
// Connections. A node listens on one address. Every accepted connection must
// send a Hello first: node_id 0 makes it a client connection, the id of a
// configured peer makes it an inbound peer connection, anything else is refused
// (logged, closed). A framing error or an unexpected frame closes that one
// connection; the node keeps serving everyone else.
//
// Peer links are one-way. This node sends its PeerMessages to peer P over one
// OUTBOUND connection it opens itself (lazily, at the first send_peer(P)), and
// receives P's messages on the connection P opened to it. So each pair of nodes
// holds two TCP connections, and neither side has to decide which of two
// simultaneous connects wins. An outbound link reconnects by itself with
// exponential backoff (reconnect_initial doubling to reconnect_max) for as long
// as the transport runs.
//
// Messages are not queued without bound: a message to a peer whose link is down
// (waiting to reconnect), or whose send queue already holds max_peer_queue_bytes,
// is dropped and counted. The consensus core retransmits what matters, and a
// node that fell behind catches up, so dropping is always safe; queueing for a
// dead peer would only grow memory. While a link is connecting, messages are
// queued (bounded) so the first message to a peer is not lost to the handshake.
//
// Writes are batched: frames queued during one io_context turn are written with
// one write (a per-connection buffer accumulates; a posted flush writes it all).
//
// Messages from this node to itself never go through the transport: the server
// loops them back (send_peer to the own id is a bug and is checked).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "net/frame.h"
#include "proto/synod.pb.h"

namespace asio {
class io_context;
}  // namespace asio

namespace spdlog {
class logger;
}  // namespace spdlog

namespace synod::net {

// Identifies one accepted client connection for as long as the transport lives;
// never reused (a reply to a connection that closed goes nowhere, not to a
// newer connection).
using ConnectionId = std::uint64_t;

struct TransportOptions {
  std::uint32_t node_id = 0;     // this node; must be nonzero (0 means "a client")
  std::uint64_t cluster_id = 0;  // every frame carries it; frames of other clusters are refused
  std::string listen = "127.0.0.1:0";          // "HOST:PORT"; port 0 lets the OS pick (see port())
  std::map<std::uint32_t, std::string> peers;  // id -> "HOST:PORT"; an entry for node_id is ignored
  std::size_t max_frame_bytes = kDefaultMaxFrameBytes;         // payload bound, both directions
  std::size_t max_peer_queue_bytes = std::size_t{16} << 20;    // per outbound link
  std::size_t max_client_queue_bytes = std::size_t{64} << 20;  // beyond it the client is closed
  std::chrono::milliseconds reconnect_initial{20};
  std::chrono::milliseconds reconnect_max{1000};
  // An outbound connect that has not completed in this time is abandoned (and retried).
  std::chrono::milliseconds connect_timeout{3000};
  // A connection whose pending write makes no progress for this long is closed
  // (a peer that is gone without a RST, a client that stopped reading).
  std::chrono::milliseconds write_stall_timeout{10000};
  // An accepted connection that has not sent its Hello in this time is closed.
  std::chrono::milliseconds hello_timeout{10000};
  // Where to log; null means spdlog's default logger.
  std::shared_ptr<spdlog::logger> logger;
};

struct TransportHandlers {
  // A PeerMessage from a configured peer, already checked: `from` is the id that
  // peer's connection said Hello with, `to` is this node.
  std::function<void(proto::PeerMessage&&)> on_peer_message;
  // A request from a client connection; answer with send_response(id, ...).
  std::function<void(ConnectionId, proto::ClientRequest&&)> on_client_request;
  // Optional: a client connection closed (called from its own io_context turn,
  // never from inside a call into the transport). Not called by stop().
  std::function<void(ConnectionId)> on_client_disconnect;
};

struct PeerLinkStatus {
  std::uint32_t id = 0;
  std::string address;
  bool connected = false;          // the outbound link is up (this node can send)
  bool inbound_connected = false;  // the peer's link to this node is up
  std::uint64_t dropped = 0;       // messages to this peer dropped (down, or queue full)
  std::size_t queued_bytes = 0;    // bytes waiting to be written to this peer
};

struct TransportCounters {
  std::uint64_t frames_in = 0;
  std::uint64_t frames_out = 0;  // frames handed to a connection's write queue
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;   // bytes the kernel accepted
  std::uint64_t writes = 0;      // batched writes started (frames_out / writes = batching)
  std::uint64_t bad_frames = 0;  // framing errors (each closed its connection)
  std::uint64_t rejected_connections = 0;   // closed before or at their Hello
  std::uint64_t peer_messages_dropped = 0;  // by send_peer: link down, queue full, too big
  std::uint64_t peer_messages_refused = 0;  // received with the wrong from/to
  std::uint64_t client_connections = 0;     // accepted as clients, ever
  std::uint64_t peer_connects = 0;          // outbound links established, ever
};

class Transport {
 public:
  // Does no I/O until start(). io must outlive every handler the transport
  // queued on it (run or destroy the io_context after the transport is gone;
  // queued handlers keep the internals alive on their own).
  Transport(asio::io_context& io, TransportOptions options, TransportHandlers handlers);
  ~Transport();  // stop()
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Checks the options (node id, listen address, peer addresses), binds and
  // listens. False with *error (if not null) saying what is wrong: a malformed
  // address, a host that does not resolve, an address in use. Call once.
  bool start(std::string* error);

  // Closes the listener and every connection, cancels timers; queued frames are
  // discarded. No handler is called after it returns. Idempotent.
  void stop();

  // The bound listen port (the OS's pick when options.listen asked for 0); 0
  // before start().
  std::uint16_t port() const;

  // Adds a peer or changes its address (closing the outbound link to the old
  // address). Before or after start(). False with *error on a malformed address.
  // An id equal to this node's is ignored (true).
  bool set_peer(std::uint32_t id, const std::string& address, std::string* error);
  // Forgets a peer: closes both links; its Hello is refused from now on.
  void remove_peer(std::uint32_t id);

  // Queues `message` for peer `to` (message.to should be `to`). Dropped and
  // counted, never queued without bound, when: the transport is not running, `to`
  // is not a configured peer, the link is down (backing off before a reconnect),
  // the link's queue is full, or the message exceeds max_frame_bytes (the peer
  // would refuse it). Opens the link if it is not open yet. `to` must not be this
  // node (checked).
  void send_peer(std::uint32_t to, const proto::PeerMessage& message);

  // Queues a response on client connection `id`; a no-op if that connection has
  // closed. A client whose unsent responses exceed max_client_queue_bytes is
  // disconnected (it stopped reading; it will reconnect and retry).
  void send_response(ConnectionId id, const proto::ClientResponse& response);

  // One entry per configured peer, ordered by id.
  std::vector<PeerLinkStatus> peer_status() const;
  TransportCounters counters() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace synod::net
