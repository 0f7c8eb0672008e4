// resp_fuzz: the Redis front end's parser (src/resp/resp.h) and command
// translation (src/resp/commands.h), which every byte a Redis client sends
// goes through.
//
// Input: byte 0 = how the stream is cut into reads (a seed for chunk sizes);
// the rest is the byte stream.
//
// Checks: no crash; the commands and the final status do not depend on how
// the stream is cut into reads; an error is terminal; every command
// re-encoded as a RESP array parses back to the same arguments; every plan is
// a well-formed reply or a KvCommand that parses, and rendering it against
// results of every code gives a well-formed reply.
#include <string>
#include <vector>

#include "fuzz/fuzz.h"
#include "fuzz/quiet_protobuf.h"
#include "resp/commands.h"
#include "resp/resp.h"

namespace synod::fuzz {
namespace {

using resp::Parser;

struct Outcome {
  std::vector<std::vector<std::string>> commands;
  Parser::Status last = Parser::Status::kNeedMore;
  std::string error;
};

resp::Limits small_limits() {
  resp::Limits l;
  l.max_bulk = 4096;
  l.max_args = 64;
  l.max_inline = 1024;
  l.max_command = 8192;
  return l;
}

Outcome parse(std::string_view stream, std::uint8_t seed) {
  Outcome out;
  Parser p(small_limits());
  std::size_t pos = 0;
  std::uint32_t state = seed * 2654435761u + 1;
  std::vector<std::string> args;
  while (true) {
    if (pos < stream.size()) {
      state = state * 1103515245u + 12345u;
      const std::size_t chunk = seed == 0 ? stream.size() : 1 + (state >> 16) % 17;
      p.feed(stream.substr(pos, chunk));
      pos += std::min(chunk, stream.size() - pos);
    }
    while (true) {
      out.last = p.next(&args, &out.error);
      if (out.last != Parser::Status::kCommand) break;
      out.commands.push_back(args);
    }
    if (out.last == Parser::Status::kError) {
      std::string again;
      p.feed("*1\r\n$4\r\nPING\r\n");
      FUZZ_CHECK(p.next(&args, &again) == Parser::Status::kError && again == out.error,
                 "a parser error is not terminal");
      return out;
    }
    if (pos >= stream.size()) return out;
  }
}

bool well_formed_reply(const std::string& r) {
  return !r.empty() && std::string("+-:$*").find(r[0]) != std::string::npos &&
         r.size() >= 3 && r.compare(r.size() - 2, 2, "\r\n") == 0;
}

void check_plan(const std::vector<std::string>& args) {
  const resp::Plan plan = resp::plan_command(args);
  switch (plan.kind) {
    case resp::Plan::Kind::kReply:
    case resp::Plan::Kind::kQuit:
      FUZZ_CHECK(well_formed_reply(plan.reply), "malformed immediate reply");
      return;
    case resp::Plan::Kind::kWrite:
    case resp::Plan::Kind::kRead:
      break;
  }
  proto::KvCommand cmd;
  FUZZ_CHECK(cmd.ParseFromString(plan.payload), "a plan's payload is not a KvCommand");
  FUZZ_CHECK(static_cast<bool>(plan.render), "a request without a renderer");
  for (int code = 0; code <= 4; ++code) {
    proto::KvResult r;
    r.set_code(static_cast<proto::KvResult::Code>(code));
    r.set_value(args.size() > 1 ? args[1] : "");
    r.set_number(static_cast<std::int64_t>(args.size()) - 3);
    for (const auto& a : args) r.add_keys(a);
    r.add_entries()->set_found(code % 2 == 0);
    std::string out;
    plan.render(r, &out);
    FUZZ_CHECK(well_formed_reply(out), "malformed rendered reply for code %d", code);
  }
}

}  // namespace
}  // namespace synod::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace synod::fuzz;  // NOLINT
  quiet_protobuf();
  if (size == 0) return 0;
  const std::string_view stream(reinterpret_cast<const char*>(data) + 1, size - 1);
  const Outcome whole = parse(stream, 0);
  const Outcome cut = parse(stream, data[0]);
  FUZZ_CHECK(whole.commands == cut.commands && whole.last == cut.last && whole.error == cut.error,
             "the result depends on how the stream is cut (%zu vs %zu commands)",
             whole.commands.size(), cut.commands.size());
  for (const auto& args : whole.commands) {
    FUZZ_CHECK(!args.empty(), "an empty command");
    std::string encoded;
    synod::resp::array(&encoded, args.size());
    for (const auto& a : args) synod::resp::bulk(&encoded, a);
    synod::resp::Parser p;
    p.feed(encoded);
    std::vector<std::string> back;
    std::string error;
    FUZZ_CHECK(p.next(&back, &error) == synod::resp::Parser::Status::kCommand && back == args,
               "a command does not survive re-encoding");
    check_plan(args);
    if (args.size() >= 2) synod::resp::glob_match(args[0], args[1]);
  }
  return 0;
}
