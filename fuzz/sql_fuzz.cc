// sql_fuzz: statement execution in the sqlite backend (backends/sqlite), and
// the SQL lexer the MariaDB and PostgreSQL backends use (backends/sqlcommon).
//
// Input: a command. JSON (a statement array, {"statements": [...],
// "transaction": false}, {"checksum": true}) is applied as it is; other bytes
// are one SQL statement. It is applied, at the next log position, to TWO
// stores that have seen exactly the same commands, with the same timestamp
// and seed; then run as a query on one of them; then lexed in both dialects.
//
// Checks: no crash; apply never fails outside a statement (every SQL error is
// a result); both stores give the same result (determinism: what would make
// two nodes diverge); every result is JSON in one of the backend's shapes; a
// checksum after every input is equal on both; a statement budget and value
// limit keep runaway statements short; the lexer's split pieces hold no
// top-level ';' and placeholder rewriting keeps the value count.
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "backends/sqlcommon/sql_text.h"
#include "backends/sqlite/sql_store.h"
#include "fuzz/fuzz.h"
#include "fuzz/temp_dir.h"

namespace {

using nlohmann::json;
using synod::sql::SqlStore;

struct Pair {
  std::string dir;
  std::unique_ptr<SqlStore> a, b;
  std::uint64_t position = 0;
  int inputs = 0;

  void open() {
    a.reset();
    b.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir + "/a", ec);
    std::filesystem::remove_all(dir + "/b", ec);
    std::string error;
    const SqlStore::Config base{.data_dir = "", .max_statement_steps = 200'000,
                                .max_value_bytes = 1 << 20};
    SqlStore::Config ca = base, cb = base;
    ca.data_dir = dir + "/a";
    cb.data_dir = dir + "/b";
    a = SqlStore::open(ca, &error);
    FUZZ_CHECK(a != nullptr, "open: %s", error.c_str());
    b = SqlStore::open(cb, &error);
    FUZZ_CHECK(b != nullptr, "open: %s", error.c_str());
    position = 0;
  }
};

Pair& pair() {
  static Pair* p = [] {
    auto* fresh = new Pair();
    fresh->dir = synod::fuzz::make_scratch_dir("sql");
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(pair().dir, ignored);
    });
    fresh->open();
    return fresh;
  }();
  return *p;
}

void check_result_shape(const std::string& result) {
  const json r = json::parse(result, nullptr, false);
  FUZZ_CHECK(!r.is_discarded() && r.is_object(), "result is not a JSON object: %s", result.c_str());
  FUZZ_CHECK(r.contains("results") || r.contains("checksum") || r.contains("error"),
             "result of an unknown shape: %s", result.c_str());
}

void lex_checks(const std::string& sql) {
  using namespace synod::sqltext;
  for (Dialect d : {Dialect::kMySql, Dialect::kPostgres}) {
    std::vector<std::string> pieces;
    std::string why;
    if (!split_statements(sql, d, &pieces, &why)) {
      FUZZ_CHECK(!why.empty(), "split refused without a reason");
      continue;
    }
    for (const std::string& piece : pieces) {
      std::vector<Token> tokens;
      FUZZ_CHECK(lex(piece, d, &tokens, &why), "a split piece does not lex: %s", why.c_str());
      FUZZ_CHECK(!tokens.empty(), "an empty piece");
      for (const Token& t : tokens) {
        FUZZ_CHECK(t.kind != TokenKind::kSemicolon, "a piece holds a top-level ';'");
      }
      words(tokens);
      std::size_t positional = 0;
      for (const Token& t : tokens) positional += t.kind == TokenKind::kPositional ? 1 : 0;
      std::string out;
      std::vector<json> values;
      json params = json::array();
      for (std::size_t i = 0; i < positional; ++i) params.push_back(static_cast<int>(i));
      if (bind_placeholders(piece, d, params, &out, &values, &why)) {
        FUZZ_CHECK(values.size() == params.size() || positional == 0,
                   "bound %zu values for %zu placeholders", values.size(), params.size());
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 4096) return 0;
  Pair& p = pair();
  if (++p.inputs % 500 == 0) p.open();  // keep the databases small
  const std::string text(reinterpret_cast<const char*>(data), size);
  const json parsed = json::parse(text, nullptr, false);
  std::string command;
  if (!parsed.is_discarded() && (parsed.is_array() || parsed.is_object())) {
    command = text;
  } else {
    try {
      command = json::array({text}).dump();
    } catch (const json::exception&) {
      return 0;  // not UTF-8: no JSON client can send it
    }
  }
  synod_apply_context ctx{++p.position, 1'700'000'000'000 + static_cast<std::int64_t>(size),
                          p.position * 7919};
  std::string ra, rb, error;
  const bool oka = p.a->apply(ctx, command, &ra, &error);
  FUZZ_CHECK(oka, "apply failed outside a statement: %s", error.c_str());
  const bool okb = p.b->apply(ctx, command, &rb, &error);
  FUZZ_CHECK(okb, "apply failed outside a statement: %s", error.c_str());
  FUZZ_CHECK(ra == rb, "two stores, same command, different results:\n%s\n%s", ra.c_str(),
             rb.c_str());
  check_result_shape(ra);
  FUZZ_CHECK(p.a->last_applied() == ctx.slot, "the position did not advance");

  std::string q;
  FUZZ_CHECK(p.a->query(command, &q, &error), "query failed outside a statement: %s",
             error.c_str());
  check_result_shape(q);

  synod_apply_context sum{++p.position, ctx.timestamp_ms, 1};
  const std::string checksum = R"({"checksum": true})";
  FUZZ_CHECK(p.a->apply(sum, checksum, &ra, &error), "checksum: %s", error.c_str());
  FUZZ_CHECK(p.b->apply(sum, checksum, &rb, &error), "checksum: %s", error.c_str());
  FUZZ_CHECK(ra == rb, "the stores diverged:\n%s\n%s", ra.c_str(), rb.c_str());

  if (parsed.is_discarded()) lex_checks(text);
  return 0;
}
