#include "server/persister.h"

#include <utility>

namespace synod::server {

Persister::Persister(storage::LogStore* store, std::function<void()> wake)
    : store_(store), wake_(std::move(wake)), thread_([this] { loop(); }) {}

Persister::~Persister() { stop(); }

void Persister::submit(PersistJob job) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
}

std::vector<PersistJob> Persister::take_done() {
  std::lock_guard lock(mu_);
  std::vector<PersistJob> out;
  out.swap(done_);
  return out;
}

void Persister::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Persister::loop() {
  while (true) {
    std::vector<PersistJob> jobs;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything is written
      while (!queue_.empty()) {
        jobs.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    // One write for every job that queued behind the last fsync.
    paxos::PersistBatch merged;
    for (PersistJob& job : jobs) {
      if (failed_epoch_ && job.epoch <= *failed_epoch_) {
        job.ok = false;
        job.error = "an earlier write of this node failed";
        continue;
      }
      const paxos::PersistBatch& b = job.batch;
      if (b.promised && (!merged.promised || *merged.promised < *b.promised)) {
        merged.promised = b.promised;
      }
      merged.accepted.insert(merged.accepted.end(), b.accepted.begin(), b.accepted.end());
      merged.chosen.insert(merged.chosen.end(), b.chosen.begin(), b.chosen.end());
    }
    std::string error;
    const bool ok = merged.empty() || store_->persist(merged, &error);
    for (PersistJob& job : jobs) {
      if (!job.ok) continue;
      if (!ok) {
        job.ok = false;
        job.error = error;
        failed_epoch_ = std::max(failed_epoch_.value_or(0), job.epoch);
      }
    }
    {
      std::lock_guard lock(mu_);
      for (PersistJob& job : jobs) done_.push_back(std::move(job));
    }
    wake_();
  }
}

}  // namespace synod::server
