// Helpers shared by the kv tests: a temporary directory and command builders
// (with the generated proto classes, so every test also checks the codec).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "proto/kv.pb.h"

namespace synod::kv::testing {

// A fresh directory, removed with everything in it when destroyed.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "synod-kv-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline proto::KvCommand Get(const std::string& key) {
  proto::KvCommand c;
  c.set_op(proto::KvCommand::GET);
  c.set_key(key);
  return c;
}
inline proto::KvCommand Put(const std::string& key, const std::string& value) {
  proto::KvCommand c;
  c.set_op(proto::KvCommand::PUT);
  c.set_key(key);
  c.set_value(value);
  return c;
}
inline proto::KvCommand Delete(const std::string& key) {
  proto::KvCommand c;
  c.set_op(proto::KvCommand::DELETE);
  c.set_key(key);
  return c;
}
inline proto::KvCommand Cas(const std::string& key, const std::string& expected,
                            const std::string& value) {
  proto::KvCommand c;
  c.set_op(proto::KvCommand::CAS);
  c.set_key(key);
  c.set_expected(expected);
  c.set_value(value);
  return c;
}
inline proto::KvCommand CasAbsent(const std::string& key, const std::string& value) {
  proto::KvCommand c;
  c.set_op(proto::KvCommand::CAS);
  c.set_key(key);
  c.set_expect_absent(true);
  c.set_value(value);
  return c;
}
inline proto::KvCommand Increment(const std::string& key, int64_t delta) {
  proto::KvCommand c;
  c.set_op(proto::KvCommand::INCREMENT);
  c.set_key(key);
  c.set_delta(delta);
  return c;
}
inline proto::KvCommand List(const std::string& prefix, uint32_t limit = 0) {
  proto::KvCommand c;
  c.set_op(proto::KvCommand::LIST);
  c.set_prefix(prefix);
  c.set_limit(limit);
  return c;
}

inline proto::KvCommand Multi(proto::KvCommand::Op op, const std::vector<std::string>& keys,
                               const std::vector<std::string>& values = {}) {
  proto::KvCommand c;
  c.set_op(op);
  for (const auto& k : keys) c.add_keys(k);
  for (const auto& v : values) c.add_values(v);
  return c;
}

inline proto::KvResult parse_result(const std::string& bytes) {
  proto::KvResult r;
  EXPECT_TRUE(r.ParseFromString(bytes)) << "result is not a KvResult";
  return r;
}

}  // namespace synod::kv::testing
