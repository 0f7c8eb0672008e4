// Persister: a node's storage thread. The event loop hands it each Ready's
// PersistBatch (with the rest of that Ready, to be released once durable) and
// goes on serving sockets while the fsync runs; jobs that queue up behind a
// running fsync are merged into one write and one fsync (group commit across
// event-loop turns). Completed jobs come back to the event loop in submission
// order through `wake` (called on the storage thread; it should post).
//
// Failure: a job whose write fails comes back with ok == false, and so does
// every job of the same epoch after it, without being written — a later write
// must not become durable on top of one that did not. The event loop then
// rebuilds its core from disk and moves to a new epoch.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "paxos/ready.h"
#include "storage/log_store.h"

namespace synod::server {

struct PersistJob {
  std::uint64_t epoch = 0;
  paxos::PersistBatch batch;
  // The rest of the Ready, released once the batch is durable.
  std::vector<paxos::Message> messages;
  std::vector<paxos::ChosenEntry> committed;
  std::vector<paxos::ProposalOutcome> outcomes;
  std::optional<paxos::SnapshotNeeded> snapshot_needed;
  // Set by the storage thread.
  bool ok = true;
  std::string error;
};

class Persister {
 public:
  Persister(storage::LogStore* store, std::function<void()> wake);
  ~Persister();  // stop()
  Persister(const Persister&) = delete;
  Persister& operator=(const Persister&) = delete;

  void submit(PersistJob job);
  // Completed jobs, in submission order.
  std::vector<PersistJob> take_done();
  // Waits until every submitted job is done, then ends the thread. Idempotent.
  void stop();

 private:
  void loop();

  storage::LogStore* const store_;
  const std::function<void()> wake_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<PersistJob> queue_;
  std::vector<PersistJob> done_;
  bool stopping_ = false;
  std::optional<std::uint64_t> failed_epoch_;  // storage thread only
  std::thread thread_;
};

}  // namespace synod::server
