# The lab's topology and every configuration file it writes: node names and addresses, and
# the agent, aggregator, WAN emulator and failover controller configs, each made in ONE
# function so a config dialect change is a change in one place. Pure: values in, text out.
import dataclasses
import json

REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-1"]
ACTIVE = "us-east-1"
STANDBY = "eu-west-1"
SHORT = {"us-east-1": "use1", "eu-west-1": "euw1", "ap-southeast-1": "apse1"}
# Overlay (cilium_wg0) ranges, one /16 per region; the agents classify traffic by them.
CIDRS = {"us-east-1": "10.1.0.0/16", "eu-west-1": "10.2.0.0/16", "ap-southeast-1": "10.3.0.0/16"}
UNDERLAY_HUB = "10.99.0.1"
UNDERLAY_PREFIX = 24
WG_PORT = 51820
AGGREGATOR_PORT = 7700
PG_PORT = 5432
# One-way delays the issue asks for: a public-internet path between the US and Europe, and
# a long haul to Asia.
DEFAULT_DELAYS = {("us-east-1", "eu-west-1"): "35ms", ("*", "ap-southeast-1"): "80ms"}


@dataclasses.dataclass
class Node:
    name: str  # use1-a
    region: str
    index: int  # position among all nodes
    region_index: int  # 0-based within the region
    underlay_ip: str
    overlay_ip: str

    @property
    def zone(self):
        return self.region + "abcdefghijklmnopqrstuvwxyz"[self.region_index % 26]


def parse_node_counts(text):
    """'us-east-1=2,eu-west-1=3' -> {region: count}; unnamed regions keep 2."""
    counts = {region: 2 for region in REGIONS}
    if text:
        for part in text.split(","):
            region, _, count = part.partition("=")
            if region not in counts:
                raise ValueError(f"--nodes: unknown region {region!r} (known: {', '.join(REGIONS)})")
            if not count.isdigit() or not 1 <= int(count) <= 20:
                raise ValueError(f"--nodes: {part!r}: expected REGION=COUNT with COUNT in 1..20")
            counts[region] = int(count)
    if counts[ACTIVE] < 1 or counts[STANDBY] < 1:
        raise ValueError("--nodes: us-east-1 and eu-west-1 need a node each (primary and replica)")
    return counts


def make_nodes(counts):
    nodes = []
    for r, region in enumerate(REGIONS):
        for i in range(counts[region]):
            index = len(nodes)
            nodes.append(Node(name=f"{SHORT[region]}-{chr(ord('a') + i)}", region=region, index=index,
                              region_index=i, underlay_ip=f"10.99.0.{10 + index}",
                              overlay_ip=f"10.{r + 1}.0.{10 + i}"))
    return nodes


def first_node(nodes, region):
    return next(n for n in nodes if n.region == region)


def aggregator_address(nodes, region):
    return f"{first_node(nodes, region).overlay_ip}:{AGGREGATOR_PORT}"


def _yaml_list(items):
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def regions_yaml():
    # The `regions` key, in the one form the agent and the aggregator both read (a list: the
    # position is the region id; docs/configuration.md).
    return "regions:\n" + "".join(f"  - {{name: {r}, cidrs: [{CIDRS[r]}]}}\n" for r in REGIONS)


def agent_config(node, nodes, key_file, primary):
    """The agent of one node: no `interfaces:` (it finds cilium_wg0 itself), every aggregator."""
    text = (f"node: {node.name}\nregion: {node.region}\nzone: {node.zone}\n" + regions_yaml() +
            f"aggregators: {_yaml_list(aggregator_address(nodes, r) for r in REGIONS)}\n"
            # A probe unanswered for 500 ms is lost: three times the longest emulated RTT, and
            # it shortens detection in a lab whose hold is seconds.
            f"probe: {{key_file: {key_file}, timeout: 500ms}}\n"
            f"status: {{listen: \"{node.overlay_ip}:9102\"}}\n")
    if node.name == primary.name:
        text += (f"replication_flows:\n"
                 f"  - {{name: postgres, ports: [{PG_PORT}], remote_region: {STANDBY}}}\n")
    return text


def aggregator_config(region, timings, history_path):
    """One region's aggregator. `timings`: hold, dwell, matrix_window, evidence_window,
    not_reporting_timeout, replication_staleness in whole seconds."""
    t = timings
    return (regions_yaml() +
            f"active_region: {ACTIVE}\n"
            f"own_region: {region}\n"
            # FAILOVER may only land where the replica is; ap-southeast-1 only observes.
            f"standby_regions: [{STANDBY}]\n"
            f"hold: {t['hold']}s\n"
            f"dwell: {t['dwell']}s\n"
            f"matrix_window: {t['matrix_window']}s\n"
            f"evidence_window: {t['evidence_window']}s\n"
            f"not_reporting_timeout: {t['not_reporting_timeout']}s\n"
            # Twice a second: with a hold of seconds, a 1 s tick is a visible part of the delay.
            f"evaluation_interval: 500ms\n"
            f"thresholds: {{replication_staleness: {t['replication_staleness']}s}}\n"
            f"probe_plan: {{targets_per_region: 2, interval: 100ms}}\n"
            f"history: {{path: {history_path}}}\n")


def wan_config(nodes, control_socket, delays=None):
    lines = [f"listen_address: {UNDERLAY_HUB}", f"control_socket: {control_socket}",
             "port_range: 40000-40999",
             # Without SCHED_FIFO the relay adds milliseconds under load (docs/benchmarks.md).
             "realtime_priority: 50", "nodes:"]
    for n in nodes:
        lines.append(f"  - {{name: {n.name}, region: {n.region}, endpoint: \"{n.underlay_ip}:{WG_PORT}\"}}")
    lines.append("impairments:")
    for (a, b), delay in (delays or DEFAULT_DELAYS).items():
        lines.append(f"  - {{between: [\"{a}\", \"{b}\"], delay: {delay}}}")
    return "\n".join(lines) + "\n"


def wireguard_config(node, nodes, private_keys, public_keys, relay_ports):
    """wg setconf text for one node: same-region peers over the underlay directly, the others
    through the emulator's relay port for that direction. relay_ports[(from, to)] = port."""
    lines = ["[Interface]", f"PrivateKey = {private_keys[node.name]}", f"ListenPort = {WG_PORT}"]
    for peer in nodes:
        if peer.name == node.name:
            continue
        if peer.region == node.region:
            endpoint = f"{peer.underlay_ip}:{WG_PORT}"
        else:
            endpoint = f"{UNDERLAY_HUB}:{relay_ports[(node.name, peer.name)]}"
        lines += ["", "[Peer]", f"PublicKey = {public_keys[peer.name]}", f"AllowedIPs = {peer.overlay_ip}/32",
                  f"Endpoint = {endpoint}"]
    return "\n".join(lines) + "\n"


def controller_config(aggregators, state_file, hooks):
    """aggregators: addresses in order of preference; hooks: {region: [command, ...]}."""
    text = f"aggregators: {_yaml_list(aggregators)}\nstate_file: {state_file}\nhook_timeout: 60s\nhooks:\n"
    for region, commands in hooks.items():
        text += f"  {region}: {_yaml_list(commands)}\n"
    return text
