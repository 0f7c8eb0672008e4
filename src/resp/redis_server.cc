#include "resp/redis_server.h"

#include <spdlog/spdlog.h>

#include <array>
#include <deque>

#include "net/listen.h"
#include "resp/commands.h"

namespace synod::resp {

using asio::ip::tcp;

namespace {

// A node's answer that is not a result of the kv backend, as a Redis error.
void render_failure(const proto::ClientResponse& r, std::string* out) {
  const std::string& why = r.error().empty() ? proto::ClientResponse::Code_Name(r.code())
                                             : r.error();
  switch (r.code()) {
    case proto::ClientResponse::NOT_LEADER:
    case proto::ClientResponse::UNAVAILABLE:
      error(out, "TRYAGAIN " + why);  // Redis Cluster's word for "retry later"
      break;
    case proto::ClientResponse::TIMEOUT:
      error(out, "TIMEOUT " + why);
      break;
    default:
      error(out, "ERR " + why);
      break;
  }
}

}  // namespace

class RedisServer::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(RedisServer& server, std::uint64_t id, tcp::socket socket)
      : server_(server), id_(id), socket_(std::move(socket)), parser_(server.options_.limits) {}

  void start() {
    asio::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    read();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    server_.sessions_.erase(id_);  // may drop the last reference but one (the caller's)
  }

 private:
  struct Slot {
    bool ready = false;
    std::string bytes;
  };

  void read() {
    if (closed_ || reading_ || closing_) return;
    if (replies_.size() >= server_.options_.max_pending) return;  // resumed by on_written
    reading_ = true;
    socket_.async_read_some(asio::buffer(in_),
                            [self = shared_from_this()](const asio::error_code& ec, std::size_t n) {
                              self->on_read(ec, n);
                            });
  }

  void on_read(const asio::error_code& ec, std::size_t n) {
    reading_ = false;
    if (closed_) return;
    if (ec) {
      close();  // the client went away (or stop())
      return;
    }
    parser_.feed(std::string_view(in_.data(), n));
    std::vector<std::string> args;
    std::string why;
    while (!closing_ && replies_.size() < server_.options_.max_pending) {
      const auto status = parser_.next(&args, &why);
      if (status == Parser::Status::kNeedMore) break;
      if (status == Parser::Status::kError) {
        std::string out;
        error(&out, "ERR " + why);
        push_ready(std::move(out));
        closing_ = true;  // answered, then closed, as Redis does
        break;
      }
      dispatch(plan_command(args));
    }
    flush();
    read();
  }

  void dispatch(Plan plan) {
    switch (plan.kind) {
      case Plan::Kind::kReply:
        push_ready(std::move(plan.reply));
        return;
      case Plan::Kind::kQuit:
        push_ready(std::move(plan.reply));
        closing_ = true;
        return;
      case Plan::Kind::kWrite:
      case Plan::Kind::kRead:
        break;
    }
    const std::uint64_t index = base_ + replies_.size();
    replies_.push_back(Slot{});
    // Per-connection order, as Redis gives it: a read sees every earlier write
    // of its connection and none of the later ones. Consecutive requests of one
    // kind run together (pipelined writes share slots); a change of kind waits
    // until everything before it has completed.
    if (waiting_.empty() && (inflight_ == 0 || inflight_kind_ == plan.kind)) {
      submit(std::move(plan), index);
    } else {
      waiting_.emplace_back(std::move(plan), index);
    }
  }

  void submit(Plan plan, std::uint64_t index) {
    inflight_kind_ = plan.kind;
    inflight_++;
    std::weak_ptr<Session> weak = weak_from_this();
    server_.submit_(plan.kind == Plan::Kind::kWrite, std::move(plan.payload),
                    [weak, index, render = std::move(plan.render)](proto::ClientResponse&& r) {
                      auto self = weak.lock();
                      if (!self || self->closed_) return;
                      std::string out;
                      if (r.code() == proto::ClientResponse::OK) {
                        proto::KvResult result;
                        if (result.ParseFromString(r.result())) {
                          render(result, &out);
                        } else if (r.result().empty() && !r.error().empty()) {
                          // Applied before a restart of the node; the result is gone.
                          error(&out, "ERR " + r.error());
                        } else {
                          error(&out, "ERR the backend's answer is not a kv result");
                        }
                      } else {
                        render_failure(r, &out);
                      }
                      self->complete(index, std::move(out));
                    });
  }

  // The requests held back by a change of kind, once nothing is in flight.
  void release_waiting() {
    if (inflight_ != 0 || waiting_.empty()) return;
    const Plan::Kind kind = waiting_.front().first.kind;
    while (!waiting_.empty() && waiting_.front().first.kind == kind) {
      auto [plan, index] = std::move(waiting_.front());
      waiting_.pop_front();
      submit(std::move(plan), index);  // may complete at once and come back here
      if (closed_) return;
    }
  }

  void push_ready(std::string bytes) { replies_.push_back(Slot{true, std::move(bytes)}); }

  void complete(std::uint64_t index, std::string bytes) {
    Slot& slot = replies_[static_cast<std::size_t>(index - base_)];
    slot.ready = true;
    slot.bytes = std::move(bytes);
    inflight_--;
    release_waiting();
    flush();
  }

  // Moves the replies that are ready, in order, to the output and writes.
  void flush() {
    while (!replies_.empty() && replies_.front().ready) {
      out_.append(replies_.front().bytes);
      replies_.pop_front();
      ++base_;
    }
    write();
  }

  void write() {
    if (closed_ || writing_) return;
    if (out_.empty()) {
      if (closing_ && replies_.empty()) close();
      return;
    }
    writing_ = true;
    sending_.swap(out_);
    out_.clear();
    asio::async_write(socket_, asio::buffer(sending_),
                      [self = shared_from_this()](const asio::error_code& ec, std::size_t) {
                        self->on_written(ec);
                      });
  }

  void on_written(const asio::error_code& ec) {
    writing_ = false;
    if (closed_) return;
    if (ec) {
      close();
      return;
    }
    sending_.clear();
    write();
    // Reading may have paused for back-pressure; the parser may hold more
    // complete commands than were dispatched.
    if (!closing_ && !reading_ && parser_.buffered() > 0 &&
        replies_.size() < server_.options_.max_pending) {
      on_read({}, 0);
    } else {
      read();
    }
  }

  RedisServer& server_;
  const std::uint64_t id_;
  tcp::socket socket_;
  Parser parser_;
  std::array<char, 64 * 1024> in_{};
  std::deque<Slot> replies_;  // replies_[i] answers command number base_ + i
  std::deque<std::pair<Plan, std::uint64_t>> waiting_;  // (request, its reply index)
  Plan::Kind inflight_kind_ = Plan::Kind::kWrite;
  std::size_t inflight_ = 0;  // submitted, not yet completed
  std::uint64_t base_ = 0;
  std::string out_;      // ready to write
  std::string sending_;  // being written
  bool reading_ = false;
  bool writing_ = false;
  bool closing_ = false;  // close once every reply is written
  bool closed_ = false;
};

RedisServer::RedisServer(asio::io_context& io, ServerOptions options, Submit submit)
    : io_(io),
      options_(std::move(options)),
      submit_(std::move(submit)),
      acceptor_(io),
      retry_timer_(io) {}

RedisServer::~RedisServer() { stop(); }

bool RedisServer::start(std::string* error) {
  if (!net::listen_on(acceptor_, options_.listen, error)) return false;
  accept();
  return true;
}

void RedisServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  asio::error_code ignored;
  acceptor_.close(ignored);
  retry_timer_.cancel();
  auto sessions = sessions_;  // close() erases from sessions_
  for (auto& [id, s] : sessions) s->close();
}

std::uint16_t RedisServer::port() const {
  asio::error_code ec;
  auto ep = acceptor_.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void RedisServer::accept() {
  acceptor_.async_accept([this](const asio::error_code& ec, tcp::socket socket) {
    if (stopped_ || !acceptor_.is_open()) return;
    if (ec) {
      // EMFILE and the like: try again a little later, without spinning.
      spdlog::warn("redis front end: accept failed: {}; retrying in 100 ms", ec.message());
      retry_timer_.expires_after(std::chrono::milliseconds(100));
      retry_timer_.async_wait([this](const asio::error_code& e) {
        if (!e && !stopped_) accept();
      });
      return;
    }
    if (sessions_.size() >= options_.max_connections) {
      std::string out;
      error(&out, "ERR max number of clients reached");
      asio::error_code ignored;
      asio::write(socket, asio::buffer(out), ignored);
      socket.close(ignored);
    } else {
      const std::uint64_t id = next_id_++;
      auto s = std::make_shared<Session>(*this, id, std::move(socket));
      sessions_[id] = s;
      s->start();
    }
    accept();
  });
}

}  // namespace synod::resp
