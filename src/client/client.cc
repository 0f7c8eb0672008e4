// The client library's engine: one asio thread, one connection per node, calls
// that retry across nodes until their deadline.
//
// Everything below Client (Impl's state, the links, the calls) lives on the I/O
// thread; the public functions only build a Call and post it there. A call is
// a sequence of attempts. Each attempt has its own request_id, goes to one node
// and ends with that node's answer, a lost connection, or no answer within
// attempt_timeout (plus a grace for the node's own TIMEOUT to arrive). Only a
// final answer (OK, BAD_REQUEST, BACKEND_ERROR) ends a call before its
// deadline; a final answer to an EARLIER attempt of the call counts too (a slow
// node may answer after the client moved on; for a write that answer is the
// write's true outcome, whichever attempt carried it).
//
// Routing. Writes and linearizable reads go to the leader when the client knows
// it (from the status every node was asked for at connect, or a NOT_LEADER
// hint), else to the nodes in turn; a follower forwards (or, with
// prefer_redirect, answers NOT_LEADER with the leader's address). Local reads
// go to a node the caller named (the leader if it is one of them), so a caller
// that names one node reads that node's state.
#include "synod/client.hpp"

#include <algorithm>
#include <asio.hpp>
#include <atomic>
#include <future>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "client/kv_ops.h"
#include "common/check.h"
#include "net/address.h"
#include "net/client_connection.h"

namespace synod::client {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::size_t kNoLink = static_cast<std::size_t>(-1);
// How long past an attempt's server-side timeout the client waits for the
// node's own TIMEOUT answer before it gives up on that node (a follower that
// forwarded the request answers up to 200 ms after its timeout).
constexpr milliseconds kResponseGrace{250};
// Between rounds of "no leader yet" (UNAVAILABLE) or endless redirects.
constexpr milliseconds kCallBackoffMin{20};
constexpr milliseconds kCallBackoffMax{400};
// Before a node whose connection failed is tried again.
constexpr milliseconds kLinkBackoffMin{50};
constexpr milliseconds kLinkBackoffMax{1000};
// Redirects a call follows at once before it starts to back off (leadership
// changing under it makes nodes point at each other for a moment).
constexpr int kFreeRedirects = 3;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}


std::uint64_t random_client_id() {
  std::random_device rd;
  std::uint64_t x = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  x ^= static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
  for (std::uint64_t id = splitmix64(x);; id = splitmix64(id)) {
    if (id != 0) return id;
  }
}

std::uint64_t wall_micros() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

long long ms_of(Clock::duration d) { return std::chrono::duration_cast<milliseconds>(d).count(); }

Result error_result(Code code, std::string message) {
  Result r;
  r.code = code;
  r.message = std::move(message);
  return r;
}

// A node: its address and the one connection to it.
struct Link {
  std::string address;
  bool configured = false;    // named by the caller (else learned from a hint or a status)
  std::uint32_t node_id = 0;  // 0 until a status or a hint names it
  std::unique_ptr<net::ClientConnection> conn;
  std::uint64_t generation = 0;     // of conn; handlers of older connections are ignored
  bool connected = false;           // conn's TCP connection came up
  Clock::time_point retry_after{};  // not tried before this (after a failure)
  milliseconds backoff{0};
  std::string last_error;
  std::unordered_set<std::uint64_t> in_flight;  // request ids sent on conn
};

// One exactly-once session of the pool (see client.hpp).
struct Lane {
  std::uint64_t client_id = 0;
  std::uint64_t next_sequence = 0;
};

struct Call {
  bool write = false;
  bool linearizable = false;
  proto::ClientRequest request;  // the op; request_id and timeout_ms are set per attempt
  Clock::time_point started;
  Clock::time_point deadline;
  Client::Callback done;
  std::unique_ptr<asio::steady_timer> timer;
  std::uint64_t timer_generation = 0;
  std::uint64_t current = 0;  // request id of the attempt in progress; 0: none
  std::size_t current_link = kNoLink;
  std::vector<std::uint64_t> attempts;  // every request id this call registered
  int redirects = 0;
  milliseconds backoff{0};
  Code last_code = Code::kUnavailable;
  std::string last_error;
  bool answered = false;       // some node answered some attempt
  bool maybe_applied = false;  // a write reached a node and its fate is unknown
  bool pooled_lane = false;
  Lane lane;
  bool finished = false;
};

struct StatusCall {
  std::vector<NodeStatus> nodes;
  std::vector<std::size_t> links;  // link of each entry
  std::size_t pending = 0;
  bool second_round = false;
  bool discovery = false;  // the connect-time probe: ends at the first leader found
  Clock::time_point deadline;
  std::unique_ptr<asio::steady_timer> timer;
  std::vector<std::uint64_t> ids;
  std::function<void(std::vector<NodeStatus>)> done;
  bool finished = false;
};

struct Attempt {
  std::shared_ptr<Call> call;
  std::shared_ptr<StatusCall> status;
  std::size_t status_index = 0;
  std::size_t link = kNoLink;
};

}  // namespace

struct Client::Impl {
  Impl(Options opt, std::vector<std::string> addresses)
      : options(std::move(opt)),
        cluster_id(net::cluster_id_of(options.cluster)),
        work(asio::make_work_guard(io)),
        sequence_base(wall_micros()) {
    if (options.client_id == 0) options.client_id = random_client_id();
    for (std::string& a : addresses) {
      auto l = std::make_unique<Link>();
      l->address = std::move(a);
      l->configured = true;
      links.push_back(std::move(l));
    }
  }

  ~Impl() { close(); }

  void start() {
    asio::post(io, [this] { start_discovery(); });
    thread = std::thread([this] { io.run(); });
    io_thread = thread.get_id();
  }

  // ---------------------------------------------------------------- any thread

  void close() {
    {
      std::lock_guard lock(mutex);
      if (closed) return;
      closed = true;
      SYNOD_CHECK_MSG(std::this_thread::get_id() != io_thread,
                      "synod::client::Client closed from its own callback");
      asio::post(io, [this] { shutdown(); });
    }
    work.reset();
    if (thread.joinable()) thread.join();
    // Handlers still queued (cancelled timers, closed sockets) run here, on
    // this thread, now that the I/O thread is gone; they only release memory.
    io.restart();
    io.poll();
  }

  // Queues a call on the I/O thread; after close() ends it at once instead.
  void submit(std::shared_ptr<Call> call) {
    {
      std::lock_guard lock(mutex);
      if (!closed) {
        asio::post(io, [this, call] { start_call(call); });
        return;
      }
    }
    call->done(error_result(Code::kUnavailable, "client closed"));
  }

  Result run_sync(std::shared_ptr<Call> call) {
    if (std::this_thread::get_id() == io_thread) {
      return error_result(Code::kBadRequest,
                          "a synchronous call from a client callback would dead-lock; use the "
                          "asynchronous calls there");
    }
    auto promise = std::make_shared<std::promise<Result>>();
    std::future<Result> future = promise->get_future();
    call->done = [promise](Result r) { promise->set_value(std::move(r)); };
    submit(std::move(call));
    return future.get();
  }

  // Builds a call; nullptr with *bad when the arguments are invalid.
  std::shared_ptr<Call> make_call(bool write, const CallOptions& co, Result* bad) {
    if (co.timeout.count() < 0) {
      *bad = error_result(Code::kBadRequest, "the call's timeout must not be negative");
      return nullptr;
    }
    auto call = std::make_shared<Call>();
    call->write = write;
    call->started = Clock::now();
    call->deadline = call->started + (co.timeout.count() > 0 ? co.timeout : options.timeout);
    if (!write) {
      call->linearizable =
          co.consistency.value_or(options.read_consistency) == Consistency::kLinearizable;
    }
    return call;
  }

  std::shared_ptr<Call> make_write(std::string_view backend, std::string_view payload,
                                   const CallOptions& co, Result* bad) {
    auto call = make_call(true, co, bad);
    if (!call) return nullptr;
    proto::WriteRequest* w = call->request.mutable_write();
    w->set_backend(std::string(backend));
    w->set_payload(std::string(payload));
    w->set_no_forward(options.prefer_redirect);
    if (co.client_id != 0 && co.sequence != 0) {
      w->set_client_id(co.client_id);
      w->set_sequence(co.sequence);
    } else {
      call->pooled_lane = true;  // identity assigned on the I/O thread
    }
    return call;
  }

  std::shared_ptr<Call> make_read(std::string_view backend, std::string_view payload,
                                  const CallOptions& co, Result* bad) {
    auto call = make_call(false, co, bad);
    if (!call) return nullptr;
    proto::ReadRequest* r = call->request.mutable_read();
    r->set_backend(std::string(backend));
    r->set_payload(std::string(payload));
    r->set_consistency(call->linearizable ? proto::LINEARIZABLE : proto::LOCAL);
    r->set_no_forward(options.prefer_redirect);
    return call;
  }

  // ---------------------------------------------------------------- I/O thread: calls

  void start_call(const std::shared_ptr<Call>& call) {
    if (shutting_down) {
      call->finished = true;
      call->done(error_result(Code::kUnavailable, "client closed"));
      return;
    }
    call->timer = std::make_unique<asio::steady_timer>(io);
    if (call->pooled_lane) {
      if (free_lanes.empty()) {
        Lane lane;
        lane.client_id = lanes_created == 0
                             ? options.client_id
                             : splitmix64(options.client_id ^ splitmix64(lanes_created));
        lane.next_sequence = sequence_base;
        ++lanes_created;
        free_lanes.push_back(lane);
      }
      call->lane = free_lanes.back();
      free_lanes.pop_back();
      proto::WriteRequest* w = call->request.mutable_write();
      w->set_client_id(call->lane.client_id);
      w->set_sequence(call->lane.next_sequence++);
    }
    calls.insert(call);
    if (call->request.ByteSizeLong() + 64 > net::kDefaultMaxFrameBytes) {
      finish(call, error_result(Code::kBadRequest, "the request is larger than a frame may be (" +
                                                       std::to_string(net::kDefaultMaxFrameBytes) +
                                                       " bytes)"));
      return;
    }
    if (discovering) {
      // Sent once the leader is known (or the probe gave up); the timer ends
      // the call at its deadline should the probe outlast it.
      held.push_back(call);
      arm(call, call->deadline, 0);
      return;
    }
    start_attempt(call);
  }

  void start_attempt(const std::shared_ptr<Call>& call) {
    if (call->finished) return;
    const Clock::time_point now = Clock::now();
    if (now >= call->deadline) {
      finish_expired(call);
      return;
    }
    // At most one pass over the nodes: each failure to even queue the request
    // puts that node in backoff, so the next pick is another node.
    for (std::size_t tries = 0; tries <= links.size(); ++tries) {
      Clock::time_point wait_until = call->deadline;
      const std::size_t link = pick_link(*call, now, &wait_until);
      if (link == kNoLink) {
        arm(call, std::min(wait_until, call->deadline), /*attempt=*/0);
        return;
      }
      const std::uint64_t id = next_request_id++;
      const auto budget = std::min<Clock::duration>(options.attempt_timeout, call->deadline - now);
      call->request.set_request_id(id);
      call->request.set_timeout_ms(
          static_cast<std::uint32_t>(std::max<long long>(1, ms_of(budget))));
      std::string error;
      if (!send(link, call->request, &error)) {
        link_failed(link, error);
        call->last_error = error;
        continue;
      }
      attempts[id] = Attempt{call, nullptr, 0, link};
      links[link]->in_flight.insert(id);
      call->attempts.push_back(id);
      call->current = id;
      call->current_link = link;
      arm(call, std::min(now + budget + kResponseGrace, call->deadline), id);
      return;
    }
    arm(call, std::min(now + kLinkBackoffMin, call->deadline), 0);
  }

  // Writes and linearizable reads: the leader, else the nodes in turn. Local
  // reads: a node the caller named. kNoLink (with *wait_until, when some node
  // comes out of backoff) when every candidate is in backoff.
  std::size_t pick_link(const Call& call, Clock::time_point now, Clock::time_point* wait_until) {
    const bool local = !call.write && !call.linearizable;
    auto usable = [&](std::size_t i) {
      return links[i]->retry_after <= now && (!local || links[i]->configured);
    };
    if (leader != kNoLink && usable(leader)) return leader;
    if (local && read_link != kNoLink && usable(read_link)) return read_link;
    const std::size_t n = links.size();
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = (next_link + k) % n;
      if (usable(i)) {
        next_link = i;
        return i;
      }
    }
    for (const auto& l : links) {
      if (local && !l->configured) continue;
      *wait_until = std::min(*wait_until, l->retry_after);
    }
    return kNoLink;
  }

  // Arms the call's one timer. attempt != 0: the attempt with that request id
  // gets no answer in time; 0: retry (after a backoff) or the deadline.
  void arm(const std::shared_ptr<Call>& call, Clock::time_point at, std::uint64_t attempt) {
    const std::uint64_t generation = ++call->timer_generation;
    call->timer->expires_at(at);
    call->timer->async_wait([this, call, generation, attempt](const asio::error_code& ec) {
      if (ec || call->finished || generation != call->timer_generation) return;
      if (attempt != 0 && call->current == attempt) {
        // No answer in time: that node is paused or cut off. Try another; the
        // request stays registered, so a late final answer still counts.
        const std::size_t link = call->current_link;
        note_unknown(call);
        call->last_code = Code::kTimeout;
        call->last_error = links[link]->address + " did not answer within " +
                           std::to_string(options.attempt_timeout.count()) + " ms";
        call->current = 0;
        link_failed(link, call->last_error);
      }
      start_attempt(call);
    });
  }

  // The write reached a node and did not come back with a definite refusal.
  static void note_unknown(const std::shared_ptr<Call>& call) {
    if (call->write) call->maybe_applied = true;
  }

  // Retries after a backoff that grows with each round.
  void retry_later(const std::shared_ptr<Call>& call) {
    call->backoff =
        call->backoff.count() == 0 ? kCallBackoffMin : std::min(call->backoff * 2, kCallBackoffMax);
    arm(call, std::min(Clock::now() + call->backoff, call->deadline), 0);
  }

  void on_call_response(const std::shared_ptr<Call>& call, std::size_t link, std::uint64_t id,
                        proto::ClientResponse&& r) {
    if (call->finished) return;
    call->answered = true;
    const auto code = r.code();
    const bool final = code == proto::ClientResponse::OK ||
                       code == proto::ClientResponse::BAD_REQUEST ||
                       code == proto::ClientResponse::BACKEND_ERROR;
    if (final) {
      if (code == proto::ClientResponse::OK) {
        // A node that served a local read serves the next ones too.
        if (!call->write && !call->linearizable && links[link]->configured) read_link = link;
        // With prefer_redirect nothing is forwarded: whoever applied the write leads.
        if (call->write && options.prefer_redirect) leader = link;
      }
      finish(call, result_from_response(r, links[link]->address));
      return;
    }
    if (id != call->current) return;  // an earlier attempt's retryable answer: stale
    call->current = 0;
    switch (code) {
      case proto::ClientResponse::NOT_LEADER: {
        const std::size_t to =
            r.leader_address().empty() ? kNoLink : link_for(r.leader_address(), r.leader_hint());
        call->last_code = Code::kUnavailable;
        call->last_error = r.error();
        if (to == kNoLink || to == link) {
          forget_leader(link);
          advance_from(link);
          retry_later(call);
          return;
        }
        leader = to;
        if (++call->redirects > kFreeRedirects) {
          retry_later(call);
        } else {
          start_attempt(call);
        }
        return;
      }
      case proto::ClientResponse::TIMEOUT:
        // The outcome is unknown; the retry carries the same (client id, sequence).
        note_unknown(call);
        call->last_code = Code::kTimeout;
        call->last_error = links[link]->address + ": " + r.error();
        forget_leader(link);
        advance_from(link);
        start_attempt(call);
        return;
      case proto::ClientResponse::UNAVAILABLE:
      default:
        call->last_code = Code::kUnavailable;
        call->last_error = links[link]->address + ": " + r.error();
        forget_leader(link);
        advance_from(link);
        retry_later(call);
        return;
    }
  }

  void finish_expired(const std::shared_ptr<Call>& call) {
    const std::string after = std::to_string(ms_of(call->deadline - call->started)) + " ms";
    std::string last = call->last_error;
    if (!call->answered) {
      // No node said anything: name each node's trouble.
      std::string all;
      for (const auto& l : links) {
        if (!all.empty()) all += "; ";
        all += l->last_error.empty() ? l->address + ": no answer" : l->last_error;
      }
      last = "no node answered (" + all + ")";
      if (!call->maybe_applied && call->last_code != Code::kTimeout) {
        finish(call, error_result(Code::kUnavailable,
                                  "no node reachable within " + after + " (" + all + ")"));
        return;
      }
    }
    if (last.empty()) last = "no answer";
    if (call->maybe_applied) {
      finish(call, error_result(Code::kTimeout,
                                "timed out after " + after +
                                    "; the write may or may not have been applied (" + last + ")"));
    } else if (call->last_code == Code::kTimeout) {
      finish(call, error_result(Code::kTimeout, "timed out after " + after + " (" + last + ")"));
    } else {
      finish(call,
             error_result(Code::kUnavailable, "cluster unavailable for " + after + ": " + last));
    }
  }

  void finish(const std::shared_ptr<Call>& call, Result result) {
    if (call->finished) return;
    call->finished = true;
    ++call->timer_generation;
    if (call->timer) call->timer->cancel();
    for (std::uint64_t id : call->attempts) {
      auto it = attempts.find(id);
      if (it == attempts.end()) continue;
      links[it->second.link]->in_flight.erase(id);
      attempts.erase(it);
    }
    if (call->pooled_lane) free_lanes.push_back(call->lane);
    calls.erase(call);
    if (call->done) {
      Callback done = std::move(call->done);
      done(std::move(result));
    }
  }

  // ---------------------------------------------------------------- I/O thread: links

  // The link of a node named by a hint or a status: matched by id, then by
  // address; a new link when neither is known.
  std::size_t link_for(const std::string& address, std::uint32_t node_id) {
    if (node_id != 0) {
      for (std::size_t i = 0; i < links.size(); ++i) {
        if (links[i]->node_id == node_id) return i;
      }
    }
    for (std::size_t i = 0; i < links.size(); ++i) {
      if (links[i]->address == address) {
        if (node_id != 0 && links[i]->node_id == 0) links[i]->node_id = node_id;
        return i;
      }
    }
    if (!net::parse_host_port(address, nullptr)) return kNoLink;
    auto l = std::make_unique<Link>();
    l->address = address;
    l->node_id = node_id;
    links.push_back(std::move(l));
    return links.size() - 1;
  }

  void forget_leader(std::size_t link) {
    if (leader == link) leader = kNoLink;
    if (read_link == link) read_link = kNoLink;
  }

  void advance_from(std::size_t link) {
    if (next_link == link) next_link = (link + 1) % links.size();
  }

  // A node failed (could not connect, lost the connection, did not answer):
  // not tried again for a backoff that doubles with each failure in a row.
  void link_failed(std::size_t link, const std::string& error) {
    Link& l = *links[link];
    l.last_error = error;
    l.backoff = l.backoff.count() == 0 ? kLinkBackoffMin : std::min(l.backoff * 2, kLinkBackoffMax);
    l.retry_after = Clock::now() + l.backoff;
    forget_leader(link);
    advance_from(link);
  }

  bool send(std::size_t link, const proto::ClientRequest& request, std::string* error) {
    Link& l = *links[link];
    if (!l.conn || !l.conn->is_open()) {
      l.conn.reset();
      l.connected = false;
      const std::uint64_t generation = ++l.generation;
      net::ClientConnectionOptions o;
      o.cluster_id = cluster_id;
      o.connect_timeout = options.connect_timeout;
      net::ClientConnectionHandlers h;
      h.on_connected = [this, link, generation] {
        if (links[link]->generation == generation) links[link]->connected = true;
      };
      h.on_response = [this, link, generation](proto::ClientResponse&& r) {
        if (links[link]->generation == generation) on_response(link, std::move(r));
      };
      h.on_closed = [this, link, generation](std::string reason) {
        if (links[link]->generation == generation) on_closed(link, std::move(reason));
      };
      l.conn = std::make_unique<net::ClientConnection>(io, o, std::move(h));
      if (!l.conn->connect(l.address, error)) {
        l.conn.reset();
        *error = l.address + ": " + *error;
        return false;
      }
    }
    if (!l.conn->send(request)) {
      *error = l.address + ": too many requests queued on the connection";
      return false;
    }
    return true;
  }

  void on_response(std::size_t link, proto::ClientResponse&& r) {
    Link& l = *links[link];
    l.backoff = milliseconds{0};
    l.last_error.clear();
    const std::uint64_t id = r.request_id();
    auto it = attempts.find(id);
    if (it == attempts.end()) return;  // a call that already ended
    Attempt a = std::move(it->second);
    attempts.erase(it);
    l.in_flight.erase(id);
    if (a.status) {
      on_status_response(a.status, a.status_index, link, std::move(r));
    } else {
      on_call_response(a.call, link, id, std::move(r));
    }
  }

  void on_closed(std::size_t link, std::string reason) {
    Link& l = *links[link];
    const bool was_connected = l.connected;
    l.conn.reset();  // allowed from its own handler
    l.connected = false;
    link_failed(link, reason);
    std::unordered_set<std::uint64_t> ids;
    ids.swap(l.in_flight);
    for (std::uint64_t id : ids) {
      auto it = attempts.find(id);
      if (it == attempts.end()) continue;
      Attempt a = std::move(it->second);
      attempts.erase(it);
      if (a.status) {
        status_entry_failed(a.status, a.status_index, reason);
        continue;
      }
      const std::shared_ptr<Call>& call = a.call;
      if (call->finished || call->current != id) continue;
      // A request on a connection that was up may have been delivered.
      if (was_connected) note_unknown(call);
      call->current = 0;
      call->last_code = Code::kUnavailable;
      call->last_error = reason;
      start_attempt(call);
    }
  }

  // ---------------------------------------------------------------- I/O thread: status

  void start_discovery() {
    discovering = true;
    auto s = std::make_shared<StatusCall>();
    s->discovery = true;
    s->deadline = Clock::now() + options.attempt_timeout;
    s->done = [this](std::vector<NodeStatus>) { end_discovery(); };
    start_status(s);
  }

  void end_discovery() {
    if (!discovering) return;
    discovering = false;
    std::vector<std::shared_ptr<Call>> waiting;
    waiting.swap(held);
    for (const auto& call : waiting) start_attempt(call);
  }

  void start_status(const std::shared_ptr<StatusCall>& s) {
    if (shutting_down) {
      s->finished = true;
      s->done({});
      return;
    }
    s->timer = std::make_unique<asio::steady_timer>(io);
    status_calls.insert(s);
    for (std::size_t i = 0; i < links.size(); ++i) query_status(s, i);
    s->timer->expires_at(s->deadline);
    s->timer->async_wait([this, s](const asio::error_code& ec) {
      if (!ec) finish_status(s);
    });
    maybe_finish_status(s);
  }

  void query_status(const std::shared_ptr<StatusCall>& s, std::size_t link) {
    const std::size_t index = s->nodes.size();
    NodeStatus entry;
    entry.address = links[link]->address;
    entry.id = links[link]->node_id;
    s->nodes.push_back(std::move(entry));
    s->links.push_back(link);
    proto::ClientRequest req;
    const std::uint64_t id = next_request_id++;
    req.set_request_id(id);
    req.mutable_status();
    std::string error;
    // A status asks every node, also one in backoff: the caller wants to know.
    if (!send(link, req, &error)) {
      s->nodes[index].error = error;
      return;
    }
    ++s->pending;
    attempts[id] = Attempt{nullptr, s, index, link};
    links[link]->in_flight.insert(id);
    s->ids.push_back(id);
  }

  void on_status_response(const std::shared_ptr<StatusCall>& s, std::size_t index, std::size_t link,
                          proto::ClientResponse&& r) {
    if (s->finished) return;
    --s->pending;
    NodeStatus& n = s->nodes[index];
    if (r.code() != proto::ClientResponse::OK || !r.has_status()) {
      n.error = r.error().empty() ? "the node refused the status request" : r.error();
      maybe_finish_status(s);
      return;
    }
    const proto::NodeStatus& p = r.status();
    n.reachable = true;
    n.id = p.id();
    n.role = p.role();
    n.ballot = Ballot{p.ballot().round(), p.ballot().node()};
    n.promised = Ballot{p.promised().round(), p.promised().node()};
    n.leader = p.leader();
    n.commit = p.commit();
    n.applied = p.applied();
    n.known_commit = p.known_commit();
    n.catching_up = p.catching_up();
    for (const auto& peer : p.peers()) {
      n.peers.push_back(PeerStatus{peer.id(), peer.address(), peer.connected()});
    }
    n.syncs = p.syncs();
    n.bytes_synced = p.bytes_synced();
    n.backends.assign(p.backends().begin(), p.backends().end());
    n.apply_error = p.apply_error();
    if (n.id != 0) {
      // Another link may carry this id from an older guess; the answer wins.
      for (auto& l : links) {
        if (l->node_id == n.id) l->node_id = 0;
      }
      links[link]->node_id = n.id;
    }
    if (n.role == "leader") leader = link;
    if (s->discovery && n.role == "leader") {
      finish_status(s);
      return;
    }
    maybe_finish_status(s);
  }

  void status_entry_failed(const std::shared_ptr<StatusCall>& s, std::size_t index,
                           const std::string& reason) {
    if (s->finished) return;
    --s->pending;
    s->nodes[index].error = reason;
    maybe_finish_status(s);
  }

  void maybe_finish_status(const std::shared_ptr<StatusCall>& s) {
    if (s->finished || s->pending > 0) return;
    if (!s->second_round) {
      // Ask the nodes the answers name that nobody asked yet (a peer the caller
      // did not list), once.
      s->second_round = true;
      std::set<std::uint32_t> known;
      for (const auto& n : s->nodes) {
        if (n.reachable) known.insert(n.id);
      }
      std::vector<std::pair<std::uint32_t, std::string>> more;
      for (const auto& n : s->nodes) {
        for (const auto& peer : n.peers) {
          if (peer.id == 0 || known.contains(peer.id)) continue;
          known.insert(peer.id);
          more.emplace_back(peer.id, peer.address);
        }
      }
      for (const auto& [id, address] : more) {
        bool asked = false;
        for (auto& n : s->nodes) {
          if (n.address == address) {
            n.id = id;  // asked, did not answer: now it has a name
            asked = true;
          }
        }
        if (asked) continue;
        const std::size_t link = link_for(address, id);
        if (link != kNoLink) query_status(s, link);
      }
      if (s->pending > 0) return;
    }
    finish_status(s);
  }

  void finish_status(const std::shared_ptr<StatusCall>& s) {
    if (s->finished) return;
    s->finished = true;
    if (s->timer) s->timer->cancel();
    for (std::uint64_t id : s->ids) {
      auto it = attempts.find(id);
      if (it == attempts.end()) continue;
      links[it->second.link]->in_flight.erase(id);
      attempts.erase(it);
    }
    status_calls.erase(s);
    for (auto& n : s->nodes) {
      if (!n.reachable && n.error.empty()) n.error = "no answer in time";
    }
    // No node said it leads: follow what the followers say.
    if (leader == kNoLink) {
      for (const auto& n : s->nodes) {
        if (!n.reachable || n.leader == 0) continue;
        for (const auto& peer : n.peers) {
          if (peer.id == n.leader) leader = link_for(peer.address, peer.id);
        }
        if (leader != kNoLink) break;
      }
    }
    std::vector<NodeStatus> nodes = std::move(s->nodes);
    std::stable_sort(nodes.begin(), nodes.end(), [](const NodeStatus& a, const NodeStatus& b) {
      if ((a.id == 0) != (b.id == 0)) return a.id != 0;
      return a.id < b.id;
    });
    auto done = std::move(s->done);
    if (done) done(std::move(nodes));
  }

  // ---------------------------------------------------------------- shutdown

  void shutdown() {
    shutting_down = true;
    discovering = false;
    held.clear();
    std::vector<std::shared_ptr<Call>> live(calls.begin(), calls.end());
    for (const auto& call : live) finish(call, error_result(Code::kUnavailable, "client closed"));
    std::vector<std::shared_ptr<StatusCall>> statuses(status_calls.begin(), status_calls.end());
    for (const auto& s : statuses) finish_status(s);
    for (auto& l : links) {
      ++l->generation;
      l->conn.reset();
    }
    io.stop();
  }

  // Immutable after construction.
  Options options;
  const std::uint64_t cluster_id;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::thread thread;
  std::thread::id io_thread;
  const std::uint64_t sequence_base;

  std::mutex mutex;
  bool closed = false;  // guarded by mutex

  // I/O thread only.
  std::vector<std::unique_ptr<Link>> links;
  std::size_t leader = kNoLink;
  std::size_t read_link = kNoLink;
  std::size_t next_link = 0;
  std::uint64_t next_request_id = 1;
  std::unordered_map<std::uint64_t, Attempt> attempts;
  std::set<std::shared_ptr<Call>> calls;
  std::set<std::shared_ptr<StatusCall>> status_calls;
  std::vector<Lane> free_lanes;
  std::uint64_t lanes_created = 0;
  bool discovering = false;
  std::vector<std::shared_ptr<Call>> held;
  bool shutting_down = false;
};

// ------------------------------------------------------------------ Client

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Client::~Client() {
  if (impl_) impl_->close();
}

std::unique_ptr<Client> Client::connect(std::vector<std::string> nodes, Options options,
                                        std::string* error) {
  auto fail = [error](std::string message) -> std::unique_ptr<Client> {
    if (error != nullptr) *error = std::move(message);
    return nullptr;
  };
  std::vector<std::string> addresses;
  for (const std::string& item : nodes) {
    std::size_t start = 0;
    while (start <= item.size()) {
      std::size_t comma = item.find(',', start);
      if (comma == std::string::npos) comma = item.size();
      std::string a = item.substr(start, comma - start);
      a.erase(0, a.find_first_not_of(" \t"));
      a.erase(a.find_last_not_of(" \t") + 1);
      if (!a.empty()) {
        std::string why;
        if (!net::parse_host_port(a, &why)) return fail("bad node address: " + why);
        if (std::find(addresses.begin(), addresses.end(), a) == addresses.end()) {
          addresses.push_back(a);
        }
      }
      start = comma + 1;
    }
  }
  if (addresses.empty()) return fail("no node address given");
  if (options.timeout.count() <= 0) return fail("the timeout must be positive");
  if (options.attempt_timeout.count() <= 0) return fail("the attempt timeout must be positive");
  if (options.connect_timeout.count() <= 0) return fail("the connect timeout must be positive");
  if (options.cluster.empty()) return fail("the cluster name must not be empty");
  if (options.kv_backend.empty()) return fail("the key-value backend name must not be empty");
  auto impl = std::make_unique<Impl>(std::move(options), std::move(addresses));
  impl->start();
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

void Client::close() { impl_->close(); }

std::uint64_t Client::client_id() const { return impl_->options.client_id; }

Result Client::write(std::string_view backend, std::string_view payload, const CallOptions& call) {
  Result bad;
  auto c = impl_->make_write(backend, payload, call, &bad);
  return c ? impl_->run_sync(std::move(c)) : bad;
}

Result Client::read(std::string_view backend, std::string_view payload, const CallOptions& call) {
  Result bad;
  auto c = impl_->make_read(backend, payload, call, &bad);
  return c ? impl_->run_sync(std::move(c)) : bad;
}

void Client::write_async(std::string_view backend, std::string_view payload,
                         const CallOptions& call, Callback done) {
  Result bad;
  auto c = impl_->make_write(backend, payload, call, &bad);
  if (!c) {
    done(std::move(bad));
    return;
  }
  c->done = std::move(done);
  impl_->submit(std::move(c));
}

void Client::read_async(std::string_view backend, std::string_view payload, const CallOptions& call,
                        Callback done) {
  Result bad;
  auto c = impl_->make_read(backend, payload, call, &bad);
  if (!c) {
    done(std::move(bad));
    return;
  }
  c->done = std::move(done);
  impl_->submit(std::move(c));
}

Result Client::put(std::string_view key, std::string_view value, const CallOptions& call) {
  return decode_kv_result(KvOp::kPut,
                          write(impl_->options.kv_backend, encode_kv_put(key, value), call));
}

Result Client::get(std::string_view key, const CallOptions& call) {
  return decode_kv_result(KvOp::kGet, read(impl_->options.kv_backend, encode_kv_get(key), call));
}

Result Client::get(std::string_view key, Consistency consistency, const CallOptions& call) {
  CallOptions c = call;
  c.consistency = consistency;
  return get(key, c);
}

Result Client::del(std::string_view key, const CallOptions& call) {
  return decode_kv_result(KvOp::kDelete,
                          write(impl_->options.kv_backend, encode_kv_delete(key), call));
}

Result Client::cas(std::string_view key, std::optional<std::string_view> expected,
                   std::string_view value, const CallOptions& call) {
  return decode_kv_result(
      KvOp::kCas, write(impl_->options.kv_backend, encode_kv_cas(key, expected, value), call));
}

Result Client::incr(std::string_view key, std::int64_t delta, const CallOptions& call) {
  return decode_kv_result(KvOp::kIncrement,
                          write(impl_->options.kv_backend, encode_kv_increment(key, delta), call));
}

Result Client::keys(std::string_view prefix, std::uint32_t limit, const CallOptions& call) {
  return decode_kv_result(KvOp::kList,
                          read(impl_->options.kv_backend, encode_kv_list(prefix, limit), call));
}

std::vector<NodeStatus> Client::status(std::chrono::milliseconds timeout) {
  Impl& impl = *impl_;
  auto s = std::make_shared<StatusCall>();
  s->deadline = Clock::now() + (timeout.count() > 0 ? timeout : impl.options.timeout);
  if (std::this_thread::get_id() == impl.io_thread) return {};
  auto promise = std::make_shared<std::promise<std::vector<NodeStatus>>>();
  auto future = promise->get_future();
  s->done = [promise](std::vector<NodeStatus> nodes) { promise->set_value(std::move(nodes)); };
  {
    std::lock_guard lock(impl.mutex);
    if (impl.closed) return {};
    asio::post(impl.io, [&impl, s] { impl.start_status(s); });
  }
  return future.get();
}

}  // namespace synod::client
