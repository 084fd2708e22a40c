// Per-datagram impairment decisions and the text form of impairment settings.
#include "tools/wan_emulator/link_impairment.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/config_text.h"

namespace regionpulse::wan {
namespace {

Error SettingError(const std::string& key, const std::string& value, const std::string& problem) {
  return Error{key + "=" + value + ": " + problem};
}

Result<Nanos> ParseBoundedDuration(const std::string& key, const std::string& value) {
  if (value == "0") return Nanos{0};
  auto parsed = ParseDuration(value);
  if (!parsed) return SettingError(key, value, parsed.error().message);
  if (*parsed > kMaxDelay) return SettingError(key, value, "longer than the 10s limit");
  return *parsed;
}

Result<double> ParsePercent(const std::string& key, const std::string& value) {
  if (value.empty() || value.back() != '%') {
    return SettingError(key, value, "expected a percentage with its % sign, e.g. 30% or 0.5%");
  }
  const std::string number = value.substr(0, value.size() - 1);
  // Digits and at most one dot only: stod would also take "inf", "nan", hex and signs.
  const bool well_formed = !number.empty() && number.find_first_not_of("0123456789.") == std::string::npos &&
                           std::count(number.begin(), number.end(), '.') <= 1 && number != ".";
  if (!well_formed) return SettingError(key, value, "expected a percentage such as 30% or 0.5%");
  const double percent = std::stod(number);
  if (percent > 100) return SettingError(key, value, "a percentage above 100%");
  return percent / 100.0;
}

Result<bool> ParseOnOff(const std::string& key, const std::string& value) {
  if (value == "on" || value == "true") return true;
  if (value == "off" || value == "false") return false;
  return SettingError(key, value, "expected on or off");
}

Result<uint64_t> ParseRate(const std::string& key, const std::string& value) {
  if (value == "0" || value == "off") return uint64_t{0};
  static const std::vector<std::pair<std::string, uint64_t>> kUnits = {
      {"gbit", 1'000'000'000}, {"mbit", 1'000'000}, {"kbit", 1'000}, {"bit", 1}};
  const size_t unit_at = value.find_first_not_of("0123456789");
  const std::string number = value.substr(0, unit_at);
  const std::string unit = unit_at == std::string::npos ? "" : value.substr(unit_at);
  if (!number.empty() && number.size() <= 6) {
    for (const auto& [name, factor] : kUnits) {
      if (unit == name) {
        const uint64_t bps = std::stoull(number) * factor;
        // Below 8 kbit/s one full-size datagram would take over a minute to leave.
        if (bps < 8'000) return SettingError(key, value, "below the 8kbit lower bound");
        return bps;
      }
    }
  }
  return SettingError(key, value, "expected a whole number with bit, kbit, mbit or gbit (or off)");
}

// The shortest decimal text that reads back as the same value: 35ms, 1.5ms, 250us, 0.
std::string DurationText(Nanos value) {
  const int64_t ns = value.count();
  if (ns == 0) return "0";
  if (ns % 1'000'000'000 == 0) return std::to_string(ns / 1'000'000'000) + "s";
  if (ns % 1'000'000 == 0) return std::to_string(ns / 1'000'000) + "ms";
  if (ns % 1'000 == 0) return std::to_string(ns / 1'000) + "us";
  return std::to_string(ns) + "ns";
}

std::string PercentText(double ratio) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.6g%%", ratio * 100.0);
  return text;
}

std::string RateText(uint64_t bps) {
  if (bps == 0) return "off";
  if (bps % 1'000'000'000 == 0) return std::to_string(bps / 1'000'000'000) + "gbit";
  if (bps % 1'000'000 == 0) return std::to_string(bps / 1'000'000) + "mbit";
  if (bps % 1'000 == 0) return std::to_string(bps / 1'000) + "kbit";
  return std::to_string(bps) + "bit";
}

}  // namespace

const std::vector<std::string>& ImpairmentKeys() {
  static const std::vector<std::string> kKeys = {"delay",        "jitter",    "loss", "reorder",
                                                 "reorder_hold", "blackhole", "rate"};
  return kKeys;
}

Status ApplyImpairmentSetting(Impairment& impairment, const std::string& key, const std::string& value) {
  if (key == "delay" || key == "jitter" || key == "reorder_hold") {
    auto parsed = ParseBoundedDuration(key, value);
    if (!parsed) return parsed.error();
    (key == "delay"    ? impairment.delay
     : key == "jitter" ? impairment.jitter
                       : impairment.reorder_hold) = *parsed;
    return OkStatus();
  }
  if (key == "loss" || key == "reorder") {
    auto parsed = ParsePercent(key, value);
    if (!parsed) return parsed.error();
    (key == "loss" ? impairment.loss : impairment.reorder) = *parsed;
    return OkStatus();
  }
  if (key == "blackhole") {
    auto parsed = ParseOnOff(key, value);
    if (!parsed) return parsed.error();
    impairment.blackhole = *parsed;
    return OkStatus();
  }
  if (key == "rate") {
    auto parsed = ParseRate(key, value);
    if (!parsed) return parsed.error();
    impairment.rate_bps = *parsed;
    return OkStatus();
  }
  std::string known;
  for (const auto& k : ImpairmentKeys()) known += (known.empty() ? "" : ", ") + k;
  return Error{"unknown impairment '" + key + "' (known: " + known + ")"};
}

Status ApplyImpairmentSettings(Impairment& impairment, const std::vector<std::string>& words) {
  Impairment changed = impairment;
  for (const auto& word : words) {
    const size_t equals = word.find('=');
    if (equals == std::string::npos || equals == 0) {
      return Error{"expected key=value, got '" + word + "'"};
    }
    if (auto ok = ApplyImpairmentSetting(changed, word.substr(0, equals), word.substr(equals + 1)); !ok)
      return ok;
  }
  impairment = changed;
  return OkStatus();
}

std::string FormatImpairment(const Impairment& impairment) {
  return "delay=" + DurationText(impairment.delay) + " jitter=" + DurationText(impairment.jitter) +
         " loss=" + PercentText(impairment.loss) + " reorder=" + PercentText(impairment.reorder) +
         " reorder_hold=" + DurationText(impairment.reorder_hold) +
         " blackhole=" + (impairment.blackhole ? "on" : "off") + " rate=" + RateText(impairment.rate_bps);
}

std::string FormatDurationShort(Nanos value) {
  char text[32];
  const double ms = static_cast<double>(value.count()) / 1e6;
  if (value.count() == 0) return "0";
  if (ms >= 100 || std::fmod(ms, 1.0) == 0) {
    std::snprintf(text, sizeof(text), "%.0f ms", ms);
  } else if (ms >= 1) {
    std::snprintf(text, sizeof(text), "%.2f ms", ms);
  } else {
    std::snprintf(text, sizeof(text), "%.3f ms", ms);
  }
  return text;
}

std::string FormatPercentShort(double ratio) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.4g %%", ratio * 100.0);
  return text;
}

std::string FormatRateShort(uint64_t bps) {
  if (bps == 0) return "-";
  char text[32];
  if (bps >= 1'000'000'000) {
    std::snprintf(text, sizeof(text), "%.4g Gbit/s", static_cast<double>(bps) / 1e9);
  } else if (bps >= 1'000'000) {
    std::snprintf(text, sizeof(text), "%.4g Mbit/s", static_cast<double>(bps) / 1e6);
  } else {
    std::snprintf(text, sizeof(text), "%.4g kbit/s", static_cast<double>(bps) / 1e3);
  }
  return text;
}

Decision LinkDirection::Decide(const Impairment& impairment, bool node_blackholed, size_t bytes,
                               MonoTime received, Rng& rng) {
  Decision decision;
  if (impairment.blackhole || node_blackholed) {
    decision.fate = Fate::kDropBlackhole;
    return decision;
  }
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  if (impairment.loss > 0 && unit(rng) < impairment.loss) {
    decision.fate = Fate::kDropLoss;
    return decision;
  }
  MonoTime departure = received;
  if (impairment.rate_bps > 0) {
    // A serialising link: this datagram starts when the previous one has left.
    const MonoTime start = std::max(received, link_free_at_);
    const auto serialisation =
        Nanos(static_cast<int64_t>(bytes) * 8 * 1'000'000'000 / static_cast<int64_t>(impairment.rate_bps));
    link_free_at_ = start + serialisation;
    departure = link_free_at_;
  }
  Nanos delay = impairment.delay;
  if (impairment.jitter.count() > 0) {
    std::uniform_int_distribution<int64_t> spread(-impairment.jitter.count(), impairment.jitter.count());
    delay = std::max(Nanos{0}, delay + Nanos(spread(rng)));
  }
  MonoTime deliver_at = departure + delay;
  if (impairment.reorder > 0 && unit(rng) < impairment.reorder) {
    // Held back without moving the order floor: the datagrams behind it may now pass it.
    decision.deliver_at = deliver_at + impairment.reorder_hold;
    decision.reordered = true;
    return decision;
  }
  deliver_at = std::max(deliver_at, last_ordinary_delivery_);
  last_ordinary_delivery_ = deliver_at;
  decision.deliver_at = deliver_at;
  return decision;
}

}  // namespace regionpulse::wan
