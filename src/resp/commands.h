// The Redis commands Synod serves, as a pure translation: a parsed command
// becomes either an immediate reply (PING, ECHO, errors, CONFIG GET, ...) or
// one kv backend request (proto/kv.proto KvCommand) plus how to render its
// KvResult as a RESP reply. No I/O: the network side is redis_server.h.
//
// Served (RESP2): PING ECHO QUIT SELECT(0) CONFIG-GET COMMAND CLIENT-SETNAME/
// SETINFO/GETNAME/ID INFO HELLO(2) SET(NX|XX) SETNX GET STRLEN DEL UNLINK EXISTS
// INCR INCRBY DECR DECRBY MGET MSET KEYS DBSIZE. Key expiry (EX, PX, EXAT,
// PXAT, KEEPTTL) and SET ... GET are refused with a clear error: keys do not
// expire in Synod. Multi-key commands are one command in the log, so MSET and
// DEL are atomic, as in Redis.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "proto/kv.pb.h"

namespace synod::resp {

struct Plan {
  enum class Kind {
    kReply,  // send `reply`
    kWrite,  // propose `payload` through the log, then render its result
    kRead,   // query `payload` (at the node's read consistency), then render
    kQuit,   // send `reply`, then close the connection
  };
  Kind kind = Kind::kReply;
  std::string reply;
  std::string payload;  // a serialized KvCommand
  // Appends the RESP reply for the backend's result.
  std::function<void(const proto::KvResult&, std::string*)> render;
};

// args: a command as the parser gave it (args[0] is the name, any case).
Plan plan_command(const std::vector<std::string>& args);

// Redis glob-style matching (KEYS): * ? [abc] [^a] [a-z] and \x escapes.
bool glob_match(std::string_view pattern, std::string_view text);

// The literal prefix of a glob pattern (up to its first special character).
std::string glob_prefix(std::string_view pattern);

}  // namespace synod::resp
