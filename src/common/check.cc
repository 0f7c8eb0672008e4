#include "common/check.h"

#include <cstdio>
#include <cstdlib>

namespace synod::common {
void check_failed(const char* expr, const char* file, int line, const char* msg) {
  std::fprintf(stderr, "SYNOD_CHECK failed: %s at %s:%d%s%s\n", expr, file, line,
               msg[0] != '\0' ? ": " : "", msg);
  std::fflush(stderr);
  std::abort();
}
}  // namespace synod::common
