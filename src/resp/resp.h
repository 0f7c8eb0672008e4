// RESP2, the Redis serialization protocol: an incremental request parser and
// the reply encoders. Pure: no I/O, unit-tested and fuzzed on its own.
//
// Requests are arrays of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), as
// every Redis client sends them, or inline commands ("GET k\r\n"), as typed
// into telnet. The parser takes bytes as they arrive and hands out complete
// commands; a protocol error is final for the connection (as in Redis, which
// replies with the error and closes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace synod::resp {

struct Limits {
  std::size_t max_bulk = 64u << 20;      // one argument
  std::size_t max_args = 1u << 20;       // arguments of one command
  std::size_t max_inline = 64u << 10;    // an inline command line
  std::size_t max_command = 128u << 20;  // all arguments of one command together
};

class Parser {
 public:
  enum class Status { kNeedMore, kCommand, kError };

  explicit Parser(Limits limits = {}) : limits_(limits) {}

  // Appends received bytes.
  void feed(std::string_view bytes) { buf_.append(bytes); }
  // The next complete command into *args (replaced). kNeedMore: feed more.
  // kError: *error says what is wrong (a Redis-style message without the
  // leading "-"); the parser stays in error.
  Status next(std::vector<std::string>* args, std::string* error);
  // Bytes received but not yet consumed by a complete command.
  std::size_t buffered() const { return buf_.size() - pos_; }

 private:
  Status fail(std::string why, std::string* error);
  // A "\r\n"-terminated line starting at pos_; false when incomplete.
  bool line(std::string_view* out, std::size_t* after) const;

  Limits limits_;
  std::string buf_;
  std::size_t pos_ = 0;
  std::string error_;
  // A multibulk command in progress.
  bool in_array_ = false;
  std::int64_t expected_args_ = 0;
  std::vector<std::string> args_;
  std::size_t arg_bytes_ = 0;
};

// Reply encoders; each appends to *out.
void simple(std::string* out, std::string_view s);  // +OK
void error(std::string* out, std::string_view s);   // -ERR ... (s has no CR/LF)
void integer(std::string* out, std::int64_t n);      // :1
void bulk(std::string* out, std::string_view s);    // $3\r\nabc
void null_bulk(std::string* out);                   // $-1
void array(std::string* out, std::size_t n);        // *n, then n replies

}  // namespace synod::resp
