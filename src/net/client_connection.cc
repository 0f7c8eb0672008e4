#include "net/client_connection.h"

#include <fmt/format.h>

#include <asio.hpp>
#include <utility>
#include <vector>

#include "net/address.h"

namespace synod::net {
namespace {

using asio::ip::tcp;

constexpr std::size_t kReadBufferBytes = 64 * 1024;
constexpr std::size_t kKeepCapacityBytes = std::size_t{1} << 20;

}  // namespace

struct ClientConnection::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io_context, ClientConnectionOptions options,
       ClientConnectionHandlers callbacks)
      : io(io_context),
        opt(std::move(options)),
        handlers(std::move(callbacks)),
        socket(io),
        resolver(io),
        connect_timer(io),
        decoder(opt.cluster_id, opt.max_frame_bytes),
        read_buffer(kReadBufferBytes) {}

  bool connect(const std::string& target, std::string* error) {
    if (started) {
      if (error != nullptr) *error = "connect() was already called on this connection";
      return false;
    }
    auto host_port = parse_host_port(target, error);
    if (!host_port) return false;
    started = true;
    open = true;
    address = target;
    proto::Hello hello;
    hello.set_node_id(0);
    append_frame(&pending, opt.cluster_id, EnvelopeField::kHello, hello);

    auto self = shared_from_this();
    connect_timer.expires_after(opt.connect_timeout);
    connect_timer.async_wait([self](const asio::error_code& ec) {
      if (ec || !self->open || self->connected) return;
      self->fail(fmt::format("connect to {} timed out after {} ms", self->address,
                             self->opt.connect_timeout.count()));
    });
    asio::error_code ec;
    const auto ip = asio::ip::make_address(host_port->host, ec);
    if (!ec) {
      socket.async_connect(tcp::endpoint(ip, host_port->port),
                           [self](const asio::error_code& e) { self->on_connect(e); });
    } else {
      resolver.async_resolve(
          host_port->host, std::to_string(host_port->port),
          [self, host = host_port->host](const asio::error_code& e,
                                         const tcp::resolver::results_type& results) {
            if (!self->open) return;
            if (e) {
              self->fail(fmt::format("cannot resolve \"{}\": {}", host, e.message()));
              return;
            }
            asio::async_connect(
                self->socket, results,
                [self](const asio::error_code& e2, const tcp::endpoint&) { self->on_connect(e2); });
          });
    }
    return true;
  }

  void on_connect(const asio::error_code& ec) {
    if (!open) return;
    if (ec) {
      fail(fmt::format("connect to {} failed: {}", address, ec.message()));
      return;
    }
    connected = true;
    connect_timer.cancel();
    asio::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    start_read();
    flush();
    if (handlers.on_connected) handlers.on_connected();
  }

  bool send(const proto::ClientRequest& request) {
    if (!open) return false;
    const std::size_t before = pending.size();
    const std::size_t queued_before = queued_bytes();
    const std::size_t payload =
        append_frame(&pending, opt.cluster_id, EnvelopeField::kRequest, request);
    if (payload > opt.max_frame_bytes ||
        (queued_bytes() > opt.max_queue_bytes && queued_before > 0)) {
      pending.resize(before);
      return false;
    }
    schedule_flush();
    return true;
  }

  std::size_t queued_bytes() const { return pending.size() + writing.size(); }

  void schedule_flush() {
    if (!connected || write_in_flight || flush_posted || pending.empty()) return;
    // Requests sent during this io_context turn share one write.
    flush_posted = true;
    auto self = shared_from_this();
    asio::post(io, [self] {
      self->flush_posted = false;
      self->flush();
    });
  }

  void flush() {
    if (!open || !connected || write_in_flight || pending.empty()) return;
    writing.swap(pending);
    pending.clear();
    write_in_flight = true;
    auto self = shared_from_this();
    asio::async_write(
        socket, asio::buffer(writing), [self](const asio::error_code& ec, std::size_t) {
          self->write_in_flight = false;
          if (!self->open) return;
          if (ec) {
            self->fail(fmt::format("write to {} failed: {}", self->address, ec.message()));
            return;
          }
          self->writing.clear();
          if (self->writing.capacity() > kKeepCapacityBytes) {
            std::string().swap(self->writing);
          }
          self->flush();
        });
  }

  void start_read() {
    auto self = shared_from_this();
    socket.async_read_some(
        asio::buffer(read_buffer),
        [self](const asio::error_code& ec, std::size_t n) { self->on_read(ec, n); });
  }

  void on_read(const asio::error_code& ec, std::size_t n) {
    if (!open) return;
    if (ec) {
      fail(ec == asio::error::eof ? fmt::format("{} closed the connection", address)
                                  : fmt::format("read from {} failed: {}", address, ec.message()));
      return;
    }
    decoder.feed(read_buffer.data(), n);
    proto::Envelope envelope;
    std::string error;
    while (true) {
      const auto status = decoder.next(&envelope, &error);
      if (status == FrameDecoder::Status::kNeedMore) break;
      if (status == FrameDecoder::Status::kError) {
        fail(fmt::format("bad frame from {}: {}", address, error));
        return;
      }
      if (!envelope.has_response()) {
        fail(fmt::format("{} sent something other than a ClientResponse", address));
        return;
      }
      if (handlers.on_response) handlers.on_response(std::move(*envelope.mutable_response()));
      // The handler may have closed (or destroyed) the connection.
      if (!open) return;
    }
    start_read();
  }

  void fail(std::string reason) {
    if (!open) return;
    shut();
    // A copy: the handler may destroy the ClientConnection (not this Impl).
    auto on_closed = handlers.on_closed;
    if (on_closed) on_closed(std::move(reason));
  }

  void shut() {
    if (!open) return;
    open = false;
    connected = false;
    asio::error_code ignored;
    socket.close(ignored);
    resolver.cancel();
    connect_timer.cancel();
    std::string().swap(pending);
    if (!write_in_flight) std::string().swap(writing);  // else asio still reads it
  }

  asio::io_context& io;
  ClientConnectionOptions opt;
  ClientConnectionHandlers handlers;
  tcp::socket socket;
  tcp::resolver resolver;
  asio::steady_timer connect_timer;
  FrameDecoder decoder;
  std::vector<char> read_buffer;
  std::string address;
  std::string pending;
  std::string writing;
  bool started = false;
  bool open = false;
  bool connected = false;
  bool write_in_flight = false;
  bool flush_posted = false;
};

ClientConnection::ClientConnection(asio::io_context& io, ClientConnectionOptions options,
                                   ClientConnectionHandlers handlers)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(handlers))) {}

ClientConnection::~ClientConnection() { impl_->shut(); }

bool ClientConnection::connect(const std::string& address, std::string* error) {
  return impl_->connect(address, error);
}

bool ClientConnection::send(const proto::ClientRequest& request) { return impl_->send(request); }

void ClientConnection::close() { impl_->shut(); }

bool ClientConnection::is_open() const { return impl_->open; }

bool ClientConnection::is_connected() const { return impl_->connected; }

const std::string& ClientConnection::address() const { return impl_->address; }

}  // namespace synod::net
