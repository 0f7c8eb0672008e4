#include "net/listen.h"

#include "net/address.h"

namespace synod::net {

using asio::ip::tcp;

bool listen_on(tcp::acceptor& acceptor, const std::string& address, std::string* error) {
  std::string why;
  auto listen = parse_host_port(address, &why);
  if (!listen) {
    *error = "listen address: " + why;
    return false;
  }
  asio::error_code ec;
  tcp::endpoint endpoint;
  const auto ip = asio::ip::make_address(listen->host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(ip, listen->port);
  } else {
    tcp::resolver resolver(acceptor.get_executor());
    auto results =
        resolver.resolve(listen->host, std::to_string(listen->port), tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      *error = "cannot listen on " + address + ": cannot resolve \"" + listen->host +
               "\": " + (ec ? ec.message() : std::string("no addresses"));
      return false;
    }
    endpoint = results.begin()->endpoint();
  }
  auto step_failed = [&](const char* step) {
    asio::error_code ignored;
    acceptor.close(ignored);
    *error = "cannot listen on " + address + ": " + step + " failed: " + ec.message();
    return false;
  };
  acceptor.open(endpoint.protocol(), ec);
  if (ec) return step_failed("socket");
  acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) return step_failed("setsockopt");
  acceptor.bind(endpoint, ec);
  if (ec) return step_failed("bind");
  acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return step_failed("listen");
  return true;
}

}  // namespace synod::net
