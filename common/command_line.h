// The one command-line flag loop of every regionpulse program (agent, aggregator, pulsectl):
// "--flag value" and "--flag=value" both work, a flag without a value refuses one, and every
// unknown flag or missing value is reported. What a flag means stays with its program; this
// only splits the arguments. Pure: no I/O.
#pragma once

#include <string>
#include <vector>

namespace regionpulse {

// One flag a program accepts.
struct FlagSpec {
  std::string name;  // "--config"; a short alias such as "-h" is its own FlagSpec
  bool takes_value = true;
};

struct ParsedFlag {
  std::string name;   // as written in the FlagSpec
  std::string value;  // empty for a flag that takes no value
};

// "--frobnicate: unknown flag": the flag as given, then what is wrong with it.
struct FlagProblem {
  std::string flag;
  std::string problem;
  std::string ToString() const { return flag + ": " + problem; }
};

struct CommandLineArgs {
  std::vector<ParsedFlag> flags;        // in the order given; a repeated flag appears again
  std::vector<std::string> positional;  // the arguments that are not flags, in order
  std::vector<FlagProblem> problems;    // empty when every argument was understood

  // For programs that take no positional arguments: each becomes a problem.
  void RefusePositional();
  // Every problem, one per line; empty when there is none.
  std::string ProblemText() const;
};

// Splits args (without the program name). A value is the rest of "--flag=value" or else the
// next argument, whatever it looks like (so "--set" can take "-x=1"). Arguments that do not
// start with '-' are positional; a program that takes none reports them itself.
CommandLineArgs ParseFlags(const std::vector<std::string>& args, const std::vector<FlagSpec>& known);

}  // namespace regionpulse
