#include "client/lock_ops.h"

#include <nlohmann/json.hpp>

namespace synod::client {
namespace {

using Json = nlohmann::json;

std::string dump(const Json& j) {
  // Lock names are UTF-8; anything else is the backend's to refuse, not ours to throw on.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json with_session(const char* op, std::uint64_t session) {
  return Json{{"op", op}, {"session", session}};
}

Json with_lock(const char* op, std::uint64_t session, std::string_view name) {
  Json j = with_session(op, session);
  j["lock"] = std::string(name);
  return j;
}

std::uint64_t u64(const Json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end()) return 0;
  if (it->is_number_unsigned()) return it->get<std::uint64_t>();
  if (it->is_number_integer() && it->get<std::int64_t>() >= 0) {
    return static_cast<std::uint64_t>(it->get<std::int64_t>());
  }
  return 0;
}

std::int64_t i64(const Json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || !it->is_number_integer()) return 0;
  return it->get<std::int64_t>();
}

bool is_true(const Json& j, const char* field) {
  auto it = j.find(field);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

bool has_number(const Json& j, const char* field) {
  auto it = j.find(field);
  return it != j.end() && it->is_number_integer();
}

bool mode_of(const Json& j, LockMode* mode) {
  auto it = j.find("mode");
  if (it == j.end()) {
    *mode = LockMode::kExclusive;
    return true;
  }
  if (!it->is_string()) return false;
  const std::string m = it->get<std::string>();
  if (m == "exclusive") {
    *mode = LockMode::kExclusive;
  } else if (m == "shared") {
    *mode = LockMode::kShared;
  } else {
    return false;
  }
  return true;
}

bool info_from(const Json& j, LockInfo* info, std::string* error) {
  if (!j.is_object() || !j.contains("lock") || !j["lock"].is_string()) {
    *error = "a lock without its name";
    return false;
  }
  *info = LockInfo{};
  info->name = j["lock"].get<std::string>();
  info->unavailable_until_ms = i64(j, "unavailable_until_ms");
  info->last_token = u64(j, "last_token");
  info->now_ms = i64(j, "now_ms");
  if (auto h = j.find("holders"); h != j.end()) {
    if (!h->is_array()) {
      *error = "holders is not an array";
      return false;
    }
    for (const Json& e : *h) {
      LockHolderInfo holder;
      if (!e.is_object() || !has_number(e, "session") || !mode_of(e, &holder.mode)) {
        *error = "a malformed holder";
        return false;
      }
      holder.session = u64(e, "session");
      holder.token = u64(e, "token");
      holder.since_ms = i64(e, "since_ms");
      info->holders.push_back(holder);
    }
  }
  if (auto w = j.find("waiters"); w != j.end()) {
    if (!w->is_array()) {
      *error = "waiters is not an array";
      return false;
    }
    for (const Json& e : *w) {
      LockWaiterInfo waiter;
      if (!e.is_object() || !has_number(e, "session") || !mode_of(e, &waiter.mode)) {
        *error = "a malformed waiter";
        return false;
      }
      waiter.session = u64(e, "session");
      info->waiters.push_back(waiter);
    }
  }
  return true;
}

}  // namespace

const char* lock_mode_name(LockMode mode) {
  return mode == LockMode::kShared ? "shared" : "exclusive";
}

std::string encode_lock_open(std::int64_t ttl_ms, std::int64_t lock_delay_ms) {
  return dump(Json{{"op", "open"}, {"ttl_ms", ttl_ms}, {"lock_delay_ms", lock_delay_ms}});
}
std::string encode_lock_keepalive(std::uint64_t session) {
  return dump(with_session("keepalive", session));
}
std::string encode_lock_close(std::uint64_t session) { return dump(with_session("close", session)); }
std::string encode_lock_acquire(std::uint64_t session, std::string_view name, LockMode mode,
                                bool wait, std::uint64_t req) {
  Json j = with_lock("acquire", session, name);
  j["mode"] = lock_mode_name(mode);
  j["wait"] = wait;
  if (req != 0) j["req"] = req;
  return dump(j);
}
std::string encode_lock_cancel(std::uint64_t session, std::string_view name, std::uint64_t req,
                               bool keep_held) {
  Json j = with_lock("cancel", session, name);
  if (req != 0) j["req"] = req;
  if (keep_held) j["keep_held"] = true;
  return dump(j);
}
std::string encode_lock_release(std::uint64_t session, std::string_view name,
                                std::uint64_t req) {
  Json j = with_lock("release", session, name);
  if (req != 0) j["req"] = req;
  return dump(j);
}
std::string encode_lock_status(std::uint64_t session, std::string_view name) {
  return dump(with_lock("status", session, name));
}
std::string encode_lock_show(std::string_view name) {
  return dump(Json{{"op", "show"}, {"lock", std::string(name)}});
}
std::string encode_lock_list() { return dump(Json{{"op", "list"}}); }
std::string encode_lock_check(std::string_view name, std::uint64_t token) {
  return dump(Json{{"op", "check"}, {"lock", std::string(name)}, {"token", token}});
}

LockAnswer decode_lock_answer(LockOp op, const Result& raw) {
  LockAnswer a;
  a.code = raw.code;
  a.message = raw.message;
  if (!raw.ok()) return a;
  // Every answer of the lock backend is a JSON object: an empty one is a write
  // applied whose result a node did not keep (a restart's replay; a retry
  // answered from the node's session record of it).
  if (raw.value.empty()) {
    a.code = Code::kResultLost;
    a.message = "applied, but its result was lost" +
                (raw.message.empty() ? std::string() : ": " + raw.message);
    return a;
  }
  a.message.clear();
  const Json j = Json::parse(raw.value, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    a.code = Code::kProtocolError;
    a.message = "the lock backend's answer is not a JSON object: " + raw.value.substr(0, 200);
    return a;
  }
  if (auto e = j.find("error"); e != j.end()) {
    a.message = e->is_string() ? e->get<std::string>() : e->dump();
    a.superseded = is_true(j, "superseded");
    if (is_true(j, "expired") || is_true(j, "closed") ||
        a.message.find("expired") != std::string::npos ||
        a.message.find("unknown session") != std::string::npos) {
      a.code = Code::kSessionLost;
    } else if (op == LockOp::kRelease && a.message.find("not held") != std::string::npos) {
      a.code = Code::kNotFound;
    } else {
      a.code = Code::kBackendError;
    }
    return a;
  }
  auto malformed = [&](const char* what) {
    a.code = Code::kProtocolError;
    a.message = std::string("the lock backend's answer has no ") + what + ": " +
                raw.value.substr(0, 200);
    return a;
  };
  switch (op) {
    case LockOp::kOpen:
      if (!has_number(j, "session") || u64(j, "session") == 0) return malformed("session");
      a.session = u64(j, "session");
      break;
    case LockOp::kKeepalive:
      a.session = u64(j, "session");
      a.expires_ms = i64(j, "expires_ms");
      break;
    case LockOp::kAcquire:
    case LockOp::kStatus: {
      const char* yes = op == LockOp::kAcquire ? "granted" : "held";
      if (!j.contains(yes) || !j[yes].is_boolean()) return malformed(yes);
      if (j[yes].get<bool>()) {
        if (!has_number(j, "token")) return malformed("token");
        a.token = u64(j, "token");
        a.req = u64(j, "req");
      } else {
        a.code = Code::kLockBusy;
        a.waiting = is_true(j, "waiting");
        a.position = u64(j, "position");
        a.req = u64(j, "req");
        a.holder_session = u64(j, "holder_session");
        if (a.waiting) {
          a.message = "waiting (position " + std::to_string(a.position) + ")";
        } else if (a.holder_session != 0) {
          a.message = "held by session " + std::to_string(a.holder_session);
        } else if (i64(j, "unavailable_until_ms") > 0) {
          a.message = "in its lock-delay (a holder's session expired)";
        } else if (j.contains("waiters")) {
          a.message = "other sessions are waiting for it";
        } else {
          a.message = "not held";
        }
      }
      break;
    }
    case LockOp::kRelease:
      if (!is_true(j, "released")) return malformed("\"released\": true");
      break;
    case LockOp::kCheck:
      if (!j.contains("current") || !j["current"].is_boolean()) return malformed("current");
      a.current = j["current"].get<bool>();
      a.newest_token = u64(j, "newest_token");
      break;
    case LockOp::kCancel:
      // {"cancelled":false,"held":true,"token":T}: granted before the cancel;
      // {"cancelled":true,"released":true,"token":T}: and released by it.
      a.cancelled = is_true(j, "cancelled");
      a.released = is_true(j, "released");
      a.waiting = is_true(j, "waiting");
      if (is_true(j, "held") || a.released) a.token = u64(j, "token");
      break;
    case LockOp::kClose:
    case LockOp::kShow:
    case LockOp::kList:
      break;
  }
  return a;
}

bool parse_lock_info(std::string_view json, LockInfo* info, std::string* error) {
  const Json j = Json::parse(json, nullptr, false);
  if (j.is_discarded()) {
    *error = "not JSON";
    return false;
  }
  return info_from(j, info, error);
}

bool parse_lock_listing(std::string_view json, LockListing* listing, std::string* error) {
  const Json j = Json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    *error = "not a JSON object";
    return false;
  }
  *listing = LockListing{};
  listing->now_ms = i64(j, "now_ms");
  if (auto l = j.find("locks"); l != j.end()) {
    if (!l->is_array()) {
      *error = "locks is not an array";
      return false;
    }
    for (const Json& e : *l) {
      LockInfo info;
      if (!info_from(e, &info, error)) return false;
      listing->locks.push_back(std::move(info));
    }
  }
  if (auto s = j.find("sessions"); s != j.end()) {
    if (!s->is_array()) {
      *error = "sessions is not an array";
      return false;
    }
    for (const Json& e : *s) {
      if (!e.is_object() || !has_number(e, "session")) {
        *error = "a malformed session";
        return false;
      }
      listing->sessions.push_back({u64(e, "session"), i64(e, "ttl_ms"), i64(e, "expires_ms"),
                                   i64(e, "lock_delay_ms")});
    }
  }
  return true;
}

}  // namespace synod::client
