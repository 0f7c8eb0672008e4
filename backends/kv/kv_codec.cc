#include "backends/kv/kv_codec.h"

#include <type_traits>

#include "backend/wire.h"

namespace synod::kv {
namespace {

using backend::wire::Reader;
using backend::wire::Writer;

constexpr uint32_t kVarint = 0;
constexpr uint32_t kLengthDelimited = 2;

// Reads the value of the current field into the right member, or skips it
// when the field is unknown or has another wire type than the schema's (what
// the generated parser does too).
bool read_bytes(Reader& r, uint32_t type, std::string* out) {
  if (type != kLengthDelimited) return r.skip(type);
  std::string_view v;
  if (!r.length_delimited(&v)) return false;
  out->assign(v);
  return true;
}

template <typename T>
bool read_varint(Reader& r, uint32_t type, T* out) {
  if (type != kVarint) return r.skip(type);
  uint64_t v = 0;
  if (!r.varint(&v)) return false;
  if constexpr (std::is_same_v<T, bool>) {
    *out = v != 0;
  } else {
    *out = static_cast<T>(v);  // int32/uint32: the low 32 bits, as protobuf does
  }
  return true;
}

// A KvEntry inside a KvResult.
bool read_entry(std::string_view bytes, Entry* out) {
  Reader r(bytes);
  while (!r.done()) {
    uint32_t field = 0, type = 0;
    if (!r.next(&field, &type)) return false;
    bool ok = field == 1   ? read_varint(r, type, &out->found)
              : field == 2 ? read_bytes(r, type, &out->value)
                           : r.skip(type);
    if (!ok) return false;
  }
  return true;
}

}  // namespace

bool decode_command(std::string_view bytes, Command* out, std::string* error) {
  *out = Command{};
  Reader r(bytes);
  while (!r.done()) {
    uint32_t field = 0, type = 0;
    bool ok = r.next(&field, &type);
    if (ok) {
      switch (field) {
        case 1:
          ok = read_varint(r, type, &out->op);
          break;
        case 2:
          ok = read_bytes(r, type, &out->key);
          break;
        case 3:
          ok = read_bytes(r, type, &out->value);
          break;
        case 4:
          ok = read_bytes(r, type, &out->expected);
          break;
        case 5:
          ok = read_varint(r, type, &out->expect_absent);
          break;
        case 6:
          ok = read_varint(r, type, &out->delta);
          break;
        case 7:
          ok = read_bytes(r, type, &out->prefix);
          break;
        case 8:
          ok = read_varint(r, type, &out->limit);
          break;
        case 9:
          ok = type == kLengthDelimited ? read_bytes(r, type, &out->keys.emplace_back())
                                        : r.skip(type);
          break;
        case 10:
          ok = type == kLengthDelimited ? read_bytes(r, type, &out->values.emplace_back())
                                        : r.skip(type);
          break;
        case 11:
          ok = read_varint(r, type, &out->require_present);
          break;
        default:
          ok = r.skip(type);
          break;
      }
    }
    if (!ok) {
      *error = "malformed KvCommand: " + r.error();
      return false;
    }
  }
  return true;
}

std::string encode_result(const Result& result) {
  std::string out;
  Writer w(&out);
  if (result.code != Code::kOk) w.varint_field(1, static_cast<uint64_t>(result.code));
  if (!result.value.empty()) w.bytes_field(2, result.value);
  if (result.found) w.varint_field(3, 1);
  if (result.number != 0) w.varint_field(4, static_cast<uint64_t>(result.number));
  for (const auto& key : result.keys) w.bytes_field(5, key);
  if (!result.error.empty()) w.bytes_field(6, result.error);
  std::string entry;
  for (const auto& e : result.entries) {
    entry.clear();
    Writer ew(&entry);
    if (e.found) ew.varint_field(1, 1);
    if (!e.value.empty()) ew.bytes_field(2, e.value);
    w.bytes_field(7, entry);
  }
  return out;
}

std::string encode_command(const Command& command) {
  std::string out;
  Writer w(&out);
  // An int32 is sign-extended to 64 bits on the wire.
  if (command.op != 0) w.varint_field(1, static_cast<uint64_t>(int64_t{command.op}));
  if (!command.key.empty()) w.bytes_field(2, command.key);
  if (!command.value.empty()) w.bytes_field(3, command.value);
  if (!command.expected.empty()) w.bytes_field(4, command.expected);
  if (command.expect_absent) w.varint_field(5, 1);
  if (command.delta != 0) w.varint_field(6, static_cast<uint64_t>(command.delta));
  if (!command.prefix.empty()) w.bytes_field(7, command.prefix);
  if (command.limit != 0) w.varint_field(8, command.limit);
  for (const auto& k : command.keys) w.bytes_field(9, k);
  for (const auto& v : command.values) w.bytes_field(10, v);
  if (command.require_present) w.varint_field(11, 1);
  return out;
}

bool decode_result(std::string_view bytes, Result* out, std::string* error) {
  *out = Result{};
  Reader r(bytes);
  while (!r.done()) {
    uint32_t field = 0, type = 0;
    bool ok = r.next(&field, &type);
    if (ok) {
      switch (field) {
        case 1: {
          auto code = static_cast<int32_t>(out->code);
          ok = read_varint(r, type, &code);
          out->code = static_cast<Code>(code);
          break;
        }
        case 2:
          ok = read_bytes(r, type, &out->value);
          break;
        case 3:
          ok = read_varint(r, type, &out->found);
          break;
        case 4:
          ok = read_varint(r, type, &out->number);
          break;
        case 5:
          if (type == kLengthDelimited) {
            ok = read_bytes(r, type, &out->keys.emplace_back());
          } else {
            ok = r.skip(type);
          }
          break;
        case 6:
          ok = read_bytes(r, type, &out->error);
          break;
        case 7:
          if (type == kLengthDelimited) {
            std::string_view entry;
            ok = r.length_delimited(&entry);
            if (ok && !read_entry(entry, &out->entries.emplace_back())) {
              *error = "malformed KvResult: a malformed entry";
              return false;
            }
          } else {
            ok = r.skip(type);
          }
          break;
        default:
          ok = r.skip(type);
          break;
      }
    }
    if (!ok) {
      *error = "malformed KvResult: " + r.error();
      return false;
    }
  }
  return true;
}

}  // namespace synod::kv
