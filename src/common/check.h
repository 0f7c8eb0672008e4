// SYNOD_CHECK: invariant assertions that stay on in every build type.
//
// A broken invariant must stop the process with a clear message rather than let
// it go on and corrupt the log (STYLE.md, after TigerBeetle). The failure path
// lives in check.cc so that this header pulls in no I/O: the consensus core
// (src/paxos/) may include it and stay pure.
#pragma once

namespace synod::common {
[[noreturn]] void check_failed(const char* expr, const char* file, int line, const char* msg);
}  // namespace synod::common

#define SYNOD_CHECK(cond)                                                      \
  do {                                                                         \
    if (!(cond)) ::synod::common::check_failed(#cond, __FILE__, __LINE__, ""); \
  } while (0)

#define SYNOD_CHECK_MSG(cond, msg)                                              \
  do {                                                                          \
    if (!(cond)) ::synod::common::check_failed(#cond, __FILE__, __LINE__, msg); \
  } while (0)
