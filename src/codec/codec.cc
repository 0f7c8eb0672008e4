#include "codec/codec.h"

#include <initializer_list>
#include <variant>

#include <type_traits>

namespace synod::codec {

void to_proto(const paxos::Ballot& in, proto::Ballot* out) {
  out->set_round(in.round);
  out->set_node(in.node);
}

paxos::Ballot from_proto(const proto::Ballot& in) { return paxos::Ballot{in.round(), in.node()}; }

void to_proto(const paxos::Value& in, proto::Value* out) {
  out->set_kind(static_cast<std::uint32_t>(in.kind));
  out->mutable_commands()->Reserve(static_cast<int>(in.commands.size()));
  for (const auto& c : in.commands) out->add_commands(c);
}

paxos::ValuePtr from_proto(const proto::Value& in, std::string* error) {
  if (in.kind() > static_cast<std::uint32_t>(paxos::ValueKind::kConfig)) {
    *error = "unknown value kind " + std::to_string(in.kind());
    return nullptr;
  }
  auto v = std::make_shared<paxos::Value>();
  v->kind = static_cast<paxos::ValueKind>(in.kind());
  v->commands.reserve(static_cast<std::size_t>(in.commands_size()));
  for (const auto& c : in.commands()) v->commands.push_back(c);
  return v;
}

std::string encode_value(const paxos::Value& v) {
  proto::Value p;
  to_proto(v, &p);
  return p.SerializeAsString();
}

paxos::ValuePtr decode_value(std::string_view bytes, std::string* error) {
  proto::Value p;
  if (!p.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    *error = "undecodable value";
    return nullptr;
  }
  return from_proto(p, error);
}

namespace {

bool value_from(const proto::Value& in, bool present, paxos::ValuePtr* out, std::string* error) {
  if (!present) {
    *error = "missing value";
    return false;
  }
  *out = from_proto(in, error);
  return *out != nullptr;
}

}  // namespace

void to_proto(const paxos::Message& in, proto::PeerMessage* out) {
  out->set_from(in.from);
  out->set_to(in.to);
  std::visit(
      [out](const auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, paxos::Prepare>) {
          auto* p = out->mutable_prepare();
          to_proto(b.ballot, p->mutable_ballot());
          p->set_from_slot(b.from_slot);
        } else if constexpr (std::is_same_v<T, paxos::Promise>) {
          auto* p = out->mutable_promise();
          to_proto(b.ballot, p->mutable_ballot());
          p->set_ok(b.ok);
          to_proto(b.promised, p->mutable_promised());
          p->set_from_slot(b.from_slot);
          p->set_chosen_through(b.chosen_through);
          for (const auto& e : b.entries) {
            auto* pe = p->add_entries();
            pe->set_slot(e.slot);
            to_proto(e.ballot, pe->mutable_ballot());
            to_proto(*e.value, pe->mutable_value());
            pe->set_chosen(e.chosen);
          }
        } else if constexpr (std::is_same_v<T, paxos::Accept>) {
          auto* p = out->mutable_accept();
          to_proto(b.ballot, p->mutable_ballot());
          p->set_slot(b.slot);
          to_proto(*b.value, p->mutable_value());
          p->set_commit(b.commit);
        } else if constexpr (std::is_same_v<T, paxos::Accepted>) {
          auto* p = out->mutable_accepted();
          to_proto(b.ballot, p->mutable_ballot());
          p->set_slot(b.slot);
          p->set_ok(b.ok);
          to_proto(b.promised, p->mutable_promised());
          p->set_chosen_through(b.chosen_through);
        } else if constexpr (std::is_same_v<T, paxos::Heartbeat>) {
          auto* p = out->mutable_heartbeat();
          to_proto(b.ballot, p->mutable_ballot());
          p->set_commit(b.commit);
          p->set_round(b.round);
        } else if constexpr (std::is_same_v<T, paxos::HeartbeatReply>) {
          auto* p = out->mutable_heartbeat_reply();
          to_proto(b.ballot, p->mutable_ballot());
          p->set_ok(b.ok);
          to_proto(b.promised, p->mutable_promised());
          p->set_round(b.round);
          p->set_chosen_through(b.chosen_through);
        } else if constexpr (std::is_same_v<T, paxos::CatchupRequest>) {
          auto* p = out->mutable_catchup_request();
          p->set_from_slot(b.from_slot);
          p->set_to_slot(b.to_slot);
        } else {
          auto* p = out->mutable_catchup_reply();
          for (const auto& e : b.entries) {
            auto* pe = p->add_entries();
            pe->set_slot(e.slot);
            to_proto(*e.value, pe->mutable_value());
          }
          p->set_chosen_through(b.chosen_through);
          p->set_snapshot_needed(b.snapshot_needed);
          p->set_first_slot(b.first_slot);
        }
      },
      in.body);
}

namespace {

// What no correct peer sends, refused before the core sees it: slot numbers
// and rounds near 2^64 (the core adds to them) and entry lists that are not
// strictly ascending by slot (the core relies on that order, and a duplicate
// slot with two values would trip its one-value-per-slot check).
constexpr std::uint64_t kLimit = std::uint64_t{1} << 62;

bool decode_body(const proto::PeerMessage& in, paxos::Message* out, std::string* error);

template <typename Entries>
bool entries_ok(const Entries& entries, std::string* error) {
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].slot == 0 || entries[i].slot >= kLimit) {
      *error = "entry slot " + std::to_string(entries[i].slot) + " out of range";
      return false;
    }
    if (i > 0 && entries[i].slot <= entries[i - 1].slot) {
      *error = "entries not strictly ascending by slot (" + std::to_string(entries[i - 1].slot) +
               " then " + std::to_string(entries[i].slot) + ")";
      return false;
    }
  }
  return true;
}

bool in_range(std::string* error, std::initializer_list<std::uint64_t> values) {
  for (std::uint64_t v : values) {
    if (v >= kLimit) {
      *error = "slot or round " + std::to_string(v) + " out of range (at most 2^62 - 1)";
      return false;
    }
  }
  return true;
}

bool valid(const paxos::Message& m, std::string* error) {
  return std::visit(
      [&](const auto& b) -> bool {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, paxos::Prepare>) {
          return in_range(error, {b.ballot.round, b.from_slot});
        } else if constexpr (std::is_same_v<T, paxos::Promise>) {
          if (!in_range(error, {b.ballot.round, b.promised.round, b.from_slot, b.chosen_through})) {
            return false;
          }
          for (const auto& e : b.entries) {
            if (!in_range(error, {e.ballot.round})) return false;
          }
          return entries_ok(b.entries, error);
        } else if constexpr (std::is_same_v<T, paxos::Accept>) {
          return in_range(error, {b.ballot.round, b.slot, b.commit});
        } else if constexpr (std::is_same_v<T, paxos::Accepted>) {
          return in_range(error, {b.ballot.round, b.promised.round, b.slot, b.chosen_through});
        } else if constexpr (std::is_same_v<T, paxos::Heartbeat>) {
          return in_range(error, {b.ballot.round, b.commit});
        } else if constexpr (std::is_same_v<T, paxos::HeartbeatReply>) {
          return in_range(error, {b.ballot.round, b.promised.round, b.chosen_through});
        } else if constexpr (std::is_same_v<T, paxos::CatchupRequest>) {
          return in_range(error, {b.from_slot, b.to_slot});
        } else if constexpr (std::is_same_v<T, paxos::CatchupReply>) {
          return in_range(error, {b.chosen_through, b.first_slot}) && entries_ok(b.entries, error);
        }
        return true;
      },
      m.body);
}

}  // namespace

bool from_proto(const proto::PeerMessage& in, paxos::Message* out, std::string* error) {
  if (!decode_body(in, out, error)) return false;
  return valid(*out, error);
}

namespace {

bool decode_body(const proto::PeerMessage& in, paxos::Message* out, std::string* error) {
  out->from = in.from();
  out->to = in.to();
  switch (in.body_case()) {
    case proto::PeerMessage::kPrepare: {
      const auto& p = in.prepare();
      out->body = paxos::Prepare{from_proto(p.ballot()), p.from_slot()};
      return true;
    }
    case proto::PeerMessage::kPromise: {
      const auto& p = in.promise();
      paxos::Promise m;
      m.ballot = from_proto(p.ballot());
      m.ok = p.ok();
      m.promised = from_proto(p.promised());
      m.from_slot = p.from_slot();
      m.chosen_through = p.chosen_through();
      for (const auto& e : p.entries()) {
        paxos::PromiseEntry pe{e.slot(), from_proto(e.ballot()), nullptr, e.chosen()};
        if (!value_from(e.value(), e.has_value(), &pe.value, error)) return false;
        m.entries.push_back(std::move(pe));
      }
      out->body = std::move(m);
      return true;
    }
    case proto::PeerMessage::kAccept: {
      const auto& p = in.accept();
      paxos::Accept m{from_proto(p.ballot()), p.slot(), nullptr, p.commit()};
      if (!value_from(p.value(), p.has_value(), &m.value, error)) return false;
      out->body = std::move(m);
      return true;
    }
    case proto::PeerMessage::kAccepted: {
      const auto& p = in.accepted();
      out->body = paxos::Accepted{from_proto(p.ballot()), p.slot(), p.ok(),
                                  from_proto(p.promised()), p.chosen_through()};
      return true;
    }
    case proto::PeerMessage::kHeartbeat: {
      const auto& p = in.heartbeat();
      out->body = paxos::Heartbeat{from_proto(p.ballot()), p.commit(), p.round()};
      return true;
    }
    case proto::PeerMessage::kHeartbeatReply: {
      const auto& p = in.heartbeat_reply();
      out->body = paxos::HeartbeatReply{from_proto(p.ballot()), p.ok(), from_proto(p.promised()),
                                        p.round(), p.chosen_through()};
      return true;
    }
    case proto::PeerMessage::kCatchupRequest: {
      const auto& p = in.catchup_request();
      out->body = paxos::CatchupRequest{p.from_slot(), p.to_slot()};
      return true;
    }
    case proto::PeerMessage::kCatchupReply: {
      const auto& p = in.catchup_reply();
      paxos::CatchupReply m;
      for (const auto& e : p.entries()) {
        paxos::ChosenEntry ce{e.slot(), nullptr};
        if (!value_from(e.value(), e.has_value(), &ce.value, error)) return false;
        m.entries.push_back(std::move(ce));
      }
      m.chosen_through = p.chosen_through();
      m.snapshot_needed = p.snapshot_needed();
      m.first_slot = p.first_slot();
      out->body = std::move(m);
      return true;
    }
    case proto::PeerMessage::BODY_NOT_SET:
      break;
  }
  *error = "peer message without a body";
  return false;
}

}  // namespace

}  // namespace synod::codec
