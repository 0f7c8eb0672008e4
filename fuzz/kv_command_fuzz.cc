// kv_command_fuzz: the kv backend's command decoding (backends/kv/kv_codec.h,
// on src/backend/wire.h) and KvStore applying and querying those commands on
// a real RocksDB store (kv_store_fixture.h).
//
// Input: a sequence of steps; each starts with a byte whose low 2 bits say
//   0  apply raw bytes (a u16 length, then the bytes) at the next position
//   1  query raw bytes (same layout)
//   2  apply a command built from fields (op, key, value, ... taken from the
//      input; keys from a small set so that commands meet)
//   3  apply raw bytes again at an old position (must change nothing)
// and whose bit 2 makes step 2 a query instead.
//
// Checks: no crash; kv_codec agrees with the generated KvCommand parser and
// serializer (kv_checks.h); every result is a valid, canonical KvResult the
// client can parse; each result and the store's contents match a std::map
// model of kv_store.h's semantics; replaying a position is a no-op.
#include "fuzz/fuzz.h"
#include "fuzz/kv_checks.h"
#include "fuzz/kv_store_fixture.h"

namespace synod::fuzz {
namespace {

constexpr std::int64_t kDeltas[] = {0, 1, -1, 7, INT64_MAX, INT64_MIN, INT64_MAX - 1, -100};

std::string key(FuzzInput& in) {
  static const char* kKeys[] = {"a", "b", "ab", "abc", "b\xff", "", "n", "m"};
  const std::uint8_t i = in.below(10);
  if (i < 8) return kKeys[i];
  return in.bytes(12);
}

std::string value(FuzzInput& in) {
  static const char* kValues[] = {"", "1", "-5", "x", "9223372036854775807", "+3", " 1", "007"};
  const std::uint8_t i = in.below(10);
  if (i < 8) return kValues[i];
  return in.bytes(12);
}

kv::Command structured(FuzzInput& in) {
  kv::Command c;
  c.op = static_cast<std::int32_t>(in.below(8)) - 1;  // -1 and 6: unknown ops
  c.key = key(in);
  const std::uint8_t fields = in.u8();
  if (fields & 1) c.value = value(in);
  if (fields & 2) c.expected = value(in);
  if (fields & 4) c.expect_absent = true;
  if (fields & 8) c.delta = kDeltas[in.below(8)];
  if (fields & 16) c.delta = static_cast<std::int64_t>(in.u64());
  if (fields & 32) c.prefix = key(in);
  if (fields & 64) c.limit = in.below(4);
  return c;
}

class Run {
 public:
  explicit Run(KvFixture& f) : f_(f), store_(f.store()) {}

  void apply(const std::string& bytes) {
    kv::Command cmd;
    const bool decoded = decode_and_compare(bytes, &cmd);
    const kv::Result want = decoded ? model_.execute(cmd, true) : KvModel::bad();
    synod_apply_context ctx{f_.next_position(), 1700000000000, 42};
    std::string out, error;
    FUZZ_CHECK(store_.apply(ctx, bytes, &out, &error), "apply failed: %s", error.c_str());
    FUZZ_CHECK(store_.last_applied() == ctx.slot, "last_applied %llu after applying %llu",
               static_cast<unsigned long long>(store_.last_applied()),
               static_cast<unsigned long long>(ctx.slot));
    check_same_result(check_result_bytes(out), want, "apply");
  }

  void query(const std::string& bytes) {
    kv::Command cmd;
    const bool decoded = decode_and_compare(bytes, &cmd);
    kv::Result want = KvModel::bad();
    if (decoded && (cmd.op == static_cast<std::int32_t>(kv::Op::kGet) ||
                    cmd.op == static_cast<std::int32_t>(kv::Op::kList) ||
                    cmd.op == static_cast<std::int32_t>(kv::Op::kMget) ||
                    cmd.op == static_cast<std::int32_t>(kv::Op::kCount))) {
      want = model_.execute(cmd, false);
    }
    std::string out, error;
    FUZZ_CHECK(store_.query(bytes, &out, &error), "query failed: %s", error.c_str());
    check_same_result(check_result_bytes(out), want, "query");
  }

  void replay(const std::string& bytes) {
    const std::uint64_t last = store_.last_applied();
    if (last == 0) return;
    synod_apply_context ctx{last, 0, 0};
    std::string out, error;
    FUZZ_CHECK(store_.apply(ctx, bytes, &out, &error), "apply failed: %s", error.c_str());
    const kv::Result r = check_result_bytes(out);
    FUZZ_CHECK(r.code == kv::Code::kOk && !r.error.empty() && r.keys.empty() && !r.found,
               "replaying position %llu did not answer 'already applied'",
               static_cast<unsigned long long>(last));
    FUZZ_CHECK(store_.last_applied() == last, "a replay moved last_applied");
  }

  // The whole store equals the model.
  void compare_all() {
    kv::Command list;
    list.op = static_cast<std::int32_t>(kv::Op::kList);
    std::string out, error;
    FUZZ_CHECK(store_.query(kv::encode_command(list), &out, &error), "LIST: %s", error.c_str());
    const kv::Result r = check_result_bytes(out);
    FUZZ_CHECK(r.keys.size() == model_.data().size(), "%zu keys stored, the model has %zu",
               r.keys.size(), model_.data().size());
    for (const auto& [k, v] : model_.data()) {
      kv::Command get;
      get.key = k;
      FUZZ_CHECK(store_.query(kv::encode_command(get), &out, &error), "GET: %s", error.c_str());
      const kv::Result g = check_result_bytes(out);
      FUZZ_CHECK(g.code == kv::Code::kOk && g.value == v, "a stored value differs from the model");
    }
  }

 private:
  KvFixture& f_;
  kv::KvStore& store_;
  KvModel model_;
};

}  // namespace
}  // namespace synod::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace synod::fuzz;
  FuzzInput in(data, size);
  Run run(KvFixture::fresh());
  for (int steps = 0; !in.empty() && steps < 64; ++steps) {
    const std::uint8_t kind = in.u8();
    switch (kind & 3) {
      case 0:
        run.apply(in.chunk(512));
        break;
      case 1:
        run.query(in.chunk(512));
        break;
      case 2: {
        const std::string bytes = synod::kv::encode_command(structured(in));
        if (kind & 4) {
          run.query(bytes);
        } else {
          run.apply(bytes);
        }
        break;
      }
      default:
        run.replay(in.chunk(512));
        break;
    }
  }
  run.compare_all();
  return 0;
}
