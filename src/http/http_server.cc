#include "http/http_server.h"

#include <httplib.h>

#include <chrono>
#include <future>

#include "net/address.h"

namespace synod::http {
namespace {

// The status of a node's answer that is not a result.
int status_of(const proto::ClientResponse& r) {
  switch (r.code()) {
    case proto::ClientResponse::OK:
      return 200;
    case proto::ClientResponse::BAD_REQUEST:
      return 400;
    case proto::ClientResponse::NOT_LEADER:
    case proto::ClientResponse::UNAVAILABLE:
      return 503;
    case proto::ClientResponse::TIMEOUT:
      return 504;
    default:
      return 500;
  }
}

}  // namespace

HttpServer::HttpServer(std::string listen, Submit submit, StatusFn status, int timeout_ms)
    : listen_(std::move(listen)),
      submit_(std::move(submit)),
      status_(std::move(status)),
      timeout_ms_(timeout_ms) {}

HttpServer::~HttpServer() { stop(); }

bool HttpServer::start(std::string* error) {
  std::string why;
  auto hp = net::parse_host_port(listen_, &why);
  if (!hp) {
    *error = "listen address: " + why;
    return false;
  }
  server_ = std::make_unique<httplib::Server>();
  server_->set_payload_max_length(64u << 20);
  auto handle = [this](const httplib::Request& req, httplib::Response& res) {
    try {
      serve(req, res);
    } catch (const std::exception& e) {  // nothing may take the node down
      res.status = 500;
      res.set_content(render_error(std::string("internal error: ") + e.what()),
                      "application/json");
    }
  };
  server_->Get("/db/query", handle);
  server_->Post("/db/query", handle);
  server_->Post("/db/execute", handle);
  server_->Get("/db/execute", handle);  // answered 405 by parse_request
  for (const char* path : {"/status", "/nodes", "/readyz"}) {
    server_->Get(path, handle);
    server_->Post(path, handle);  // 405
  }
  server_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.body.empty()) {
      res.set_content(render_error("not found: " + req.path), "application/json");
    }
  });
  if (hp->port == 0) {
    port_ = server_->bind_to_any_port(hp->host);
  } else {
    port_ = server_->bind_to_port(hp->host, hp->port) ? hp->port : -1;
  }
  if (port_ <= 0) {
    *error = "cannot listen on " + listen_ + " for HTTP (in use, or not an address of this host)";
    return false;
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return true;
}

void HttpServer::serve(const httplib::Request& req, httplib::Response& res) {
  const auto start = std::chrono::steady_clock::now();
  int status = 200;
  std::string bad;
  auto api = parse_request(req.method, req.path, req.params, req.body, &status, &bad);
  if (!api) {
    res.status = status;
    res.set_content(render_error(bad), "application/json");
    return;
  }
  if (api->info != ApiRequest::Info::kNone) {
    auto promise = std::make_shared<std::promise<proto::NodeStatus>>();
    auto future = promise->get_future();
    status_([promise](proto::NodeStatus&& s) { promise->set_value(std::move(s)); });
    if (future.wait_for(std::chrono::milliseconds(timeout_ms_ + 1000)) !=
        std::future_status::ready) {
      res.status = 504;
      res.set_content(render_error("the node did not answer"), "application/json");
      return;
    }
    const InfoAnswer a = render_info(*api, future.get());
    res.status = a.status;
    res.set_content(a.body, a.content_type);
    return;
  }
  auto promise = std::make_shared<std::promise<proto::ClientResponse>>();
  auto future = promise->get_future();
  submit_(*api, [promise](proto::ClientResponse&& r) { promise->set_value(std::move(r)); });
  if (future.wait_for(std::chrono::milliseconds(timeout_ms_ + 1000)) !=
      std::future_status::ready) {
    res.status = 504;
    res.set_content(render_error("timed out; the outcome is unknown"), "application/json");
    return;
  }
  proto::ClientResponse r = future.get();
  if (r.code() != proto::ClientResponse::OK) {
    res.status = status_of(r);
    res.set_content(render_error(r.error()), "application/json");
    return;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  res.set_content(render_results(*api, r.result(), seconds), "application/json");
}

void HttpServer::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace synod::http
