// What the SQL backends (sqlite, mysql, postgres) share about a command's text:
// the rqlite-shaped JSON of a command, and a small SQL lexer for the server
// engines (MariaDB, PostgreSQL), whose client libraries do not parse SQL:
// splitting "a; b" into statements, finding the functions a statement calls
// (to refuse the non-deterministic ones before they run), and turning rqlite's
// parameters (?, :name) into the engine's own placeholders.
//
// Why a hand-written lexer: neither libmariadb nor libpq exposes the server's
// parser, and a full SQL grammar is not needed to find literals, comments,
// identifiers and placeholders. The lexer only has to know where a literal or
// a comment starts and ends; everything else is a word or a punctuation mark.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace synod::sqltext {

using nlohmann::json;

// ---------------------------------------------------------------- commands

// A command: a JSON array of statements (one transaction), or
// {"statements": [...], "transaction": false} for statements that each stand
// alone. False with *why when the payload is neither.
bool parse_command(std::string_view payload, json* statements, bool* transaction,
                   std::string* why);

// A statement entry: a string, or an array [SQL, parameters...] whose
// parameters are positional values or one object of named ones. False with
// *why for another shape.
bool split_entry(const json& entry, std::string* sql, json* params, std::string* why);

// Standard base64 (BLOB values in results, as rqlite shows them).
std::string base64(const unsigned char* p, size_t n);

// The content checksum command: {"checksum": true}. Each backend answers it
// with {"position": P, "checksum": "<hex>"} computed over its user tables at
// exactly that log position, so that every node's answer is comparable.
bool is_checksum_command(const json& command);

// ---------------------------------------------------------------- lexing

enum class Dialect { kMySql, kPostgres };

enum class TokenKind {
  kWord,         // identifier or keyword, unquoted
  kQuoted,       // "identifier" (and `identifier` in MySQL)
  kString,       // 'literal', E'...', $tag$...$tag$ (PostgreSQL), "..." is kQuoted
  kNumber,
  kPositional,   // ?   (rqlite positional parameter)
  kNumbered,     // $1  (PostgreSQL's own positional parameter)
  kNamed,        // :name (rqlite named parameter; text includes the ':')
  kSemicolon,
  kPunct,        // anything else, one character (or "::" in PostgreSQL)
};

struct Token {
  TokenKind kind;
  std::string_view text;  // a view into the lexed SQL
  size_t offset;
};

// Comments and whitespace are dropped. False with *why on an unterminated
// literal, quoted identifier or comment.
bool lex(std::string_view sql, Dialect dialect, std::vector<Token>* tokens, std::string* why);

// The statements of sql, split at top-level semicolons, each trimmed; empty
// ones (only whitespace or comments) dropped.
bool split_statements(std::string_view sql, Dialect dialect, std::vector<std::string>* out,
                      std::string* why);

// Lowercased names of the functions the statement calls (a word followed by
// '(') and its bare words (keywords such as CURRENT_TIMESTAMP), for deny lists.
struct Words {
  std::vector<std::string> called;
  std::vector<std::string> bare;
};
Words words(const std::vector<Token>& tokens);

// Rewrites rqlite parameters into the engine's placeholders: MySQL '?',
// PostgreSQL $1, $2, ... ; *values: the parameter values in placeholder order.
// params: a JSON array (positional: '?' in order, or PostgreSQL's own $N) or
// object (named: ":name"). A statement must not mix the two styles. False
// with *why on a count mismatch, a missing name, or a mix.
bool bind_placeholders(std::string_view sql, Dialect dialect, const json& params,
                       std::string* out_sql, std::vector<json>* values, std::string* why);

}  // namespace synod::sqltext
