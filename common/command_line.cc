// The shared flag loop: splits "--flag value" / "--flag=value" and reports what it cannot read.
#include "common/command_line.h"

#include <algorithm>
#include <optional>

namespace regionpulse {

void CommandLineArgs::RefusePositional() {
  for (auto& argument : positional) problems.push_back({std::move(argument), "unexpected argument"});
  positional.clear();
}

std::string CommandLineArgs::ProblemText() const {
  std::string text;
  for (const auto& problem : problems) text += (text.empty() ? "" : "\n") + problem.ToString();
  return text;
}

CommandLineArgs ParseFlags(const std::vector<std::string>& args, const std::vector<FlagSpec>& known) {
  CommandLineArgs parsed;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg.size() < 2 || arg[0] != '-') {
      parsed.positional.push_back(arg);
      continue;
    }
    std::string name = arg;
    std::optional<std::string> inline_value;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    const auto spec =
        std::find_if(known.begin(), known.end(), [&](const FlagSpec& flag) { return flag.name == name; });
    if (spec == known.end()) {
      parsed.problems.push_back({name, "unknown flag"});
      continue;
    }
    if (!spec->takes_value) {
      if (inline_value) {
        parsed.problems.push_back({name, "takes no value"});
      } else {
        parsed.flags.push_back({name, ""});
      }
      continue;
    }
    if (inline_value) {
      parsed.flags.push_back({name, *inline_value});
    } else if (i + 1 < args.size()) {
      parsed.flags.push_back({name, args[++i]});
    } else {
      parsed.problems.push_back({name, "needs a value"});
    }
  }
  return parsed;
}

}  // namespace regionpulse
