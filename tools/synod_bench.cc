// synod-bench: a closed-loop load generator for a Synod cluster's key-value
// backend, on the C++ client library.
//
//   synod-bench --cluster 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
//               --clients 64 --duration 10 --workload put --status
//
// --clients N closed loops each keep one operation outstanding: the next is
// issued from the previous one's completion callback, on the I/O thread of the
// connection (Client object) the loop belongs to. The loops are spread over
// --connections Client objects, each with its own I/O thread and one TCP
// connection per node; one connection carries many requests in flight.
//
// Timeline: connect; preload every key once (get and mixed workloads, so reads
// find values); --warmup seconds of load that is not measured; --duration
// seconds measured; then the loops stop issuing and in-flight operations drain.
// An operation is measured when it COMPLETES inside the measured window; its
// latency (issue to callback) goes into a per-connection histogram
// (bench_histogram.h) and failures are counted by code. A run never fails
// because the cluster is slow: slow operations are just slow (or, past
// --timeout, counted as timeout errors).
//
// --workload sql-insert: SQL INSERTs through an SQL backend (--sql-backend,
// default sqlite) instead of kv operations: each operation is one command of
// --rows-per-command INSERT statements (one transaction) into a table
// synod_bench (k, v) that the run creates first; throughput is commands/s,
// and rows/s is printed beside it. An SQL error counts as a failed operation.
//
// Exit codes: 0 the run happened (even with errors); 1 no operation succeeded
// during the whole run (the cluster was unreachable); 2 bad flags.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_histogram.h"
#include "client/kv_ops.h"
#include "synod/client.hpp"

namespace {

using synod::bench::Histogram;
using synod::client::CallOptions;
using synod::client::Client;
using synod::client::Code;
using synod::client::Consistency;
using synod::client::KvOp;
using synod::client::NodeStatus;
using synod::client::Result;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

constexpr std::size_t kMaxValueSize = std::size_t{16} << 20;  // well below a 64 MiB frame
constexpr int kPreloadAttempts = 3;
constexpr int kMinPreloadLoops = 64;

struct Config {
  std::string cluster;
  std::string cluster_name = "synod";
  int clients = 1;
  int connections = 0;  // 0: min(clients, 16)
  double duration_s = 10;
  double warmup_s = 1;
  std::size_t value_size = 100;
  std::uint64_t keys = 10000;
  std::string workload = "put";
  double read_fraction = 0;  // put: 0, get: 1, mixed:R: R
  bool sql = false;          // sql-insert
  std::string sql_backend = "sqlite";
  int rows_per_command = 1;
  std::string consistency = "local";
  int timeout_ms = 5000;
  std::string key_prefix = "bench:";
  bool json = false;
  bool status = false;
  bool progress = true;
};

// Parses the flags into *cfg. -1: go on; otherwise the exit code (0 after
// --help, 2 on a bad flag, with the message printed).
int parse_flags(int argc, char** argv, Config* cfg) {
  CLI::App app{
      "synod-bench: closed-loop load generator for a Synod cluster (key-value backend).\n"
      "N clients each keep one operation outstanding, spread over C connections; after\n"
      "--warmup, --duration seconds are measured. Prints throughput, latency\n"
      "percentiles and errors by code (--json: one JSON object). A progress line goes to\n"
      "stderr every second. Exit 0 when the run happened (even with errors), 1 when no\n"
      "operation succeeded (cluster unreachable), 2 on bad flags.",
      "synod-bench"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--cluster", cfg->cluster, "The nodes: HOST:PORT,HOST:PORT,...")
      ->required()
      ->envname("SYNOD_CLUSTER");
  app.add_option("--cluster-name", cfg->cluster_name,
                 "The cluster's name (synod --cluster); default synod");
  app.add_option("--clients", cfg->clients,
                 "Concurrent closed-loop clients (operations outstanding); default 1")
      ->check(CLI::Range(1, 100000));
  app.add_option("--connections", cfg->connections,
                 "Client objects (each one I/O thread, one TCP connection per node) the clients "
                 "are spread over; default min(clients, 16)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--duration", cfg->duration_s, "Seconds measured (fractions allowed); default 10")
      ->check(CLI::Range(0.001, 86400.0));
  app.add_option("--warmup", cfg->warmup_s, "Seconds of unmeasured load first; default 1")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--value-size", cfg->value_size, "Bytes per value; default 100")
      ->check(CLI::Range(std::size_t{0}, kMaxValueSize));
  app.add_option("--keys", cfg->keys, "Distinct keys, chosen uniformly; default 10000")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  app.add_option("--key-prefix", cfg->key_prefix, "Prefix of every key; default bench:");
  app.add_option("--workload", cfg->workload,
                 "put, get, or mixed:R with R the fraction of reads (0..1); default put. get and "
                 "mixed write every key once before the run");
  app.add_option("--sql-backend", cfg->sql_backend,
                 "sql-insert: the SQL backend (sqlite, mysql, postgres); default sqlite");
  app.add_option("--rows-per-command", cfg->rows_per_command,
                 "sql-insert: INSERT statements per command (one transaction); default 1")
      ->check(CLI::Range(1, 10000));
  app.add_option("--consistency", cfg->consistency,
                 "Reads: local (the answering node's state; default) or linearizable")
      ->check(CLI::IsMember({"local", "linearizable"}));
  app.add_option("--timeout", cfg->timeout_ms,
                 "Per-operation deadline in ms (the client retries within it); default 5000")
      ->check(CLI::Range(1, 3600 * 1000));
  app.add_flag("--json", cfg->json, "Print the result as one JSON object on stdout");
  app.add_flag("--status", cfg->status,
               "Also report every node's syncs and bytes synced during the run, and writes per "
               "sync on the leader");
  app.add_flag("!--no-progress", cfg->progress, "No progress line on stderr");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  auto bad = [](const std::string& message) {
    std::fprintf(stderr, "synod-bench: %s\nRun with --help for more information.\n",
                 message.c_str());
    return 2;
  };
  if (cfg->workload == "put") {
    cfg->read_fraction = 0;
  } else if (cfg->workload == "get") {
    cfg->read_fraction = 1;
  } else if (cfg->workload == "sql-insert") {
    cfg->read_fraction = 0;
    cfg->sql = true;
  } else if (cfg->workload.starts_with("mixed:")) {
    const std::string r = cfg->workload.substr(6);
    std::size_t used = 0;
    double v = -1;
    try {
      v = std::stod(r, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != r.size() || !(v >= 0 && v <= 1)) {
      return bad("--workload mixed:R needs a read fraction R between 0 and 1, not \"" + r + "\"");
    }
    cfg->read_fraction = v;
  } else {
    return bad("--workload must be put, get, mixed:R or sql-insert, not \"" + cfg->workload +
               "\"");
  }
  if (cfg->connections == 0) cfg->connections = std::min(cfg->clients, 16);
  if (cfg->connections > cfg->clients) {
    return bad("--connections (" + std::to_string(cfg->connections) +
               ") must not exceed --clients (" + std::to_string(cfg->clients) + ")");
  }
  return -1;
}

std::int64_t ns_since(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count();
}

// One Client object and what its I/O thread records. `histogram` and `errors`
// are touched only by that thread while the run goes on, and read by the main
// thread after the client is closed; the atomics feed the progress line.
struct Connection {
  std::unique_ptr<Client> client;
  Histogram histogram;
  std::map<Code, std::uint64_t> errors;
  std::map<Code, std::string> first_message;
  std::uint64_t measured_reads = 0;
  std::uint64_t measured_writes = 0;
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> failed{0};
};

// One closed loop: one operation outstanding at a time.
struct Loop {
  Connection* conn = nullptr;
  std::mt19937_64 rng;
  std::uint64_t preload_key = 0;  // preload: the key being written
  int preload_attempt = 0;
};

class Bench {
 public:
  explicit Bench(Config cfg) : cfg_(std::move(cfg)) {
    value_.resize(cfg_.value_size);
    for (std::size_t i = 0; i < value_.size(); ++i) value_[i] = static_cast<char>('a' + i % 26);
    call_.timeout = std::chrono::milliseconds(cfg_.timeout_ms);
    call_.consistency =
        cfg_.consistency == "linearizable" ? Consistency::kLinearizable : Consistency::kLocal;
  }

  int run();

 private:
  bool connect();
  void preload();
  // sql-insert: creates the table synod_bench; false (with a message) when
  // the cluster refuses.
  bool create_table();
  void measure();
  void issue(Loop& loop);
  void complete(Loop& loop, Clock::time_point start, bool read, Result raw);
  void preload_next(Loop& loop);
  void preload_done(Loop& loop, Result raw);
  void stop_loop(const Result& r);
  bool wait_drained(Clock::time_point deadline);
  std::vector<Loop> make_loops(int n);
  std::vector<NodeStatus> status();
  std::string key(std::uint64_t i) const { return cfg_.key_prefix + std::to_string(i); }
  void progress_line(const char* phase, double t, std::uint64_t ops, std::uint64_t errors);
  void report(double measured_s, const std::string& failure);

  Config cfg_;
  std::string value_;
  CallOptions call_;
  std::vector<std::unique_ptr<Connection>> conns_;
  // The loops outlive every callback: they go only after the clients are closed.
  std::vector<Loop> preload_loop_list_, loops_;

  // Fixed before the loops start (ns since origin_), read by every I/O thread.
  Clock::time_point origin_;
  std::int64_t measure_from_ns_ = 0;
  std::int64_t measure_until_ns_ = 0;

  std::atomic<int> in_flight_{0};  // loops still running
  std::atomic<std::uint64_t> succeeded_{0};
  std::atomic<std::uint64_t> writes_ok_{0};
  std::mutex stopped_mutex_;
  int stopped_loops_ = 0;  // loops ended by an answer given on the calling thread
  std::string stopped_reason_;
  std::string last_error_;  // the latest failure's message, for "unreachable"

  // Preload.
  std::atomic<std::uint64_t> preload_next_{0};
  std::atomic<std::uint64_t> preload_ok_{0};
  std::atomic<std::uint64_t> preload_failed_{0};  // keys given up on
  std::atomic<std::uint64_t> preload_failed_attempts_{0};
  std::atomic<bool> preload_abort_{false};
  int preload_loops_ = 0;
  double preload_s_ = 0;

  // --status: before (at the start of the measured window) and after (drained).
  std::vector<NodeStatus> status_before_, status_after_;
  std::uint64_t writes_before_ = 0, writes_after_ = 0;
};

bool Bench::connect() {
  synod::client::Options options;
  options.timeout = std::chrono::milliseconds(cfg_.timeout_ms);
  options.attempt_timeout = std::min(options.timeout, std::chrono::milliseconds(1000));
  options.cluster = cfg_.cluster_name;
  for (int i = 0; i < cfg_.connections; ++i) {
    std::string error;
    auto c = std::make_unique<Connection>();
    c->client = Client::connect({cfg_.cluster}, options, &error);
    if (!c->client) {
      std::fprintf(stderr, "synod-bench: %s\n", error.c_str());
      return false;
    }
    conns_.push_back(std::move(c));
  }
  return true;
}

std::vector<Loop> Bench::make_loops(int n) {
  std::vector<Loop> loops(static_cast<std::size_t>(n));
  std::random_device seed;
  for (int i = 0; i < n; ++i) {
    loops[i].conn = conns_[static_cast<std::size_t>(i) % conns_.size()].get();
    loops[i].rng.seed((static_cast<std::uint64_t>(seed()) << 32) ^ seed() ^ i);
  }
  return loops;
}

// Depth of issue() calls on this thread: a completion that arrives while it is
// above zero was given synchronously (invalid arguments, closed client) and
// must not issue again, or the loop would recurse without end.
thread_local int issue_depth = 0;

// sql-insert: an answered command whose statement failed is a failure.
Result sql_result(Result raw) {
  if (!raw.ok()) return raw;
  const Json answer = Json::parse(raw.value, nullptr, false);
  if (answer.is_discarded() || !answer.contains("results") || answer.contains("rolled_back")) {
    raw.code = Code::kBackendError;
    raw.message = "SQL error: " + raw.value.substr(0, 200);
  }
  return raw;
}

void Bench::stop_loop(const Result& r) {
  std::lock_guard lock(stopped_mutex_);
  ++stopped_loops_;
  stopped_reason_ = std::string(synod::client::code_name(r.code)) + ": " + r.message;
}

void Bench::issue(Loop& loop) {
  const bool read = cfg_.read_fraction >= 1 ||
                    (cfg_.read_fraction > 0 &&
                     static_cast<double>(loop.rng() >> 11) * 0x1.0p-53 < cfg_.read_fraction);
  const std::string k = key(loop.rng() % cfg_.keys);
  const Clock::time_point start = Clock::now();
  auto done = [this, &loop, start, read](Result r) { complete(loop, start, read, std::move(r)); };
  ++issue_depth;
  Client& client = *loop.conn->client;
  if (cfg_.sql) {
    Json statements = Json::array();
    for (int i = 0; i < cfg_.rows_per_command; ++i) {
      statements.push_back(Json::array({"INSERT INTO synod_bench (k, v) VALUES (?, ?)",
                                        i == 0 ? k : key(loop.rng() % cfg_.keys), value_}));
    }
    client.write_async(cfg_.sql_backend, statements.dump(), call_, std::move(done));
  } else if (read) {
    client.read_async("kv", synod::client::encode_kv_get(k), call_, std::move(done));
  } else {
    client.write_async("kv", synod::client::encode_kv_put(k, value_), call_, std::move(done));
  }
  --issue_depth;
}

void Bench::complete(Loop& loop, Clock::time_point start, bool read, Result raw) {
  const Clock::time_point now = Clock::now();
  Result r = cfg_.sql ? sql_result(std::move(raw))
                     : synod::client::decode_kv_result(read ? KvOp::kGet : KvOp::kPut,
                                                       std::move(raw));
  Connection& c = *loop.conn;
  const std::int64_t t = ns_since(origin_, now);
  const bool measured = t >= measure_from_ns_ && t < measure_until_ns_;
  c.completed.fetch_add(1, std::memory_order_relaxed);
  if (r.ok()) {
    succeeded_.fetch_add(1, std::memory_order_relaxed);
    if (!read) writes_ok_.fetch_add(1, std::memory_order_relaxed);
  } else {
    c.failed.fetch_add(1, std::memory_order_relaxed);
  }
  if (issue_depth > 0) {  // answered on the calling thread: not an I/O-thread result
    stop_loop(r);
    in_flight_.fetch_sub(1);
    return;
  }
  if (measured) {
    if (r.ok()) {
      c.histogram.record(
          static_cast<std::uint64_t>(std::max<std::int64_t>(0, ns_since(start, now))));
      ++(read ? c.measured_reads : c.measured_writes);
    } else {
      if (c.errors[r.code]++ == 0) c.first_message[r.code] = r.message;
    }
  }
  if (!r.ok()) {
    std::lock_guard lock(stopped_mutex_);
    last_error_ = r.message.empty() ? synod::client::code_name(r.code) : r.message;
  }
  if (t >= measure_until_ns_) {
    in_flight_.fetch_sub(1);
    return;
  }
  issue(loop);
}

void Bench::preload_next(Loop& loop) {
  const std::uint64_t i = preload_next_.fetch_add(1);
  if (i >= cfg_.keys || preload_abort_.load()) {
    in_flight_.fetch_sub(1);
    return;
  }
  loop.preload_key = i;
  loop.preload_attempt = 1;
  ++issue_depth;
  loop.conn->client->write_async("kv", synod::client::encode_kv_put(key(i), value_), call_,
                                 [this, &loop](Result r) { preload_done(loop, std::move(r)); });
  --issue_depth;
}

void Bench::preload_done(Loop& loop, Result raw) {
  const Result r = synod::client::decode_kv_result(KvOp::kPut, std::move(raw));
  if (r.ok()) {
    preload_ok_.fetch_add(1);
    succeeded_.fetch_add(1, std::memory_order_relaxed);
  } else {
    {
      std::lock_guard lock(stopped_mutex_);
      last_error_ = r.message.empty() ? synod::client::code_name(r.code) : r.message;
    }
    if (issue_depth > 0) {
      stop_loop(r);
      in_flight_.fetch_sub(1);
      return;
    }
    // As many failed attempts as loops and not one success: the cluster is not
    // answering; do not spend keys x timeout finding that out again.
    if (preload_failed_attempts_.fetch_add(1) + 1 >= static_cast<std::uint64_t>(preload_loops_) &&
        preload_ok_.load() == 0) {
      preload_abort_.store(true);
    }
    if (loop.preload_attempt < kPreloadAttempts && !preload_abort_.load()) {
      ++loop.preload_attempt;
      ++issue_depth;
      loop.conn->client->write_async(
          "kv", synod::client::encode_kv_put(key(loop.preload_key), value_), call_,
          [this, &loop](Result r2) { preload_done(loop, std::move(r2)); });
      --issue_depth;
      return;
    }
    preload_failed_.fetch_add(1);
  }
  preload_next(loop);
}

void Bench::preload() {
  preload_loops_ = static_cast<int>(
      std::min<std::uint64_t>(cfg_.keys, std::max(cfg_.clients, kMinPreloadLoops)));
  preload_loop_list_ = make_loops(preload_loops_);
  const Clock::time_point start = Clock::now();
  if (cfg_.progress) {
    std::fprintf(stderr, "synod-bench: preloading %" PRIu64 " keys (%d at a time)\n", cfg_.keys,
                 preload_loops_);
  }
  in_flight_.store(preload_loops_);
  for (Loop& loop : preload_loop_list_) preload_next(loop);
  Clock::time_point next = start + std::chrono::seconds(1);
  while (in_flight_.load() > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (cfg_.progress && Clock::now() >= next) {
      next += std::chrono::seconds(1);
      std::fprintf(
          stderr, "synod-bench: preload %" PRIu64 "/%" PRIu64 " keys written, %" PRIu64 " failed\n",
          preload_ok_.load(), cfg_.keys, preload_failed_.load());
    }
  }
  preload_s_ = std::chrono::duration<double>(Clock::now() - start).count();
  if (cfg_.progress) {
    std::fprintf(stderr, "synod-bench: preloaded %" PRIu64 " keys in %.1f s (%" PRIu64 " failed)\n",
                 preload_ok_.load(), preload_s_, preload_failed_.load());
  }
}

bool Bench::create_table() {
  const Result r = sql_result(conns_.front()->client->write(
      cfg_.sql_backend,
      R"j(["CREATE TABLE IF NOT EXISTS synod_bench (k VARCHAR(64) NOT NULL, v TEXT NOT NULL)"])j",
      call_));
  if (!r.ok()) {
    std::fprintf(stderr, "synod-bench: cannot create table synod_bench through backend '%s': %s\n",
                 cfg_.sql_backend.c_str(), r.message.c_str());
  }
  return r.ok();
}

std::vector<NodeStatus> Bench::status() {
  return conns_.front()->client->status(std::chrono::milliseconds(cfg_.timeout_ms));
}

void Bench::progress_line(const char* phase, double t, std::uint64_t ops, std::uint64_t errors) {
  std::fprintf(stderr, "synod-bench: %6.1fs %-7s %9" PRIu64 " ops/s  %" PRIu64 " errors\n", t,
               phase, ops, errors);
}

bool Bench::wait_drained(Clock::time_point deadline) {
  while (in_flight_.load() > 0) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

void Bench::measure() {
  loops_ = make_loops(cfg_.clients);
  origin_ = Clock::now();
  measure_from_ns_ = static_cast<std::int64_t>(cfg_.warmup_s * 1e9);
  measure_until_ns_ = measure_from_ns_ + static_cast<std::int64_t>(cfg_.duration_s * 1e9);
  const Clock::time_point from = origin_ + std::chrono::nanoseconds(measure_from_ns_);
  const Clock::time_point until = origin_ + std::chrono::nanoseconds(measure_until_ns_);
  in_flight_.store(cfg_.clients);
  for (Loop& loop : loops_) issue(loop);

  bool status_taken = !cfg_.status;
  std::uint64_t last_ops = 0, last_errors = 0;
  Clock::time_point next = origin_ + std::chrono::seconds(1);
  while (true) {
    Clock::time_point wake = std::min(next, until);
    if (!status_taken) wake = std::min(wake, from);
    std::this_thread::sleep_until(wake);
    const Clock::time_point now = Clock::now();
    if (!status_taken && now >= from) {
      writes_before_ = writes_ok_.load();
      status_before_ = status();
      status_taken = true;
    }
    if (now >= next || now >= until) {
      std::uint64_t ops = 0, errors = 0;
      for (const auto& c : conns_) {
        ops += c->completed.load(std::memory_order_relaxed);
        errors += c->failed.load(std::memory_order_relaxed);
      }
      if (cfg_.progress && now >= next) {
        // The phase of the second that just ended.
        progress_line(now - std::chrono::seconds(1) < from ? "warmup" : "measure",
                      std::chrono::duration<double>(now - origin_).count(),
                      (ops - errors) - (last_ops - last_errors), errors - last_errors);
      }
      last_ops = ops;
      last_errors = errors;
      while (next <= now) next += std::chrono::seconds(1);
    }
    if (now >= until || in_flight_.load() == 0) break;
  }
  // Loops stop issuing at `until`; let what is in flight finish (each within
  // its deadline), so the servers' counters below include every write.
  if (!wait_drained(Clock::now() + std::chrono::milliseconds(cfg_.timeout_ms + 1000))) {
    std::fprintf(stderr, "synod-bench: %d operations still in flight after their deadline\n",
                 in_flight_.load());
  }
  if (cfg_.status) {
    writes_after_ = writes_ok_.load();
    status_after_ = status();
  }
}

double ms(std::uint64_t ns) { return static_cast<double>(ns) / 1e6; }

const NodeStatus* find_node(const std::vector<NodeStatus>& list, const NodeStatus& n) {
  for (const NodeStatus& m : list) {
    if (m.reachable && (n.id != 0 ? m.id == n.id : m.address == n.address)) return &m;
  }
  return nullptr;
}

// failure: why the run measured nothing (empty when it did).
void Bench::report(double measured_s, const std::string& failure) {
  Histogram all;
  std::map<Code, std::uint64_t> errors;
  std::map<Code, std::string> messages;
  std::uint64_t reads = 0, writes = 0, error_total = 0;
  for (const auto& c : conns_) {
    all.merge(c->histogram);
    reads += c->measured_reads;
    writes += c->measured_writes;
    for (const auto& [code, n] : c->errors) {
      errors[code] += n;
      error_total += n;
      if (!messages.contains(code)) messages[code] = c->first_message[code];
    }
  }
  const std::uint64_t ops = all.count();
  const double throughput = measured_s > 0 ? static_cast<double>(ops) / measured_s : 0;
  struct Pct {
    const char* name;
    double p;
  };
  const Pct pcts[] = {{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p99.9", 99.9}};

  // --status: per node, the change between the start of the measured window
  // and the end of the run.
  struct NodeDelta {
    const NodeStatus* after;
    std::uint64_t syncs = 0, bytes = 0;
    bool known = false;
  };
  std::vector<NodeDelta> deltas;
  const NodeStatus* leader = nullptr;
  bool leader_changed = false;
  for (const NodeStatus& n : status_after_) {
    if (!n.reachable) continue;
    NodeDelta d{&n};
    if (const NodeStatus* b = find_node(status_before_, n)) {
      d.known = true;
      d.syncs = n.syncs - std::min(n.syncs, b->syncs);
      d.bytes = n.bytes_synced - std::min(n.bytes_synced, b->bytes_synced);
      if ((b->role == "leader") != (n.role == "leader")) leader_changed = true;
    }
    if (n.role == "leader") leader = &n;
    deltas.push_back(d);
  }
  const std::uint64_t status_writes = writes_after_ - writes_before_;
  std::uint64_t leader_syncs = 0;
  for (const NodeDelta& d : deltas) {
    if (d.after == leader) leader_syncs = d.syncs;
  }

  if (cfg_.json) {
    Json j;
    j["workload"] = cfg_.workload;
    j["read_fraction"] = cfg_.read_fraction;
    if (cfg_.sql) {
      j["sql_backend"] = cfg_.sql_backend;
      j["rows_per_command"] = cfg_.rows_per_command;
    }
    j["consistency"] = cfg_.consistency;
    j["clients"] = cfg_.clients;
    j["connections"] = cfg_.connections;
    j["value_size"] = cfg_.value_size;
    j["keys"] = cfg_.keys;
    j["warmup_s"] = cfg_.warmup_s;
    j["duration_s"] = measured_s;
    j["ops"] = ops;
    j["reads"] = reads;
    j["writes"] = writes;
    j["throughput_ops_s"] = throughput;
    Json lat;
    for (const Pct& p : pcts) lat[p.name] = ms(all.percentile(p.p));
    lat["max"] = ms(all.max());
    lat["mean"] = all.mean() / 1e6;
    j["latency_ms"] = lat;
    j["errors_total"] = error_total;
    Json e = Json::object();
    for (const auto& [code, n] : errors) e[synod::client::code_name(code)] = n;
    j["errors"] = e;
    if (!messages.empty()) {
      Json m = Json::object();
      for (const auto& [code, text] : messages) m[synod::client::code_name(code)] = text;
      j["error_examples"] = m;
    }
    if (cfg_.read_fraction > 0) {
      j["preload"] = {{"keys", cfg_.keys},
                      {"written", preload_ok_.load()},
                      {"failed", preload_failed_.load()},
                      {"seconds", preload_s_}};
    }
    if (!failure.empty()) j["error"] = failure;
    if (stopped_loops_ > 0) {
      j["stopped_clients"] = {{"count", stopped_loops_}, {"reason", stopped_reason_}};
    }
    if (cfg_.status) {
      Json s;
      Json nodes = Json::array();
      for (const NodeDelta& d : deltas) {
        Json n{{"id", d.after->id}, {"address", d.after->address}, {"role", d.after->role}};
        if (d.known) {
          n["syncs"] = d.syncs;
          n["bytes_synced"] = d.bytes;
        }
        nodes.push_back(std::move(n));
      }
      s["nodes"] = std::move(nodes);
      s["writes"] = status_writes;
      if (leader != nullptr) {
        s["leader"] = leader->id;
        s["leader_syncs"] = leader_syncs;
        s["writes_per_sync"] =
            leader_syncs > 0 ? static_cast<double>(status_writes) / leader_syncs : 0.0;
      }
      s["leader_changed"] = leader_changed;
      j["status"] = std::move(s);
    }
    std::printf("%s\n", j.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
    return;
  }

  std::printf("synod-bench: %s, %d clients over %d connections, %zu-byte values, %" PRIu64
              " keys, %s reads\n",
              cfg_.workload.c_str(), cfg_.clients, cfg_.connections, cfg_.value_size, cfg_.keys,
              cfg_.consistency.c_str());
  std::printf("measured      %.2f s (after %.2f s warmup)\n", measured_s, cfg_.warmup_s);
  std::printf("ops           %" PRIu64 " (%" PRIu64 " reads, %" PRIu64 " writes)\n", ops, reads,
              writes);
  std::printf("throughput    %.1f ops/s\n", throughput);
  if (cfg_.sql) {
    std::printf("rows          %.1f rows/s (%d INSERTs per command, backend %s)\n",
                throughput * cfg_.rows_per_command, cfg_.rows_per_command,
                cfg_.sql_backend.c_str());
  }
  std::printf("latency ms   ");
  for (const Pct& p : pcts) std::printf(" %s %.3f ", p.name, ms(all.percentile(p.p)));
  std::printf(" max %.3f  mean %.3f\n", ms(all.max()), all.mean() / 1e6);
  if (errors.empty()) {
    std::printf("errors        none\n");
  } else {
    std::printf("errors        %" PRIu64 ":", error_total);
    for (const auto& [code, n] : errors) {
      std::printf(" %s %" PRIu64 " (e.g. \"%s\")", synod::client::code_name(code), n,
                  messages[code].c_str());
    }
    std::printf("\n");
  }
  if (stopped_loops_ > 0) {
    std::printf("stopped       %d clients ended early: %s\n", stopped_loops_,
                stopped_reason_.c_str());
  }
  if (cfg_.status) {
    for (const NodeDelta& d : deltas) {
      if (d.known) {
        std::printf("node %-3u      %-9s %" PRIu64 " syncs, %.2f MB synced\n", d.after->id,
                    d.after->role.c_str(), d.syncs, static_cast<double>(d.bytes) / 1e6);
      } else {
        std::printf("node %-3u      %-9s (no status at the start of the run)\n", d.after->id,
                    d.after->role.c_str());
      }
    }
    if (leader != nullptr && leader_syncs > 0) {
      std::printf("writes/sync   %.2f on the leader (%" PRIu64 " writes, %" PRIu64 " syncs)%s\n",
                  static_cast<double>(status_writes) / leader_syncs, status_writes, leader_syncs,
                  leader_changed ? " -- the leader changed during the run" : "");
    } else if (leader == nullptr) {
      std::printf("writes/sync   unknown: no leader at the end of the run\n");
    } else {
      std::printf("writes/sync   - (the leader did not sync during the run)\n");
    }
  }
}

int Bench::run() {
  if (!connect()) return 2;
  if (cfg_.progress) {
    std::fprintf(stderr,
                 "synod-bench: %s, %d clients over %d connections, %zu-byte values, %" PRIu64
                 " keys; %.1f s warmup + %.1f s\n",
                 cfg_.workload.c_str(), cfg_.clients, cfg_.connections, cfg_.value_size, cfg_.keys,
                 cfg_.warmup_s, cfg_.duration_s);
  }
  if (cfg_.read_fraction > 0) preload();
  if (cfg_.sql && !create_table()) return 1;
  double measured_s = 0;
  if (!preload_abort_.load()) {
    measure();
    // The window may end early only if every loop stopped (see stop_loop).
    measured_s =
        std::min(cfg_.duration_s,
                 std::max(0.0, std::chrono::duration<double>(Clock::now() - origin_).count() -
                                   cfg_.warmup_s));
  }
  for (auto& c : conns_) c->client->close();  // after this, no callback runs
  std::string failure;
  if (succeeded_.load() == 0) {
    failure = "the cluster answered no operation successfully (" +
              (last_error_.empty() ? std::string("no answer") : last_error_) + ")";
  }
  report(measured_s, failure);
  if (!failure.empty()) {
    std::fprintf(stderr, "synod-bench: %s\n", failure.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  const int rc = parse_flags(argc, argv, &cfg);
  if (rc >= 0) return rc;
  Bench bench(std::move(cfg));
  return bench.run();
}
