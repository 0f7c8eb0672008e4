// Read-only view of the durable log of chosen values. The core keeps only
// in-flight and not-yet-applied slots in memory; catch-up reads older chosen
// values through this interface. The storage layer implements it over RocksDB;
// tests use MemoryChosenLog.
#pragma once

#include <map>

#include "paxos/types.h"

namespace synod::paxos {

class ChosenLog {
 public:
  virtual ~ChosenLog() = default;

  // The chosen value of slot, or nullptr if storage does not hold it (not known
  // chosen here, or compacted into a snapshot). The pointer stays valid as long
  // as the caller holds it. Called only between inputs to the core, after the
  // caller has made the previous Ready durable.
  virtual ValuePtr chosen(Slot slot) const = 0;

  // The lowest slot whose value is still stored. Slots below it are covered by
  // a snapshot; a peer asking for them is told to install one. 1 when nothing
  // was compacted.
  virtual Slot first_slot() const = 0;
};

// In-memory implementation for tests, the simulator and benchmarks.
class MemoryChosenLog final : public ChosenLog {
 public:
  ValuePtr chosen(Slot slot) const override {
    auto it = values_.find(slot);
    return it == values_.end() ? nullptr : it->second;
  }
  Slot first_slot() const override { return first_slot_; }

  void put(Slot slot, ValuePtr value) {
    if (slot >= first_slot_) values_[slot] = std::move(value);
  }
  // Drops every slot below first (as if compacted into a snapshot).
  void compact(Slot first) {
    if (first <= first_slot_) return;
    values_.erase(values_.begin(), values_.lower_bound(first));
    first_slot_ = first;
  }
  std::size_t size() const { return values_.size(); }

 private:
  std::map<Slot, ValuePtr> values_;
  Slot first_slot_ = 1;
};

}  // namespace synod::paxos
