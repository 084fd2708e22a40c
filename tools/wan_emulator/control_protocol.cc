// Parsing and execution of the WAN emulator's control commands.
#include "tools/wan_emulator/control_protocol.h"

namespace regionpulse::wan {
namespace {

ControlReply Fail(const std::string& error) {
  return ControlReply{false, "", error};
}

ControlReply Done(std::string body = "") {
  return ControlReply{true, std::move(body), ""};
}

ControlReply FromStatus(const Status& status) {
  return status ? Done() : Fail(status.error().message);
}

}  // namespace

std::string ControlReply::Framed() const {
  if (ok) return body + "ok\n";
  // The error is one line whatever it quotes.
  std::string one_line = error;
  for (char& c : one_line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return body + "error: " + one_line + "\n";
}

std::vector<std::string> SplitWords(const std::string& line) {
  std::vector<std::string> words;
  size_t at = 0;
  while (at < line.size()) {
    const size_t start = line.find_first_not_of(" \t", at);
    if (start == std::string::npos) break;
    const size_t end = line.find_first_of(" \t", start);
    words.push_back(line.substr(start, end == std::string::npos ? std::string::npos : end - start));
    at = end == std::string::npos ? line.size() : end;
  }
  return words;
}

std::string ControlHelp() {
  std::string keys;
  for (const auto& k : ImpairmentKeys()) keys += (keys.empty() ? "" : " ") + k;
  return "set FROM TO KEY=VALUE...      change one region direction (FROM, TO: a region or *)\n"
         "set-both A B KEY=VALUE...     change A->B and B->A\n"
         "node NAME blackhole=on|off    drop every datagram from or to one node\n"
         "show                          impairments, counters and the emulator's added error\n"
         "stats                         the same as JSON\n"
         "ports                         FROM TO PORT: FROM's WireGuard endpoint for TO\n"
         "reset                         configured impairments, no node blackholed, counters zero\n"
         "keys: " +
         keys + "  (e.g. delay=35ms jitter=2ms loss=30% reorder=1% blackhole=on rate=100mbit)\n";
}

ControlReply ExecuteControlLine(WanModel& model, const std::string& raw) {
  std::string line = raw;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.size() > kMaxControlLineBytes) return Fail("command longer than 4096 bytes");
  for (unsigned char c : line) {
    if ((c < 0x20 && c != '\t') || c >= 0x7f) return Fail("command holds bytes that are not printable ASCII");
  }
  const std::vector<std::string> words = SplitWords(line);
  if (words.empty()) return Fail("empty command (try help)");
  const std::string& command = words[0];
  const std::vector<std::string> rest(words.begin() + 1, words.end());

  if (command == "set" || command == "set-both") {
    if (rest.size() < 3) return Fail(command + " needs FROM TO KEY=VALUE...");
    const std::vector<std::string> settings(rest.begin() + 2, rest.end());
    return FromStatus(model.Set(rest[0], rest[1], settings, /*both_directions=*/command == "set-both"));
  }
  if (command == "node") {
    if (rest.size() < 2) return Fail("node needs NAME blackhole=on|off");
    return FromStatus(model.SetNode(rest[0], std::vector<std::string>(rest.begin() + 1, rest.end())));
  }
  if (command == "show" || command == "stats" || command == "ports" || command == "reset" ||
      command == "help") {
    if (!rest.empty()) return Fail(command + " takes no arguments, got '" + rest[0] + "'");
    if (command == "show") return Done(model.ShowText());
    if (command == "stats") return Done(model.StatsJson() + "\n");
    if (command == "ports") return Done(model.PortsText());
    if (command == "help") return Done(ControlHelp());
    model.Reset();
    return Done();
  }
  return Fail("unknown command '" + command +
              "' (known: set, set-both, node, show, stats, ports, reset, help)");
}

ReplyEnd ClassifyReplyLine(const std::string& line) {
  if (line == "ok") return ReplyEnd::kOk;
  if (line.rfind("error: ", 0) == 0) return ReplyEnd::kError;
  return ReplyEnd::kNotEnd;
}

}  // namespace regionpulse::wan
