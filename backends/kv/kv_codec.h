// The kv backend's commands and results: proto/kv.proto's KvCommand and
// KvResult, read and written by hand on the protobuf wire format.
//
// The backend library does not link the generated classes: see
// src/backend/wire.h for why. kv_codec_test.cc checks this codec against the
// generated ones in both directions, so the .proto stays the single schema.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace synod::kv {

// KvCommand.Op. Other values can arrive (proto3 enums are open); they are a
// BAD_COMMAND when executed.
enum class Op : int32_t {
  kGet = 0,
  kPut = 1,
  kDelete = 2,
  kCas = 3,
  kIncrement = 4,
  kList = 5,
  kMget = 6,
  kMput = 7,
  kMdelete = 8,
  kCount = 9,
};

// KvResult.Code.
enum class Code : int32_t {
  kOk = 0,
  kNotFound = 1,
  kCasFailed = 2,
  kNotANumber = 3,
  kBadCommand = 4,
};

struct Command {
  int32_t op = 0;  // an Op, or an unknown value
  std::string key;
  std::string value;
  std::string expected;
  bool expect_absent = false;
  int64_t delta = 0;
  std::string prefix;
  uint32_t limit = 0;
  std::vector<std::string> keys;
  std::vector<std::string> values;
  bool require_present = false;
};

// KvEntry: one key's answer to MGET.
struct Entry {
  bool found = false;
  std::string value;
  bool operator==(const Entry&) const = default;
};

struct Result {
  Code code = Code::kOk;
  std::string value;
  bool found = false;
  int64_t number = 0;
  std::vector<std::string> keys;
  std::string error;
  std::vector<Entry> entries;
};

// Parses a serialized KvCommand. False with *error when the bytes are not one.
bool decode_command(std::string_view bytes, Command* out, std::string* error);
// Serializes a KvResult canonically (fields in number order, defaults left
// out), so every node produces the same bytes for the same result.
std::string encode_result(const Result& result);

// The other direction, for tests and tools that want no libprotobuf.
std::string encode_command(const Command& command);
bool decode_result(std::string_view bytes, Result* out, std::string* error);

}  // namespace synod::kv
