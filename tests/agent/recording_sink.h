// Test helpers for the Asio probing tests: a sink that records every event and forwards it
// to a WindowFolder, and a loop that runs an io_context until a condition holds.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "agent/probe_events.h"
#include "agent/window_folder.h"

namespace regionpulse::test {

// A probe as the tests read it: the session's description at the time, with the probe.
struct SentRecord {
  PeerInfo peer;
  uint16_t ssid = 0;
  uint32_t sequence = 0;
  MonoTime sent_at;
  std::string source_address;
  uint16_t source_port = 0;
};

// A reply with the peer node and SSID of its session.
struct ReplyRecord : ProbeReply {
  std::string node;
  uint16_t ssid = 0;
};

class RecordingSink final : public ProbeEventSink {
 public:
  explicit RecordingSink(WindowFolder* folder = nullptr) : folder_(folder) {}
  void OnSession(const SessionInfo& session) override {
    sessions_[session.session] = session;
    if (folder_) folder_->OnSession(session);
  }
  void OnSessionEnded(SessionId session) override {
    if (folder_) folder_->OnSessionEnded(session);
  }
  void OnProbeSent(const ProbeSent& sent) override {
    const SessionInfo& session = sessions_.at(sent.session);
    sent_.push_back(SentRecord{session.peer, session.ssid, sent.sequence, sent.sent_at,
                               session.source_address, session.source_port});
    if (folder_) folder_->OnProbeSent(sent);
  }
  void OnProbeReply(const ProbeReply& reply) override {
    const SessionInfo& session = sessions_.at(reply.session);
    ReplyRecord record;
    static_cast<ProbeReply&>(record) = reply;
    record.node = session.peer.node;
    record.ssid = session.ssid;
    replies_.push_back(std::move(record));
    if (folder_) folder_->OnProbeReply(reply);
  }
  void OnReplyRejected(const std::string& node, DecodeProblem problem, MonoTime at) override {
    rejected_.push_back({node, problem});
    if (folder_) folder_->OnReplyRejected(node, problem, at);
  }

  const std::vector<SentRecord>& sent() const { return sent_; }
  const std::vector<ReplyRecord>& replies() const { return replies_; }
  const std::vector<std::pair<std::string, DecodeProblem>>& rejected() const { return rejected_; }
  size_t RepliesFrom(const std::string& node) const {
    size_t n = 0;
    for (const auto& r : replies_) n += r.node == node ? 1 : 0;
    return n;
  }
  size_t SentTo(const std::string& node) const {
    size_t n = 0;
    for (const auto& s : sent_) n += s.peer.node == node ? 1 : 0;
    return n;
  }

 private:
  WindowFolder* folder_;
  // The latest description of each session id (an ended one's stays until its id is reused).
  std::map<SessionId, SessionInfo> sessions_;
  std::vector<SentRecord> sent_;
  std::vector<ReplyRecord> replies_;
  std::vector<std::pair<std::string, DecodeProblem>> rejected_;
};

// Runs `io` in short slices until `done()` or the deadline; returns done().
inline bool RunUntil(boost::asio::io_context& io, const std::function<bool()>& done,
                     std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!done() && std::chrono::steady_clock::now() < end) {
    io.restart();
    io.run_for(std::chrono::milliseconds(5));
  }
  return done();
}

}  // namespace regionpulse::test
