// Opening a listening TCP socket on "HOST:PORT" (an IP literal or a name),
// shared by the peer/client transport and the Redis front end.
#pragma once

#include <asio.hpp>
#include <string>

namespace synod::net {

// Opens, binds (SO_REUSEADDR, so a restarted node binds while old connections
// sit in TIME_WAIT; a port another process listens on still fails) and listens.
// False with *error naming the address and the step that failed; the acceptor
// is then closed.
bool listen_on(asio::ip::tcp::acceptor& acceptor, const std::string& address, std::string* error);

}  // namespace synod::net
