// Interface auto-detection precedence (issue 3): cilium_wg0, cilium_vxlan, cilium_geneve,
// then wg* only where none of those exists.
#include "agent/interface_selection.h"

#include <algorithm>
#include <iterator>

namespace regionpulse {

bool IsCiliumTunnelDevice(const std::string& name) {
  return name == "cilium_wg0" || name == "cilium_vxlan" || name == "cilium_geneve";
}

bool IsWireguardFallbackCandidate(const std::string& name) {
  return name.rfind("wg", 0) == 0;
}

const char* SelectionModeName(SelectionMode mode) {
  switch (mode) {
    case SelectionMode::kExplicit:
      return "explicit list";
    case SelectionMode::kCiliumTunnels:
      return "Cilium tunnel devices";
    case SelectionMode::kWireguardFallback:
      return "wg* fallback";
  }
  return "unknown";
}

InterfaceSelection SelectInterfaces(const std::set<std::string>& present_names,
                                    const std::vector<std::string>& explicit_names) {
  InterfaceSelection selection;
  if (!explicit_names.empty()) {
    selection.mode = SelectionMode::kExplicit;
    for (const auto& name : explicit_names) {
      if (present_names.count(name) > 0) selection.names.insert(name);
    }
    return selection;
  }
  for (const auto& name : present_names) {
    if (IsCiliumTunnelDevice(name)) selection.names.insert(name);
  }
  if (!selection.names.empty()) {
    selection.mode = SelectionMode::kCiliumTunnels;
    return selection;
  }
  selection.mode = SelectionMode::kWireguardFallback;
  std::copy_if(present_names.begin(), present_names.end(),
               std::inserter(selection.names, selection.names.end()), IsWireguardFallbackCandidate);
  return selection;
}

}  // namespace regionpulse
