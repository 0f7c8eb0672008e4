// Shared helpers of the fuzzers in fuzz/ (see fuzz/README.md).
//
// Every fuzzer is one file defining LLVMFuzzerTestOneInput. The same file is
// linked two ways (fuzz/CMakeLists.txt, synod_add_fuzzer):
//   - with libFuzzer (-fsanitize=fuzzer, clang, preset `fuzz`): the fuzzer;
//   - with regression_main.cc (any compiler, every preset): a CTest test that
//     replays fuzz/corpus/<name>/ and fuzz/regressions/<name>/.
// So nothing here may depend on clang or libFuzzer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

// A property of the code under test that the fuzzer checks (beyond "does not
// crash"): on failure it prints what broke and aborts, so libFuzzer saves the
// input like any other crash.
#define FUZZ_CHECK(cond, ...)                                                                   \
  do {                                                                                          \
    if (!(cond)) {                                                                              \
      std::fprintf(stderr, "%s:%d: fuzz property violated: %s\n  ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                                        \
      std::fprintf(stderr, "\n");                                                               \
      std::abort();                                                                             \
    }                                                                                           \
  } while (0)

namespace synod::fuzz {

// Reads typed values off the front of the fuzzer's input. Past the end every
// read returns zeros / empty strings, so a decoder never has to check lengths
// (libFuzzer then learns that longer inputs reach further).
class FuzzInput {
 public:
  FuzzInput(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }
  std::size_t remaining() const { return empty() ? 0 : size_ - pos_; }

  std::uint8_t u8() { return empty() ? 0 : data_[pos_++]; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  std::uint32_t u32() { return static_cast<std::uint32_t>(u16() | (std::uint32_t{u16()} << 16)); }
  std::uint64_t u64() { return u32() | (std::uint64_t{u32()} << 32); }
  bool boolean() { return (u8() & 1) != 0; }
  // Uniform-ish in [0, n) for small n (n > 0); one byte.
  std::uint8_t below(std::uint8_t n) { return static_cast<std::uint8_t>(u8() % n); }

  // Up to max_len bytes, the length taken from the input (one byte).
  std::string bytes(std::size_t max_len) {
    std::size_t n = max_len == 0 ? 0 : u8() % (max_len + 1);
    return take(n);
  }
  // A length-prefixed (u16) chunk of at most max_len bytes.
  std::string chunk(std::size_t max_len) {
    std::size_t n = max_len == 0 ? 0 : u16() % (max_len + 1);
    return take(n);
  }
  // Everything not read yet.
  std::string rest() { return take(remaining()); }

 private:
  std::string take(std::size_t n) {
    if (n > remaining()) n = remaining();
    std::string out(reinterpret_cast<const char*>(data_) + pos_, n);
    pos_ += n;
    return out;
  }

  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// Environment switch SYNOD_FUZZ_STRICT=1: the fuzzers that model a correct
// peer (peer_message_fuzz, replica_fuzz) stop filtering inputs a correct peer
// cannot send, to show what the code does with them (see plausible.h).
inline bool strict_mode() {
  static const bool strict = [] {
    const char* v = std::getenv("SYNOD_FUZZ_STRICT");
    return v != nullptr && std::string_view(v) == "1";
  }();
  return strict;
}

}  // namespace synod::fuzz
