#include "net/transport.h"

#include "net/listen.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <asio.hpp>
#include <set>
#include <utility>

#include "common/check.h"
#include "net/address.h"

namespace synod::net {
namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kReadBufferBytes = 64 * 1024;
// A write buffer that grew past this for a burst is released once it drains.
constexpr std::size_t kKeepCapacityBytes = std::size_t{1} << 20;
// How often timeouts (connect, Hello, stalled writes) are checked.
constexpr auto kSweepInterval = std::chrono::milliseconds(100);
// How long to wait before accepting again after accept() failed (out of fds).
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);
// After the first failed connect, log again only every this many failures.
constexpr std::uint64_t kLogEveryFailures = 30;

const char* body_name(const proto::Envelope& e) {
  switch (e.body_case()) {
    case proto::Envelope::kHello:
      return "Hello";
    case proto::Envelope::kPeer:
      return "PeerMessage";
    case proto::Envelope::kRequest:
      return "ClientRequest";
    case proto::Envelope::kResponse:
      return "ClientResponse";
    case proto::Envelope::BODY_NOT_SET:
      break;
  }
  return "empty Envelope";
}

long long ms(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

enum class Role {
  kHandshake,  // accepted, waiting for its Hello
  kClient,     // accepted, said Hello{0}
  kPeerIn,     // accepted, said Hello{peer id}: the peer's link to this node
  kPeerOut,    // this node's link to a peer
};

// One TCP connection of any role. Handlers hold a shared_ptr to it, so it lives
// until the last of its operations has completed, even after it was closed.
struct Connection {
  Connection(tcp::socket s, Role r, std::uint64_t cluster_id, std::size_t max_frame_bytes)
      : socket(std::move(s)),
        decoder(cluster_id, max_frame_bytes),
        read_buffer(kReadBufferBytes),
        role(r),
        opened_at(Clock::now()) {}

  std::size_t queued_bytes() const { return pending.size() + writing.size(); }

  tcp::socket socket;
  FrameDecoder decoder;
  std::vector<char> read_buffer;
  std::string pending;             // frames queued since the current write began
  std::size_t pending_frames = 0;  // peer messages in `pending`
  std::string writing;             // the batch being written
  std::size_t writing_frames = 0;
  bool write_in_flight = false;
  bool flush_posted = false;
  bool connected = true;  // outbound: false until the TCP connect completes
  bool open = true;       // false once closed; its handlers then do nothing
  bool warned_mismatch = false;
  Role role;
  ConnectionId id = 0;        // accepted connections
  std::uint32_t peer_id = 0;  // kPeerIn, kPeerOut
  std::string remote;         // the other end, for logs
  Clock::time_point opened_at;
  Clock::time_point last_write_progress;
};
using ConnPtr = std::shared_ptr<Connection>;

// This node's outbound link to one peer.
struct PeerLink {
  enum class State {
    kIdle,        // nothing sent yet (links open lazily), or reset by set_peer/stop
    kConnecting,  // resolving or connecting; messages queue (bounded)
    kConnected,   // Hello sent first, messages flow
    kBackoff,     // waiting to reconnect; messages are dropped
  };

  explicit PeerLink(asio::io_context& io) : resolver(io), timer(io) {}

  std::uint32_t id = 0;
  std::string address;
  HostPort host_port;
  State state = State::kIdle;
  ConnPtr conn;  // kConnecting, kConnected
  tcp::resolver resolver;
  asio::steady_timer timer;  // backoff
  // Bumped whenever the link is reset, so a stale backoff timer does nothing.
  std::uint64_t epoch = 0;
  std::chrono::milliseconds backoff{0};
  std::uint64_t dropped = 0;
  std::uint64_t failures = 0;  // attempts since the link was last up for a while
  bool flapping = false;       // its connections drop right after they connect
  bool drop_logged = false;    // one warning per episode of drops
  Clock::time_point attempt_started;
  Clock::time_point connected_at;
  ConnectionId inbound_id = 0;  // the peer's current connection to this node
};
using LinkPtr = std::shared_ptr<PeerLink>;

}  // namespace

struct Transport::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io_context, TransportOptions options, TransportHandlers callbacks)
      : io(io_context),
        opt(std::move(options)),
        handlers(std::move(callbacks)),
        log(opt.logger ? opt.logger : spdlog::default_logger()),
        acceptor(io),
        sweep_timer(io),
        accept_retry_timer(io) {}

  // ------------------------------------------------------------ lifecycle

  bool start(std::string* error) {
    auto fail = [&](std::string why) {
      if (error != nullptr) *error = std::move(why);
      return false;
    };
    if (started) return fail("the transport was already started");
    if (opt.node_id == 0) return fail("node id must be nonzero (0 is how a client says Hello)");
    if (opt.max_frame_bytes == 0 || opt.max_frame_bytes > kMaxFrameBytesLimit) {
      return fail(fmt::format("max frame bytes must be in [1, {}]", kMaxFrameBytesLimit));
    }
    for (const auto& [id, address] : opt.peers) {
      std::string why;
      if (!set_peer(id, address, &why)) return fail(fmt::format("peer {}: {}", id, why));
    }
    std::string why;
    if (!listen_on(acceptor, opt.listen, &why)) return fail(why);
    asio::error_code ec;
    const tcp::endpoint endpoint = acceptor.local_endpoint(ec);
    bound_port = acceptor.local_endpoint(ec).port();
    started = true;
    running = true;
    log->info("node {}: listening on {} (cluster {})", opt.node_id,
              format_host_port(endpoint.address().to_string(), bound_port), opt.cluster_id);
    accept_next();
    arm_sweep();
    return true;
  }

  void stop() {
    if (!running) return;
    running = false;
    asio::error_code ignored;
    acceptor.close(ignored);
    sweep_timer.cancel();
    accept_retry_timer.cancel();
    for (auto& [id, conn] : inbound) close_socket(conn);
    inbound.clear();
    for (auto& [id, link] : links) reset_link(link);
    log->info("node {}: transport stopped", opt.node_id);
  }

  // ------------------------------------------------------------ peers

  bool set_peer(std::uint32_t id, const std::string& address, std::string* error) {
    if (id == opt.node_id) return true;
    if (id == 0) {
      if (error != nullptr) *error = "peer id 0 is reserved (it is how a client says Hello)";
      return false;
    }
    std::string why;
    auto host_port = parse_host_port(address, &why);
    if (host_port && host_port->port == 0) {
      why = fmt::format("bad address \"{}\": a peer's port cannot be 0", address);
      host_port.reset();
    }
    if (!host_port) {
      if (error != nullptr) *error = why;
      return false;
    }
    LinkPtr& link = links[id];
    if (!link) {
      link = std::make_shared<PeerLink>(io);
      link->id = id;
      link->backoff = opt.reconnect_initial;
    } else if (link->address == address) {
      return true;
    } else {
      reset_link(link);
    }
    link->address = address;
    link->host_port = *host_port;
    return true;
  }

  void remove_peer(std::uint32_t id) {
    auto it = links.find(id);
    if (it == links.end()) return;
    LinkPtr link = it->second;
    reset_link(link);
    links.erase(it);
    if (link->inbound_id != 0) {
      if (auto c = inbound.find(link->inbound_id); c != inbound.end()) {
        ConnPtr conn = c->second;
        close_inbound(conn);
      }
    }
    log->info("node {}: peer {} removed", opt.node_id, id);
  }

  // Closes the outbound connection (if any) and returns the link to kIdle.
  void reset_link(const LinkPtr& link) {
    ++link->epoch;
    if (link->conn) close_socket(link->conn);
    link->conn.reset();
    link->resolver.cancel();
    link->timer.cancel();
    link->state = PeerLink::State::kIdle;
    link->backoff = opt.reconnect_initial;
    link->failures = 0;
    link->flapping = false;
  }

  void connect(const LinkPtr& link) {
    auto conn = std::make_shared<Connection>(tcp::socket(io), Role::kPeerOut, opt.cluster_id,
                                             opt.max_frame_bytes);
    conn->connected = false;
    conn->peer_id = link->id;
    conn->remote = link->address;
    // Hello goes first; the messages sent while connecting queue behind it.
    proto::Hello hello;
    hello.set_node_id(opt.node_id);
    append_frame(&conn->pending, opt.cluster_id, EnvelopeField::kHello, hello);
    ++counters.frames_out;
    link->conn = conn;
    link->state = PeerLink::State::kConnecting;
    link->attempt_started = Clock::now();

    auto self = shared_from_this();
    asio::error_code ec;
    const auto ip = asio::ip::make_address(link->host_port.host, ec);
    if (!ec) {
      conn->socket.async_connect(tcp::endpoint(ip, link->host_port.port),
                                 [self, link, conn](const asio::error_code& error) {
                                   self->on_connect(link, conn, error);
                                 });
      return;
    }
    link->resolver.async_resolve(
        link->host_port.host, std::to_string(link->host_port.port),
        [self, link, conn](const asio::error_code& error,
                           const tcp::resolver::results_type& results) {
          if (!self->running || link->conn != conn) return;
          if (error) {
            self->link_failed(link, fmt::format("cannot resolve \"{}\": {}", link->host_port.host,
                                                error.message()));
            return;
          }
          asio::async_connect(conn->socket, results,
                              [self, link, conn](const asio::error_code& e, const tcp::endpoint&) {
                                self->on_connect(link, conn, e);
                              });
        });
  }

  void on_connect(const LinkPtr& link, const ConnPtr& conn, const asio::error_code& ec) {
    if (!running || link->conn != conn || !conn->open) return;
    if (ec) {
      link_failed(link, fmt::format("connect failed: {}", ec.message()));
      return;
    }
    asio::error_code ignored;
    conn->socket.set_option(tcp::no_delay(true), ignored);
    conn->socket.set_option(asio::socket_base::keep_alive(true), ignored);
    conn->connected = true;
    link->state = PeerLink::State::kConnected;
    link->connected_at = Clock::now();
    ++counters.peer_connects;
    if (link->flapping) {
      log->debug("node {}: link to peer {} ({}) is up again", opt.node_id, link->id, link->address);
    } else if (link->failures > 0) {
      log->info("node {}: link to peer {} ({}) is up after {} failed attempt(s)", opt.node_id,
                link->id, link->address, link->failures);
    } else {
      log->info("node {}: link to peer {} ({}) is up", opt.node_id, link->id, link->address);
    }
    link->drop_logged = false;
    start_read(conn);
    flush(conn);
  }

  // The outbound connection failed or dropped: discard its queue, wait, retry.
  void link_failed(const LinkPtr& link, const std::string& reason) {
    const bool was_up = link->state == PeerLink::State::kConnected;
    if (link->conn) {
      // What never reached the kernel is lost; the consensus core retransmits.
      const std::size_t lost = link->conn->pending_frames + link->conn->writing_frames;
      link->dropped += lost;
      counters.peer_messages_dropped += lost;
      close_socket(link->conn);
      link->conn.reset();
    }
    link->resolver.cancel();
    // A connection that stayed up for a while earns a quick reconnect; one that
    // drops right after connecting (the peer refuses us) keeps backing off, and
    // is logged like a failed connect, not as a link going up and down.
    const bool lasted = was_up && Clock::now() - link->connected_at >= opt.reconnect_max;
    if (lasted) {
      link->backoff = opt.reconnect_initial;
      link->failures = 0;
      link->flapping = false;
    }
    ++link->failures;
    if (lasted) {
      log->warn("node {}: link to peer {} ({}) is down: {}; reconnecting", opt.node_id, link->id,
                link->address, reason);
    } else if (was_up && !link->flapping) {
      link->flapping = true;
      log->warn(
          "node {}: link to peer {} ({}) dropped right after connecting: {} (is this node "
          "in the peer's configuration, with the same cluster id?); retrying",
          opt.node_id, link->id, link->address, reason);
    } else if (link->failures == 1 || link->failures % kLogEveryFailures == 0) {
      log->warn("node {}: cannot reach peer {} at {} ({} attempt(s) in a row): {}; retrying",
                opt.node_id, link->id, link->address, link->failures, reason);
    } else {
      log->debug("node {}: cannot reach peer {} at {}: {}", opt.node_id, link->id, link->address,
                 reason);
    }
    link->state = PeerLink::State::kBackoff;
    const std::uint64_t epoch = ++link->epoch;
    link->timer.expires_after(link->backoff);
    link->backoff = std::min(link->backoff * 2, opt.reconnect_max);
    auto self = shared_from_this();
    link->timer.async_wait([self, link, epoch](const asio::error_code& ec) {
      if (ec || !self->running || link->epoch != epoch) return;
      self->connect(link);
    });
  }

  void drop_peer_message(const LinkPtr& link, const char* why) {
    ++link->dropped;
    ++counters.peer_messages_dropped;
    if (!link->drop_logged) {
      link->drop_logged = true;
      log->warn("node {}: dropping messages to peer {} ({}): {}", opt.node_id, link->id,
                link->address, why);
    }
  }

  void send_peer(std::uint32_t to, const proto::PeerMessage& message) {
    SYNOD_CHECK_MSG(to != opt.node_id,
                    "send_peer to this node: the server must loop its own messages back");
    if (!running) {
      ++counters.peer_messages_dropped;
      return;
    }
    auto it = links.find(to);
    if (it == links.end()) {
      ++counters.peer_messages_dropped;
      if (unknown_destinations.insert(to).second) {
        log->error("node {}: dropping messages to unknown peer {} (not configured)", opt.node_id,
                   to);
      }
      return;
    }
    const LinkPtr& link = it->second;
    if (link->state == PeerLink::State::kIdle) connect(link);
    if (link->state == PeerLink::State::kBackoff) {
      drop_peer_message(link, "the link is down");
      return;
    }
    Connection& conn = *link->conn;
    const std::size_t before = conn.pending.size();
    const std::size_t queued_before = conn.queued_bytes();
    const std::size_t payload =
        append_frame(&conn.pending, opt.cluster_id, EnvelopeField::kPeer, message);
    if (payload > opt.max_frame_bytes) {
      conn.pending.resize(before);
      ++link->dropped;
      ++counters.peer_messages_dropped;
      log->error("node {}: dropping a message to peer {}: {} bytes exceed the frame limit {}",
                 opt.node_id, to, payload, opt.max_frame_bytes);
      return;
    }
    // An empty queue takes one frame of any size, so a large message still goes.
    if (conn.queued_bytes() > opt.max_peer_queue_bytes && queued_before > 0) {
      conn.pending.resize(before);
      drop_peer_message(link, "its send queue is full");
      return;
    }
    ++conn.pending_frames;
    ++counters.frames_out;
    schedule_flush(link->conn);
  }

  // ------------------------------------------------------------ clients

  void send_response(ConnectionId id, const proto::ClientResponse& response) {
    if (!running) return;
    auto it = inbound.find(id);
    if (it == inbound.end() || it->second->role != Role::kClient) return;
    ConnPtr conn = it->second;
    const std::size_t before = conn->pending.size();
    const std::size_t payload =
        append_frame(&conn->pending, opt.cluster_id, EnvelopeField::kResponse, response);
    if (payload > opt.max_frame_bytes) {
      // The client would refuse the frame and drop the connection; tell it why instead.
      conn->pending.resize(before);
      log->warn(
          "node {}: response to request {} on client connection {} is {} bytes, over the "
          "frame limit {}; answering with an error",
          opt.node_id, response.request_id(), id, payload, opt.max_frame_bytes);
      proto::ClientResponse error;
      error.set_request_id(response.request_id());
      error.set_code(proto::ClientResponse::BACKEND_ERROR);
      error.set_error(fmt::format("the response of {} bytes exceeds the frame limit of {} bytes",
                                  payload, opt.max_frame_bytes));
      append_frame(&conn->pending, opt.cluster_id, EnvelopeField::kResponse, error);
    }
    ++counters.frames_out;
    if (conn->queued_bytes() > opt.max_client_queue_bytes) {
      log->warn(
          "node {}: client connection {} ({}) is not reading its responses ({} bytes "
          "queued); closing it",
          opt.node_id, id, conn->remote, conn->queued_bytes());
      close_inbound(conn);
      return;
    }
    schedule_flush(conn);
  }

  // ------------------------------------------------------------ accepting

  void accept_next() {
    auto self = shared_from_this();
    acceptor.async_accept([self](const asio::error_code& ec, tcp::socket socket) {
      if (!self->running) return;
      if (ec) {
        if (ec == asio::error::operation_aborted) return;
        // Typically out of file descriptors: wait a little instead of spinning.
        self->log->error("node {}: accept failed: {}; retrying", self->opt.node_id, ec.message());
        self->accept_retry_timer.expires_after(kAcceptRetryDelay);
        self->accept_retry_timer.async_wait([self](const asio::error_code& e) {
          if (!e && self->running) self->accept_next();
        });
        return;
      }
      self->on_accept(std::move(socket));
      self->accept_next();
    });
  }

  void on_accept(tcp::socket socket) {
    asio::error_code ec;
    const auto endpoint = socket.remote_endpoint(ec);
    if (ec) return;  // already gone
    socket.set_option(tcp::no_delay(true), ec);
    auto conn = std::make_shared<Connection>(std::move(socket), Role::kHandshake, opt.cluster_id,
                                             opt.max_frame_bytes);
    conn->id = next_connection_id++;
    conn->remote = format_host_port(endpoint.address().to_string(), endpoint.port());
    inbound.emplace(conn->id, conn);
    start_read(conn);
  }

  // ------------------------------------------------------------ reading

  void start_read(const ConnPtr& conn) {
    auto self = shared_from_this();
    conn->socket.async_read_some(
        asio::buffer(conn->read_buffer),
        [self, conn](const asio::error_code& ec, std::size_t n) { self->on_read(conn, ec, n); });
  }

  void on_read(const ConnPtr& conn, const asio::error_code& ec, std::size_t n) {
    if (!running || !conn->open) return;
    if (ec) {
      const bool eof = ec == asio::error::eof;
      connection_lost(conn, eof ? "closed by the other end" : ec.message(), !eof);
      return;
    }
    counters.bytes_in += n;
    conn->decoder.feed(conn->read_buffer.data(), n);
    proto::Envelope envelope;
    std::string error;
    while (true) {
      const auto status = conn->decoder.next(&envelope, &error);
      if (status == FrameDecoder::Status::kNeedMore) break;
      if (status == FrameDecoder::Status::kError) {
        ++counters.bad_frames;
        if (conn->role == Role::kHandshake) ++counters.rejected_connections;
        connection_lost(conn, error, true);
        return;
      }
      ++counters.frames_in;
      handle_frame(conn, envelope);
      // A handler may have stopped the transport or closed this connection.
      if (!running || !conn->open) return;
    }
    start_read(conn);
  }

  void handle_frame(const ConnPtr& conn, proto::Envelope& envelope) {
    switch (conn->role) {
      case Role::kHandshake:
        handle_hello(conn, envelope);
        return;
      case Role::kClient:
        if (!envelope.has_request()) {
          connection_lost(conn, fmt::format("unexpected {} from a client", body_name(envelope)),
                          true);
          return;
        }
        if (handlers.on_client_request) {
          handlers.on_client_request(conn->id, std::move(*envelope.mutable_request()));
        }
        return;
      case Role::kPeerIn: {
        if (!envelope.has_peer()) {
          connection_lost(conn, fmt::format("unexpected {} from a peer", body_name(envelope)),
                          true);
          return;
        }
        proto::PeerMessage& message = *envelope.mutable_peer();
        if (message.from() != conn->peer_id || message.to() != opt.node_id) {
          ++counters.peer_messages_refused;
          if (!conn->warned_mismatch) {
            conn->warned_mismatch = true;
            log->warn(
                "node {}: dropping a message (from {} to {}) on peer {}'s connection ({}): "
                "it must be from {} to {}",
                opt.node_id, message.from(), message.to(), conn->peer_id, conn->remote,
                conn->peer_id, opt.node_id);
          }
          return;
        }
        if (handlers.on_peer_message) handlers.on_peer_message(std::move(message));
        return;
      }
      case Role::kPeerOut:
        // Peers answer over their own link; nothing ever comes back on this one.
        connection_lost(conn, fmt::format("unexpected {} on an outbound link", body_name(envelope)),
                        true);
        return;
    }
  }

  void handle_hello(const ConnPtr& conn, const proto::Envelope& envelope) {
    if (!envelope.has_hello()) {
      ++counters.rejected_connections;
      connection_lost(conn, fmt::format("expected a Hello first, got a {}", body_name(envelope)),
                      true);
      return;
    }
    const std::uint32_t id = envelope.hello().node_id();
    if (id == 0) {
      conn->role = Role::kClient;
      ++counters.client_connections;
      log->debug("node {}: client connection {} from {}", opt.node_id, conn->id, conn->remote);
      return;
    }
    auto it = links.find(id);
    if (it == links.end()) {
      ++counters.rejected_connections;
      log->warn("node {}: unknown peer id {} from {}{}; closing", opt.node_id, id, conn->remote,
                id == opt.node_id ? " (that is this node's own id)" : "");
      close_inbound(conn);
      return;
    }
    conn->role = Role::kPeerIn;
    conn->peer_id = id;
    // One inbound link per peer: a new Hello means the peer reconnected, and its
    // old connection is dead or dying (a half-open connection after a crash).
    const LinkPtr& link = it->second;
    if (link->inbound_id != 0) {
      if (auto old = inbound.find(link->inbound_id); old != inbound.end()) {
        log->info("node {}: peer {} reconnected from {}; closing its old connection from {}",
                  opt.node_id, id, conn->remote, old->second->remote);
        ConnPtr previous = old->second;
        close_inbound(previous);
      }
    }
    link->inbound_id = conn->id;
    log->info("node {}: peer {} connected from {}", opt.node_id, id, conn->remote);
  }

  // ------------------------------------------------------------ writing

  void schedule_flush(const ConnPtr& conn) {
    if (!conn->open || !conn->connected || conn->write_in_flight || conn->flush_posted ||
        conn->pending.empty()) {
      return;
    }
    // Whatever else is queued during this io_context turn joins the same write.
    conn->flush_posted = true;
    auto self = shared_from_this();
    asio::post(io, [self, conn] {
      conn->flush_posted = false;
      if (self->running) self->flush(conn);
    });
  }

  void flush(const ConnPtr& conn) {
    if (!conn->open || !conn->connected || conn->write_in_flight || conn->pending.empty()) return;
    conn->writing.swap(conn->pending);
    conn->pending.clear();
    conn->writing_frames = conn->pending_frames;
    conn->pending_frames = 0;
    conn->write_in_flight = true;
    conn->last_write_progress = Clock::now();
    ++counters.writes;
    auto self = shared_from_this();
    // The completion condition runs after every partial write: it notes progress,
    // which is how a stalled write is told apart from a slow large one.
    asio::async_write(
        conn->socket, asio::buffer(conn->writing),
        [conn](const asio::error_code& ec, std::size_t transferred) -> std::size_t {
          conn->last_write_progress = Clock::now();
          return asio::transfer_all()(ec, transferred);
        },
        [self, conn](const asio::error_code& ec, std::size_t n) { self->on_write(conn, ec, n); });
  }

  void on_write(const ConnPtr& conn, const asio::error_code& ec, std::size_t n) {
    conn->write_in_flight = false;
    if (!running || !conn->open) return;
    if (ec) {
      connection_lost(conn, fmt::format("write failed: {}", ec.message()), true);
      return;
    }
    counters.bytes_out += n;
    conn->writing.clear();
    conn->writing_frames = 0;
    if (conn->writing.capacity() > kKeepCapacityBytes) std::string().swap(conn->writing);
    if (!conn->pending.empty()) {
      flush(conn);
    } else if (conn->pending.capacity() > kKeepCapacityBytes) {
      std::string().swap(conn->pending);
    }
  }

  // ------------------------------------------------------------ closing

  // Closes the socket (cancelling its operations) and frees its buffers.
  void close_socket(const ConnPtr& conn) {
    if (!conn->open) return;
    conn->open = false;
    asio::error_code ignored;
    conn->socket.close(ignored);
    std::string().swap(conn->pending);
    conn->pending_frames = 0;
    if (!conn->write_in_flight) std::string().swap(conn->writing);  // else asio still reads it
  }

  // Closes an accepted connection and forgets it.
  void close_inbound(const ConnPtr& conn) {
    if (!conn->open) return;
    close_socket(conn);
    inbound.erase(conn->id);
    if (conn->role == Role::kPeerIn) {
      if (auto it = links.find(conn->peer_id);
          it != links.end() && it->second->inbound_id == conn->id) {
        it->second->inbound_id = 0;
      }
    }
    if (conn->role == Role::kClient && handlers.on_client_disconnect) {
      // Posted, so the callback never runs inside a call into the transport.
      auto self = shared_from_this();
      const ConnectionId id = conn->id;
      asio::post(io, [self, id] {
        if (self->running && self->handlers.on_client_disconnect) {
          self->handlers.on_client_disconnect(id);
        }
      });
    }
  }

  std::string describe(const Connection& conn) const {
    switch (conn.role) {
      case Role::kHandshake:
        return fmt::format("connection from {}", conn.remote);
      case Role::kClient:
        return fmt::format("client connection {} ({})", conn.id, conn.remote);
      case Role::kPeerIn:
        return fmt::format("peer {}'s connection from {}", conn.peer_id, conn.remote);
      case Role::kPeerOut:
        return fmt::format("link to peer {} ({})", conn.peer_id, conn.remote);
    }
    return "connection";
  }

  // A connection ended: by an error (logged as a warning) or normally.
  void connection_lost(const ConnPtr& conn, const std::string& reason, bool is_error) {
    if (!conn->open) return;
    if (conn->role == Role::kPeerOut) {
      auto it = links.find(conn->peer_id);
      if (it != links.end() && it->second->conn == conn) {
        link_failed(it->second, reason);
      } else {
        close_socket(conn);
      }
      return;
    }
    if (is_error) {
      log->warn("node {}: {}: {}; closing it", opt.node_id, describe(*conn), reason);
    } else if (conn->role == Role::kPeerIn) {
      log->info("node {}: {} {}", opt.node_id, describe(*conn), reason);
    } else {
      log->debug("node {}: {} {}", opt.node_id, describe(*conn), reason);
    }
    close_inbound(conn);
  }

  // ------------------------------------------------------------ timeouts

  void arm_sweep() {
    sweep_timer.expires_after(kSweepInterval);
    auto self = shared_from_this();
    sweep_timer.async_wait([self](const asio::error_code& ec) {
      if (ec || !self->running) return;
      self->sweep();
      self->arm_sweep();
    });
  }

  void sweep() {
    const auto now = Clock::now();
    std::vector<std::pair<ConnPtr, std::string>> expired;
    for (const auto& [id, conn] : inbound) {
      if (conn->role == Role::kHandshake && now - conn->opened_at > opt.hello_timeout) {
        ++counters.rejected_connections;
        expired.emplace_back(conn, fmt::format("no Hello within {} ms", opt.hello_timeout.count()));
      } else if (conn->write_in_flight &&
                 now - conn->last_write_progress > opt.write_stall_timeout) {
        expired.emplace_back(
            conn, fmt::format("no write progress for {} ms", ms(now - conn->last_write_progress)));
      }
    }
    for (auto& [conn, reason] : expired) connection_lost(conn, reason, true);

    std::vector<std::pair<LinkPtr, std::string>> failed;
    for (const auto& [id, link] : links) {
      if (link->state == PeerLink::State::kConnecting &&
          now - link->attempt_started > opt.connect_timeout) {
        failed.emplace_back(
            link, fmt::format("connect timed out after {} ms", ms(now - link->attempt_started)));
      } else if (link->state == PeerLink::State::kConnected && link->conn->write_in_flight &&
                 now - link->conn->last_write_progress > opt.write_stall_timeout) {
        failed.emplace_back(link, fmt::format("no write progress for {} ms",
                                              ms(now - link->conn->last_write_progress)));
      }
    }
    for (auto& [link, reason] : failed) link_failed(link, reason);
  }

  // ------------------------------------------------------------ state

  asio::io_context& io;
  TransportOptions opt;
  TransportHandlers handlers;
  std::shared_ptr<spdlog::logger> log;
  tcp::acceptor acceptor;
  asio::steady_timer sweep_timer;
  asio::steady_timer accept_retry_timer;
  bool started = false;
  bool running = false;
  std::uint16_t bound_port = 0;
  ConnectionId next_connection_id = 1;
  std::map<ConnectionId, ConnPtr> inbound;       // every open accepted connection
  std::map<std::uint32_t, LinkPtr> links;        // every configured peer
  std::set<std::uint32_t> unknown_destinations;  // logged once each
  TransportCounters counters;
};

Transport::Transport(asio::io_context& io, TransportOptions options, TransportHandlers handlers)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(handlers))) {}

Transport::~Transport() { impl_->stop(); }

bool Transport::start(std::string* error) { return impl_->start(error); }

void Transport::stop() { impl_->stop(); }

std::uint16_t Transport::port() const { return impl_->bound_port; }

bool Transport::set_peer(std::uint32_t id, const std::string& address, std::string* error) {
  return impl_->set_peer(id, address, error);
}

void Transport::remove_peer(std::uint32_t id) { impl_->remove_peer(id); }

void Transport::send_peer(std::uint32_t to, const proto::PeerMessage& message) {
  impl_->send_peer(to, message);
}

void Transport::send_response(ConnectionId id, const proto::ClientResponse& response) {
  impl_->send_response(id, response);
}

std::vector<PeerLinkStatus> Transport::peer_status() const {
  std::vector<PeerLinkStatus> out;
  for (const auto& [id, link] : impl_->links) {
    PeerLinkStatus s;
    s.id = id;
    s.address = link->address;
    s.connected = link->state == PeerLink::State::kConnected;
    s.inbound_connected = link->inbound_id != 0;
    s.dropped = link->dropped;
    s.queued_bytes = link->conn ? link->conn->queued_bytes() : 0;
    out.push_back(std::move(s));
  }
  return out;
}

TransportCounters Transport::counters() const { return impl_->counters; }

}  // namespace synod::net
