// The shared YAML configuration reader: typed reads that record problems instead of throwing.
#include "common/config_reader.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <set>
#include <sstream>

namespace regionpulse {
namespace {

std::string Quote(const std::string& text) {
  return "\"" + text + "\"";
}

template <typename T>
std::string Range(T min, T max) {
  std::ostringstream range;
  range << min << ".." << max;
  return range.str();
}

}  // namespace

Error ConfigProblems::ToError() const {
  std::string text = "invalid configuration:";
  for (const auto& problem : list_) text += "\n  " + problem;
  return Error{text};
}

Result<YAML::Node> LoadConfigDocument(const std::string& text) {
  YAML::Node root;
  try {
    // yaml-cpp 0.7 refuses documents nested deeper than 2,000 levels (DeepRecursion, a
    // ParserException) instead of overflowing the stack; aliases are shared, not expanded.
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return Error{"config: line " + std::to_string(e.mark.line + 1) + ", column " +
                 std::to_string(e.mark.column + 1) + ": not valid YAML (" + e.msg + ")"};
  }
  if (!root || root.IsNull()) return YAML::Node(YAML::NodeType::Map);
  return root;
}

std::string DescribeValue(const YAML::Node& value) {
  if (value.IsScalar()) return Quote(value.Scalar());
  if (value.IsSequence()) return "a list";
  if (value.IsMap()) return "a mapping";
  return "an empty value";
}

ConfigSection::ConfigSection(const YAML::Node& node, std::string path, ConfigProblems& problems,
                             std::vector<std::string> known)
    : node_(node), path_(std::move(path)), problems_(problems) {
  if (!node_.IsDefined() || node_.IsNull()) return;
  const std::string where = path_.empty() ? "config" : path_;
  if (!node_.IsMap()) {
    problems_.Add(where, "must be a mapping, not " + DescribeValue(node_));
    return;
  }
  is_map_ = true;
  const std::set<std::string> names(known.begin(), known.end());
  for (const auto& entry : node_) {
    if (!entry.first.IsScalar()) {
      problems_.Add(where, "has a key that is " + DescribeValue(entry.first) + "; keys are plain names");
      continue;
    }
    if (names.contains(entry.first.Scalar())) continue;
    std::string list;
    for (const auto& name : names) list += (list.empty() ? "" : ", ") + name;
    problems_.Add(Key(entry.first.Scalar()), "unknown key (known here: " + list + ")");
  }
}

std::string ConfigSection::Key(const std::string& name) const {
  return path_.empty() ? name : path_ + "." + name;
}

YAML::Node ConfigSection::Get(const std::string& name) const {
  const YAML::Node& section = node_;
  if (is_map_) {
    if (YAML::Node value = section[name]; value.IsDefined()) return value;
  }
  // yaml-cpp's lookup of an absent key gives an "invalid" node whose type queries throw; an
  // Undefined node answers them.
  return YAML::Node(YAML::NodeType::Undefined);
}

ConfigSection ConfigSection::Section(const std::string& name, std::vector<std::string> known) const {
  return ConfigSection(Get(name), Key(name), problems_, std::move(known));
}

void ConfigSection::Problem(const std::string& name, const std::string& problem) const {
  problems_.Add(Key(name), problem);
}

std::optional<std::string> ConfigSection::Text(const std::string& name, const std::string& what) const {
  const YAML::Node value = Get(name);
  if (!value.IsDefined()) return std::nullopt;
  if (value.IsScalar()) return value.Scalar();
  Problem(name, DescribeValue(value) + " is not " + what);
  return std::nullopt;
}

bool ConfigSection::String(const std::string& name, std::string* out) const {
  auto text = Text(name, "a string");
  if (!text) return false;
  *out = *text;
  return true;
}

bool ConfigSection::NonEmptyString(const std::string& name, std::string* out) const {
  std::string text;
  if (!String(name, &text)) return false;
  if (text.empty()) {
    Problem(name, "must not be empty");
    return false;
  }
  *out = text;
  return true;
}

bool ConfigSection::Bool(const std::string& name, bool* out) const {
  auto text = Text(name, "true or false");
  if (!text) return false;
  static const std::set<std::string> kTrue = {"true", "True", "TRUE"};
  static const std::set<std::string> kFalse = {"false", "False", "FALSE"};
  if (kTrue.contains(*text) || kFalse.contains(*text)) {
    *out = kTrue.contains(*text);
    return true;
  }
  static const std::set<std::string> kYaml11 = {"y",  "Y",  "yes", "Yes", "YES", "n",   "N",   "no",
                                                "No", "NO", "on",  "On",  "ON",  "off", "Off", "OFF"};
  Problem(name, Quote(*text) + " is not true or false" +
                    (kYaml11.contains(*text) ? " (write true or false: YAML 1.2 reads yes, no, on and off as "
                                               "strings, not booleans)"
                                             : ""));
  return false;
}

template <typename T, typename Parse, typename FormatRange>
bool ConfigSection::ReadInRange(const std::string& name, T* out, T min, T max, const std::string& what,
                                Parse parse, FormatRange format_range) const {
  auto text = Text(name, what);
  if (!text) return false;
  // ERANGE: a value of the right kind, too large for its type, and so outside any range.
  auto parsed = parse(*text);
  if (!parsed && parsed.error().errnum != ERANGE) {
    Problem(name, Quote(*text) + " is not " + what);
    return false;
  }
  if (!parsed || *parsed < min || *parsed > max) {
    Problem(name, *text + " is outside " + format_range(min, max));
    return false;
  }
  *out = *parsed;
  return true;
}

bool ConfigSection::Unsigned(const std::string& name, uint64_t* out, uint64_t min, uint64_t max) const {
  return ReadInRange(name, out, min, max, "a whole number", ParseWholeNumber, Range<uint64_t>);
}

bool ConfigSection::Number(const std::string& name, double* out, double min, double max) const {
  return ReadInRange(name, out, min, max, "a number", ParseNumber, Range<double>);
}

bool ConfigSection::Duration(const std::string& name, std::chrono::nanoseconds* out,
                             std::chrono::nanoseconds min, std::chrono::nanoseconds max) const {
  return ReadInRange(name, out, min, max, "a duration (examples: 250us, 100ms, 1s, 10m)", ParseDuration,
                     [](std::chrono::nanoseconds low, std::chrono::nanoseconds high) {
                       return FormatDuration(low) + ".." + FormatDuration(high);
                     });
}

bool ConfigSection::ByteSize(const std::string& name, uint64_t* out, uint64_t min) const {
  auto text = Text(name, "a size");
  if (!text) return false;
  auto size = ParseByteSize(*text);
  if (!size) {
    Problem(name, Quote(*text) + (size.error().errnum == ERANGE
                                      ? " is too large"
                                      : " is not a size (examples: 4096, 64KiB, 4MiB, 1GiB)"));
    return false;
  }
  if (*size < min) {
    Problem(name, *text + " is below the smallest allowed, " + std::to_string(min) + " bytes");
    return false;
  }
  *out = *size;
  return true;
}

bool ConfigSection::Rate(const std::string& name, uint64_t* out) const {
  auto text = Text(name, "a rate");
  if (!text) return false;
  auto rate = ParseRate(*text);
  if (!rate) {
    Problem(name, Quote(*text) + (rate.error().errnum == ERANGE
                                      ? " is too high (at most 1e15 B/s)"
                                      : " is not a rate (examples: 500kB/s, 10MB/s, 100Mbit/s)"));
    return false;
  }
  *out = *rate;
  return true;
}

bool ConfigSection::HostPort(const std::string& name, std::string* out, bool allow_port_zero) const {
  std::string text;
  if (!String(name, &text)) return false;
  if (auto address = ParseHostPort(text, allow_port_zero); !address) {
    Problem(name, Quote(text) + ": " + address.error().message);
    return false;
  }
  *out = text;
  return true;
}

void ConfigSection::Together(const std::string& first, bool first_set, const std::string& second,
                             bool second_set) const {
  if (first_set == second_set) return;
  Problem(first_set ? second : first, "missing (" + Key(first) + " and " + Key(second) + " go together)");
}

bool ConfigSection::StringList(const std::string& name, std::vector<std::string>* out) const {
  const YAML::Node value = Get(name);
  if (!value.IsDefined()) return false;
  if (!value.IsSequence()) {
    Problem(name, "must be a list, not " + DescribeValue(value));
    return false;
  }
  std::vector<std::string> list;
  bool ok = true;
  for (size_t i = 0; i < value.size(); ++i) {
    if (!value[i].IsScalar()) {
      problems_.Add(Key(name) + "[" + std::to_string(i) + "]", DescribeValue(value[i]) + " is not a string");
      ok = false;
      continue;
    }
    list.push_back(value[i].Scalar());
  }
  if (ok) *out = std::move(list);
  return ok;
}

void ConfigSection::ForEachSection(const std::string& name, const std::vector<std::string>& known,
                                   const std::function<void(const ConfigSection&)>& read) const {
  const YAML::Node value = Get(name);
  if (!value.IsDefined()) return;
  if (!value.IsSequence()) {
    Problem(name, "must be a list, not " + DescribeValue(value));
    return;
  }
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string key = Key(name) + "[" + std::to_string(i) + "]";
    if (!value[i].IsMap()) {
      problems_.Add(key, "must be a mapping, not " + DescribeValue(value[i]));
      continue;
    }
    read(ConfigSection(value[i], key, problems_, known));
  }
}

bool IsIpAddress(const std::string& text) {
  in6_addr address{};
  return inet_pton(AF_INET, text.c_str(), &address) == 1 || inet_pton(AF_INET6, text.c_str(), &address) == 1;
}

}  // namespace regionpulse
