// lock_bench: lock service throughput and latency through the C++ client
// library (LockSession), against a running cluster with the lock backend.
//
//   lock_bench --cluster 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
//              --clients 8 --duration 5 --mode own
//
// Each of --clients threads opens its own Client and LockSession and loops:
// acquire (waiting without limit), release. --mode own: every thread its own
// lock (no contention: the cost of the two log writes); --mode one: all
// threads one lock (contention: a release hands the lock to the next waiter,
// who learns it by polling status every --poll-ms). Prints cycles per second
// and the acquire and release latencies. A program, not a test: it asserts
// nothing about the numbers. Exit 0 when the run happened, 1 when no cycle
// completed, 2 for bad flags.
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench_histogram.h"
#include "synod/client.hpp"

namespace {

using synod::bench::Histogram;
using synod::client::AcquireOptions;
using synod::client::Client;
using synod::client::LockSession;
using synod::client::LockSessionOptions;
using synod::client::Result;
using Clock = std::chrono::steady_clock;

struct Config {
  std::string cluster;
  int clients = 1;
  double duration_s = 5;
  std::string mode = "own";
  int poll_ms = 50;
  std::string backend = "lock";
};

struct Totals {
  std::mutex mu;
  Histogram acquire_us;
  Histogram release_us;
  std::uint64_t cycles = 0;
  std::uint64_t failures = 0;
  std::string first_failure;
};

void run_client(const Config& cfg, int index, Clock::time_point end, Totals* totals) {
  std::string error;
  auto client = Client::connect({cfg.cluster}, {}, &error);
  Histogram acquire_us, release_us;
  std::uint64_t cycles = 0, failures = 0;
  std::string failure;
  auto fail = [&](const std::string& why) {
    if (failures++ == 0) failure = why;
  };
  if (!client) {
    fail("connect: " + error);
  } else {
    LockSessionOptions so;
    so.backend = cfg.backend;
    Result r;
    auto session = LockSession::open(*client, so, &r);
    if (!session) {
      fail("open: " + r.message);
    } else {
      const std::string name =
          cfg.mode == "one" ? std::string("bench") : "bench-" + std::to_string(index);
      AcquireOptions ao;
      ao.poll_interval = std::chrono::milliseconds(cfg.poll_ms);
      while (Clock::now() < end) {
        const auto t0 = Clock::now();
        const auto got = session->acquire(name, ao);
        const auto t1 = Clock::now();
        if (!got.ok()) {
          fail("acquire: " + got.message);
          continue;
        }
        const auto rel = session->release(name);
        const auto t2 = Clock::now();
        if (!rel.ok()) {
          fail("release: " + rel.message);
          continue;
        }
        acquire_us.record(std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count());
        release_us.record(std::chrono::duration_cast<std::chrono::microseconds>(t2 - t1).count());
        ++cycles;
      }
      session->close();
    }
  }
  std::lock_guard lock(totals->mu);
  totals->acquire_us.merge(acquire_us);
  totals->release_us.merge(release_us);
  totals->cycles += cycles;
  totals->failures += failures;
  if (totals->first_failure.empty()) totals->first_failure = failure;
}

void print_latency(const char* what, const Histogram& h) {
  std::printf("  %-8s p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", what, h.percentile(50) / 1000.0,
              h.percentile(99) / 1000.0, static_cast<double>(h.max()) / 1000.0);
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  CLI::App app("lock_bench: acquire/release cycles through LockSession");
  app.add_option("--cluster", cfg.cluster, "HOST:PORT,... of the nodes")->required();
  app.add_option("--clients", cfg.clients, "Threads, each with its own client and session")
      ->check(CLI::Range(1, 1024));
  app.add_option("--duration", cfg.duration_s, "Seconds to run")->check(CLI::Range(0.05, 3600.0));
  app.add_option("--mode", cfg.mode, "own: a lock per thread; one: every thread one lock")
      ->check(CLI::IsMember({"own", "one"}));
  app.add_option("--poll-ms", cfg.poll_ms, "How often a waiting acquire polls its status")
      ->check(CLI::Range(1, 10000));
  app.add_option("--backend", cfg.backend, "The lock backend's name");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  Totals totals;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(cfg.duration_s));
  std::vector<std::thread> threads;
  for (int i = 0; i < cfg.clients; ++i) {
    threads.emplace_back(run_client, std::cref(cfg), i, end, &totals);
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("lock_bench: %d client(s), mode %s, poll %d ms, %.1f s\n", cfg.clients,
              cfg.mode.c_str(), cfg.poll_ms, secs);
  std::printf("  cycles   %llu (%.0f acquire+release per second; %.0f lock commands/s)\n",
              static_cast<unsigned long long>(totals.cycles),
              static_cast<double>(totals.cycles) / secs,
              2.0 * static_cast<double>(totals.cycles) / secs);
  if (totals.cycles > 0) {
    print_latency("acquire", totals.acquire_us);
    print_latency("release", totals.release_us);
  }
  if (totals.failures > 0) {
    std::printf("  failures %llu (first: %s)\n", static_cast<unsigned long long>(totals.failures),
                totals.first_failure.c_str());
  }
  return totals.cycles > 0 ? 0 : 1;
}
