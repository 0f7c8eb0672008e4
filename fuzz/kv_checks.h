// Checks shared by the fuzzers of the kv backend (kv_command_fuzz,
// client_request_fuzz): the hand-written codec (backends/kv/kv_codec.h) against
// the generated proto classes, and KvStore against a reference model (a
// std::map) of the semantics kv_store.h documents.
#pragma once

#include <charconv>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "backends/kv/kv_codec.h"
#include "backends/kv/kv_store.h"
#include "fuzz/fuzz.h"
#include "proto/kv.pb.h"

namespace synod::fuzz {

inline bool has_group(const google::protobuf::UnknownFieldSet& fields) {
  for (int i = 0; i < fields.field_count(); ++i) {
    if (fields.field(i).type() == google::protobuf::UnknownField::TYPE_GROUP) return true;
  }
  return false;
}

// kv::decode_command, checked against proto::KvCommand's parser: whatever the
// codec accepts, the generated parser accepts with the same fields; what the
// codec refuses, the generated parser refuses too, with two known exceptions
// that no protobuf encoder produces: groups (refused by design, wire.h) and a
// field tag whose varint carries bits beyond 32 (protobuf drops them and reads
// some other field number; wire.h refuses the tag).
inline bool decode_and_compare(std::string_view bytes, kv::Command* out) {
  std::string error;
  const bool ok = kv::decode_command(bytes, out, &error);
  proto::KvCommand g;
  const bool gok = g.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
  if (!ok) {
    FUZZ_CHECK(!error.empty(), "refused without a reason");
    FUZZ_CHECK(!gok || has_group(g.GetReflection()->GetUnknownFields(g)) ||
                   error.find("invalid field tag") != std::string::npos,
               "kv_codec refuses a KvCommand protobuf accepts: %s", error.c_str());
    return false;
  }
  FUZZ_CHECK(gok, "kv_codec accepts bytes protobuf refuses as a KvCommand");
  FUZZ_CHECK(out->op == static_cast<std::int32_t>(g.op()), "op %d vs %d", out->op,
             static_cast<int>(g.op()));
  FUZZ_CHECK(out->key == g.key() && out->value == g.value() && out->expected == g.expected() &&
                 out->expect_absent == g.expect_absent() && out->delta == g.delta() &&
                 out->prefix == g.prefix() && out->limit == g.limit() &&
                 out->keys == std::vector<std::string>(g.keys().begin(), g.keys().end()) &&
                 out->values == std::vector<std::string>(g.values().begin(), g.values().end()) &&
                 out->require_present == g.require_present(),
             "kv_codec and protobuf decode different fields");
  // encode_command is canonical: protobuf's serialization of the same fields.
  const std::string encoded = kv::encode_command(*out);
  g.DiscardUnknownFields();
  const std::string gencoded = g.SerializeAsString();
  FUZZ_CHECK(encoded == gencoded, "encode_command differs from protobuf's serialization");
  return true;
}

// The result bytes a store produced: a valid KvResult for the client's
// generated parser (the error field is a proto3 string: UTF-8 only), the same
// for kv_codec, and canonical (encode_result gives back the very bytes).
inline kv::Result check_result_bytes(const std::string& bytes) {
  kv::Result r;
  std::string error;
  FUZZ_CHECK(kv::decode_result(bytes, &r, &error), "a result kv_codec cannot decode: %s",
             error.c_str());
  proto::KvResult g;
  FUZZ_CHECK(g.ParseFromString(bytes), "a result the client's protobuf cannot parse (error '%s')",
             r.error.c_str());
  FUZZ_CHECK(kv::encode_result(r) == bytes, "result bytes are not canonical");
  FUZZ_CHECK(static_cast<int>(g.code()) == static_cast<int>(r.code) && g.value() == r.value &&
                 g.found() == r.found && g.number() == r.number &&
                 g.keys_size() == static_cast<int>(r.keys.size()) && g.error() == r.error &&
                 g.entries_size() == static_cast<int>(r.entries.size()),
             "kv_codec and protobuf read a result differently");
  for (int i = 0; i < g.entries_size(); ++i) {
    FUZZ_CHECK(g.entries(i).found() == r.entries[i].found &&
                   g.entries(i).value() == r.entries[i].value,
               "kv_codec and protobuf read entry %d differently", i);
  }
  return r;
}

// The kv backend's semantics (kv_store.h) over a std::map.
class KvModel {
 public:
  // What executing `cmd` gives (and does, when `write`): code, found, value,
  // number, keys. The error text is checked for presence only.
  kv::Result execute(const kv::Command& cmd, bool write) {
    kv::Result r;
    const auto op = static_cast<kv::Op>(cmd.op);
    if (op == kv::Op::kList || op == kv::Op::kCount) {
      for (auto it = data_.lower_bound(cmd.prefix);
           it != data_.end() && it->first.compare(0, cmd.prefix.size(), cmd.prefix) == 0; ++it) {
        if (op == kv::Op::kCount) {
          ++r.number;
          continue;
        }
        if (cmd.limit != 0 && r.keys.size() >= cmd.limit) break;
        r.keys.push_back(it->first);
      }
      return r;
    }
    if (op == kv::Op::kMget || op == kv::Op::kMput || op == kv::Op::kMdelete) {
      return execute_multi(cmd, write);
    }
    if (cmd.op < 0 || cmd.op > static_cast<std::int32_t>(kv::Op::kCount) || cmd.key.empty() ||
        cmd.key.size() > kv::kMaxKeyBytes || (cmd.require_present && op != kv::Op::kPut)) {
      return bad();
    }
    auto it = data_.find(cmd.key);
    const bool found = it != data_.end();
    const std::string current = found ? it->second : "";
    r.found = found;
    switch (op) {
      case kv::Op::kGet:
        r.code = found ? kv::Code::kOk : kv::Code::kNotFound;
        r.value = current;
        return r;
      case kv::Op::kPut:
        if (cmd.require_present && !found) {
          r.code = kv::Code::kCasFailed;
          return r;
        }
        if (write) data_[cmd.key] = cmd.value;
        return r;
      case kv::Op::kDelete:
        if (write && found) data_.erase(it);
        return r;
      case kv::Op::kCas: {
        if (cmd.expect_absent && !cmd.expected.empty()) return bad();
        const bool match = cmd.expect_absent ? !found : found && current == cmd.expected;
        if (!match) {
          r.code = kv::Code::kCasFailed;
          r.value = current;
          return r;
        }
        if (write) data_[cmd.key] = cmd.value;
        return r;
      }
      case kv::Op::kIncrement: {
        std::int64_t n = 0;
        if (found) {
          auto [p, ec] = std::from_chars(current.data(), current.data() + current.size(), n);
          if (current.empty() || ec != std::errc() || p != current.data() + current.size()) {
            r.code = kv::Code::kNotANumber;
            r.value = current;
            return r;
          }
        }
        std::int64_t sum = 0;
        if (__builtin_add_overflow(n, cmd.delta, &sum)) {
          r.code = kv::Code::kNotANumber;
          r.value = current;
          return r;
        }
        r.number = sum;
        r.value = std::to_string(sum);
        if (write) data_[cmd.key] = r.value;
        return r;
      }
      case kv::Op::kList:
      case kv::Op::kMget:
      case kv::Op::kMput:
      case kv::Op::kMdelete:
      case kv::Op::kCount:
        break;
    }
    return r;
  }

  kv::Result execute_multi(const kv::Command& cmd, bool write) {
    kv::Result r;
    const auto op = static_cast<kv::Op>(cmd.op);
    if (cmd.keys.empty() || (op == kv::Op::kMput && cmd.values.size() != cmd.keys.size())) {
      return bad();
    }
    for (const auto& k : cmd.keys) {
      if (k.empty() || k.size() > kv::kMaxKeyBytes) return bad();
    }
    if (op == kv::Op::kMget) {
      for (const auto& k : cmd.keys) {
        auto it = data_.find(k);
        r.entries.push_back(kv::Entry{it != data_.end(), it != data_.end() ? it->second : ""});
      }
    } else if (op == kv::Op::kMput) {
      if (write) {
        for (size_t i = 0; i < cmd.keys.size(); ++i) data_[cmd.keys[i]] = cmd.values[i];
      }
    } else {
      std::map<std::string, std::string> after = data_;
      for (const auto& k : cmd.keys) r.number += static_cast<std::int64_t>(after.erase(k));
      r.found = r.number > 0;
      if (write) data_ = std::move(after);
    }
    return r;
  }

  static kv::Result bad() {
    kv::Result r;
    r.code = kv::Code::kBadCommand;
    return r;
  }

  const std::map<std::string, std::string>& data() const { return data_; }

 private:
  std::map<std::string, std::string> data_;
};

// `got` (from the store) against `want` (from the model).
inline void check_same_result(const kv::Result& got, const kv::Result& want, const char* what) {
  FUZZ_CHECK(got.code == want.code, "%s: code %d, the model says %d (error '%s')", what,
             static_cast<int>(got.code), static_cast<int>(want.code), got.error.c_str());
  FUZZ_CHECK(got.found == want.found && got.value == want.value && got.number == want.number &&
                 got.keys == want.keys && got.entries == want.entries,
             "%s: the store and the model disagree (found %d/%d, %zu/%zu keys)", what, got.found,
             want.found, got.keys.size(), want.keys.size());
  const bool needs_error = want.code == kv::Code::kBadCommand || want.code == kv::Code::kNotANumber;
  FUZZ_CHECK(needs_error == !got.error.empty(), "%s: error text '%s' for code %d", what,
             got.error.c_str(), static_cast<int>(got.code));
}

}  // namespace synod::fuzz
