// Scratch directories for fuzzers that need a disk (a RocksDB store, a node's
// data directory): on /dev/shm when there is one (a fuzzer writes a lot), named
// after the process, and removed at exit. A fuzzer that crashes does not get
// to run its exit handlers: the next one removes what dead processes left.
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <string>

#include "fuzz/fuzz.h"

namespace synod::fuzz {

// A new directory "<base>/synod-fuzz-<tag>-<pid>-XXXXXX", where base is
// /dev/shm or the temporary directory. The caller removes it at exit.
inline std::string make_scratch_dir(const std::string& tag) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const std::string base =
      fs::is_directory("/dev/shm", ec) ? "/dev/shm" : fs::temp_directory_path().string();
  // Leftovers of crashed runs: synod-fuzz-*-<pid>-* whose process is gone.
  for (const auto& e : fs::directory_iterator(base, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("synod-fuzz-", 0) != 0) continue;
    const std::size_t dash = name.rfind('-');
    const std::size_t pid_start = name.rfind('-', dash - 1);
    if (dash == std::string::npos || pid_start == std::string::npos) continue;
    const long pid = std::strtol(name.c_str() + pid_start + 1, nullptr, 10);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      fs::remove_all(e.path(), ec);
    }
  }
  std::string dir = base + "/synod-fuzz-" + tag + "-" + std::to_string(::getpid()) + "-XXXXXX";
  FUZZ_CHECK(mkdtemp(dir.data()) != nullptr, "mkdtemp %s failed", dir.c_str());
  return dir;
}

}  // namespace synod::fuzz
