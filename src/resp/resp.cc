#include "resp/resp.h"

#include <charconv>

namespace synod::resp {

namespace {

// The longest "*N" or "$N" line taken (without its CRLF); the same whether the
// line arrives whole or in pieces.
constexpr std::size_t kMaxHeader = 32;

// A decimal integer filling all of s (an optional leading '-').
bool parse_int(std::string_view s, std::int64_t* out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Splits an inline command line at spaces and tabs; "..." and '...' quote
// (with \" and \\ escapes inside double quotes), as redis-cli and Redis do.
bool split_inline(std::string_view line, std::vector<std::string>* args, std::string* why) {
  args->clear();
  std::size_t i = 0;
  while (true) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i == line.size()) return true;
    std::string arg;
    if (line[i] == '"' || line[i] == '\'') {
      const char q = line[i++];
      bool closed = false;
      while (i < line.size()) {
        char c = line[i++];
        if (c == q) {
          closed = true;
          break;
        }
        if (c == '\\' && q == '"' && i < line.size()) {
          c = line[i++];
          if (c == 'n') c = '\n';
          if (c == 'r') c = '\r';
          if (c == 't') c = '\t';
        }
        arg.push_back(c);
      }
      if (!closed || (i < line.size() && line[i] != ' ' && line[i] != '\t')) {
        *why = "unbalanced quotes in request";
        return false;
      }
    } else {
      while (i < line.size() && line[i] != ' ' && line[i] != '\t') arg.push_back(line[i++]);
    }
    args->push_back(std::move(arg));
  }
}

}  // namespace

Parser::Status Parser::fail(std::string why, std::string* error) {
  error_ = "Protocol error: " + std::move(why);
  *error = error_;
  return Status::kError;
}

bool Parser::line(std::string_view* out, std::size_t* after) const {
  const std::size_t end = buf_.find("\r\n", pos_);
  if (end == std::string::npos) return false;
  *out = std::string_view(buf_).substr(pos_, end - pos_);
  *after = end + 2;
  return true;
}

Parser::Status Parser::next(std::vector<std::string>* args, std::string* error) {
  if (!error_.empty()) {
    *error = error_;
    return Status::kError;
  }
  // Drop consumed bytes now and then, not after every command.
  if (pos_ > 0 && (pos_ == buf_.size() || pos_ > (64u << 10))) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  while (true) {
    if (pos_ == buf_.size()) return Status::kNeedMore;
    if (!in_array_) {
      std::string_view l;
      std::size_t after = 0;
      if (buf_[pos_] != '*') {
        // An inline command, ended by "\r\n" or a bare "\n" (as Redis allows).
        const std::size_t nl = buf_.find('\n', pos_);
        if (nl == std::string::npos) {
          // (+1: a '\r' that the '\n' still to come would strip.)
          if (buffered() > limits_.max_inline + 1) return fail("too big inline request", error);
          return Status::kNeedMore;
        }
        l = std::string_view(buf_).substr(pos_, nl - pos_);
        if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
        after = nl + 1;
        if (l.size() > limits_.max_inline) return fail("too big inline request", error);
        std::string why;
        if (!split_inline(l, args, &why)) return fail(why, error);
        pos_ = after;
        if (args->empty()) continue;  // an empty line: ignored, as by Redis
        return Status::kCommand;
      }
      if (!line(&l, &after)) {
        if (buffered() > kMaxHeader + 1) return fail("invalid multibulk length", error);
        return Status::kNeedMore;
      }
      if (l.size() > kMaxHeader) return fail("invalid multibulk length", error);
      std::int64_t n = 0;
      if (!parse_int(l.substr(1), &n) || n > static_cast<std::int64_t>(limits_.max_args)) {
        return fail("invalid multibulk length", error);
      }
      pos_ = after;
      if (n <= 0) continue;  // "*0" and "*-1": nothing to do, as in Redis
      in_array_ = true;
      expected_args_ = n;
      args_.clear();
      arg_bytes_ = 0;
    }
    while (static_cast<std::int64_t>(args_.size()) < expected_args_) {
      std::string_view l;
      std::size_t after = 0;
      if (pos_ == buf_.size()) return Status::kNeedMore;
      if (buf_[pos_] != '$') {
        return fail(std::string("expected '$', got '") + buf_[pos_] + "'", error);
      }
      if (!line(&l, &after)) {
        if (buffered() > kMaxHeader + 1) return fail("invalid bulk length", error);
        return Status::kNeedMore;
      }
      if (l.size() > kMaxHeader) return fail("invalid bulk length", error);
      std::int64_t len = 0;
      if (!parse_int(l.substr(1), &len) || len < 0 ||
          static_cast<std::uint64_t>(len) > limits_.max_bulk) {
        return fail("invalid bulk length", error);
      }
      const auto size = static_cast<std::size_t>(len);
      if (arg_bytes_ + size > limits_.max_command) return fail("command too large", error);
      if (buf_.size() - after < size + 2) return Status::kNeedMore;
      if (buf_[after + size] != '\r' || buf_[after + size + 1] != '\n') {
        return fail("bulk string not terminated by CRLF", error);
      }
      args_.emplace_back(buf_, after, size);
      arg_bytes_ += size;
      pos_ = after + size + 2;
    }
    in_array_ = false;
    args->swap(args_);
    args_.clear();
    return Status::kCommand;
  }
}

void simple(std::string* out, std::string_view s) {
  out->push_back('+');
  out->append(s);
  out->append("\r\n");
}

void error(std::string* out, std::string_view s) {
  out->push_back('-');
  for (char c : s) out->push_back(c == '\r' || c == '\n' ? ' ' : c);
  out->append("\r\n");
}

void integer(std::string* out, std::int64_t n) {
  out->push_back(':');
  out->append(std::to_string(n));
  out->append("\r\n");
}

void bulk(std::string* out, std::string_view s) {
  out->push_back('$');
  out->append(std::to_string(s.size()));
  out->append("\r\n");
  out->append(s);
  out->append("\r\n");
}

void null_bulk(std::string* out) { out->append("$-1\r\n"); }

void array(std::string* out, std::size_t n) {
  out->push_back('*');
  out->append(std::to_string(n));
  out->append("\r\n");
}

}  // namespace synod::resp
