#include "backends/sqlcommon/sql_text.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <map>

namespace synod::sqltext {

// ---------------------------------------------------------------- commands

bool parse_command(std::string_view payload, json* statements, bool* transaction,
                   std::string* why) {
  json j = json::parse(payload.begin(), payload.end(), nullptr, false);
  *transaction = true;
  if (!j.is_discarded() && j.is_object() && j.contains("statements") &&
      j["statements"].is_array()) {
    const auto t = j.find("transaction");
    if (t != j.end() && !t->is_boolean()) {
      *why = "\"transaction\" must be true or false";
      return false;
    }
    *transaction = t == j.end() || t->get<bool>();
    *statements = std::move(j["statements"]);
    return true;
  }
  if (j.is_discarded() || !j.is_array()) {
    *why = "the command is not a JSON array of statements";
    return false;
  }
  *statements = std::move(j);
  return true;
}

bool split_entry(const json& entry, std::string* sql, json* params, std::string* why) {
  *params = json::array();
  if (entry.is_string()) {
    *sql = entry.get<std::string>();
    return true;
  }
  if (!entry.is_array() || entry.empty() || !entry[0].is_string()) {
    *why = "a statement is a string or an array [SQL, parameters...]";
    return false;
  }
  *sql = entry[0].get<std::string>();
  if (entry.size() == 2 && entry[1].is_object()) {
    *params = entry[1];
  } else {
    for (size_t i = 1; i < entry.size(); ++i) params->push_back(entry[i]);
  }
  return true;
}

std::string base64(const unsigned char* p, size_t n) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  for (size_t i = 0; i < n; i += 3) {
    const std::uint32_t v = (std::uint32_t{p[i]} << 16) |
                            (i + 1 < n ? std::uint32_t{p[i + 1]} << 8 : 0) |
                            (i + 2 < n ? std::uint32_t{p[i + 2]} : 0);
    out.push_back(k[(v >> 18) & 63]);
    out.push_back(k[(v >> 12) & 63]);
    out.push_back(i + 1 < n ? k[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < n ? k[v & 63] : '=');
  }
  return out;
}

bool is_checksum_command(const json& command) {
  return command.is_object() && command.size() == 1 && command.contains("checksum") &&
         command["checksum"].is_boolean() && command["checksum"].get<bool>();
}

// ---------------------------------------------------------------- lexing

namespace {

bool word_start(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalpha(u) || c == '_' || u >= 0x80;
}

bool word_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || c == '_' || c == '$' || u >= 0x80;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The end of a quoted run starting at i (the opening quote q): doubled quotes
// escape it; with backslashes, a backslash escapes the next character.
// npos when unterminated.
size_t quoted_end(std::string_view s, size_t i, char q, bool backslashes) {
  for (size_t j = i + 1; j < s.size(); ++j) {
    if (backslashes && s[j] == '\\') {
      ++j;
      continue;
    }
    if (s[j] == q) {
      if (j + 1 < s.size() && s[j + 1] == q) {
        ++j;
        continue;
      }
      return j + 1;
    }
  }
  return std::string_view::npos;
}

}  // namespace

bool lex(std::string_view s, Dialect dialect, std::vector<Token>* tokens, std::string* why) {
  tokens->clear();
  const bool my = dialect == Dialect::kMySql;
  auto push = [&](TokenKind kind, size_t begin, size_t end) {
    tokens->push_back(Token{kind, s.substr(begin, end - begin), begin});
  };
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    const char next = i + 1 < s.size() ? s[i + 1] : '\0';
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
      continue;
    }
    // Comments.
    if (c == '-' && next == '-' &&
        (!my || i + 2 >= s.size() || std::isspace(static_cast<unsigned char>(s[i + 2])) ||
         static_cast<unsigned char>(s[i + 2]) < 0x20)) {
      while (i < s.size() && s[i] != '\n') ++i;
      continue;
    }
    if (my && c == '#') {
      while (i < s.size() && s[i] != '\n') ++i;
      continue;
    }
    if (c == '/' && next == '*') {
      if (my && i + 2 < s.size() && (s[i + 2] == '!' || (s[i + 2] == 'M' && i + 3 < s.size() &&
                                                         s[i + 3] == '!'))) {
        *why = "executable comments (/*! ... */) are refused: their SQL would escape the checks";
        return false;
      }
      int depth = 1;
      size_t j = i + 2;
      while (j < s.size() && depth > 0) {
        if (s[j] == '*' && j + 1 < s.size() && s[j + 1] == '/') {
          --depth;
          j += 2;
        } else if (!my && s[j] == '/' && j + 1 < s.size() && s[j + 1] == '*') {
          ++depth;  // PostgreSQL's block comments nest
          j += 2;
        } else {
          ++j;
        }
      }
      if (depth > 0) {
        *why = "unterminated /* comment";
        return false;
      }
      i = j;
      continue;
    }
    // Literals and quoted identifiers.
    if (c == '\'' || (c == '"' && my)) {
      const size_t end = quoted_end(s, i, c, my);
      if (end == std::string_view::npos) {
        *why = std::string("unterminated ") + c + "string literal";
        return false;
      }
      push(TokenKind::kString, i, end);
      i = end;
      continue;
    }
    if (!my && (c == 'E' || c == 'e') && next == '\'') {
      const size_t end = quoted_end(s, i + 1, '\'', /*backslashes=*/true);
      if (end == std::string_view::npos) {
        *why = "unterminated E'' string literal";
        return false;
      }
      push(TokenKind::kString, i, end);
      i = end;
      continue;
    }
    if (c == '"' || (c == '`' && my)) {
      const size_t end = quoted_end(s, i, c, false);
      if (end == std::string_view::npos) {
        *why = std::string("unterminated ") + c + "quoted identifier";
        return false;
      }
      push(TokenKind::kQuoted, i, end);
      i = end;
      continue;
    }
    if (!my && c == '$') {
      if (std::isdigit(static_cast<unsigned char>(next))) {
        size_t j = i + 1;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
        push(TokenKind::kNumbered, i, j);
        i = j;
        continue;
      }
      // $tag$ ... $tag$ (the tag may be empty).
      size_t j = i + 1;
      while (j < s.size() && word_char(s[j]) && s[j] != '$') ++j;
      if (j < s.size() && s[j] == '$' && (j == i + 1 || word_start(s[i + 1]))) {
        const std::string_view tag = s.substr(i, j - i + 1);
        const size_t close = s.find(tag, j + 1);
        if (close == std::string_view::npos) {
          *why = "unterminated dollar-quoted string " + std::string(tag);
          return false;
        }
        push(TokenKind::kString, i, close + tag.size());
        i = close + tag.size();
        continue;
      }
      push(TokenKind::kPunct, i, i + 1);
      ++i;
      continue;
    }
    if (word_start(c)) {
      size_t j = i + 1;
      while (j < s.size() && word_char(s[j])) ++j;
      push(TokenKind::kWord, i, j);
      i = j;
      continue;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '.' && std::isdigit(static_cast<unsigned char>(next)))) {
      size_t j = i + 1;
      while (j < s.size()) {
        const char d = s[j];
        if (std::isalnum(static_cast<unsigned char>(d)) || d == '.' || d == '_') {
          ++j;
        } else if ((d == '+' || d == '-') && (s[j - 1] == 'e' || s[j - 1] == 'E')) {
          ++j;
        } else {
          break;
        }
      }
      push(TokenKind::kNumber, i, j);
      i = j;
      continue;
    }
    if (c == '?') {
      // In PostgreSQL ?| and ?& are jsonb operators; a lone ? is a parameter.
      if (!my && (next == '|' || next == '&')) {
        push(TokenKind::kPunct, i, i + 2);
        i += 2;
        continue;
      }
      push(TokenKind::kPositional, i, i + 1);
      ++i;
      continue;
    }
    if (c == ':') {
      if (next == ':') {
        push(TokenKind::kPunct, i, i + 2);
        i += 2;
        continue;
      }
      if (word_start(next)) {
        size_t j = i + 2;
        while (j < s.size() && word_char(s[j]) && s[j] != '$') ++j;
        push(TokenKind::kNamed, i, j);
        i = j;
        continue;
      }
    }
    if (c == ';') {
      push(TokenKind::kSemicolon, i, i + 1);
      ++i;
      continue;
    }
    push(TokenKind::kPunct, i, i + 1);
    ++i;
  }
  return true;
}

bool split_statements(std::string_view sql, Dialect dialect, std::vector<std::string>* out,
                      std::string* why) {
  out->clear();
  std::vector<Token> tokens;
  if (!lex(sql, dialect, &tokens, why)) return false;
  size_t first = 0;
  for (size_t i = 0; i <= tokens.size(); ++i) {
    if (i < tokens.size() && tokens[i].kind != TokenKind::kSemicolon) continue;
    if (i > first) {
      const size_t begin = tokens[first].offset;
      const size_t end = tokens[i - 1].offset + tokens[i - 1].text.size();
      out->emplace_back(sql.substr(begin, end - begin));
    }
    first = i + 1;
  }
  return true;
}

Words words(const std::vector<Token>& tokens) {
  Words w;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const Token& t = tokens[i];
    std::string name;
    if (t.kind == TokenKind::kWord) {
      name = lower(t.text);
    } else if (t.kind == TokenKind::kQuoted && t.text.size() >= 2) {
      name = lower(t.text.substr(1, t.text.size() - 2));
    } else {
      continue;
    }
    const bool call = i + 1 < tokens.size() && tokens[i + 1].kind == TokenKind::kPunct &&
                      tokens[i + 1].text == "(";
    if (call) {
      w.called.push_back(std::move(name));
    } else if (t.kind == TokenKind::kWord) {
      w.bare.push_back(std::move(name));
    }
  }
  return w;
}

bool bind_placeholders(std::string_view sql, Dialect dialect, const json& params,
                       std::string* out_sql, std::vector<json>* values, std::string* why) {
  std::vector<Token> tokens;
  if (!lex(sql, dialect, &tokens, why)) return false;
  values->clear();
  out_sql->clear();
  const bool named = params.is_object();
  if (!named && !params.is_array()) {
    *why = "parameters must be an array or an object";
    return false;
  }
  size_t positional = 0;
  size_t highest_numbered = 0;
  bool saw_positional = false, saw_numbered = false;
  std::map<std::string, size_t, std::less<>> numbers;  // PostgreSQL: name -> $k
  size_t copied = 0;
  for (const Token& t : tokens) {
    if (t.kind != TokenKind::kPositional && t.kind != TokenKind::kNumbered &&
        t.kind != TokenKind::kNamed) {
      continue;
    }
    out_sql->append(sql.substr(copied, t.offset - copied));
    copied = t.offset + t.text.size();
    if (t.kind == TokenKind::kNamed) {
      if (!named) {
        *why = "named parameter " + std::string(t.text) + " but the values are positional";
        return false;
      }
      const std::string name(t.text.substr(1));
      auto it = params.find(name);
      if (it == params.end()) {
        *why = "no value for parameter " + std::string(t.text);
        return false;
      }
      if (dialect == Dialect::kMySql) {
        out_sql->push_back('?');
        values->push_back(*it);
      } else {
        auto [n, fresh] = numbers.try_emplace(name, numbers.size() + 1);
        if (fresh) values->push_back(*it);
        out_sql->append("$" + std::to_string(n->second));
      }
      continue;
    }
    if (named) {
      *why = "positional parameter " + std::string(t.text) +
             " in a statement whose values are named";
      return false;
    }
    if (t.kind == TokenKind::kPositional) {
      saw_positional = true;
      ++positional;
      if (positional > params.size()) {
        *why = "the statement has more parameters than the " + std::to_string(params.size()) +
               " values given";
        return false;
      }
      values->push_back(params[positional - 1]);
      out_sql->append(dialect == Dialect::kMySql ? "?" : "$" + std::to_string(positional));
    } else {  // $N, PostgreSQL only
      saw_numbered = true;
      size_t n = 0;
      for (char d : t.text.substr(1)) {
        n = n * 10 + static_cast<size_t>(d - '0');
        if (n > 65535) break;
      }
      if (n == 0 || n > params.size()) {
        *why = "parameter " + std::string(t.text) + " has no value (" +
               std::to_string(params.size()) + " given)";
        return false;
      }
      highest_numbered = std::max(highest_numbered, n);
      out_sql->append(t.text);
    }
  }
  out_sql->append(sql.substr(copied));
  if (saw_positional && saw_numbered) {
    *why = "a statement cannot mix ? and $N parameters";
    return false;
  }
  if (saw_numbered) {
    if (highest_numbered != params.size()) {
      *why = "the statement uses $1..$" + std::to_string(highest_numbered) + ", " +
             std::to_string(params.size()) + " values given";
      return false;
    }
    *values = std::vector<json>(params.begin(), params.end());
  } else if (!named && positional != params.size()) {
    *why = "the statement has " + std::to_string(positional) + " parameters, " +
           std::to_string(params.size()) + " values given";
    return false;
  }
  return true;
}

}  // namespace synod::sqltext
