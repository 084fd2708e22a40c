# Reading the lab: every aggregator's verdict and matrix through `pulsectl --output json`,
# run in the aggregator's own node namespace, and small accessors over the JSON (the proto3
# JSON mapping: durations as "0.035s", enums by name).
import datetime
import json
import subprocess
import time

from . import topology as topo


def seconds(duration):
    """'0.035120s' -> 0.03512; missing -> None."""
    if duration is None:
        return None
    return float(str(duration).rstrip("s"))


def unix_time(timestamp):
    """'2026-11-28T21:10:19.123456Z' -> unix seconds."""
    text = str(timestamp).rstrip("Z")
    if "." in text:
        whole, frac = text.split(".")
        text = f"{whole}.{frac[:6]}"
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.timezone.utc).timestamp()


def short_action(verdict):
    if verdict is None:
        return "unreachable"
    action = verdict.get("action", "ACTION_UNSPECIFIED").replace("ACTION_", "")
    target = verdict.get("target_region", "")
    return f"{action} to {target}" if action == "FAILOVER" and target else action


def region_state(verdict, region):
    for r in (verdict or {}).get("regions", []):
        if r.get("region") == region:
            return r.get("state", "").replace("REGION_STATE_", "")
    return None


def region_health(verdict, region):
    for r in (verdict or {}).get("regions", []):
        if r.get("region") == region:
            return r
    return None


def suspects(verdict, kind=None, region=None):
    """The verdict's suspects, of one kind ("NODE", "LINK", "REGION") and touching one region
    (as its region or its peer) when given; enum names without their prefixes."""
    out = []
    for x in (verdict or {}).get("suspects", []):
        x = dict(x)
        x["kind"] = x.get("kind", "").replace("SUSPECT_KIND_", "")
        x["severity"] = x.get("severity", "").replace("REGION_STATE_", "")
        x["direction"] = x.get("direction", "").replace("LOSS_DIRECTION_", "")
        if kind and x["kind"] != kind:
            continue
        if region and region not in (x.get("region"), x.get("peer_region")):
            continue
        out.append(x)
    return out


def cell(matrix, source, target):
    for c in (matrix or {}).get("cells", []):
        if c.get("source_region") == source and c.get("target_region") == target:
            return c
    return None


class Observer:
    def __init__(self, lab):
        self.lab = lab

    def pulsectl(self, region, *args, json_output=True, timeout=5):
        n = self.lab.aggregator_node(region)
        argv = self.lab.in_node(n) + [self.lab.bin["pulsectl"], "--server",
                                      f"{n.overlay_ip}:{topo.AGGREGATOR_PORT}", "--timeout", "2s"]
        argv += list(args) + (["--output", "json"] if json_output else [])
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return 2, ""
        return result.returncode, result.stdout

    def verdict(self, region):
        """The verdict of `region`'s aggregator, or None when it does not answer."""
        code, out = self.pulsectl(region, "status")
        if code in (0, 3, 4) and out.strip():
            return json.loads(out)
        return None

    def matrix(self, region, window=None):
        args = ["matrix"] + (["--window", window] if window else [])
        code, out = self.pulsectl(region, *args)
        return json.loads(out) if code == 0 and out.strip() else None

    def flows(self, region):
        code, out = self.pulsectl(region, "flows")
        return json.loads(out).get("flows", []) if code == 0 and out.strip() else []

    def agents(self, region):
        code, out = self.pulsectl(region, "agents")
        return json.loads(out).get("agents", []) if code == 0 and out.strip() else []

    def text(self, region, *args):
        return self.pulsectl(region, *args, json_output=False)[1]

    def history(self, region, limit=50):
        """Verdict transitions of `region`'s aggregator, newest first."""
        code, out = self.pulsectl(region, "history", "--limit", str(limit))
        return json.loads(out).get("transitions", []) if code == 0 and out.strip() else []

    def first_transition_to(self, region, action, since):
        """Unix time of the first transition to `action` at or after `since`, from the
        aggregator's own history: when it decided, not when somebody polled."""
        times = [unix_time(t["verdict"]["computed_at"]) for t in self.history(region)
                 if t.get("verdict", {}).get("action") == action]
        times = [t for t in times if t >= since]
        return min(times) if times else None

    def verdicts(self):
        return {region: self.verdict(region) for region in topo.REGIONS}


class Timeline:
    """Watches conditions while a scenario runs and remembers when each first held, relative
    to the fault: the detection times the scenarios print."""

    def __init__(self, fault_at=None):
        self.fault_at = fault_at or time.time()
        self.first = {}

    def mark(self, name, condition):
        if condition and name not in self.first:
            self.first[name] = time.time() - self.fault_at
        return condition

    def get(self, name):
        return self.first.get(name)

    def describe(self, names):
        parts = []
        for name in names:
            value = self.first.get(name)
            parts.append(f"{name} {value:.1f} s" if value is not None else f"{name} never")
        return "; ".join(parts)
