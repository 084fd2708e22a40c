// The WAN emulator's state and decisions: impairments per region direction, node
// blackholes, per link direction admission, counters and the added-error histograms.
#include "tools/wan_emulator/wan_model.h"

#include <algorithm>
#include <cstdio>

namespace regionpulse::wan {
namespace {

// Left-aligned text columns, right-aligned figures; two spaces between columns.
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void AddRow(std::vector<std::string> cells) {
    cells.resize(headers_.size());
    rows_.push_back(std::move(cells));
  }
  // Columns before `first_figure` are text, the rest are figures.
  std::string Render(size_t first_figure) const {
    std::vector<size_t> widths;
    for (const auto& h : headers_) widths.push_back(h.size());
    for (const auto& row : rows_) {
      for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
    }
    std::string out;
    auto line = [&](const std::vector<std::string>& cells) {
      std::string text;
      for (size_t i = 0; i < cells.size(); ++i) {
        const std::string padding(widths[i] - cells[i].size(), ' ');
        if (i > 0) text += "  ";
        text += i < first_figure ? cells[i] + padding : padding + cells[i];
      }
      while (!text.empty() && text.back() == ' ') text.pop_back();
      out += text + "\n";
    };
    line(headers_);
    for (const auto& row : rows_) line(row);
    return out;
  }

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// Errors are tens of microseconds when all is well and milliseconds under load.
std::string FormatError(std::optional<uint64_t> ns) {
  if (!ns) return "-";
  char text[32];
  if (*ns < 1'000'000) {
    std::snprintf(text, sizeof(text), "%.0f us", static_cast<double>(*ns) / 1e3);
  } else {
    std::snprintf(text, sizeof(text), "%.2f ms", static_cast<double>(*ns) / 1e6);
  }
  return text;
}

std::string HistogramJson(const LatencyHistogram& h) {
  auto value = [](std::optional<uint64_t> v) { return v ? std::to_string(*v) : std::string("null"); };
  return "{\"count\":" + std::to_string(h.Count()) + ",\"p50\":" + value(h.Percentile(0.5)) +
         ",\"p99\":" + value(h.Percentile(0.99)) +
         ",\"max\":" + (h.Empty() ? "null" : std::to_string(h.MaxNs())) + "}";
}

std::string CountersJson(const DirectionCounters& c) {
  return "{\"forwarded\":" + std::to_string(c.forwarded) +
         ",\"forwarded_bytes\":" + std::to_string(c.forwarded_bytes) +
         ",\"dropped_loss\":" + std::to_string(c.dropped_loss) +
         ",\"dropped_blackhole\":" + std::to_string(c.dropped_blackhole) +
         ",\"dropped_queue_full\":" + std::to_string(c.dropped_queue_full) +
         ",\"dropped_foreign\":" + std::to_string(c.dropped_foreign) +
         ",\"dropped_oversize\":" + std::to_string(c.dropped_oversize) +
         ",\"send_errors\":" + std::to_string(c.send_errors) +
         ",\"reordered\":" + std::to_string(c.reordered) + "}";
}

std::string ImpairmentJson(const Impairment& i) {
  char ratios[96];
  std::snprintf(ratios, sizeof(ratios), "\"loss\":%.9g,\"reorder\":%.9g", i.loss, i.reorder);
  return "{\"delay_ns\":" + std::to_string(i.delay.count()) +
         ",\"jitter_ns\":" + std::to_string(i.jitter.count()) + "," + ratios +
         ",\"reorder_hold_ns\":" + std::to_string(i.reorder_hold.count()) +
         ",\"blackhole\":" + (i.blackhole ? "true" : "false") +
         ",\"rate_bps\":" + std::to_string(i.rate_bps) + "}";
}

}  // namespace

void DirectionCounters::Add(const DirectionCounters& o) {
  forwarded += o.forwarded;
  forwarded_bytes += o.forwarded_bytes;
  dropped_loss += o.dropped_loss;
  dropped_blackhole += o.dropped_blackhole;
  dropped_queue_full += o.dropped_queue_full;
  dropped_foreign += o.dropped_foreign;
  dropped_oversize += o.dropped_oversize;
  send_errors += o.send_errors;
  reordered += o.reordered;
}

WanModel::WanModel(WanConfig config, uint64_t seed)
    : config_(std::move(config)),
      rng_(seed),
      impairments_(config_.regions.size() * config_.regions.size()),
      node_blackholed_(config_.nodes.size(), false) {
  for (const auto& link : config_.links) {
    LinkDirectionState a_to_b;
    a_to_b.from = link.a;
    a_to_b.to = link.b;
    a_to_b.in_port = link.port_for_a;
    LinkDirectionState b_to_a;
    b_to_a.from = link.b;
    b_to_a.to = link.a;
    b_to_a.in_port = link.port_for_b;
    directions_.push_back(std::move(a_to_b));
    directions_.push_back(std::move(b_to_a));
  }
  for (const auto& [pair, impairment] : config_.impairments) {
    impairments_[pair.first * config_.regions.size() + pair.second] = impairment;
  }
}

size_t WanModel::RegionOf(size_t node) const {
  return *config_.RegionIndex(config_.nodes[node].region);
}

const Impairment& WanModel::RegionImpairment(size_t from_region, size_t to_region) const {
  return impairments_[from_region * config_.regions.size() + to_region];
}

std::optional<size_t> WanModel::DirectionBetween(const std::string& from, const std::string& to) const {
  for (size_t i = 0; i < directions_.size(); ++i) {
    if (config_.nodes[directions_[i].from].name == from && config_.nodes[directions_[i].to].name == to)
      return i;
  }
  return std::nullopt;
}

AdmitResult WanModel::Admit(size_t direction, size_t bytes, MonoTime received) {
  LinkDirectionState& d = directions_[direction];
  const Impairment& impairment = RegionImpairment(RegionOf(d.from), RegionOf(d.to));
  const bool node_blackholed = node_blackholed_[d.from] || node_blackholed_[d.to];
  // Blackhole first: a blackholed direction's drops are counted as such even when its queue
  // (still draining datagrams in flight) is full.
  if (impairment.blackhole || node_blackholed) {
    ++d.counters.dropped_blackhole;
    return {Admission::kDropBlackhole, {}};
  }
  // The bound before the impairment, so a refused datagram does not occupy the rate limiter.
  if (d.queued_packets >= config_.max_queued_packets || d.queued_bytes + bytes > config_.max_queued_bytes) {
    ++d.counters.dropped_queue_full;
    return {Admission::kDropQueueFull, {}};
  }
  const Decision decision = d.impairment_state.Decide(impairment, node_blackholed, bytes, received, rng_);
  switch (decision.fate) {
    case Fate::kDropLoss:
      ++d.counters.dropped_loss;
      return {Admission::kDropLoss, {}};
    case Fate::kDropBlackhole:
      ++d.counters.dropped_blackhole;
      return {Admission::kDropBlackhole, {}};
    case Fate::kDeliver:
      break;
  }
  if (decision.reordered) ++d.counters.reordered;
  ++d.queued_packets;
  d.queued_bytes += bytes;
  return {Admission::kDeliver, decision.deliver_at};
}

void WanModel::Sent(size_t direction, size_t bytes, MonoTime intended, MonoTime sent) {
  LinkDirectionState& d = directions_[direction];
  --d.queued_packets;
  d.queued_bytes -= bytes;
  ++d.counters.forwarded;
  d.counters.forwarded_bytes += bytes;
  d.send_error.Record(static_cast<uint64_t>(std::max<int64_t>(0, (sent - intended).count())));
}

void WanModel::SendFailed(size_t direction, size_t bytes) {
  LinkDirectionState& d = directions_[direction];
  --d.queued_packets;
  d.queued_bytes -= bytes;
  ++d.counters.send_errors;
}

void WanModel::Discarded(size_t direction, size_t bytes) {
  LinkDirectionState& d = directions_[direction];
  --d.queued_packets;
  d.queued_bytes -= bytes;
}

void WanModel::RecordReceiveLag(Nanos lag) {
  receive_lag_.Record(static_cast<uint64_t>(std::max<int64_t>(0, lag.count())));
}

Result<std::vector<size_t>> WanModel::Regions(const std::string& name) const {
  if (name == "*") {
    std::vector<size_t> all(config_.regions.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    return all;
  }
  auto index = config_.RegionIndex(name);
  if (!index) {
    std::string known;
    for (const auto& r : config_.regions) known += (known.empty() ? "" : ", ") + r;
    return Error{"unknown region '" + name + "' (known: " + known + ", or * for all)"};
  }
  return std::vector<size_t>{*index};
}

Status WanModel::Set(const std::string& from, const std::string& to, const std::vector<std::string>& settings,
                     bool both_directions) {
  if (settings.empty()) return Error{"nothing to set: give key=value settings"};
  auto from_regions = Regions(from);
  if (!from_regions) return from_regions.error();
  auto to_regions = Regions(to);
  if (!to_regions) return to_regions.error();
  // Every direction is computed before any changes, so a bad setting changes nothing.
  std::vector<std::pair<size_t, Impairment>> changed;
  for (size_t f : *from_regions) {
    for (size_t t : *to_regions) {
      Impairment impairment = RegionImpairment(f, t);
      if (auto ok = ApplyImpairmentSettings(impairment, settings); !ok) return ok;
      changed.emplace_back(f * config_.regions.size() + t, impairment);
      if (both_directions) {
        Impairment reverse = RegionImpairment(t, f);
        if (auto ok = ApplyImpairmentSettings(reverse, settings); !ok) return ok;
        changed.emplace_back(t * config_.regions.size() + f, reverse);
      }
    }
  }
  for (const auto& [index, impairment] : changed) impairments_[index] = impairment;
  return OkStatus();
}

Status WanModel::SetNode(const std::string& node, const std::vector<std::string>& settings) {
  auto index = config_.NodeIndex(node);
  if (!index) return Error{"unknown node '" + node + "'"};
  if (settings.empty()) return Error{"nothing to set: give blackhole=on or blackhole=off"};
  bool blackholed = node_blackholed_[*index];
  for (const auto& word : settings) {
    if (word == "blackhole=on" || word == "blackhole=true") {
      blackholed = true;
    } else if (word == "blackhole=off" || word == "blackhole=false") {
      blackholed = false;
    } else {
      return Error{"a node takes only blackhole=on or blackhole=off, got '" + word + "'"};
    }
  }
  node_blackholed_[*index] = blackholed;
  return OkStatus();
}

void WanModel::Reset() {
  std::fill(impairments_.begin(), impairments_.end(), Impairment{});
  for (const auto& [pair, impairment] : config_.impairments) {
    impairments_[pair.first * config_.regions.size() + pair.second] = impairment;
  }
  std::fill(node_blackholed_.begin(), node_blackholed_.end(), false);
  for (auto& d : directions_) {
    d.counters = DirectionCounters{};
    d.send_error.Clear();
  }
  receive_lag_.Clear();
}

std::string WanModel::ShowText() const {
  const size_t region_count = config_.regions.size();
  // Region directions that carry a link, or that have an impairment set.
  std::vector<DirectionCounters> region_counters(region_count * region_count);
  std::vector<LatencyHistogram> region_errors(region_count * region_count);
  std::vector<bool> carries(region_count * region_count, false);
  for (const auto& d : directions_) {
    const size_t index = RegionOf(d.from) * region_count + RegionOf(d.to);
    region_counters[index].Add(d.counters);
    region_errors[index].Merge(d.send_error);
    carries[index] = true;
  }
  TextTable regions({"FROM", "TO", "DELAY", "JITTER", "LOSS", "REORDER", "RATE", "BLACKHOLE", "FORWARDED",
                     "BYTES", "LOSS-DROP", "BLACKHOLE-DROP", "QUEUE-DROP", "ERR-P50", "ERR-P99", "ERR-MAX"});
  for (size_t f = 0; f < region_count; ++f) {
    for (size_t t = 0; t < region_count; ++t) {
      const size_t index = f * region_count + t;
      const Impairment& i = impairments_[index];
      if (!carries[index] && i == Impairment{}) continue;
      const DirectionCounters& c = region_counters[index];
      const LatencyHistogram& e = region_errors[index];
      regions.AddRow({config_.regions[f], config_.regions[t], FormatDurationShort(i.delay),
                      FormatDurationShort(i.jitter), FormatPercentShort(i.loss),
                      FormatPercentShort(i.reorder), FormatRateShort(i.rate_bps), i.blackhole ? "on" : "off",
                      std::to_string(c.forwarded), std::to_string(c.forwarded_bytes),
                      std::to_string(c.dropped_loss), std::to_string(c.dropped_blackhole),
                      std::to_string(c.dropped_queue_full), FormatError(e.Percentile(0.5)),
                      FormatError(e.Percentile(0.99)),
                      FormatError(e.Empty() ? std::nullopt : std::optional<uint64_t>(e.MaxNs()))});
    }
  }
  std::string blackholed;
  for (size_t n = 0; n < config_.nodes.size(); ++n) {
    if (node_blackholed_[n]) blackholed += (blackholed.empty() ? "" : " ") + config_.nodes[n].name;
  }
  TextTable links({"FROM", "TO", "PORT", "FORWARDED", "BYTES", "LOSS-DROP", "BLACKHOLE-DROP", "QUEUE-DROP",
                   "FOREIGN", "OVERSIZE", "SEND-ERR", "REORDERED", "QUEUED", "ERR-P50", "ERR-P99",
                   "ERR-MAX"});
  for (const auto& d : directions_) {
    const DirectionCounters& c = d.counters;
    links.AddRow(
        {config_.nodes[d.from].name, config_.nodes[d.to].name, std::to_string(d.in_port),
         std::to_string(c.forwarded), std::to_string(c.forwarded_bytes), std::to_string(c.dropped_loss),
         std::to_string(c.dropped_blackhole), std::to_string(c.dropped_queue_full),
         std::to_string(c.dropped_foreign), std::to_string(c.dropped_oversize), std::to_string(c.send_errors),
         std::to_string(c.reordered), std::to_string(d.queued_packets),
         FormatError(d.send_error.Percentile(0.5)), FormatError(d.send_error.Percentile(0.99)),
         FormatError(d.send_error.Empty() ? std::nullopt : std::optional<uint64_t>(d.send_error.MaxNs()))});
  }
  std::string out =
      "region directions (impairment now; counters and ERR = actual - intended send time since start or "
      "reset)\n";
  out += regions.Render(2);
  out += "\nnodes blackholed: " + (blackholed.empty() ? std::string("none") : blackholed) + "\n";
  out += "\nlink directions (PORT: where FROM sends; it reaches TO from the reverse direction's port)\n";
  out += links.Render(2);
  out += "\nreceive lag (kernel receive stamp to read by the emulator): p50 " +
         FormatError(receive_lag_.Percentile(0.5)) + ", p99 " + FormatError(receive_lag_.Percentile(0.99)) +
         ", max " +
         FormatError(receive_lag_.Empty() ? std::nullopt : std::optional<uint64_t>(receive_lag_.MaxNs())) +
         ", " + std::to_string(receive_lag_.Count()) + " datagrams\n";
  return out;
}

std::string WanModel::StatsJson() const {
  const size_t region_count = config_.regions.size();
  std::string out = "{\"regions\":[";
  bool first = true;
  for (size_t f = 0; f < region_count; ++f) {
    for (size_t t = 0; t < region_count; ++t) {
      DirectionCounters counters;
      LatencyHistogram errors;
      bool carries = false;
      for (const auto& d : directions_) {
        if (RegionOf(d.from) != f || RegionOf(d.to) != t) continue;
        counters.Add(d.counters);
        errors.Merge(d.send_error);
        carries = true;
      }
      const Impairment& i = RegionImpairment(f, t);
      if (!carries && i == Impairment{}) continue;
      out += std::string(first ? "" : ",") + "{\"from\":\"" + config_.regions[f] + "\",\"to\":\"" +
             config_.regions[t] + "\",\"impairment\":" + ImpairmentJson(i) +
             ",\"counters\":" + CountersJson(counters) + ",\"send_error_ns\":" + HistogramJson(errors) + "}";
      first = false;
    }
  }
  out += "],\"links\":[";
  for (size_t k = 0; k < directions_.size(); ++k) {
    const auto& d = directions_[k];
    out += std::string(k ? "," : "") + "{\"from\":\"" + config_.nodes[d.from].name + "\",\"to\":\"" +
           config_.nodes[d.to].name + "\",\"port\":" + std::to_string(d.in_port) +
           ",\"queued_packets\":" + std::to_string(d.queued_packets) +
           ",\"counters\":" + CountersJson(d.counters) + ",\"send_error_ns\":" + HistogramJson(d.send_error) +
           "}";
  }
  out += "],\"nodes_blackholed\":[";
  first = true;
  for (size_t n = 0; n < config_.nodes.size(); ++n) {
    if (!node_blackholed_[n]) continue;
    out += std::string(first ? "" : ",") + "\"" + config_.nodes[n].name + "\"";
    first = false;
  }
  out += "],\"receive_lag_ns\":" + HistogramJson(receive_lag_) + "}";
  return out;
}

std::string WanModel::PortsText() const {
  // One line per ordered pair: FROM's WireGuard endpoint for TO is listen_address:PORT.
  std::string out;
  for (const auto& d : directions_) {
    out +=
        config_.nodes[d.from].name + " " + config_.nodes[d.to].name + " " + std::to_string(d.in_port) + "\n";
  }
  return out;
}

}  // namespace regionpulse::wan
