// The client against fake nodes: in-process TCP servers that speak the client
// protocol and answer as a test scripts them (redirect, time out, stay silent,
// drop the connection), so routing and retries are checked without a cluster.
#include "synod/client.hpp"

#include <gtest/gtest.h>

#include <asio.hpp>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "client/kv_ops.h"
#include "net/frame.h"
#include "proto/kv.pb.h"

namespace synod::client {
namespace {

using asio::ip::tcp;
using std::chrono::milliseconds;

using net::cluster_id_of;

// What a fake node does with one request.
struct Reply {
  enum class What { kAnswer, kSilent, kClose } what = What::kAnswer;
  proto::ClientResponse response;  // request_id is filled in
};

Reply answer(proto::ClientResponse::Code code, std::string error = {}) {
  Reply r;
  r.response.set_code(code);
  r.response.set_error(std::move(error));
  return r;
}

Reply ok_kv(const proto::KvResult& kv) {
  Reply r = answer(proto::ClientResponse::OK);
  r.response.set_result(kv.SerializeAsString());
  r.response.set_slot(1);
  return r;
}

Reply silent() {
  Reply r;
  r.what = Reply::What::kSilent;
  return r;
}

Reply close_connection() {
  Reply r;
  r.what = Reply::What::kClose;
  return r;
}

// A node on 127.0.0.1 with its own thread. handler runs on that thread.
class FakeNode {
 public:
  using Handler = std::function<Reply(const proto::ClientRequest&)>;

  FakeNode(std::uint32_t id, Handler handler)
      : id_(id),
        handler_(std::move(handler)),
        acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~FakeNode() {
    asio::post(io_, [this] {
      asio::error_code ignored;
      acceptor_.close(ignored);
      for (auto& c : conns_) c->socket.close(ignored);
      io_.stop();
    });
    thread_.join();
  }

  std::string address() const {
    return "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
  }
  std::uint32_t id() const { return id_; }

  // Requests received (status requests too), in arrival order.
  std::vector<proto::ClientRequest> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::vector<proto::WriteRequest> writes() {
    std::vector<proto::WriteRequest> out;
    for (const auto& r : requests()) {
      if (r.has_write()) out.push_back(r.write());
    }
    return out;
  }
  int connections() const { return accepted_.load(); }

  // The NodeStatus this node reports.
  void set_status(proto::NodeStatus s) {
    std::lock_guard lock(mutex_);
    status_ = std::move(s);
  }
  proto::NodeStatus status() {
    std::lock_guard lock(mutex_);
    proto::NodeStatus s = status_;
    s.set_id(id_);
    s.set_address(address());
    if (s.role().empty()) s.set_role("follower");
    return s;
  }

 private:
  struct Conn {
    explicit Conn(asio::io_context& io)
        : socket(io), decoder(cluster_id_of("synod"), net::kDefaultMaxFrameBytes) {}
    tcp::socket socket;
    net::FrameDecoder decoder;
    char buf[4096];
    std::deque<std::string> out;
    bool hello = false;
  };

  void accept() {
    auto c = std::make_shared<Conn>(io_);
    acceptor_.async_accept(c->socket, [this, c](const asio::error_code& ec) {
      if (ec) return;
      ++accepted_;
      conns_.insert(c);
      read(c);
      accept();
    });
  }

  void read(const std::shared_ptr<Conn>& c) {
    c->socket.async_read_some(asio::buffer(c->buf),
                              [this, c](const asio::error_code& ec, std::size_t n) {
                                if (ec) {
                                  conns_.erase(c);
                                  return;
                                }
                                c->decoder.feed(c->buf, n);
                                proto::Envelope env;
                                std::string error;
                                while (true) {
                                  auto st = c->decoder.next(&env, &error);
                                  if (st == net::FrameDecoder::Status::kNeedMore) break;
                                  if (st == net::FrameDecoder::Status::kError) {
                                    ADD_FAILURE() << "bad frame from the client: " << error;
                                    drop(c);
                                    return;
                                  }
                                  if (!c->hello) {
                                    EXPECT_TRUE(env.has_hello());
                                    EXPECT_EQ(env.hello().node_id(), 0u);
                                    c->hello = true;
                                    continue;
                                  }
                                  EXPECT_TRUE(env.has_request());
                                  const proto::ClientRequest req = env.request();
                                  {
                                    std::lock_guard lock(mutex_);
                                    requests_.push_back(req);
                                  }
                                  Reply reply;
                                  if (req.has_status()) {
                                    reply = answer(proto::ClientResponse::OK);
                                    *reply.response.mutable_status() = status();
                                    if (status_handler_silent_) reply = silent();
                                  } else {
                                    reply = handler_(req);
                                  }
                                  if (reply.what == Reply::What::kClose) {
                                    drop(c);
                                    return;
                                  }
                                  if (reply.what == Reply::What::kAnswer) {
                                    reply.response.set_request_id(req.request_id());
                                    proto::Envelope e;
                                    *e.mutable_response() = reply.response;
                                    send(c, net::encode_frame(cluster_id_of("synod"), e));
                                  }
                                }
                                read(c);
                              });
  }

  void send(const std::shared_ptr<Conn>& c, std::string frame) {
    c->out.push_back(std::move(frame));
    if (c->out.size() > 1) return;
    write(c);
  }
  void write(const std::shared_ptr<Conn>& c) {
    asio::async_write(c->socket, asio::buffer(c->out.front()),
                      [this, c](const asio::error_code& ec, std::size_t) {
                        if (ec) return;
                        c->out.pop_front();
                        if (!c->out.empty()) write(c);
                      });
  }
  void drop(const std::shared_ptr<Conn>& c) {
    asio::error_code ignored;
    c->socket.close(ignored);
    conns_.erase(c);
  }

 public:
  std::atomic<bool> status_handler_silent_{false};

 private:
  std::uint32_t id_;
  Handler handler_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::set<std::shared_ptr<Conn>> conns_;
  std::atomic<int> accepted_{0};
  std::mutex mutex_;
  std::vector<proto::ClientRequest> requests_;
  proto::NodeStatus status_;
};

Reply put_ok(const proto::ClientRequest&) { return ok_kv(proto::KvResult()); }

// A port nothing listens on.
std::string dead_address() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = a.local_endpoint().port();
  a.close();
  return "127.0.0.1:" + std::to_string(port);
}

std::unique_ptr<Client> connect(std::vector<std::string> nodes, Options o = {}) {
  std::string error;
  auto c = Client::connect(std::move(nodes), std::move(o), &error);
  EXPECT_NE(c, nullptr) << error;
  return c;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(Client, ConnectChecksArguments) {
  std::string error;
  EXPECT_EQ(Client::connect({}, {}, &error), nullptr);
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(Client::connect({"nocolon"}, {}, &error), nullptr);
  EXPECT_NE(error.find("nocolon"), std::string::npos);
  EXPECT_EQ(Client::connect({"a:1,b:99999"}, {}, &error), nullptr);
  Options bad;
  bad.timeout = milliseconds(0);
  EXPECT_EQ(Client::connect({"a:1"}, bad, &error), nullptr);
  // Comma-separated lists are split; the client id is random and nonzero.
  auto c = Client::connect({"127.0.0.1:1, 127.0.0.1:2", "[::1]:3"}, {}, &error);
  ASSERT_NE(c, nullptr) << error;
  EXPECT_NE(c->client_id(), 0u);
  Options fixed;
  fixed.client_id = 77;
  EXPECT_EQ(connect({"127.0.0.1:1"}, fixed)->client_id(), 77u);
}

TEST(Client, PutGoesToTheLeaderTheStatusNames) {
  FakeNode leader(2, put_ok);
  FakeNode follower(1, [](const proto::ClientRequest&) {
    ADD_FAILURE() << "the follower got a request";
    return answer(proto::ClientResponse::UNAVAILABLE);
  });
  proto::NodeStatus fs;
  fs.set_leader(2);
  auto* peer = fs.add_peers();
  peer->set_id(2);
  peer->set_address(leader.address());
  follower.set_status(fs);
  proto::NodeStatus ls;
  ls.set_role("leader");
  leader.set_status(ls);

  // Only the follower is named: the client learns the leader from its status.
  auto c = connect({follower.address()});
  Result r = c->put("k", "v");
  EXPECT_EQ(r.code, Code::kOk) << r.message;
  EXPECT_EQ(r.node, leader.address());
  ASSERT_EQ(leader.writes().size(), 1u);
  EXPECT_EQ(leader.writes()[0].backend(), "kv");
  proto::KvCommand cmd;
  ASSERT_TRUE(cmd.ParseFromString(leader.writes()[0].payload()));
  EXPECT_EQ(cmd.op(), proto::KvCommand::PUT);
  EXPECT_EQ(cmd.key(), "k");
  EXPECT_EQ(leader.writes()[0].client_id(), c->client_id());
  EXPECT_FALSE(leader.writes()[0].no_forward());
}

TEST(Client, FollowsNotLeaderHintsWithTheSameIdentity) {
  FakeNode leader(2, put_ok);
  FakeNode follower(1, [&](const proto::ClientRequest& req) {
    EXPECT_TRUE(req.write().no_forward());
    Reply r = answer(proto::ClientResponse::NOT_LEADER, "node 1 is not the leader");
    r.response.set_leader_hint(2);
    r.response.set_leader_address(leader.address());
    return r;
  });
  Options o;
  o.prefer_redirect = true;
  auto c = connect({follower.address()}, o);  // the statuses name no leader
  Result r = c->put("k", "v");
  EXPECT_EQ(r.code, Code::kOk) << r.message;
  ASSERT_EQ(follower.writes().size(), 1u);
  ASSERT_EQ(leader.writes().size(), 1u);
  EXPECT_EQ(follower.writes()[0].client_id(), leader.writes()[0].client_id());
  EXPECT_EQ(follower.writes()[0].sequence(), leader.writes()[0].sequence());
  EXPECT_TRUE(leader.writes()[0].no_forward());
  // The next write goes straight to the leader.
  EXPECT_EQ(c->put("k2", "v").code, Code::kOk);
  EXPECT_EQ(follower.writes().size(), 1u);
  EXPECT_EQ(leader.writes().size(), 2u);
  EXPECT_GT(leader.writes()[1].sequence(), leader.writes()[0].sequence());
}

TEST(Client, RetriesATimeoutWithTheSameSequence) {
  std::atomic<int> n{0};
  FakeNode node(1, [&](const proto::ClientRequest&) {
    if (n++ < 2) return answer(proto::ClientResponse::TIMEOUT, "timed out: outcome unknown");
    proto::KvResult kv;
    kv.set_number(5);
    return ok_kv(kv);
  });
  auto c = connect({node.address()});
  Result r = c->incr("n", 5);
  EXPECT_EQ(r.code, Code::kOk) << r.message;
  EXPECT_EQ(r.number, 5);
  const auto w = node.writes();
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].client_id(), w[2].client_id());
  EXPECT_EQ(w[0].sequence(), w[1].sequence());
  EXPECT_EQ(w[0].sequence(), w[2].sequence());
  std::set<std::uint64_t> ids;
  for (const auto& req : node.requests()) ids.insert(req.request_id());
  EXPECT_EQ(ids.size(), node.requests().size()) << "every attempt has its own request id";
}

TEST(Client, RetriesOnANewConnectionAfterALostOne) {
  std::atomic<int> n{0};
  FakeNode node(1, [&](const proto::ClientRequest&) {
    return n++ == 0 ? close_connection() : ok_kv(proto::KvResult());
  });
  auto c = connect({node.address()});
  Result r = c->put("k", "v");
  EXPECT_EQ(r.code, Code::kOk) << r.message;
  const auto w = node.writes();
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].sequence(), w[1].sequence());
  EXPECT_EQ(node.connections(), 2);
}

TEST(Client, MovesOnFromASilentNode) {
  FakeNode stuck(1, [](const proto::ClientRequest&) { return silent(); });
  stuck.status_handler_silent_ = true;
  FakeNode good(2, put_ok);
  Options o;
  o.attempt_timeout = milliseconds(200);
  o.timeout = milliseconds(5000);
  auto c = connect({stuck.address(), good.address()}, o);
  const auto t0 = std::chrono::steady_clock::now();
  Result r = c->put("k", "v");
  EXPECT_EQ(r.code, Code::kOk) << r.message;
  EXPECT_LT(seconds_since(t0), 2.0);
  ASSERT_EQ(good.writes().size(), 1u);
  if (!stuck.writes().empty()) {
    EXPECT_EQ(stuck.writes()[0].sequence(), good.writes()[0].sequence());
  }
}

TEST(Client, AnUnreachableClusterFailsWithinTheTimeout) {
  auto c = connect({dead_address(), dead_address()});
  const auto t0 = std::chrono::steady_clock::now();
  CallOptions call;
  call.timeout = milliseconds(300);
  Result r = c->put("k", "v", call);
  EXPECT_EQ(r.code, Code::kUnavailable);
  EXPECT_NE(r.message.find("127.0.0.1"), std::string::npos) << r.message;
  EXPECT_LT(seconds_since(t0), 1.0);
  r = c->get("k", call);
  EXPECT_EQ(r.code, Code::kUnavailable);
}

TEST(Client, AWriteWithNoAnswerTimesOutAsUnknown) {
  FakeNode stuck(1, [](const proto::ClientRequest&) { return silent(); });
  Options o;
  o.attempt_timeout = milliseconds(100);
  auto c = connect({stuck.address()}, o);
  CallOptions call;
  call.timeout = milliseconds(500);
  const auto t0 = std::chrono::steady_clock::now();
  Result r = c->put("k", "v", call);
  EXPECT_EQ(r.code, Code::kTimeout);
  EXPECT_NE(r.message.find("may or may not"), std::string::npos) << r.message;
  EXPECT_LT(seconds_since(t0), 1.0);
  // Every attempt carried the same identity.
  const auto w = stuck.writes();
  ASSERT_GE(w.size(), 1u);
  for (const auto& x : w) EXPECT_EQ(x.sequence(), w[0].sequence());
}

TEST(Client, UnavailableIsRetriedUntilALeaderAppears) {
  std::atomic<int> n{0};
  FakeNode node(1, [&](const proto::ClientRequest&) {
    return n++ < 3 ? answer(proto::ClientResponse::UNAVAILABLE, "no leader at the moment")
                   : ok_kv(proto::KvResult());
  });
  auto c = connect({node.address()});
  EXPECT_EQ(c->put("k", "v").code, Code::kOk);
  EXPECT_EQ(node.writes().size(), 4u);
}

TEST(Client, BadRequestIsNotRetried) {
  FakeNode node(1, [](const proto::ClientRequest&) {
    return answer(proto::ClientResponse::BAD_REQUEST, "unknown backend 'nope'");
  });
  auto c = connect({node.address()});
  Result r = c->write("nope", "x");
  EXPECT_EQ(r.code, Code::kBadRequest);
  EXPECT_EQ(r.message, "unknown backend 'nope'");
  EXPECT_EQ(node.writes().size(), 1u);
}

TEST(Client, ReadsCarryTheirConsistency) {
  FakeNode node(1, [](const proto::ClientRequest& req) {
    proto::KvResult kv;
    kv.set_found(true);
    kv.set_value(req.read().consistency() == proto::LINEARIZABLE ? "lin" : "local");
    return ok_kv(kv);
  });
  Options o;
  o.read_consistency = Consistency::kLinearizable;
  auto c = connect({node.address()}, o);
  EXPECT_EQ(c->get("k").value, "lin");
  EXPECT_EQ(c->get("k", Consistency::kLocal).value, "local");
  CallOptions call;
  call.consistency = Consistency::kLocal;
  EXPECT_EQ(c->get("k", call).value, "local");
}

TEST(Client, ManyWritesInFlightOnOneConnectionEachWithItsOwnSession) {
  FakeNode node(1, put_ok);
  auto c = connect({node.address()});
  constexpr int kCalls = 64;
  std::vector<std::future<Result>> results;
  for (int i = 0; i < kCalls; ++i) {
    auto p = std::make_shared<std::promise<Result>>();
    results.push_back(p->get_future());
    c->write_async("kv", encode_kv_put("k" + std::to_string(i), "v"), {},
                   [p](Result r) { p->set_value(std::move(r)); });
  }
  for (auto& f : results) EXPECT_EQ(f.get().code, Code::kOk);
  EXPECT_EQ(node.connections(), 1);
  // No two writes share (client id, sequence); per session, sequences increase.
  std::set<std::pair<std::uint64_t, std::uint64_t>> seen;
  std::map<std::uint64_t, std::uint64_t> last;
  for (const auto& w : node.writes()) {
    EXPECT_TRUE(seen.emplace(w.client_id(), w.sequence()).second);
    EXPECT_GT(w.sequence(), last[w.client_id()]);
    last[w.client_id()] = w.sequence();
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kCalls));
  // Sessions are reused: a sequential caller uses the first one only.
  EXPECT_LE(last.size(), static_cast<std::size_t>(kCalls));
  EXPECT_TRUE(last.contains(c->client_id()));
}

TEST(Client, ThreadsShareOneClient) {
  FakeNode node(1, put_ok);
  auto c = connect({node.address()});
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        if (c->put("t" + std::to_string(t), std::to_string(i)).ok()) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 100);
}

TEST(Client, StatusMarksUnreachableNodesAndFindsUnlistedPeers) {
  FakeNode a(1, put_ok);
  FakeNode b(2, put_ok);
  const std::string dead = dead_address();
  proto::NodeStatus as;
  as.set_role("leader");
  as.set_commit(10);
  as.set_applied(9);
  as.mutable_ballot()->set_round(4);
  as.mutable_ballot()->set_node(1);
  for (auto [id, addr] : std::vector<std::pair<int, std::string>>{{2, b.address()}, {3, dead}}) {
    auto* p = as.add_peers();
    p->set_id(id);
    p->set_address(addr);
  }
  a.set_status(as);
  // b is not listed: a's peers name it. 3 is dead.
  auto c = connect({a.address(), dead});
  auto nodes = c->status(milliseconds(2000));
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes[0].id, 1u);
  EXPECT_TRUE(nodes[0].reachable);
  EXPECT_EQ(nodes[0].role, "leader");
  EXPECT_EQ(nodes[0].commit, 10u);
  EXPECT_EQ(nodes[0].applied, 9u);
  EXPECT_EQ(nodes[0].ballot.round, 4u);
  EXPECT_EQ(nodes[0].peers.size(), 2u);
  EXPECT_EQ(nodes[1].id, 2u);
  EXPECT_TRUE(nodes[1].reachable);
  EXPECT_EQ(nodes[1].address, b.address());
  EXPECT_EQ(nodes[2].id, 3u);
  EXPECT_FALSE(nodes[2].reachable);
  EXPECT_EQ(nodes[2].address, dead);
  EXPECT_FALSE(nodes[2].error.empty());
}

TEST(Client, StatusOfASilentNodeEndsAtTheTimeout) {
  FakeNode a(1, put_ok);
  a.status_handler_silent_ = true;
  auto c = connect({a.address()});
  const auto t0 = std::chrono::steady_clock::now();
  auto nodes = c->status(milliseconds(300));
  EXPECT_LT(seconds_since(t0), 1.0);
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_FALSE(nodes[0].reachable);
}

TEST(Client, CloseEndsCallsInProgress) {
  FakeNode stuck(1, [](const proto::ClientRequest&) { return silent(); });
  auto c = connect({stuck.address()});
  auto p = std::make_shared<std::promise<Result>>();
  auto f = p->get_future();
  c->write_async("kv", encode_kv_put("k", "v"), {}, [p](Result r) { p->set_value(r); });
  std::this_thread::sleep_for(milliseconds(50));
  const auto t0 = std::chrono::steady_clock::now();
  c->close();
  EXPECT_LT(seconds_since(t0), 1.0);
  ASSERT_EQ(f.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  EXPECT_EQ(f.get().code, Code::kUnavailable);
  EXPECT_EQ(c->put("k", "v").code, Code::kUnavailable);  // after close: at once
  c->close();                                            // idempotent
}

TEST(Client, SynchronousCallFromACallbackIsRefused) {
  FakeNode node(1, put_ok);
  auto c = connect({node.address()});
  auto p = std::make_shared<std::promise<Result>>();
  auto f = p->get_future();
  Client* raw = c.get();
  c->write_async("kv", encode_kv_put("k", "v"), {},
                 [p, raw](Result) { p->set_value(raw->put("k2", "v")); });
  EXPECT_EQ(f.get().code, Code::kBadRequest);
}

TEST(Client, ExplicitIdentityIsUsedAsIs) {
  FakeNode node(1, put_ok);
  auto c = connect({node.address()});
  CallOptions call;
  call.client_id = 424242;
  call.sequence = 9;
  EXPECT_EQ(c->put("k", "v", call).code, Code::kOk);
  EXPECT_EQ(c->put("k", "v", call).code, Code::kOk);
  for (const auto& w : node.writes()) {
    EXPECT_EQ(w.client_id(), 424242u);
    EXPECT_EQ(w.sequence(), 9u);
  }
}

TEST(Client, NegativeTimeoutIsABadRequest) {
  auto c = connect({"127.0.0.1:1"});
  CallOptions call;
  call.timeout = milliseconds(-1);
  EXPECT_EQ(c->put("k", "v", call).code, Code::kBadRequest);
}

}  // namespace
}  // namespace synod::client
