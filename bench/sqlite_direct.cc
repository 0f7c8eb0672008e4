// sqlite_direct: the baseline of the SQL insert benchmark (docs/BENCHMARKS.md):
// the same INSERTs synod-bench --workload sql-insert sends through Synod, made
// straight into one unreplicated SQLite database with the same durability as
// an acknowledged Synod write (fsync before the answer: WAL, synchronous=FULL).
//
//   sqlite_direct --dir /tmp/x --rows-per-commit 1 --duration 5
//
// One writer (SQLite serialises writers); prints commits/s, rows/s and the
// commit latency percentiles. A program, not a test: nothing is asserted.
#include <sqlite3.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  std::string dir = "/tmp/synod-sqlite-direct";
  int rows = 1;
  double duration = 5;
  std::size_t value_size = 100;
  std::string synchronous = "FULL";
  CLI::App app{"sqlite_direct: INSERTs straight into one SQLite database (the baseline of "
               "synod-bench --workload sql-insert)"};
  app.add_option("--dir", dir, "Directory of the database (emptied first)");
  app.add_option("--rows-per-commit", rows, "INSERTs per transaction")->check(CLI::Range(1, 10000));
  app.add_option("--duration", duration, "Seconds measured");
  app.add_option("--value-size", value_size, "Bytes per value");
  app.add_option("--synchronous", synchronous, "FULL (fsync per commit, default) or NORMAL")
      ->check(CLI::IsMember({"FULL", "NORMAL"}));
  CLI11_PARSE(app, argc, argv);

  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir, ec);
  sqlite3* db = nullptr;
  const std::string path = dir + "/db.sqlite";
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) {
    std::fprintf(stderr, "sqlite_direct: cannot open %s\n", path.c_str());
    return 2;
  }
  const std::string setup = "PRAGMA journal_mode=WAL; PRAGMA synchronous=" + synchronous +
                            "; CREATE TABLE synod_bench (k VARCHAR(64) NOT NULL, v TEXT NOT NULL)";
  if (sqlite3_exec(db, setup.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "sqlite_direct: %s\n", sqlite3_errmsg(db));
    return 2;
  }
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO synod_bench (k, v) VALUES (?, ?)", -1, &insert, nullptr);
  const std::string value(value_size, 'x');
  std::mt19937_64 rng(1);
  std::vector<double> latencies;
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(duration);
  std::uint64_t commits = 0;
  while (Clock::now() < end) {
    const auto t0 = Clock::now();
    sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
    for (int i = 0; i < rows; ++i) {
      const std::string k = "bench:" + std::to_string(rng() % 10000);
      sqlite3_bind_text(insert, 1, k.c_str(), static_cast<int>(k.size()), SQLITE_TRANSIENT);
      sqlite3_bind_text(insert, 2, value.c_str(), static_cast<int>(value.size()), SQLITE_STATIC);
      if (sqlite3_step(insert) != SQLITE_DONE) {
        std::fprintf(stderr, "sqlite_direct: %s\n", sqlite3_errmsg(db));
        return 2;
      }
      sqlite3_reset(insert);
    }
    if (sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      std::fprintf(stderr, "sqlite_direct: %s\n", sqlite3_errmsg(db));
      return 2;
    }
    latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    ++commits;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    return latencies.empty() ? 0.0
                             : latencies[std::min(latencies.size() - 1,
                                                  static_cast<std::size_t>(p * latencies.size()))];
  };
  std::printf("sqlite_direct: synchronous=%s, %d INSERTs per commit, %zu-byte values\n",
              synchronous.c_str(), rows, value_size);
  std::printf("commits       %.1f /s\n", static_cast<double>(commits) / seconds);
  std::printf("rows          %.1f /s\n", static_cast<double>(commits) * rows / seconds);
  std::printf("latency ms    p50 %.3f  p99 %.3f  max %.3f\n", pct(0.5), pct(0.99),
              latencies.empty() ? 0.0 : latencies.back());
  sqlite3_finalize(insert);
  sqlite3_close(db);
  std::filesystem::remove_all(dir, ec);
  return 0;
}
