// pulsectl commands: one gRPC call each (watch: one stream), printed as tables with units.
#include "tools/pulsectl/pulsectl.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <utility>
#include <variant>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "common/command_line.h"
#include "common/config_text.h"
#include "common/proto_convert.h"
#include "regionpulse/v1/query.grpc.pb.h"
#include "regionpulse/v1/verdicts.grpc.pb.h"
#include "tools/pulsectl/table.h"
#include "tools/pulsectl/verdict_text.h"

namespace regionpulse::pulsectl {
namespace {

using Align = Table::Align;

constexpr const char* kDefaultServer = "localhost:7700";

struct Options {
  std::string command;
  std::string server;
  std::chrono::nanoseconds timeout = std::chrono::seconds(5);
  std::string ca_file;
  // A client certificate and its key, for an aggregator that authorises readers
  // (tls.read_client_ca_file).
  std::string cert_file;
  std::string key_file;
  std::optional<std::chrono::nanoseconds> window;
  std::string region;
  std::string node;
  std::string name;
  uint32_t limit = 0;
  uint64_t count = 0;  // watch: stop after this many verdicts; 0 = forever
  std::optional<std::chrono::nanoseconds> heartbeat;
  bool show_heartbeats = false;
  bool json = false;  // --output json: the response message as one line of JSON
  bool wide = false;  // every column, not only what fits 80 columns
};

struct UsageError {
  std::string message;
};

std::variant<Options, UsageError> ParseArgs(const std::vector<std::string>& args) {
  Options options;
  const char* env_server = std::getenv("REGIONPULSE_SERVER");
  options.server = env_server && *env_server ? env_server : kDefaultServer;
  CommandLineArgs parsed = ParseFlags(args, {{"--help", false},
                                             {"-h", false},
                                             {"--server"},
                                             {"--timeout"},
                                             {"--ca"},
                                             {"--cert"},
                                             {"--key"},
                                             {"--window"},
                                             {"--heartbeat"},
                                             {"--heartbeats", false},
                                             {"--output"},
                                             {"-o"},
                                             {"--wide", false},
                                             {"--region"},
                                             {"--node"},
                                             {"--name"},
                                             {"--limit"},
                                             {"--count"}});
  auto problem = [&](const std::string& flag, const std::string& what) {
    parsed.problems.push_back({flag, what});
  };
  auto duration = [&](const ParsedFlag& flag, std::optional<std::chrono::nanoseconds>& target) {
    auto value = ParseDuration(flag.value);
    if (!value || value->count() <= 0) {
      return problem(flag.name, "expected a positive duration, e.g. 60s, got '" + flag.value + "'");
    }
    target = *value;
  };
  auto number = [&](const ParsedFlag& flag, uint64_t& target) {
    auto value = ParseWholeNumber(flag.value);
    if (!value || *value > 999'999'999) return problem(flag.name, "needs a whole number below 1000000000");
    target = *value;
  };
  auto text = [&](const ParsedFlag& flag, std::string& target) {
    if (flag.value.empty()) return problem(flag.name, "needs a value");
    target = flag.value;
  };
  for (const ParsedFlag& flag : parsed.flags) {
    if (flag.name == "--help" || flag.name == "-h") {
      options.command = "help";
    } else if (flag.name == "--server") {
      if (auto ok = ParseHostPort(flag.value, false); !ok) {
        problem(flag.name, ok.error().message);
      } else {
        options.server = flag.value;
      }
    } else if (flag.name == "--timeout") {
      std::optional<std::chrono::nanoseconds> timeout;
      duration(flag, timeout);
      if (timeout) options.timeout = *timeout;
    } else if (flag.name == "--ca") {
      text(flag, options.ca_file);
    } else if (flag.name == "--cert") {
      text(flag, options.cert_file);
    } else if (flag.name == "--key") {
      text(flag, options.key_file);
    } else if (flag.name == "--window") {
      duration(flag, options.window);
    } else if (flag.name == "--heartbeat") {
      duration(flag, options.heartbeat);
    } else if (flag.name == "--output" || flag.name == "-o") {
      if (flag.value != "json" && flag.value != "table") {
        problem(flag.name, "expected json or table, got '" + flag.value + "'");
      }
      options.json = flag.value == "json";
    } else if (flag.name == "--heartbeats") {
      options.show_heartbeats = true;
    } else if (flag.name == "--wide") {
      options.wide = true;
    } else if (flag.name == "--region") {
      text(flag, options.region);
    } else if (flag.name == "--node") {
      text(flag, options.node);
    } else if (flag.name == "--name") {
      text(flag, options.name);
    } else if (flag.name == "--limit") {
      uint64_t limit = 0;
      number(flag, limit);
      options.limit = static_cast<uint32_t>(limit);
    } else if (flag.name == "--count") {
      number(flag, options.count);
    }
  }
  // --help wins over a command; otherwise the first positional argument is the command.
  if (options.command != "help" && !parsed.positional.empty()) options.command = parsed.positional[0];
  for (size_t i = 1; i < parsed.positional.size(); ++i) problem(parsed.positional[i], "unexpected argument");
  if (options.cert_file.empty() != options.key_file.empty()) {
    problem(options.cert_file.empty() ? "--key" : "--cert", "needs --cert and --key together");
  } else if (!options.cert_file.empty() && options.ca_file.empty()) {
    problem("--cert", "needs --ca (a client certificate is presented over TLS only)");
  }
  if (!parsed.problems.empty()) return UsageError{parsed.ProblemText()};
  if (options.command.empty()) return UsageError{"no command given"};
  return options;
}

// The file's text; nullopt (and a line on `err` naming `what`) when it cannot be read.
std::optional<std::string> ReadPem(const std::string& path, const char* what, std::ostream& err) {
  std::ifstream in(path);
  if (!in) {
    err << "pulsectl: cannot read " << what << " " << path << "\n";
    return std::nullopt;
  }
  std::stringstream pem;
  pem << in.rdbuf();
  return pem.str();
}

std::shared_ptr<grpc::Channel> Connect(const Options& options, std::ostream& err) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (options.ca_file.empty()) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    auto ca = ReadPem(options.ca_file, "CA file", err);
    if (!ca) return nullptr;
    ssl.pem_root_certs = std::move(*ca);
    if (!options.cert_file.empty()) {
      auto cert = ReadPem(options.cert_file, "client certificate", err);
      auto key = ReadPem(options.key_file, "client key", err);
      if (!cert || !key) return nullptr;
      ssl.pem_cert_chain = std::move(*cert);
      ssl.pem_private_key = std::move(*key);
    }
    credentials = grpc::SslCredentials(ssl);
  }
  return grpc::CreateChannel(options.server, credentials);
}

void SetDeadline(grpc::ClientContext& context, const Options& options) {
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::duration_cast<std::chrono::system_clock::duration>(options.timeout));
}

int CallFailed(const Options& options, const std::string& what, const grpc::Status& status,
               std::ostream& err) {
  err << "pulsectl: " << what << " at " << options.server << " failed: ";
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      err << "aggregator unreachable (" << status.error_message() << ")";
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      err << "no answer within " << FormatSeconds(options.timeout);
      break;
    default:
      err << "gRPC status " << static_cast<int>(status.error_code()) << ": " << status.error_message();
  }
  err << "\n";
  return kExitConnection;
}

uint64_t RefusedTotal(const v1::RefusedProbes& refused) {
  return refused.wrong_key() + refused.stale_timestamp() + refused.rate_limited() + refused.replayed();
}

// The share of a cell's probes lost in a direction nobody can tell, like the other loss
// figures over the probes the target's reflectors did not refuse.
double UnknownLoss(const v1::RegionPairStats& cell) {
  const uint64_t refused = std::min(RefusedTotal(cell.refused()), cell.probes_sent());
  if (cell.probes_sent() == refused) return 0.0;
  return static_cast<double>(cell.lost_direction_unknown()) /
         static_cast<double>(cell.probes_sent() - refused);
}

// Probes the target's reflector received and refused, by reason ("wrong key 98, stale
// timestamp 3"), "-" for none: they reached it, so they are in SENT and in no loss figure. The
// narrow views list them under the table, one line per row that has any.
std::string RefusedCell(const v1::RefusedProbes& refused) {
  std::string out;
  for (const auto& [reason, count] :
       {std::pair{"wrong key", refused.wrong_key()}, std::pair{"stale timestamp", refused.stale_timestamp()},
        std::pair{"rate limited", refused.rate_limited()}, std::pair{"replayed", refused.replayed()}}) {
    if (count == 0) continue;
    if (!out.empty()) out += ", ";
    out += std::string(reason) + " " + std::to_string(count);
  }
  return out.empty() ? "-" : out;
}

// All of a path's or cell's loss in one short cell with its direction ("100% fwd", "6.2% ?",
// "0%"), for the narrow view. Reverse loss is a share of the reflected probes.
std::string LossCell(double forward, double reverse, double unknown, v1::LossDirection direction) {
  const double reflected = std::max(0.0, 1.0 - forward - unknown);
  const double total = std::min(1.0, forward + unknown + reverse * reflected);
  if (total <= 0.0) return "0%";
  const bool directed = direction != v1::LOSS_DIRECTION_NONE && direction != v1::LOSS_DIRECTION_UNSPECIFIED;
  return FormatPercentShort(total) + (directed ? " " + ShortDirection(direction) : "");
}

// What DIR means, under a table that shows loss with a direction.
void PrintDirectionLegend(std::ostream& out) {
  out << "DIR  fwd: probes lost on the way out   rev: replies lost on the way back\n"
         "     ?: the target did not report what it received, so nobody can tell\n";
}

int ExitCodeOf(v1::Action action) {
  switch (action) {
    case v1::ACTION_STAY:
      return kExitOk;
    case v1::ACTION_FAILOVER:
      return kExitFailover;
    default:
      // Unspecified is no advice at all: for a script that is the same as HOLD.
      return kExitHold;
  }
}

// One line of JSON in the proto3 mapping, field names as in the .proto and zeros printed,
// so a script reads every field it knows without guessing defaults.
void PrintJson(const google::protobuf::Message& message, std::ostream& out) {
  google::protobuf::util::JsonPrintOptions print;
  print.preserve_proto_field_names = true;
  print.always_print_primitive_fields = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, print);
  out << json << std::endl;
}

int Status(const Options& options, const std::shared_ptr<grpc::Channel>& channel, std::ostream& out,
           std::ostream& err) {
  auto stub = v1::Verdicts::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(context, options);
  v1::GetVerdictResponse response;
  if (auto status = stub->Get(&context, v1::GetVerdictRequest(), &response); !status.ok()) {
    return CallFailed(options, "Verdicts.Get", status, err);
  }
  if (options.json) {
    PrintJson(response.verdict(), out);
  } else {
    PrintVerdict(response.verdict(), std::chrono::system_clock::now(), out);
  }
  return ExitCodeOf(response.verdict().action());
}

int Matrix(const Options& options, const std::shared_ptr<grpc::Channel>& channel, std::ostream& out,
           std::ostream& err) {
  auto stub = v1::Query::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(context, options);
  v1::GetRegionMatrixRequest request;
  if (options.window) *request.mutable_range()->mutable_window() = ToDuration(*options.window);
  v1::GetRegionMatrixResponse response;
  if (auto status = stub->GetRegionMatrix(&context, request, &response); !status.ok()) {
    return CallFailed(options, "Query.GetRegionMatrix", status, err);
  }
  if (options.json) {
    PrintJson(response, out);
    return kExitOk;
  }
  out << "window " << FormatSeconds(response.window()) << ", computed " << FormatTime(response.computed_at())
      << "\n";
  Table table({{"SOURCE"},
               {"TARGET"},
               {"STATE"},
               {"OBS", Align::kRight},
               {"SENT", Align::kRight, true},
               {"LOSS", Align::kRight},
               {"LOSS FWD", Align::kRight, true},
               {"LOSS REV", Align::kRight, true},
               {"LOSS ?", Align::kRight, true},
               {"DIR", Align::kLeft, true},
               {"RTT P50", Align::kRight},
               {"RTT P99", Align::kRight},
               {"USER P50", Align::kRight, true},
               {"USER P99", Align::kRight, true},
               {"TX", Align::kRight, true},
               {"RX", Align::kRight, true},
               {"RETRANS", Align::kRight, true},
               {"REFUSED", Align::kLeft, true}},
              options.wide);
  for (const auto& cell : response.cells()) {
    table.AddRow({cell.source_region(), cell.target_region(), ShortState(cell.state()),
                  std::to_string(cell.observers()), std::to_string(cell.probes_sent()),
                  LossCell(cell.loss_forward(), cell.loss_reverse(), UnknownLoss(cell), cell.direction()),
                  FormatPercent(cell.loss_forward()), FormatPercent(cell.loss_reverse()),
                  FormatPercent(UnknownLoss(cell)), ShortDirection(cell.direction()),
                  FormatMillis(cell.rtt_p50()), FormatMillis(cell.rtt_p99()),
                  FormatMillis(cell.user_rtt_p50()), FormatMillis(cell.user_rtt_p99()),
                  FormatBytes(cell.tx_bytes()), FormatBytes(cell.rx_bytes()),
                  std::to_string(cell.tcp_retransmits()), RefusedCell(cell.refused())});
  }
  if (table.empty()) {
    out << "no probe results in the window\n";
  } else {
    table.Print(out);
    PrintDirectionLegend(out);
    if (!options.wide) {
      for (const auto& cell : response.cells()) {
        if (RefusedTotal(cell.refused()) == 0) continue;
        out << cell.source_region() << " -> " << cell.target_region()
            << " refused: " << RefusedCell(cell.refused()) << " (not loss)\n";
      }
    }
  }
  return kExitOk;
}

int Paths(const Options& options, const std::shared_ptr<grpc::Channel>& channel, std::ostream& out,
          std::ostream& err) {
  auto stub = v1::Query::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(context, options);
  v1::GetPathsRequest request;
  request.set_region(options.region);
  request.set_node(options.node);
  request.set_limit(options.limit);
  if (options.window) *request.mutable_range()->mutable_window() = ToDuration(*options.window);
  v1::GetPathsResponse response;
  if (auto status = stub->GetPaths(&context, request, &response); !status.ok()) {
    return CallFailed(options, "Query.GetPaths", status, err);
  }
  if (options.json) {
    PrintJson(response, out);
    return kExitOk;
  }
  const auto now = std::chrono::system_clock::now();
  Table table({{"SOURCE"},
               {"FROM", Align::kLeft, true},
               {"TARGET"},
               {"TO", Align::kLeft, true},
               {"SENT", Align::kRight},
               {"LOSS", Align::kRight},
               {"LOSS FWD", Align::kRight, true},
               {"LOSS REV", Align::kRight, true},
               {"LOSS ?", Align::kRight, true},
               {"DIR", Align::kLeft, true},
               {"RTT P50", Align::kRight},
               {"RTT P99", Align::kRight},
               {"USER P99", Align::kRight, true},
               {"JITTER", Align::kRight, true},
               {"DUP", Align::kRight, true},
               {"REORD", Align::kRight, true},
               {"LAST WINDOW", Align::kLeft, true},
               {"REFUSED", Align::kLeft, true}},
              options.wide);
  for (const auto& path : response.paths()) {
    table.AddRow({path.source_node(), path.source_region(), path.target_node(), path.target_region(),
                  std::to_string(path.probes_sent()),
                  LossCell(path.loss_forward(), path.loss_reverse(), path.loss_unknown(), path.direction()),
                  FormatPercent(path.loss_forward()), FormatPercent(path.loss_reverse()),
                  FormatPercent(path.loss_unknown()), ShortDirection(path.direction()),
                  FormatMillis(path.rtt_p50()), FormatMillis(path.rtt_p99()),
                  FormatMillis(path.user_rtt_p99()), FormatMillis(path.jitter()),
                  std::to_string(path.duplicates()), std::to_string(path.reordered()),
                  FormatAge(path.last_window_end(), now), RefusedCell(path.refused())});
  }
  if (table.empty()) {
    out << "no paths match\n";
  } else {
    table.Print(out);
    PrintDirectionLegend(out);
    if (!options.wide) {
      for (const auto& path : response.paths()) {
        if (RefusedTotal(path.refused()) == 0) continue;
        out << path.source_node() << " -> " << path.target_node()
            << " refused: " << RefusedCell(path.refused()) << " (not loss)\n";
      }
    }
  }
  if (response.truncated()) out << "(more paths matched; raise --limit)\n";
  return kExitOk;
}

int Flows(const Options& options, const std::shared_ptr<grpc::Channel>& channel, std::ostream& out,
          std::ostream& err) {
  auto stub = v1::Query::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(context, options);
  v1::GetFlowsRequest request;
  request.set_region(options.region);
  request.set_name(options.name);
  v1::GetFlowsResponse response;
  if (auto status = stub->GetFlows(&context, request, &response); !status.ok()) {
    return CallFailed(options, "Query.GetFlows", status, err);
  }
  if (options.json) {
    PrintJson(response, out);
    return kExitOk;
  }
  Table table({{"NODE"},
               {"REGION", Align::kLeft, true},
               {"FLOW"},
               {"TO"},
               {"RATE", Align::kRight},
               {"MIN RATE", Align::kRight, true},
               {"SRTT", Align::kRight, true},
               {"RETRANS", Align::kRight, true},
               {"AGE", Align::kRight},
               {"UNACKED", Align::kRight},
               {"CONNS", Align::kRight, true},
               {"AT RISK"}},
              options.wide);
  for (const auto& flow : response.flows()) {
    table.AddRow({flow.node(), flow.region(), flow.name(), flow.remote_region(), FormatRate(flow.rate_bps()),
                  flow.expected_min_rate_bps() ? FormatRate(flow.expected_min_rate_bps()) : "-",
                  FormatMillis(flow.srtt()), std::to_string(flow.retransmits()),
                  FormatSeconds(flow.last_progress_age()), FormatBytes(flow.bytes_outstanding()),
                  std::to_string(flow.connections()), flow.at_risk() ? "yes" : "no"});
  }
  if (table.empty()) {
    out << "no replication flows reported\n";
  } else {
    table.Print(out);
  }
  return kExitOk;
}

int Agents(const Options& options, const std::shared_ptr<grpc::Channel>& channel, std::ostream& out,
           std::ostream& err) {
  auto stub = v1::Query::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(context, options);
  v1::ListAgentsRequest request;
  request.set_region(options.region);
  v1::ListAgentsResponse response;
  if (auto status = stub->ListAgents(&context, request, &response); !status.ok()) {
    return CallFailed(options, "Query.ListAgents", status, err);
  }
  if (options.json) {
    PrintJson(response, out);
    return kExitOk;
  }
  const auto now = std::chrono::system_clock::now();
  Table table({{"NODE"},
               {"REGION"},
               {"ZONE"},
               {"STATE"},
               {"LAST REPORT"},
               {"SEQUENCE", Align::kRight},
               {"CLOCK SKEW", Align::kRight},
               {"LATE", Align::kRight},
               {"PLAN", Align::kRight},
               {"KERNEL STAMPS"},
               {"VERSION"}});
  uint32_t reporting = 0;
  for (const auto& agent : response.agents()) {
    const bool up = agent.state() == v1::AGENT_STATE_REPORTING;
    reporting += up ? 1 : 0;
    table.AddRow({agent.node(), agent.region(), agent.zone(), up ? "reporting" : "NOT REPORTING",
                  FormatAge(agent.last_report_at(), now), std::to_string(agent.last_sequence()),
                  // Receive time - window end: the agent's clock against ours, plus delays.
                  agent.has_clock_skew() ? FormatSeconds(agent.clock_skew()) : "-",
                  std::to_string(agent.late_windows()), std::to_string(agent.plan_version()),
                  agent.capabilities().kernel_stamps() ? "yes" : "no", agent.agent_version()});
  }
  if (table.empty()) {
    out << "no agents known\n";
  } else {
    table.Print(out);
    out << reporting << " of " << response.agents_size() << " agents reporting\n";
    // Probes refused for their key are not network loss: say so where the operator looks.
    for (const auto& agent : response.agents()) {
      if (agent.probes_refused_wrong_key() == 0) continue;
      out << agent.node() << ": refused: wrong key, " << agent.probes_refused_wrong_key()
          << " probes since start (senders sign with a key this node does not hold: a key rotation "
             "out of step, not loss)\n";
    }
  }
  return kExitOk;
}

int History(const Options& options, const std::shared_ptr<grpc::Channel>& channel, std::ostream& out,
            std::ostream& err) {
  auto stub = v1::Query::NewStub(channel);
  grpc::ClientContext context;
  SetDeadline(context, options);
  v1::GetVerdictHistoryRequest request;
  request.set_limit(options.limit);
  if (options.window) {
    *request.mutable_since() =
        ToTimestamp(std::chrono::system_clock::now() -
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(*options.window));
  }
  v1::GetVerdictHistoryResponse response;
  if (auto status = stub->GetVerdictHistory(&context, request, &response); !status.ok()) {
    return CallFailed(options, "Query.GetVerdictHistory", status, err);
  }
  if (options.json) {
    PrintJson(response, out);
    return kExitOk;
  }
  if (response.transitions_size() == 0) {
    out << "no verdict transitions recorded\n";
    return kExitOk;
  }
  for (const auto& transition : response.transitions()) {
    const auto& verdict = transition.verdict();
    out << FormatTime(verdict.computed_at()) << "  generation " << verdict.generation() << "  "
        << (transition.previous_action() == v1::ACTION_UNSPECIFIED ? std::string("(start)")
                                                                   : ActionName(transition.previous_action()))
        << " -> " << ActionWithTarget(verdict) << "\n";
    for (const auto& change : transition.changes()) out << "    change: " << change << "\n";
    for (const auto& reason : verdict.reasons()) out << "    reason: " << reason << "\n";
  }
  return kExitOk;
}

int Watch(const Options& options, const std::shared_ptr<grpc::Channel>& channel, std::ostream& out,
          std::ostream& err) {
  auto stub = v1::Verdicts::NewStub(channel);
  grpc::ClientContext context;
  v1::WatchVerdictsRequest request;
  if (options.heartbeat) *request.mutable_heartbeat_interval() = ToDuration(*options.heartbeat);
  // Only the connection gets the timeout; the stream itself runs until stopped.
  if (!channel->WaitForConnected(
          std::chrono::system_clock::now() +
          std::chrono::duration_cast<std::chrono::system_clock::duration>(options.timeout))) {
    return CallFailed(options, "Verdicts.Watch", grpc::Status(grpc::StatusCode::UNAVAILABLE, "no connection"),
                      err);
  }
  auto reader = stub->Watch(&context, request);
  v1::WatchVerdictsResponse response;
  uint64_t shown = 0;
  while (reader->Read(&response)) {
    if (response.heartbeat() && !options.show_heartbeats) continue;
    const auto& verdict = response.verdict();
    if (options.json) {
      PrintJson(response, out);
    } else {
      out << FormatTime(verdict.computed_at()) << "  generation " << verdict.generation() << "  "
          << ActionWithTarget(verdict) << (response.heartbeat() ? "  (heartbeat)" : "");
      for (const auto& reason : verdict.reasons()) out << "  | " << reason;
      out << std::endl;
    }
    if (options.count > 0 && ++shown >= options.count) {
      context.TryCancel();
      reader->Finish();
      return kExitOk;
    }
  }
  const grpc::Status status = reader->Finish();
  if (!status.ok()) return CallFailed(options, "Verdicts.Watch", status, err);
  err << "pulsectl: the aggregator ended the Watch stream\n";
  return kExitConnection;
}

}  // namespace

std::string Usage() {
  return R"(usage: pulsectl [--server HOST:PORT] [--timeout DURATION] [--ca FILE [--cert FILE --key FILE]]
                COMMAND [OPTIONS]

commands:
  status                 the current verdict: action, every region's state and evidence, reasons
  matrix   [--window D]  region x region probe results (loss, RTT percentiles, traffic)
  paths    [--region R] [--node N] [--limit K] [--window D]
                         node-to-node probe paths, worst loss first
  flows    [--region R] [--name F]
                         replication flows: rate, staleness, at risk
  agents   [--region R]  every agent, reporting or not
  history  [--limit K] [--window D]
                         verdict transitions, newest first, with their reasons
  watch    [--count N] [--heartbeat D] [--heartbeats]
                         every verdict change as it happens; stops after N verdicts

options:
  --server HOST:PORT     aggregator gRPC address (default $REGIONPULSE_SERVER or localhost:7700)
  --timeout DURATION     how long to wait for an answer, e.g. 5s (default 5s)
  --ca FILE              use TLS and trust this CA (PEM); plaintext without it
  --cert FILE --key FILE present this client certificate (PEM), e.g. one issued by the
                         aggregator's tls.read_client_ca_file; needs --ca
  --output json          print the response as one line of JSON (the proto3 JSON mapping,
                         .proto field names); exit codes as above
  --wide                 matrix, paths, flows: every column (loss by direction, user-space
                         RTT, traffic, ...); by default the tables fit 80 columns

durations carry a unit: 500ms, 60s, 5m, 1h.

exit codes:
  0  success; for status: the verdict is STAY
  1  usage error
  2  the aggregator could not be reached, or the call failed
  3  status: the verdict is FAILOVER
  4  status: the verdict is HOLD (no action; not enough evidence)
)";
}

int Run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  auto parsed = ParseArgs(args);
  if (auto* problem = std::get_if<UsageError>(&parsed)) {
    err << "pulsectl: " << problem->message << "\n" << Usage();
    return kExitUsage;
  }
  const Options& options = std::get<Options>(parsed);
  if (options.command == "help") {
    out << Usage();
    return kExitOk;
  }
  using Command =
      int (*)(const Options&, const std::shared_ptr<grpc::Channel>&, std::ostream&, std::ostream&);
  static const std::map<std::string, Command> kCommands = {
      {"status", Status}, {"matrix", Matrix},   {"paths", Paths}, {"flows", Flows},
      {"agents", Agents}, {"history", History}, {"watch", Watch}};
  const auto command = kCommands.find(options.command);
  if (command == kCommands.end()) {
    err << "pulsectl: unknown command '" << options.command << "'\n" << Usage();
    return kExitUsage;
  }
  auto channel = Connect(options, err);
  if (!channel) return kExitUsage;
  return command->second(options, channel, out, err);
}

}  // namespace regionpulse::pulsectl
