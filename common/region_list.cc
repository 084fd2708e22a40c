// Reading the shared `regions` list: shape, names, CIDRs and their overlaps.
#include "common/region_list.h"

#include <set>
#include <utility>

#include "common/config_text.h"

namespace regionpulse {
namespace {

// The old agent form, `regions: {us-east-1: [10.1.0.0/16]}`, shown as the list it should be.
std::string MappingProblem(const YAML::Node& mapping) {
  std::string example = "{name: us-east-1, cidrs: [10.1.0.0/16]}";
  for (const auto& entry : mapping) {
    if (entry.first.IsScalar()) example = "{name: " + entry.first.Scalar() + ", cidrs: [...]}";
    break;
  }
  return "must be a list of {name, cidrs}, not a mapping: write \"- " + example +
         "\" for each region, in order (Helm's toYaml sorts mapping keys, so a mapping cannot keep the "
         "order that numbers the regions)";
}

}  // namespace

std::vector<RegionSpec> ReadRegionList(const ConfigSection& section, const std::string& name,
                                       const RegionListLimits& limits) {
  const YAML::Node value = section.Get(name);
  if (value.IsDefined() && value.IsMap()) {
    section.Problem(name, MappingProblem(value));
    return {};
  }
  if (value.IsDefined() && value.IsSequence() && value.size() > limits.max_regions) {
    section.Problem(name, std::to_string(value.size()) + " regions; at most " +
                              std::to_string(limits.max_regions) + " (" + limits.max_regions_reason + ")");
  }
  std::vector<RegionSpec> regions;
  std::set<std::string> names;
  // Every CIDR accepted so far, with the key it came from, for the overlap check.
  std::vector<std::pair<Cidr, std::string>> seen;
  size_t per_family[2] = {0, 0};
  section.ForEachSection(name, {"name", "cidrs"}, [&](const ConfigSection& entry) {
    RegionSpec region;
    bool named = true;
    if (!entry.Get("name").IsDefined()) {
      entry.Problem("name", "missing");
      named = false;
    } else if (!entry.NonEmptyString("name", &region.name)) {
      named = false;
    } else if (!names.insert(region.name).second) {
      entry.Problem("name", "\"" + region.name + "\" is listed twice");
      named = false;
    }
    const YAML::Node cidrs = entry.Get("cidrs");
    if (!cidrs.IsDefined()) {
      entry.Problem("cidrs", "missing (the address ranges of the region's nodes and pods)");
    } else if (!cidrs.IsSequence() || cidrs.size() == 0) {
      entry.Problem("cidrs", "must be a non-empty list of CIDRs, not " + DescribeValue(cidrs));
    } else {
      for (size_t i = 0; i < cidrs.size(); ++i) {
        const std::string key = entry.Key("cidrs") + "[" + std::to_string(i) + "]";
        if (!cidrs[i].IsScalar()) {
          section.problems().Add(key, DescribeValue(cidrs[i]) + " is not a CIDR");
          continue;
        }
        auto cidr = ParseNetworkCidr(cidrs[i].Scalar());
        if (!cidr) {
          section.problems().Add(key, cidr.error().message);
          continue;
        }
        // Longest-prefix match would resolve an overlap silently, one way; refusing it keeps
        // "which region is this address in" a question with one obvious answer.
        bool overlaps = false;
        for (const auto& [other, other_key] : seen) {
          if (!cidr->Overlaps(other)) continue;
          section.problems().Add(key, cidr->text + " overlaps " + other.text + " (" + other_key + ")");
          overlaps = true;
          break;
        }
        if (overlaps) continue;
        if (++per_family[cidr->ipv6 ? 1 : 0] == limits.max_cidrs_per_family + 1) {
          section.Problem(name, "more than " + std::to_string(limits.max_cidrs_per_family) + " " +
                                    (cidr->ipv6 ? "IPv6" : "IPv4") + " CIDRs (" + limits.max_cidrs_reason +
                                    ")");
        }
        seen.emplace_back(*cidr, key);
        region.cidrs.push_back(cidr->text);
      }
    }
    // A region with a bad CIDR stays, so the keys that name it are not reported as well.
    if (named) regions.push_back(std::move(region));
  });
  return regions;
}

}  // namespace regionpulse
