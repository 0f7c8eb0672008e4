// Silences libprotobuf's log (e.g. "String field ... contains invalid UTF-8
// data"), which a fuzzer would otherwise print for a large share of its inputs.
// Parsing still fails as it should; only the message goes.
#pragma once

#include <google/protobuf/stubs/logging.h>

namespace synod::fuzz {

inline void quiet_protobuf() {
  static const bool quiet = [] {
    google::protobuf::SetLogHandler(nullptr);
    return true;
  }();
  (void)quiet;
}

}  // namespace synod::fuzz
