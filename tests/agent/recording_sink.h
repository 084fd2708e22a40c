// Test helpers for the Asio probing tests: a sink that records every event and forwards it
// to a WindowFolder, and a loop that runs an io_context until a condition holds.
#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "agent/probe_events.h"
#include "agent/window_folder.h"

namespace regionpulse::test {

class RecordingSink final : public ProbeEventSink {
 public:
  explicit RecordingSink(WindowFolder* folder = nullptr) : folder_(folder) {}
  void OnProbeSent(const ProbeSent& sent) override {
    sent_.push_back(sent);
    if (folder_) folder_->OnProbeSent(sent);
  }
  void OnProbeReply(const ProbeReply& reply) override {
    replies_.push_back(reply);
    if (folder_) folder_->OnProbeReply(reply);
  }
  void OnReplyRejected(const std::string& node, DecodeProblem problem, MonoTime at) override {
    rejected_.push_back({node, problem});
    if (folder_) folder_->OnReplyRejected(node, problem, at);
  }

  const std::vector<ProbeSent>& sent() const { return sent_; }
  const std::vector<ProbeReply>& replies() const { return replies_; }
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
  std::vector<ProbeSent> sent_;
  std::vector<ProbeReply> replies_;
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
