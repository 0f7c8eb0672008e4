// Digest: SHA-256 of a stream of length-prefixed fields, for the SQL backends'
// content checksum ({"checksum": true}, sql_text.h). Fields are framed
// (a tag, the length, the bytes) so that ("ab","c") and ("a","bc") differ.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace synod::sqltext {

class Digest {
 public:
  Digest();
  ~Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  // One field: a one-character tag saying what it is (e.g. 't' text, 'i'
  // integer, 'n' null, 'r' end of row) and its bytes.
  void field(char tag, std::string_view bytes);
  // The lowercase hex SHA-256 of everything added; the digest is then spent.
  std::string hex();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

}  // namespace synod::sqltext
