// HttpServer: the rqlite-compatible HTTP API of a node (synod --http-listen
// HOST:PORT), on cpp-httplib. httplib serves each connection on its own
// thread; a request is translated (rqlite.h) and handed to the node's event
// loop through `Submit` (posted, so it runs on the node's thread like any
// request), and the handler thread waits for the answer. Writes go through
// the log (a follower forwards them); reads follow ?level=.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "http/rqlite.h"
#include "proto/synod.pb.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}

namespace synod::http {

class HttpServer {
 public:
  using Done = std::function<void(proto::ClientResponse&&)>;
  // Called on the HTTP thread; must arrange for `done` to be called exactly
  // once (from any thread), within about timeout_ms.
  using Submit = std::function<void(const ApiRequest& request, Done done)>;
  // Called on the HTTP thread; must call its argument once with the node's
  // status (for /status, /nodes, /readyz).
  using StatusFn = std::function<void(std::function<void(proto::NodeStatus&&)>)>;

  HttpServer(std::string listen, Submit submit, StatusFn status, int timeout_ms);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving on a thread. False with *error.
  bool start(std::string* error);
  void stop();
  int port() const { return port_; }

 private:
  void serve(const httplib::Request& req, httplib::Response& res);

  std::string listen_;
  Submit submit_;
  StatusFn status_;
  int timeout_ms_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace synod::http
