// Conversions between the consensus core's in-memory types (src/paxos/) and
// the wire schema (proto/synod.proto). Used by the transport (peer messages)
// and by storage (values on disk).
#pragma once

#include <string>

#include "paxos/messages.h"
#include "proto/synod.pb.h"

namespace synod::codec {

void to_proto(const paxos::Ballot& in, proto::Ballot* out);
paxos::Ballot from_proto(const proto::Ballot& in);

void to_proto(const paxos::Value& in, proto::Value* out);
// nullptr (and *error set) when the kind is unknown.
paxos::ValuePtr from_proto(const proto::Value& in, std::string* error);

// Values as bytes (for storage): a serialized proto::Value.
std::string encode_value(const paxos::Value& v);
paxos::ValuePtr decode_value(std::string_view bytes, std::string* error);

void to_proto(const paxos::Message& in, proto::PeerMessage* out);
// False with *error when the message is malformed (no body, a missing value,
// an unknown value kind): the caller drops it and logs.
// Also refuses what no correct peer sends: a slot or round of 2^62 or more,
// entries not strictly ascending by slot.
bool from_proto(const proto::PeerMessage& in, paxos::Message* out, std::string* error);

}  // namespace synod::codec
