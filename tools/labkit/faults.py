# The faults the lab can inject, each with its undo: a region blackholed, one region pair cut,
# one node's tunnel dropped, the replica stopped, agents killed (once or in a crash loop), an
# aggregator SIGKILLed and restarted.
import signal
import time

from . import topology as topo
from .lab import LabError, log, wait_until


def blackhole_region(lab, region, on=True):
    lab.wan("set", "--both", region, "*", f"blackhole={'on' if on else 'off'}")


def cut_link(lab, a, b, on=True):
    lab.wan("set", "--both", a, b, f"blackhole={'on' if on else 'off'}")


def node_tunnel(lab, node_name, down=True):
    """Drops one node's tunnel: its underlay link goes down, so nothing of cilium_wg0 passes,
    to other regions or within its own. Up again, the kernel restores the connected route."""
    n = lab.node(node_name)
    lab.node_cmd(n, ["ip", "link", "set", "eth0", "down" if down else "up"])


def replica(lab, action):
    r = lab.replica
    if action == "stop":
        lab.pg_ctl(r, "stop")
    elif action == "start":
        lab.pg_ctl(r, "start")
    elif action == "rebuild":
        lab.rebuild_replica()
    else:
        raise LabError(f"replica: expected stop, start or rebuild, got {action!r}")


def agent_nodes(lab, target):
    if target in topo.REGIONS:
        return [n for n in lab.nodes if n.region == target]
    return [lab.node(target)]


def kill_agents(lab, target, restart=True):
    """SIGKILL the agents of a node or a region; restarted at once when `restart`."""
    nodes = agent_nodes(lab, target)
    for n in nodes:
        lab.stop(f"agent/{n.name}", sig=signal.SIGKILL)
    if restart:
        for n in nodes:
            lab.start_agent(n)
    return nodes


def crash_loop_agents(lab, target, duration, up_for=2.0):
    """Agents that start, live `up_for` seconds and die (SIGKILL), for `duration` seconds; left
    running at the end."""
    deadline = time.monotonic() + duration
    rounds = 0
    while time.monotonic() < deadline:
        kill_agents(lab, target, restart=True)
        rounds += 1
        time.sleep(min(up_for, max(0.0, deadline - time.monotonic())))
    log(f"crash loop of the agents of {target}: {rounds} kills in {duration:.0f} s; left running")


def kill_aggregator(lab, region, restart=True):
    key = f"aggregator/{region}"
    lab.stop(key, sig=signal.SIGKILL)
    if restart:
        lab.restart(key)


def wan_reset(lab):
    lab.wan("reset")


def restore(lab):
    """Undoes every fault: the WAN as configured, every tunnel up, every agent, aggregator and
    the replica running."""
    wan_reset(lab)
    for n in lab.nodes:
        lab.node_cmd(n, ["ip", "link", "set", "eth0", "up"])
    for n in lab.nodes:
        if not lab.alive(f"agent/{n.name}"):
            lab.start_agent(n)
    for region in topo.REGIONS:
        if not lab.alive(f"aggregator/{region}"):
            lab.restart(f"aggregator/{region}")
    r = lab.replica
    if lab.pg_ctl(r, "status", check=False).returncode != 0:
        lab.pg_ctl(r, "start")
