// "HOST:PORT" addresses, as they appear in configuration files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace synod::net {

struct HostPort {
  std::string host;  // a name or an IP literal, without IPv6 brackets
  std::uint16_t port = 0;
};

// Parses "HOST:PORT", "[IPv6]:PORT". HOST must be nonempty; PORT a decimal in
// [0, 65535]. nullopt with *error (if not null) saying what is wrong otherwise.
std::optional<HostPort> parse_host_port(std::string_view address, std::string* error);

// "host:port", bracketing an IPv6 host.
std::string format_host_port(const std::string& host, std::uint16_t port);

}  // namespace synod::net
