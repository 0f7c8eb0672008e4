// main() of a fuzzer's regression test (<name>_regress): runs
// LLVMFuzzerTestOneInput once on every file of the given files and directories
// (default: the fuzzer's corpus and regressions directories, compiled in as
// SYNOD_FUZZ_DIRS). A crash or a failed property aborts, and CTest reports it;
// no libFuzzer or clang needed.
//
//   build/default/fuzz/frame_fuzz_regress                 # corpus + regressions
//   build/default/fuzz/frame_fuzz_regress crash-1234abcd  # one input
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz/fuzz.h"

namespace {

std::vector<std::string> split_dirs(const std::string& list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    std::size_t end = list.find(';', start);
    if (end == std::string::npos) end = list.size();
    if (end > start) out.push_back(list.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool run_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return false;
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A copy in its own allocation, so ASan sees reads past the end.
  std::vector<std::uint8_t> data(bytes.begin(), bytes.end());
  std::fprintf(stderr, "running %s (%zu bytes)\n", path.c_str(), data.size());
  LLVMFuzzerTestOneInput(data.empty() ? nullptr : data.data(), data.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) args = split_dirs(SYNOD_FUZZ_DIRS);
  std::size_t ran = 0;
  for (const std::string& arg : args) {
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) {
      std::vector<std::filesystem::path> files;
      for (const auto& e : std::filesystem::directory_iterator(arg)) {
        if (e.is_regular_file() && e.path().filename().string()[0] != '.') {
          files.push_back(e.path());
        }
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) ran += run_file(f) ? 1 : 0;
    } else if (std::filesystem::is_regular_file(arg, ec)) {
      ran += run_file(arg) ? 1 : 0;
    } else {
      std::fprintf(stderr, "skipping %s: no such file or directory\n", arg.c_str());
    }
  }
  if (ran == 0) {
    std::fprintf(stderr, "no input ran: an empty or missing corpus is a build mistake\n");
    return 1;
  }
  std::fprintf(stderr, "%zu inputs ran without a crash\n", ran);
  return 0;
}
