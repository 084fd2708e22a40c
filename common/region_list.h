// The `regions` list that agent and aggregator both read: one shape, one set of CIDR rules.
//
//   regions:
//     - {name: us-east-1, cidrs: [10.1.0.0/16, "fd00:1::/48"]}
//     - {name: eu-west-1, cidrs: [10.2.0.0/16]}
//
// A list, not a mapping of name to CIDRs: the agent numbers regions by their position (the id
// its BPF maps carry), and Helm's toYaml sorts mapping keys, so only a list keeps the order an
// operator wrote. A list also leaves room for per-region fields.
#pragma once

#include <cstddef>
#include <limits>
#include <string>
#include <vector>

#include "common/config_reader.h"

namespace regionpulse {

// One region of the platform and the address ranges its nodes and pods use.
struct RegionSpec {
  std::string name;                // "us-east-1"
  std::vector<std::string> cidrs;  // "10.1.0.0/16", "fd00:1::/48" (normalised text)
};

// What a program can hold, and why; a list beyond it is a problem when the config is read,
// not first when the agent fills its BPF maps.
struct RegionListLimits {
  size_t max_regions = std::numeric_limits<size_t>::max();
  std::string max_regions_reason;
  size_t max_cidrs_per_family = std::numeric_limits<size_t>::max();  // IPv4 and IPv6 each
  std::string max_cidrs_reason;
};

// Reads the list under `name` of `section`. Every region has a unique, non-empty name and a
// non-empty list of CIDRs; a CIDR with host bits set, or one that overlaps any other CIDR (in
// the same region or another), is a problem naming its key ("regions[1].cidrs[0]"). The
// regions come back in the order written (a region without a usable name is left out).
std::vector<RegionSpec> ReadRegionList(const ConfigSection& section, const std::string& name,
                                       const RegionListLimits& limits = {});

}  // namespace regionpulse
