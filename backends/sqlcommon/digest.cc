#include "backends/sqlcommon/digest.h"

#include <openssl/evp.h>

#include <stdexcept>

namespace synod::sqltext {

struct Digest::Ctx {
  EVP_MD_CTX* md = nullptr;
};

Digest::Digest() : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  if (ctx_->md == nullptr || EVP_DigestInit_ex(ctx_->md, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("cannot start a SHA-256 digest");
  }
}

Digest::~Digest() { EVP_MD_CTX_free(ctx_->md); }

void Digest::field(char tag, std::string_view bytes) {
  unsigned char head[9];
  head[0] = static_cast<unsigned char>(tag);
  std::uint64_t n = bytes.size();
  for (int i = 0; i < 8; ++i) head[1 + i] = static_cast<unsigned char>(n >> (8 * i));
  EVP_DigestUpdate(ctx_->md, head, sizeof head);
  EVP_DigestUpdate(ctx_->md, bytes.data(), bytes.size());
}

std::string Digest::hex() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_->md, out, &len);
  static const char* k = "0123456789abcdef";
  std::string s;
  for (unsigned int i = 0; i < len; ++i) {
    s.push_back(k[out[i] >> 4]);
    s.push_back(k[out[i] & 15]);
  }
  return s;
}

}  // namespace synod::sqltext
