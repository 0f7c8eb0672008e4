// The host against the C test backends in testdata/ (built into
// SYNOD_TEST_BACKEND_DIR): loading, every way a library can be refused, and the
// calls through the table. The kv backend's own tests load it from the build
// tree's default directory (backends/kv/kv_backend_test.cc).
#include "backend/host.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <filesystem>
#include <string>

namespace synod::backend {
namespace {

const std::string kDir = SYNOD_TEST_BACKEND_DIR;

std::string lib(const std::string& file_name) { return kDir + "/lib" + file_name + ".so"; }

BackendHost test_host() { return BackendHost({kDir}); }

synod_apply_context at(uint64_t position) { return synod_apply_context{position, 0, 0}; }

TEST(BackendHost, LoadsByNameAndCallsThrough) {
  BackendHost host = test_host();
  std::string error;
  ASSERT_TRUE(host.load("echo", {}, &error)) << error;
  Backend* echo = host.get("echo");
  ASSERT_NE(echo, nullptr);
  EXPECT_EQ(echo->name(), "echo");
  EXPECT_EQ(echo->path(), lib("synod_backend_echo"));
  EXPECT_EQ(host.names(), std::vector<std::string>{"echo"});

  EXPECT_EQ(host.last_applied("echo"), 0u);
  Result r = host.apply("echo", at(3), "hello");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.bytes, "hello");
  EXPECT_EQ(host.last_applied("echo"), 3u);

  // Empty command and empty result: a NULL buffer is fine.
  r = host.apply("echo", at(4), "");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.bytes, "");

  r = host.query("echo", "k");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.bytes, "query:k");
  r = host.query("echo", "fail");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "backend echo: query failed: query refused");
}

TEST(BackendHost, UnknownBackendCallsAreErrors) {
  BackendHost host = test_host();
  EXPECT_EQ(host.get("nope"), nullptr);
  EXPECT_EQ(host.last_applied("nope"), 0u);
  Result r = host.apply("nope", at(1), "x");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "backend nope is not loaded");
  EXPECT_FALSE(host.query("nope", "x").ok);
}

TEST(BackendHost, MissingBackendNamesWhereItLooked) {
  BackendHost host({"/nonexistent/a", kDir});
  std::string error;
  EXPECT_FALSE(host.load("nosuch", {}, &error));
  EXPECT_EQ(error,
            "backend nosuch not found: no libsynod_backend_nosuch.so in /nonexistent/a, " + kDir);
}

TEST(BackendHost, MissingPathIsAnError) {
  BackendHost host = test_host();
  std::string error;
  EXPECT_FALSE(host.load("/nonexistent/libx.so", {}, &error));
  EXPECT_EQ(error, "backend library /nonexistent/libx.so does not exist");
}

TEST(BackendHost, NotASharedLibraryGivesTheDlopenError) {
  auto path = std::filesystem::temp_directory_path() / "synod_backend_not_a_library.so";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::fputs("garbage", f);
    std::fclose(f);
  }
  BackendHost host = test_host();
  std::string error;
  EXPECT_FALSE(host.load(path.string(), {}, &error));
  EXPECT_EQ(error.rfind("cannot load backend library " + path.string() + ": ", 0), 0u) << error;
  EXPECT_NE(error.find("file too short"), std::string::npos) << error;
  std::filesystem::remove(path);
}

TEST(BackendHost, WrongAbiVersionIsRefused) {
  BackendHost host = test_host();
  std::string error;
  EXPECT_FALSE(host.load(lib("synod_test_abi99"), {}, &error));
  EXPECT_EQ(error, "backend echo has ABI version 99, this host supports 1 (" +
                       lib("synod_test_abi99") + ")");
  EXPECT_TRUE(host.names().empty());
}

TEST(BackendHost, MissingEntrySymbolIsRefused) {
  BackendHost host = test_host();
  std::string error;
  EXPECT_FALSE(host.load(lib("synod_test_no_entry"), {}, &error));
  EXPECT_EQ(error, "backend library " + lib("synod_test_no_entry") +
                       " does not export synod_backend_entry (is it a Synod backend?)");
}

TEST(BackendHost, TooSmallTableIsRefused) {
  BackendHost host = test_host();
  std::string error;
  EXPECT_FALSE(host.load(lib("synod_test_small"), {}, &error));
  EXPECT_NE(error.find("backend echo has a function table of "), std::string::npos) << error;
  EXPECT_NE(error.find("ABI version 1 needs at least " +
                       std::to_string(offsetof(synod_backend_api, apply_batch))),
            std::string::npos)
      << error;
}

TEST(BackendHost, ApplyBatchInOneCallOrOneApplyEach) {
  BackendHost host = test_host();
  std::string error;
  ASSERT_TRUE(host.load("echo", {}, &error)) << error;
  // A table of the first ABI 1 header (no apply_batch) still loads.
  ASSERT_TRUE(host.load("echo_base", {}, &error)) << error;
  Backend* batching = host.get("echo");
  Backend* base = host.get("echo_base");
  EXPECT_TRUE(batching->batches());
  EXPECT_FALSE(base->batches());
  const std::vector<synod_apply_context> ctxs = {at(1), at(2), at(5)};
  const std::vector<std::string_view> cmds = {"a", "", "c"};
  std::vector<Result> results;
  ASSERT_TRUE(batching->apply_batch(ctxs, cmds, &results, &error)) << error;
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].bytes, "batch:a");
  EXPECT_EQ(results[1].bytes, "batch:");
  EXPECT_EQ(results[2].bytes, "batch:c");
  EXPECT_EQ(batching->last_applied(), 5u);
  results.clear();
  ASSERT_TRUE(base->apply_batch(ctxs, cmds, &results, &error)) << error;
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].bytes, "a");  // one apply() each
  EXPECT_EQ(results[2].bytes, "c");
  EXPECT_EQ(base->last_applied(), 5u);
}

TEST(BackendHost, ValidateAsksTheBackendWhenItCan) {
  BackendHost host = test_host();
  std::string error;
  ASSERT_TRUE(host.load("echo", {}, &error)) << error;
  ASSERT_TRUE(host.load("echo_base", {}, &error)) << error;
  EXPECT_TRUE(host.get("echo")->validate("fine").ok);
  Result refused = host.get("echo")->validate("refuse me");
  EXPECT_FALSE(refused.ok);
  EXPECT_EQ(refused.error, "echo refuses this command");
  // A table without validate (older ABI 1) accepts everything.
  EXPECT_TRUE(host.get("echo_base")->validate("refuse me").ok);
}

TEST(BackendHost, AFailedBatchAppliesNothing) {
  BackendHost host = test_host();
  std::string error;
  ASSERT_TRUE(host.load("echo", {{"fail_apply", "disk on fire"}}, &error)) << error;
  std::vector<Result> results;
  EXPECT_FALSE(host.get("echo")->apply_batch({at(1), at(2)}, {"a", "b"}, &results, &error));
  EXPECT_TRUE(results.empty());
  EXPECT_EQ(error, "backend echo: apply of positions 1-2 failed: disk on fire");
  EXPECT_EQ(host.last_applied("echo"), 0u);
}

TEST(BackendHost, MissingFunctionIsRefused) {
  BackendHost host = test_host();
  std::string error;
  EXPECT_FALSE(host.load(lib("synod_test_no_apply"), {}, &error));
  EXPECT_EQ(error, "backend echo does not implement apply (" + lib("synod_test_no_apply") + ")");
}

TEST(BackendHost, NameMustMatchTheFileName) {
  BackendHost host = test_host();
  std::string error;
  EXPECT_FALSE(host.load("misnamed", {}, &error));
  EXPECT_EQ(error, "backend library " + lib("synod_backend_misnamed") +
                       " calls itself 'echo', expected 'misnamed'");
  EXPECT_FALSE(host.load("badname", {}, &error));
  EXPECT_NE(error.find("has no valid name"), std::string::npos) << error;
}

TEST(BackendHost, OpenFailureCarriesTheBackendsMessage) {
  BackendHost host = test_host();
  std::string error;
  EXPECT_FALSE(host.load("echo", {{"fail_open", "data_dir is missing"}}, &error));
  EXPECT_EQ(error, "backend echo: open failed: data_dir is missing");
  EXPECT_FALSE(host.load("echo", {{"bogus", "1"}}, &error));
  EXPECT_EQ(error, "backend echo: open failed: unknown option");
  // A failed load leaves nothing behind: the name is free.
  EXPECT_TRUE(host.load("echo", {}, &error)) << error;
}

TEST(BackendHost, ApplyErrorIsNotAResult) {
  BackendHost host = test_host();
  std::string error;
  ASSERT_TRUE(host.load("echo", {{"fail_apply", "disk on fire"}}, &error)) << error;
  Result r = host.apply("echo", at(7), "x");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "backend echo: apply at position 7 failed: disk on fire");
  EXPECT_EQ(host.last_applied("echo"), 0u);
}

TEST(BackendHost, SeveralBackendsEachUnderItsName) {
  BackendHost host = test_host();
  std::string error;
  ASSERT_TRUE(host.load("echo", {}, &error)) << error;
  ASSERT_TRUE(host.load("echo2", {}, &error)) << error;
  EXPECT_FALSE(host.load("echo", {}, &error));
  EXPECT_EQ(error, "backend echo is already loaded");
  // By path, under the name the library gives itself: taken already.
  EXPECT_FALSE(host.load(lib("synod_backend_echo"), {}, &error));
  EXPECT_EQ(error, "backend echo is already loaded (" + lib("synod_backend_echo") + ")");

  ASSERT_TRUE(host.apply("echo", at(5), "a").ok);
  ASSERT_TRUE(host.apply("echo2", at(9), "b").ok);
  EXPECT_EQ(host.last_applied("echo"), 5u);
  EXPECT_EQ(host.last_applied("echo2"), 9u);
  EXPECT_EQ(host.names(), (std::vector<std::string>{"echo", "echo2"}));

  EXPECT_TRUE(host.unload("echo"));
  EXPECT_FALSE(host.unload("echo"));
  EXPECT_EQ(host.get("echo"), nullptr);
  // Loaded again: a fresh instance.
  ASSERT_TRUE(host.load("echo", {}, &error)) << error;
  EXPECT_EQ(host.last_applied("echo"), 0u);
}

TEST(BackendHost, LoadsByPathUnderItsOwnName) {
  BackendHost host(std::vector<std::string>{});
  std::string error;
  ASSERT_TRUE(host.load(lib("synod_backend_echo2"), {}, &error)) << error;
  EXPECT_NE(host.get("echo2"), nullptr);
}

TEST(BackendHost, DefaultPluginDirsIncludeTheBuildTree) {
  auto dirs = BackendHost::default_plugin_dirs();
  ASSERT_EQ(dirs.size(), 2u);
  auto exe = std::filesystem::read_symlink("/proc/self/exe");
  EXPECT_EQ(dirs[0], (exe.parent_path().parent_path() / "lib" / "synod").string());
  EXPECT_EQ(std::filesystem::path(dirs[1]).filename(), "synod");
}

TEST(Backend, IsMovableAndClosesOnce) {
  std::string error;
  auto a = Backend::load(lib("synod_backend_echo"), {}, "echo", &error);
  ASSERT_TRUE(a.has_value()) << error;
  ASSERT_TRUE(a->apply(at(2), "x").ok);
  Backend b = std::move(*a);
  EXPECT_EQ(b.last_applied(), 2u);
  auto c = Backend::load(lib("synod_backend_echo2"), {}, "", &error);
  ASSERT_TRUE(c.has_value()) << error;
  b = std::move(*c);  // closes the first instance
  EXPECT_EQ(b.name(), "echo2");
  EXPECT_EQ(b.last_applied(), 0u);
  // ASan/LSan check that every instance and buffer was freed exactly once.
}

TEST(Backend, SnapshotStreamsThroughTheHost) {
  std::string error;
  auto echo = Backend::load(lib("synod_backend_echo"), {}, "echo", &error);
  ASSERT_TRUE(echo.has_value()) << error;
  ASSERT_TRUE(echo->supports_snapshot());
  ASSERT_TRUE(echo->apply(at(42), "x").ok);
  std::string stream;
  Result r = echo->snapshot([&](std::span<const uint8_t> chunk) {
    stream.append(reinterpret_cast<const char*>(chunk.data()), chunk.size());
    return true;
  });
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(stream, "state:42");

  r = echo->snapshot([](std::span<const uint8_t>) { return false; });
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "backend echo: snapshot failed: snapshot aborted by the host");

  std::string input = "1234567";
  size_t pos = 0;
  r = echo->restore([&](std::span<uint8_t> buf) -> std::optional<size_t> {
    size_t n = std::min(buf.size(), input.size() - pos);
    std::copy_n(input.data() + pos, n, buf.data());
    pos += n;
    return n;
  });
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(echo->last_applied(), 1234567u);

  r = echo->restore([](std::span<uint8_t>) -> std::optional<size_t> { return std::nullopt; });
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "backend echo: restore failed: restore aborted by the host");

  auto plain = Backend::load(lib("synod_test_no_snapshot"), {}, "", &error);
  ASSERT_TRUE(plain.has_value()) << error;
  EXPECT_FALSE(plain->supports_snapshot());
  r = plain->snapshot([](std::span<const uint8_t>) { return true; });
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "backend echo does not support snapshots");
}

}  // namespace
}  // namespace synod::backend
