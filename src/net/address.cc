#include "net/address.h"

#include <fmt/format.h>

#include <charconv>

namespace synod::net {

std::optional<HostPort> parse_host_port(std::string_view address, std::string* error) {
  auto fail = [&](std::string why) -> std::optional<HostPort> {
    if (error != nullptr) *error = fmt::format("bad address \"{}\": {}", address, why);
    return std::nullopt;
  };
  const std::size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return fail("expected HOST:PORT");
  std::string_view host = address.substr(0, colon);
  const std::string_view port_text = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return fail("an IPv6 host must be in brackets, as in [::1]:7000");
  }
  if (host.empty()) return fail("the host is empty");
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return fail("the port must be a number in [0, 65535]");
  }
  return HostPort{std::string(host), static_cast<std::uint16_t>(port)};
}

std::string format_host_port(const std::string& host, std::uint16_t port) {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

}  // namespace synod::net
