// pulsectl: see pulsectl.h, or run `pulsectl --help`.
#include <iostream>
#include <string>
#include <vector>

#include "tools/pulsectl/pulsectl.h"

int main(int argc, char** argv) {
  return regionpulse::pulsectl::Run(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
}
