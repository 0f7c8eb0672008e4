#include "paxos/types.h"

#include <algorithm>

namespace synod::paxos {

std::size_t Value::byte_size() const {
  std::size_t n = 0;
  for (const auto& c : commands) n += c.size();
  return n;
}

const ValuePtr& noop_value() {
  static const ValuePtr kNoopValue = std::make_shared<const Value>();
  return kNoopValue;
}

bool same_value(const ValuePtr& a, const ValuePtr& b) {
  if (a == b) return true;
  if (!a || !b) return false;
  return *a == *b;
}

bool Configuration::contains(NodeId id) const { return index_of(id) >= 0; }

int Configuration::index_of(NodeId id) const {
  auto it = std::find(members.begin(), members.end(), id);
  return it == members.end() ? -1 : static_cast<int>(it - members.begin());
}

}  // namespace synod::paxos
