// The one reader of YAML configuration for every regionpulse program. A document is read key by
// key into typed values, and every problem is collected with its full key
// ("thresholds.degraded_loss: 1.5 is outside 0..1") so an operator sees them all at once.
// The dialect — YAML 1.2 core booleans, durations, sizes and rates with units, HOST:PORT,
// unknown keys refused — is described in docs/configuration.md. Nothing here throws: a value
// that cannot be read is a problem naming its key.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/config_text.h"
#include "common/result.h"

namespace regionpulse {

// Every problem found in one configuration, each "key: problem", in the order found.
class ConfigProblems {
 public:
  void Add(const std::string& key, const std::string& problem) { list_.push_back(key + ": " + problem); }
  bool empty() const { return list_.empty(); }
  const std::vector<std::string>& list() const { return list_; }
  // "invalid configuration:" and then one indented line per problem.
  Error ToError() const;

 private:
  std::vector<std::string> list_;
};

// Parses YAML text. A syntax error, or a document nested deeper than the parser allows, is one
// error "config: line L, column C: not valid YAML (...)". An empty document is an empty map.
Result<YAML::Node> LoadConfigDocument(const std::string& text);

// How a value that is not what a key wants is shown in a message: the scalar in quotes, or
// "a list", "a mapping", "an empty value".
std::string DescribeValue(const YAML::Node& value);

// One mapping of the document and typed reads of its keys. Each read leaves *out alone and
// returns false when the key is absent (its default stays) or when its value is wrong (the
// problem is recorded under the full key); it returns true when *out was set.
class ConfigSection {
 public:
  // `node` is the mapping at `path` ("" for the top level, "probe", "regions[0]"). Keys not in
  // `known` are problems that list the known ones; a node that is not a mapping is one
  // problem; a missing or empty node is an empty section.
  ConfigSection(const YAML::Node& node, std::string path, ConfigProblems& problems,
                std::vector<std::string> known);

  // The full key of a name in this section: "probe.interval".
  std::string Key(const std::string& name) const;
  // The value of a key, or an undefined node (IsDefined() false, and no other query throws)
  // when the key or the section is absent. Const: yaml-cpp's non-const lookup would insert
  // the key.
  YAML::Node Get(const std::string& name) const;
  // The mapping under a key, as a section of its own.
  ConfigSection Section(const std::string& name, std::vector<std::string> known) const;
  // Records a problem under Key(name).
  void Problem(const std::string& name, const std::string& problem) const;
  ConfigProblems& problems() const { return problems_; }

  bool String(const std::string& name, std::string* out) const;
  bool NonEmptyString(const std::string& name, std::string* out) const;
  // true or false (also True/TRUE/False/FALSE, as YAML 1.2's core schema). YAML 1.1's
  // yes/no/on/off are refused: Helm renders some values that way, and they must not mean a
  // boolean in one program and a string in another.
  bool Bool(const std::string& name, bool* out) const;
  bool Unsigned(const std::string& name, uint64_t* out, uint64_t min, uint64_t max) const;
  template <typename T>
  bool Unsigned(const std::string& name, T* out, uint64_t min, uint64_t max) const {
    static_assert(std::is_unsigned_v<T>);
    uint64_t value = 0;
    if (!Unsigned(name, &value, min, std::min<uint64_t>(max, std::numeric_limits<T>::max()))) return false;
    *out = static_cast<T>(value);
    return true;
  }
  bool Number(const std::string& name, double* out, double min, double max) const;
  // A duration in [min, max]; kept in the unit of *out, so "1500ms" for a value kept in
  // seconds is a problem rather than a silent truncation.
  bool Duration(const std::string& name, std::chrono::nanoseconds* out, std::chrono::nanoseconds min,
                std::chrono::nanoseconds max) const;
  template <typename Rep, typename Period>
  bool Duration(const std::string& name, std::chrono::duration<Rep, Period>* out,
                std::chrono::nanoseconds min, std::chrono::nanoseconds max) const {
    using D = std::chrono::duration<Rep, Period>;
    std::chrono::nanoseconds value{};
    if (!Duration(name, &value, min, max)) return false;
    const D converted = std::chrono::duration_cast<D>(value);
    if (std::chrono::nanoseconds(converted) != value) {
      Problem(name, FormatDuration(value) + " is not a multiple of " + FormatDuration(D(1)));
      return false;
    }
    *out = converted;
    return true;
  }
  bool ByteSize(const std::string& name, uint64_t* out, uint64_t min) const;
  bool Rate(const std::string& name, uint64_t* out) const;
  // "HOST:PORT" or "[IPV6]:PORT"; the text is kept as written.
  bool HostPort(const std::string& name, std::string* out, bool allow_port_zero) const;
  bool StringList(const std::string& name, std::vector<std::string>* out) const;
  // Two keys that only work together (a certificate and its key): when just one is set, the
  // other is a problem, "missing (tls.cert_file and tls.key_file go together)".
  void Together(const std::string& first, bool first_set, const std::string& second, bool second_set) const;
  // Reads each element of a list as a section "name[i]", in order, so problems come in
  // document order. An element that is not a mapping is a problem and is skipped; a value that
  // is not a list is one problem.
  void ForEachSection(const std::string& name, const std::vector<std::string>& known,
                      const std::function<void(const ConfigSection&)>& read) const;

 private:
  // Reads a scalar with `parse` (a Result whose ERANGE means "too large for the type") and
  // checks it is in [min, max]; format_range(min, max) shows the range in a message.
  template <typename T, typename Parse, typename FormatRange>
  bool ReadInRange(const std::string& name, T* out, T min, T max, const std::string& what, Parse parse,
                   FormatRange format_range) const;
  // The scalar text of a key; nothing when it is absent, and nothing and a problem ("a list
  // is not <what>") when it is not a scalar.
  std::optional<std::string> Text(const std::string& name, const std::string& what) const;

  YAML::Node node_;
  std::string path_;
  ConfigProblems& problems_;
  bool is_map_ = false;
};

// "10.1.0.0" or "fd00::1": an IPv4 or IPv6 address literal (no name, no port).
bool IsIpAddress(const std::string& text);

}  // namespace regionpulse
