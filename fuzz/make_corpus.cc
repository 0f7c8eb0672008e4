// Writes the seed corpus of every fuzzer: valid encodings made with the
// project's own encoders (codec, frames, kv_codec, the client's kv_ops), so the
// seeds follow the schema when it changes. Deterministic: running it again
// rewrites the same files.
//
//   build/default/fuzz/synod_fuzz_make_corpus fuzz/corpus
//
// writes fuzz/corpus/<fuzzer>/<seed name>. Keep the seeds few and small: the
// fuzzers find the rest, and `scripts/test` replays every file.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "backends/kv/kv_codec.h"
#include "client/kv_ops.h"
#include "codec/codec.h"
#include "net/frame.h"
#include "paxos/messages.h"
#include "paxos/random.h"
#include "proto/kv.pb.h"
#include "proto/synod.pb.h"

namespace synod::fuzz {
namespace {

namespace fs = std::filesystem;
using paxos::Ballot;

fs::path g_out;
int g_files = 0;

void write(const std::string& fuzzer, const std::string& name, const std::string& bytes) {
  const fs::path dir = g_out / fuzzer;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", (dir / name).c_str());
    std::exit(1);
  }
  ++g_files;
}

paxos::ValuePtr cmds(std::vector<std::string> c) {
  return std::make_shared<const paxos::Value>(
      paxos::Value{paxos::ValueKind::kCommands, std::move(c)});
}

// One message of every type, from node 2 to node 1 (ballots are the sender's).
std::vector<std::pair<std::string, paxos::Message>> peer_messages() {
  const Ballot b2{3, 2};
  const Ballot b1{2, 1};
  auto v = cmds({"put a 1", std::string("\0\xff", 2)});
  return {
      {"prepare", {2, 1, paxos::Prepare{b2, 1}}},
      {"promise",
       {2, 1,
        paxos::Promise{b1,
                       true,
                       b1,
                       1,
                       1,
                       {{1, Ballot{}, v, true}, {2, Ballot{1, 2}, paxos::noop_value(), false}}}}},
      {"promise-refused", {2, 1, paxos::Promise{b1, false, b2, 1, 0, {}}}},
      {"accept", {2, 1, paxos::Accept{b2, 1, v, 0}}},
      {"accept-commit", {2, 1, paxos::Accept{b2, 2, paxos::noop_value(), 1}}},
      {"accepted", {2, 1, paxos::Accepted{b1, 1, true, b1, 0}}},
      {"accepted-refused", {2, 1, paxos::Accepted{b1, 1, false, b2, 3}}},
      {"heartbeat", {2, 1, paxos::Heartbeat{b2, 2, 5}}},
      {"heartbeat-reply", {2, 1, paxos::HeartbeatReply{b1, true, b1, 1, 0}}},
      {"catchup-request", {2, 1, paxos::CatchupRequest{1, 4}}},
      {"catchup-reply",
       {2, 1, paxos::CatchupReply{{{1, v}, {2, paxos::noop_value()}}, 5, false, 0}}},
      {"catchup-snapshot", {2, 1, paxos::CatchupReply{{}, 9, true, 4}}},
  };
}

proto::PeerMessage to_proto(const paxos::Message& m) {
  proto::PeerMessage p;
  codec::to_proto(m, &p);
  return p;
}

std::string kv_put(const std::string& k, const std::string& v) {
  return client::encode_kv_put(k, v);
}

std::vector<std::pair<std::string, proto::ClientRequest>> client_requests() {
  std::vector<std::pair<std::string, proto::ClientRequest>> out;
  auto write_req = [&](const std::string& name, const std::string& payload,
                       const std::string& backend) {
    proto::ClientRequest r;
    r.set_request_id(17);
    r.set_timeout_ms(500);
    auto* w = r.mutable_write();
    w->set_client_id(0x1234);
    w->set_sequence(9);
    w->set_backend(backend);
    w->set_payload(payload);
    out.emplace_back(name, r);
  };
  auto read_req = [&](const std::string& name, const std::string& payload, bool linearizable) {
    proto::ClientRequest r;
    r.set_request_id(18);
    auto* rd = r.mutable_read();
    rd->set_backend("kv");
    rd->set_payload(payload);
    rd->set_consistency(linearizable ? proto::LINEARIZABLE : proto::LOCAL);
    out.emplace_back(name, r);
  };
  write_req("write-put", kv_put("k", "v"), "kv");
  write_req("write-cas", client::encode_kv_cas("k", "v", "w"), "kv");
  write_req("write-cas-absent", client::encode_kv_cas("k", std::nullopt, "w"), "kv");
  write_req("write-incr", client::encode_kv_increment("n", -3), "kv");
  write_req("write-del", client::encode_kv_delete("k"), "kv");
  write_req("write-other-backend", kv_put("k", "v"), "sql");
  read_req("read-get", client::encode_kv_get("k"), true);
  read_req("read-list", client::encode_kv_list("a", 2), false);
  read_req("read-put", kv_put("k", "v"), false);
  proto::ClientRequest status;
  status.set_request_id(19);
  status.mutable_status();
  out.emplace_back("status", status);
  proto::ClientRequest none;
  none.set_request_id(20);
  out.emplace_back("no-op", none);
  return out;
}

std::vector<std::pair<std::string, proto::ClientResponse>> client_responses() {
  std::vector<std::pair<std::string, proto::ClientResponse>> out;
  auto ok = [&](const std::string& name, const kv::Result& result) {
    proto::ClientResponse r;
    r.set_request_id(5);
    r.set_code(proto::ClientResponse::OK);
    r.set_result(kv::encode_result(result));
    r.set_slot(12);
    out.emplace_back(name, r);
  };
  kv::Result found;
  found.found = true;
  found.value = "v";
  ok("ok-get", found);
  kv::Result missing;
  missing.code = kv::Code::kNotFound;
  ok("ok-not-found", missing);
  kv::Result cas;
  cas.code = kv::Code::kCasFailed;
  cas.found = true;
  cas.value = "old";
  ok("ok-cas-failed", cas);
  kv::Result number;
  number.number = -42;
  number.value = "-42";
  ok("ok-incr", number);
  kv::Result keys;
  keys.keys = {"a", "ab", std::string("\0", 1)};
  ok("ok-keys", keys);
  kv::Result bad;
  bad.code = kv::Code::kBadCommand;
  bad.error = "GET needs a key";
  ok("ok-bad-command", bad);

  proto::ClientResponse lost;
  lost.set_code(proto::ClientResponse::OK);
  lost.set_error("applied; the result was lost in a restart");
  out.emplace_back("ok-result-lost", lost);
  proto::ClientResponse redirect;
  redirect.set_code(proto::ClientResponse::NOT_LEADER);
  redirect.set_leader_hint(2);
  redirect.set_leader_address("127.0.0.1:7002");
  redirect.set_error("node 1 is not the leader; node 2 is");
  out.emplace_back("not-leader", redirect);
  for (auto [name, code] : {std::pair{"timeout", proto::ClientResponse::TIMEOUT},
                            std::pair{"unavailable", proto::ClientResponse::UNAVAILABLE},
                            std::pair{"bad-request", proto::ClientResponse::BAD_REQUEST},
                            std::pair{"backend-error", proto::ClientResponse::BACKEND_ERROR}}) {
    proto::ClientResponse r;
    r.set_code(code);
    r.set_error(name);
    out.emplace_back(name, r);
  }
  proto::ClientResponse status;
  status.set_code(proto::ClientResponse::OK);
  auto* s = status.mutable_status();
  s->set_id(1);
  s->set_role("leader");
  s->set_address("127.0.0.1:7001");
  s->add_peers()->set_id(2);
  s->add_backends("kv");
  out.emplace_back("status", status);
  return out;
}

void peer_message_seeds() {
  int i = 0;
  for (const auto& [name, m] : peer_messages()) {
    const std::string body = to_proto(m).SerializeAsString();
    // Each message against each state of the replica (see peer_message_fuzz.cc).
    for (int state = 0; state < 4; ++state) {
      write("peer_message_fuzz", name + "-s" + std::to_string(state),
            std::string{static_cast<char>(state), static_cast<char>(i)} + body);
    }
    ++i;
  }
}

void frame_seeds() {
  const std::uint64_t cluster = net::cluster_id_of("synod");
  std::string stream;
  proto::Envelope hello;
  hello.mutable_hello()->set_node_id(2);
  stream += net::encode_frame(cluster, hello);
  for (const auto& [name, m] : peer_messages()) {
    proto::Envelope e;
    *e.mutable_peer() = to_proto(m);
    stream += net::encode_frame(cluster, e);
  }
  for (const auto& [name, r] : client_requests()) {
    proto::Envelope e;
    *e.mutable_request() = r;
    stream += net::encode_frame(cluster, e);
  }
  for (const auto& [name, r] : client_responses()) {
    proto::Envelope e;
    *e.mutable_response() = r;
    stream += net::encode_frame(cluster, e);
  }
  // Byte 0: (max_frame index << 4) | number of cut bytes; then the cuts.
  write("frame_fuzz", "all-one-read", std::string(1, '\0') + stream);
  write("frame_fuzz", "all-cut", std::string("\x03\x01\x13\x00", 4) + stream);
  write("frame_fuzz", "hello-bytewise",
        std::string("\x01\x01", 2) + net::encode_frame(cluster, hello));
  write("frame_fuzz", "too-big", std::string("\x62\x07\x05", 3) + stream.substr(0, 200));
  write("frame_fuzz", "other-cluster",
        std::string(1, '\0') + net::encode_frame(net::cluster_id_of("other"), hello));
  write("frame_fuzz", "http", std::string(1, '\0') + "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string truncated = net::encode_frame(cluster, hello);
  truncated.pop_back();
  write("frame_fuzz", "truncated", std::string(1, '\0') + truncated);
}

void replica_seeds() {
  // Programs of replica_fuzz ops (see replica_fuzz.cc, one_op): byte 0 is the
  // seed; then op bytes and their arguments. "Elect, propose, answer
  // everything" in several rhythms, then some made-up noise.
  const std::string answer_all(24, '\x01');
  std::string elect = std::string("\x07") + "\x0f\x14" + "\x0b" + answer_all;
  write("replica_fuzz", "elect", elect);
  std::string commit = elect + "\x10\x02" + "\x0b" + answer_all + "\x00\x02" + "\x0b" + answer_all;
  write("replica_fuzz", "elect-commit", commit);
  write("replica_fuzz", "elect-commit-restart", commit + "\x0d\x03" + "\x0f\x14\x0b" + answer_all);
  write("replica_fuzz", "follow",
        std::string("\x05") + "\x04\x01\x01\x02\x03\x04" + "\x06\x01\x00\x05\x07" +
            "\x09\x00\x00\x03\x02\x01" + "\x08\x02\x05");
  paxos::Rng rng(2024);
  for (int i = 0; i < 4; ++i) {
    std::string noise;
    for (int j = 0; j < 300; ++j) noise.push_back(static_cast<char>(rng.next() & 0xff));
    write("replica_fuzz", "noise-" + std::to_string(i), noise);
  }
}

void kv_seeds() {
  auto raw = [](std::uint8_t kind, const std::string& bytes) {
    std::string s(1, static_cast<char>(kind));
    s.push_back(static_cast<char>(bytes.size() & 0xff));
    s.push_back(static_cast<char>(bytes.size() >> 8));
    return s + bytes;
  };
  std::string session =
      raw(0, kv_put("a", "1")) + raw(0, client::encode_kv_increment("a", 41)) +
      raw(1, client::encode_kv_get("a")) + raw(0, client::encode_kv_cas("a", "42", "x")) +
      raw(0, client::encode_kv_increment("a", 1)) + raw(1, client::encode_kv_list("", 0)) +
      raw(0, client::encode_kv_delete("a")) + raw(3, kv_put("b", "2")) +
      raw(1, client::encode_kv_get("a"));
  write("kv_command_fuzz", "session", session);
  write("kv_command_fuzz", "cas-absent",
        raw(0, client::encode_kv_cas("k", std::nullopt, "v")) +
            raw(0, client::encode_kv_cas("k", std::nullopt, "w")));
  write("kv_command_fuzz", "query-write", raw(1, kv_put("k", "v")));
  write("kv_command_fuzz", "garbage",
        raw(0, std::string("\x0a\xff\xff\xff\x0f", 5)) + raw(1, "\x0b"));
  write("kv_command_fuzz", "structured",
        std::string("\x02\x02\x01\x01\x01\x02\x00\x05\x01\x09\x00\x00\x06\x04\x20\x00", 16));
}

void client_seeds() {
  for (const auto& [name, r] : client_requests()) {
    write("client_request_fuzz", name, r.SerializeAsString());
    // server_fuzz: byte 0 = 0 (a request on the client connection).
    write("server_fuzz", name, std::string(1, '\0') + r.SerializeAsString());
  }
  proto::Envelope hello;
  hello.mutable_hello()->set_node_id(1);
  write("server_fuzz", "envelope-hello", "\x01" + hello.SerializeAsString());
  proto::Envelope response;
  response.mutable_response()->set_request_id(1);
  write("server_fuzz", "envelope-response", "\x01" + response.SerializeAsString());
  write("server_fuzz", "envelope-garbage", std::string("\x01\xff\xff\x01", 4));
  write("server_fuzz", "stranger-http", "\x02GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  proto::Envelope peer_hello;
  peer_hello.mutable_hello()->set_node_id(2);
  write("server_fuzz", "stranger-peer-hello",
        "\x02" + net::encode_frame(net::cluster_id_of("synod"), peer_hello));
  for (const auto& [name, r] : client_responses())
    write("client_response_fuzz", name, r.SerializeAsString());
}

void value_seeds() {
  write("value_decode_fuzz", "noop", codec::encode_value(paxos::Value{}));
  write("value_decode_fuzz", "commands",
        codec::encode_value(
            paxos::Value{paxos::ValueKind::kCommands, {"a", "", std::string(40, 'x')}}));
  write("value_decode_fuzz", "config",
        codec::encode_value(paxos::Value{paxos::ValueKind::kConfig, {"1,2,3"}}));
  proto::Value unknown;
  unknown.set_kind(7);
  unknown.add_commands("z");
  write("value_decode_fuzz", "unknown-kind", unknown.SerializeAsString());
}

// Inputs that only an incorrect peer sends (fuzz/README.md, "What a correct
// peer can send"): the fuzzers skip them, so they pass as regression tests;
// with SYNOD_FUZZ_STRICT=1 each shows its problem.
void strict_regressions() {
  auto msg = [](int state, const paxos::Message& m) {
    return std::string{static_cast<char>(state), '\0'} + to_proto(m).SerializeAsString();
  };
  const Ballot first{1, 1};  // the candidate's ballot in its first election
  // Rule 1: leader_hint() becomes 9, which the server's peer table lacks.
  write("peer_message_fuzz", "strict-heartbeat-non-member-ballot",
        msg(0, {2, 1, paxos::Heartbeat{Ballot{5, 9}, 0, 1}}));
  // Rule 2: become_leader walks to slot 2^64 - 1 and wraps: it never returns.
  write("peer_message_fuzz", "strict-promise-chosen-through-max",
        msg(1, {2, 1, paxos::Promise{first, true, first, 1, ~std::uint64_t{0}, {}}}));
  // Rule 2: a promise naming slot 2^20 makes the new leader start 2^20 no-op instances.
  write("peer_message_fuzz", "strict-promise-far-entry",
        msg(1, {2, 1,
                paxos::Promise{
                    first, true, first, 1, 0, {{1 << 20, Ballot{1, 2}, cmds({"v"}), false}}}}));
  // Rule 3: SYNOD_CHECK "two different values learned chosen for one slot".
  write("peer_message_fuzz", "strict-catchup-duplicate-slot",
        msg(0, {2, 1, paxos::CatchupReply{{{1, cmds({"a"})}, {1, cmds({"b"})}}, 1, false, 0}}));
  write("peer_message_fuzz", "strict-promise-duplicate-chosen-slot",
        msg(1, {2, 1,
                paxos::Promise{
                    first,
                    true,
                    first,
                    1,
                    0,
                    {{2, Ballot{}, cmds({"a"}), true}, {2, Ballot{}, cmds({"b"}), true}}}}));
}

}  // namespace
}  // namespace synod::fuzz

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::fprintf(stderr,
                 "usage: %s CORPUS_DIR [REGRESSIONS_DIR]   (e.g. fuzz/corpus fuzz/regressions)\n",
                 argv[0]);
    return 2;
  }
  if (argc == 3) {
    synod::fuzz::g_out = argv[2];
    synod::fuzz::strict_regressions();
  }
  synod::fuzz::g_out = argv[1];
  synod::fuzz::frame_seeds();
  synod::fuzz::peer_message_seeds();
  synod::fuzz::replica_seeds();
  synod::fuzz::kv_seeds();
  synod::fuzz::client_seeds();
  synod::fuzz::value_seeds();
  std::printf("wrote %d files\n", synod::fuzz::g_files);
  return 0;
}
