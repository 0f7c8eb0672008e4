// A KvStore for fuzzers: a RocksDB database in a scratch directory
// (temp_dir.h), emptied at the start of every input so that an input's outcome
// does not depend on the inputs before it.
// Every kInputsPerStore inputs it starts over with a new database: the deletes
// that empty it leave tombstones, which make every scan slower.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "backends/kv/kv_codec.h"
#include "backends/kv/kv_store.h"
#include "fuzz/fuzz.h"
#include "fuzz/temp_dir.h"

namespace synod::fuzz {

class KvFixture {
 public:
  // The process's store, emptied.
  static KvFixture& fresh() {
    static KvFixture* fixture = new KvFixture();  // never destroyed: RocksDB closes at exit
    if (++fixture->inputs_ % kInputsPerStore == 0) {
      fixture->open();
    } else {
      fixture->clear();
    }
    return *fixture;
  }

  kv::KvStore& store() { return *store_; }
  // The next unused log position.
  std::uint64_t next_position() { return ++position_; }
  std::uint64_t last_position() const { return position_; }

 private:
  KvFixture() {
    const std::string pattern = make_scratch_dir("kv");
    dir() = pattern;
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(dir(), ignored);
    });
    open();
  }

  static constexpr std::uint64_t kInputsPerStore = 2000;

  // A new, empty store.
  void open() {
    store_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir() + "/kv", ec);
    std::string error;
    store_ = kv::KvStore::open({dir() + "/kv", false}, &error);
    FUZZ_CHECK(store_ != nullptr, "cannot open a KvStore: %s", error.c_str());
    position_ = 0;  // a new store has applied nothing
  }

  static std::string& dir() {
    static std::string d;
    return d;
  }

  // Deletes every key through the store's own commands.
  void clear() {
    kv::Command list;
    list.op = static_cast<std::int32_t>(kv::Op::kList);
    std::string bytes;
    std::string error;
    FUZZ_CHECK(store_->query(kv::encode_command(list), &bytes, &error), "LIST failed: %s",
               error.c_str());
    kv::Result r;
    FUZZ_CHECK(kv::decode_result(bytes, &r, &error), "LIST result: %s", error.c_str());
    for (const std::string& key : r.keys) {
      kv::Command del;
      del.op = static_cast<std::int32_t>(kv::Op::kDelete);
      del.key = key;
      synod_apply_context ctx{next_position(), 0, 0};
      FUZZ_CHECK(store_->apply(ctx, kv::encode_command(del), &bytes, &error), "DELETE failed: %s",
                 error.c_str());
    }
  }

  std::unique_ptr<kv::KvStore> store_;
  std::uint64_t position_ = 0;
  std::uint64_t inputs_ = 0;
};

}  // namespace synod::fuzz
