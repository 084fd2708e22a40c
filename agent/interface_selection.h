// Which interfaces the tunnel tc programs attach to, decided from the names present in the
// network namespace. Pure: the datapath feeds it what the interface watcher reported and
// applies the difference to what is attached.
#pragma once

#include <set>
#include <string>
#include <vector>

namespace regionpulse {

// Cilium's tunnel devices: cilium_wg0 (WireGuard encryption), cilium_vxlan and cilium_geneve
// (tunnel routing mode). Exact names; "cilium_wg01" is not one.
bool IsCiliumTunnelDevice(const std::string& name);

// Plain WireGuard interfaces (wg0, wg-east, wgx, ...): the fallback on hosts without Cilium.
bool IsWireguardFallbackCandidate(const std::string& name);

// How the selection was made, so that a change of mode can be logged once.
enum class SelectionMode {
  kExplicit,           // the configured list, exactly
  kCiliumTunnels,      // auto: at least one Cilium tunnel device exists; wg* are left alone
  kWireguardFallback,  // auto: no Cilium tunnel device; every wg* interface
};
const char* SelectionModeName(SelectionMode mode);

struct InterfaceSelection {
  SelectionMode mode = SelectionMode::kWireguardFallback;
  std::set<std::string> names;  // a subset of the present names
};

// With `explicit_names` non-empty: those of them that are present. Otherwise the Cilium
// tunnel devices that are present, or, when there is none, every present wg* interface.
// Never both: a Cilium tunnel device and a wg* device usually carry the same packets (a wg0
// underneath or beside cilium_wg0), and counting both would double every region counter.
InterfaceSelection SelectInterfaces(const std::set<std::string>& present_names,
                                    const std::vector<std::string>& explicit_names);

}  // namespace regionpulse
