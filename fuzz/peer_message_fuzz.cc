// peer_message_fuzz: bytes -> proto::PeerMessage -> codec::from_proto -> a
// Replica steps it, as Node::on_peer_message does.
//
// Input: byte 0 picks the replica's state before the message (bits 0-1:
// follower, candidate, fresh leader, leader with a chosen slot and one in
// flight) and whether from/to are taken as they are (bit 2) or forced to a
// peer -> node 1; byte 1 seeds the replica; the rest is a serialized
// PeerMessage.
//
// Checks: no crash (SYNOD_CHECK included), to_proto∘from_proto is stable, and
// every Ready the replica produces keeps the driver's contract
// (paxos_harness.h). Messages a correct peer cannot send are not stepped
// unless SYNOD_FUZZ_STRICT=1 (paxos_harness.h, skip_reason).
#include "codec/codec.h"
#include "fuzz/fuzz.h"
#include "fuzz/paxos_harness.h"
#include "fuzz/quiet_protobuf.h"

namespace synod::fuzz {
namespace {

void prepare_state(ReplicaHarness& h, int state) {
  if (state == 0) return;
  for (int i = 0; i < 100 && h.replica().role() != paxos::Role::kCandidate; ++i) h.tick();
  FUZZ_CHECK(h.replica().role() == paxos::Role::kCandidate, "no election after 100 ticks");
  if (state == 1) return;
  const paxos::Ballot b = h.replica().ballot();
  h.step(paxos::Message{2, kSelf, paxos::Promise{b, true, b, 1, 0, {}}});
  FUZZ_CHECK(h.replica().role() == paxos::Role::kLeader, "no leadership after a quorum");
  if (state == 2) return;
  h.propose("x");
  h.propose("y");
  h.step(paxos::Message{2, kSelf, paxos::Accepted{b, 1, true, b, 0}});
  FUZZ_CHECK(h.replica().chosen_through() == 1, "slot 1 not chosen after a quorum");
  h.propose("z");
  h.take_outbox();
}

}  // namespace
}  // namespace synod::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace synod;
  fuzz::quiet_protobuf();
  if (size < 2) return 0;
  const int state = data[0] & 3;
  const bool raw_addresses = (data[0] & 4) != 0;
  const std::uint64_t seed = data[1];

  proto::PeerMessage p;
  if (!p.ParseFromArray(data + 2, static_cast<int>(size - 2))) return 0;
  paxos::Message m;
  std::string error;
  if (!codec::from_proto(p, &m, &error)) return 0;
  fuzz::check_codec_round_trip(m);

  if (!raw_addresses) {
    m.to = fuzz::kSelf;
    m.from = 2 + (m.from & 1);
  }
  fuzz::ReplicaHarness h(seed);
  fuzz::prepare_state(h, state);
  if (!fuzz::strict_mode() && fuzz::skip_reason(m, h.config(), h.learned()) != nullptr) return 0;
  h.step(m);
  h.tick(3);
  return 0;
}
