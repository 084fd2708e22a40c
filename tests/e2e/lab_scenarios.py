#!/usr/bin/python3
# End-to-end scenarios on one lab (ctest label e2e): real agents, aggregators, WireGuard,
# the WAN emulator, PostgreSQL and the failover controller, faults injected one after the
# other, the lab restored between them. Each scenario prints its detection times (fault ->
# first window showing it, -> DEGRADED, -> FAILOVER) and asserts what the verdict must say.
# Waits are on events with deadlines; the fixed-length watches are the assertions themselves
# ("no FAILOVER for hold + 5 s").
# Usage (root): lab_scenarios.py --build-dir BUILD [--only NAME,...]
import argparse
import calendar
import json
import os
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))

from labkit import faults  # noqa: E402
from labkit import topology as topo  # noqa: E402
from labkit.lab import Lab, LabError, ledger_entries, log, wait_until  # noqa: E402
from labkit.observe import Observer, Timeline, cell, region_state, seconds, short_action, suspects  # noqa: E402

HOLD = 10
DWELL = 12
OBSERVING = [topo.STANDBY, "ap-southeast-1"]  # aggregators outside the active region
EMULATED_RTT = {frozenset(["us-east-1", "eu-west-1"]): 0.070, frozenset(["us-east-1", "ap-southeast-1"]): 0.160,
                frozenset(["eu-west-1", "ap-southeast-1"]): 0.160}


class ScenarioFailed(AssertionError):
    pass


class Scenario:
    def __init__(self, lab):
        self.lab = lab
        self.obs = Observer(lab)
        self.failures = []

    def check(self, ok, what):
        print(f"   {'ok  ' if ok else 'FAIL'} {what}", flush=True)
        if not ok:
            self.failures.append(what)
        return ok

    def watch(self, duration, timeline, fault_region=None, stop=None, matrix=True, slow_over=None):
        """Samples the verdicts (and a 2 s matrix) for `duration` seconds, marking on the
        timeline when the fault first shows (loss; or with `slow_over`, an RTT p99 above that
        many seconds), when eu-west-1's verdict first shows it as
        DEGRADED or worse (the region's state, or a node, link or region suspect touching it) and
        when an aggregator outside the active region says FAILOVER. Returns the samples."""
        samples = []
        end = time.monotonic() + duration
        while time.monotonic() < end:
            now = time.time() - timeline.fault_at
            verdicts = self.obs.verdicts()
            # The matrix only until the fault shows in it: each call makes the samples sparser.
            m = (self.obs.matrix(topo.STANDBY, "2s")
                 if matrix and fault_region and timeline.get("first window") is None else None)
            samples.append((now, verdicts))
            if fault_region and m:
                lossy = any(c.get("target_region") == fault_region and c.get("source_region") != fault_region and
                            (c.get("loss_forward", 0) > 0 or c.get("loss_reverse", 0) > 0 or
                             int(c.get("lost_direction_unknown", 0)) > 0 or
                             (slow_over is not None and (seconds(c.get("rtt_p99")) or 0) > slow_over))
                            for c in m.get("cells", []))
                timeline.mark("first window", lossy)
            if fault_region:
                v = verdicts[topo.STANDBY]
                timeline.mark("DEGRADED", region_state(v, fault_region) in ("DEGRADED", "UNREACHABLE") or
                              any(x["severity"] in ("DEGRADED", "UNREACHABLE")
                                  for x in suspects(v, region=fault_region)))
            timeline.mark("FAILOVER", any(v and v.get("action") == "ACTION_FAILOVER"
                                          for r, v in verdicts.items() if r in OBSERVING))
            if stop and stop(verdicts):
                break
            time.sleep(0.2)
        return samples

    def report(self, name, timeline, fault_region=None, slow_over=None):
        """Prints the detection times. The first window showing the fault is read from the agents'
        own reports when there are any (report_log): the end of the first window whose counts show
        it, minus the fault's injection time, both on this host's clock. The matrix poll of
        watch() only sees it once the report has settled (window end + probe timeout), been filed
        and polled, which is at least that much later and as coarse as the poll."""
        if fault_region:
            polled = timeline.get("first window")
            measured = first_window_in_reports(self.lab, fault_region, timeline.fault_at, slow_over)
            if measured is not None:
                timeline.first["first window"] = measured
            print(f"   first window showing the fault: " +
                  (f"ends {measured:.2f} s after it (agents' reports)" if measured is not None else
                   "none in the agents' reports") +
                  (f"; the 2 s matrix poll saw it at {polled:.1f} s" if polled is not None else ""), flush=True)
        print(f"   detection times ({name}): {timeline.describe(['first window', 'DEGRADED', 'FAILOVER'])}",
              flush=True)

    def never_failover(self, samples):
        bad = [(t, r) for t, vs in samples for r in OBSERVING
               if vs[r] and vs[r].get("action") == "ACTION_FAILOVER"]
        return self.check(not bad, "no FAILOVER from the aggregators outside us-east-1" +
                          (f" (FAILOVER from {bad[0][1]}'s at +{bad[0][0]:.1f} s)" if bad else ""))


def wall_seconds(timestamp):
    """An RFC 3339 timestamp as the JSON mapping of a protobuf Timestamp writes it (UTC, "Z",
    0-9 fraction digits) in Unix seconds."""
    base, _, fraction = timestamp.rstrip("Z").partition(".")
    whole = calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S"))
    return whole + (float("0." + fraction) if fraction else 0.0)


def first_window_in_reports(lab, fault_region, fault_at, slow_over=None):
    """Seconds from `fault_at` to the end of the first window, of any agent outside
    `fault_region`, whose probes to it show the fault: probes without a reply (loss either way)
    or, with `slow_over`, an RTT above that many seconds (the window's largest, kernel or user
    space). None when no report shows it."""
    first = None
    for n in lab.nodes:
        if n.region == fault_region:
            continue
        try:
            lines = open(lab.report_log(n)).read().splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                report = json.loads(line)
                end = wall_seconds(report["window_end"])
            except (ValueError, KeyError):
                continue  # a line cut by the agent's restart, or no window end
            if end <= fault_at or (first is not None and end - fault_at >= first):
                continue
            for path in report.get("paths", []):
                if path.get("peer_region") != fault_region:
                    continue
                lost = int(path.get("probes_sent", 0)) > int(path.get("received_reverse", 0))
                slow = slow_over is not None and max(
                    int(path.get(h, {}).get("max_ns", 0)) for h in ("rtt_kernel", "rtt_user")) > slow_over * 1e9
                if lost or slow:
                    first = end - fault_at
                    break
    return first


def baseline(lab, obs, timeout):
    """Every aggregator says STAY and eu-west-1's sees every region HEALTHY with every agent
    reporting: a node whose tunnel just came back is still reconnecting (its first probes wait
    for a WireGuard handshake), and the next scenario must not start on that."""
    def ready():
        vs = obs.verdicts()
        regions = (vs[topo.STANDBY] or {}).get("regions", [])
        return (all(short_action(v) == "STAY" for v in vs.values()) and
                all(region_state(vs[topo.STANDBY], r) == "HEALTHY" for r in topo.REGIONS) and
                all(int(r.get("agents_not_reporting", 0)) == 0 for r in regions))
    wait_until(ready, timeout, "every aggregator STAY and every region HEALTHY", interval=0.5)


# ---- the scenarios ----

def steady_state(s):
    """1. Every region HEALTHY; RTT p50 within 10 % of the emulated RTT; loss 0."""
    vs = s.obs.verdicts()
    for region, v in vs.items():
        s.check(short_action(v) == "STAY", f"{region}'s aggregator says STAY (got {short_action(v)})")
        for r in topo.REGIONS:
            s.check(region_state(v, r) == "HEALTHY", f"{region}'s aggregator: {r} HEALTHY (got {region_state(v, r)})")
    # What the RTTs are judged against: the emulated delay, plus the emulator's own error.
    stats = json.loads(s.lab.wan("stats").stdout)
    for d in stats.get("regions", []):
        err = d.get("send_error_ns", {})
        if err.get("count"):
            print(f"   WAN emulator {d['from']} -> {d['to']}: added error p50 {err['p50'] / 1000:.0f} us, "
                  f"p99 {err['p99'] / 1000:.0f} us over {err['count']} datagrams")
    m = s.obs.matrix(topo.STANDBY)
    for a in topo.REGIONS:
        for b in topo.REGIONS:
            if a == b:
                continue
            c = cell(m, a, b)
            if not s.check(c is not None, f"matrix has {a} -> {b}"):
                continue
            rtt, want = seconds(c.get("rtt_p50")), EMULATED_RTT[frozenset([a, b])]
            s.check(abs(rtt - want) <= 0.10 * want,
                    f"{a} -> {b}: RTT p50 {rtt * 1000:.2f} ms within 10 % of the emulated {want * 1000:.0f} ms")
            s.check(c.get("loss_forward") == 0 and c.get("loss_reverse") == 0,
                    f"{a} -> {b}: loss 0 (forward {c.get('loss_forward')}, reverse {c.get('loss_reverse')})")


def node_tunnel_down(s):
    """3. One us-east-1 node's tunnel down: STAY, and a node-fault suspect names it."""
    node = [n for n in s.lab.nodes if n.region == topo.ACTIVE][-1]
    if node.name == s.lab.primary.name:
        raise ScenarioFailed("needs two us-east-1 nodes")
    t = Timeline()
    faults.node_tunnel(s.lab, node.name, down=True)
    samples = s.watch(HOLD + 5, t, topo.ACTIVE)
    s.report("node tunnel down", t)
    s.never_failover(samples)
    last = samples[-1][1]
    for region in OBSERVING:
        s.check(short_action(last[region]) == "STAY", f"{region}'s aggregator says STAY at +{HOLD + 5} s "
                f"(got {short_action(last[region])})")
    named = suspects(last[topo.STANDBY], kind="NODE")
    s.check(any(x.get("node") == node.name for x in named),
            f"eu-west-1's verdict names a node-fault suspect {node.name} (suspects: {named})")
    for region in topo.REGIONS:
        s.check(region_state(last[topo.STANDBY], region) == "HEALTHY",
                f"eu-west-1's aggregator: {region} HEALTHY (a node fault degrades no region)")


def one_way_loss(s):
    """4. 30 % loss us-east-1 -> eu-west-1 only: a DEGRADED link between them (ap-southeast-1
    reaches both), the loss in that direction only, no FAILOVER."""
    t = Timeline()
    s.lab.wan("set", "us-east-1", "eu-west-1", "loss=30%")
    samples = s.watch(HOLD + 5, t, topo.ACTIVE)
    s.report("30 % loss us-east-1 -> eu-west-1", t, topo.ACTIVE)
    s.check(t.get("DEGRADED") is not None, "eu-west-1's aggregator shows the fault as DEGRADED")
    links = suspects(samples[-1][1][topo.STANDBY], kind="LINK", region=topo.ACTIVE)
    link = next((x for x in links if {x.get("region"), x.get("peer_region")} == {topo.ACTIVE, topo.STANDBY}), None)
    s.check(link is not None and link["severity"] == "DEGRADED",
            f"eu-west-1's verdict names the us-east-1 <-> eu-west-1 link, DEGRADED (suspects: {links})")
    if link:
        # Seen from us-east-1 the loss is on the way out; seen from eu-west-1, on the way in.
        want = "FORWARD" if link.get("region") == topo.ACTIVE else "REVERSE"
        s.check(link["direction"] == want, f"the link's loss is {want} from {link.get('region')} (got {link['direction']})")
    s.never_failover(samples)
    m = s.obs.matrix(topo.STANDBY, "10s")
    fwd = cell(m, "us-east-1", "eu-west-1") or {}
    rev = cell(m, "eu-west-1", "us-east-1") or {}
    print(f"   matrix us-east-1 -> eu-west-1: forward {fwd.get('loss_forward')}, reverse {fwd.get('loss_reverse')}; "
          f"eu-west-1 -> us-east-1: forward {rev.get('loss_forward')}, reverse {rev.get('loss_reverse')}")
    s.check(0.2 <= fwd.get("loss_forward", 0) <= 0.4, "probes us-east-1 -> eu-west-1: forward loss near 30 %")
    s.check(fwd.get("loss_reverse", 1) <= 0.03, "probes us-east-1 -> eu-west-1: reverse loss near 0")
    s.check(rev.get("loss_forward", 1) <= 0.03, "probes eu-west-1 -> us-east-1: forward loss near 0")
    s.check(0.2 <= rev.get("loss_reverse", 0) <= 0.4, "probes eu-west-1 -> us-east-1: reverse loss near 30 %")


def aggregator_isolated(s):
    """5. ap-southeast-1 cut off from every region: its aggregator answers HOLD, the others
    answer STAY throughout and never take us-east-1 for UNREACHABLE."""
    t = Timeline()
    faults.blackhole_region(s.lab, "ap-southeast-1")
    samples = s.watch(HOLD + 5, t, "ap-southeast-1")
    s.report("ap-southeast-1 isolated", t)
    last = samples[-1][1]
    s.check(short_action(last["ap-southeast-1"]) == "HOLD",
            f"ap-southeast-1's aggregator answers HOLD (got {short_action(last['ap-southeast-1'])})")
    held = [tt for tt, vs in samples if short_action(vs["ap-southeast-1"]) == "HOLD"]
    if held:
        print(f"   ap-southeast-1's aggregator said HOLD from +{held[0]:.1f} s")
    for region in ("us-east-1", "eu-west-1"):
        bad = [tt for tt, vs in samples if short_action(vs[region]) != "STAY"]
        s.check(not bad, f"{region}'s aggregator says STAY throughout" +
                (f" (not at +{bad[0]:.1f} s)" if bad else ""))
        # What the issue asks: the others answer correctly (STAY, above) and never take the
        # active region for gone. A transient DEGRADED of us-east-1 while ap-southeast-1 is being
        # cut off still happens (its last windows' loss and RTT); it is printed, not hidden.
        states = {region_state(vs[region], "us-east-1") for _, vs in samples}
        s.check("UNREACHABLE" not in states, f"{region}'s aggregator never has us-east-1 UNREACHABLE (saw {states})")
        if region_state(last[region], "us-east-1") != "HEALTHY":
            print(f"   note: {region}'s aggregator still shows us-east-1 {region_state(last[region], 'us-east-1')} "
                  f"at +{HOLD + 5} s (a transient degradation held for the dwell)")


def replica_stopped(s):
    """6. The replica stopped while probes pass: the flow is reported stale with its age; no
    FAILOVER."""
    staleness = s.lab.state["timings"]["replication_staleness"]
    t = Timeline()
    faults.replica(s.lab, "stop")

    def stale(_):
        flows = [f for f in s.obs.flows(topo.STANDBY) if f.get("name") == "postgres"]
        return any(f.get("at_risk") and seconds(f.get("last_progress_age")) >= staleness for f in flows)
    samples = s.watch(HOLD + 5, t, None, stop=None)
    flows = [f for f in s.obs.flows(topo.STANDBY) if f.get("name") == "postgres"]
    print(f"   flows: {[(f.get('node'), f.get('last_progress_age'), f.get('at_risk'), f.get('connections')) for f in flows]}")
    s.check(stale(None), f"the postgres flow is at risk with a progress age of at least {staleness} s")
    v = samples[-1][1][topo.STANDBY] or {}
    eu = next((r for r in v.get("regions", []) if r.get("region") == topo.STANDBY), {})
    age = seconds(eu.get("replication_staleness")) or 0
    s.check(age >= staleness, f"eu-west-1's verdict: replication staleness into eu-west-1 {age:.1f} s >= {staleness} s")
    s.never_failover(samples)
    s.check(region_state(v, topo.ACTIVE) == "HEALTHY", "us-east-1 stays HEALTHY")


def link_flapping(s):
    """7. us-east-1's links flapping 5 s down / 5 s up for a minute: never FAILOVER."""
    t = Timeline()
    samples = []
    for cycle in range(6):
        faults.blackhole_region(s.lab, topo.ACTIVE, on=True)
        samples += s.watch(5, t, topo.ACTIVE)
        faults.blackhole_region(s.lab, topo.ACTIVE, on=False)
        samples += s.watch(5, t, topo.ACTIVE)
    samples += s.watch(HOLD, t, topo.ACTIVE)
    s.report("us-east-1 flapping 5 s / 5 s", t)
    s.never_failover(samples)


def brownout(s):
    """7. Brownout: us-east-1's packets to every region delayed to 250 ms (from 35 ms to
    eu-west-1, 80 ms to ap-southeast-1; the way back as before, so a probe's RTT rises past
    degraded_rtt_p99 of 250 ms without reaching the probe timeout of 500 ms):
    us-east-1 DEGRADED by its RTT within 5 s, no FAILOVER (a slow active region is not a dead
    one: STAY, the would-be target named)."""
    t = Timeline()
    s.lab.wan("set", topo.ACTIVE, "*", "delay=250ms")
    samples = s.watch(HOLD + 5, t, topo.ACTIVE, slow_over=0.25)
    s.report("brownout: us-east-1 -> every region delayed to 250 ms", t, topo.ACTIVE, slow_over=0.25)
    degraded = t.get("DEGRADED")
    s.check(degraded is not None and degraded <= 5, "eu-west-1's aggregator shows us-east-1 DEGRADED within 5 s (" +
            (f"at {degraded:.1f} s)" if degraded is not None else "never)"))
    s.check(region_state(samples[-1][1][topo.STANDBY], topo.ACTIVE) == "DEGRADED",
            "us-east-1 is still DEGRADED at the end of the brownout (not UNREACHABLE, not HEALTHY)")
    s.never_failover(samples)


def region_blackholed(s):
    """2. us-east-1 blackholed: FAILOVER to eu-west-1 within hold + 5 s and never before the
    hold; the controller promotes; RTO and RPO reported."""
    lab = s.lab
    t = Timeline()
    faults.blackhole_region(lab, topo.ACTIVE)
    samples = s.watch(HOLD + 15, t, topo.ACTIVE,
                      stop=lambda vs: all(vs[r] and vs[r].get("action") == "ACTION_FAILOVER" for r in OBSERVING))
    # The FAILOVER time from the aggregators' own history (when they decided), not from when
    # this loop happened to poll: the poll adds up to a second.
    decided = [s.obs.first_transition_to(r, "ACTION_FAILOVER", t.fault_at) for r in OBSERVING]
    decided = [d - t.fault_at for d in decided if d is not None]
    if decided:
        t.first["FAILOVER"] = min(decided)
    s.report("us-east-1 blackholed", t, topo.ACTIVE)
    failover_at = t.get("FAILOVER")
    s.check(failover_at is not None and failover_at >= HOLD,
            f"no FAILOVER before the hold time of {HOLD} s (first at {failover_at})")
    s.check(failover_at is not None and failover_at <= HOLD + 5,
            f"FAILOVER within hold + 5 s = {HOLD + 5} s of the fault (first at {failover_at})")
    targets = {r: vs[r].get("target_region") for _, vs in samples for r in OBSERVING
               if vs[r] and vs[r].get("action") == "ACTION_FAILOVER"}
    s.check(targets and all(x == topo.STANDBY for x in targets.values()),
            f"the FAILOVER target is eu-west-1, the standby with the replica (got {targets})")
    try:
        first = wait_until(lambda: next((e for e in ledger_entries(lab.ledger) if e[2] == topo.STANDBY), None),
                           30, "the first write committed in eu-west-1")
    except LabError as e:
        s.check(False, f"the controller promoted eu-west-1's replica and writes resumed there ({e})")
        return
    promoted = lab.psql(lab.replica, "SELECT pg_is_in_recovery()").stdout.strip() == "f"
    s.check(promoted, "eu-west-1's database is promoted (pg_is_in_recovery() = false)")
    present = {int(i) for i in lab.psql(lab.replica, "SELECT id FROM ledger").stdout.split()}
    written = [(i, ts) for i, ts, region in ledger_entries(lab.ledger) if region == topo.ACTIVE]
    missing = [ts for i, ts in written if i not in present]
    rto = first[1] - t.fault_at
    print(f"   RTO {rto:.1f} s (fault -> first write committed in eu-west-1); RPO {len(missing)} of "
          f"{len(written)} committed transactions missing" +
          (f", {max(missing) - min(missing):.1f} s of writes" if missing else "") +
          " (seed targets: RTO 3 min, RPO 1-2 min)", flush=True)
    s.check(rto <= 180, "RTO within the seed's 3 minutes")


SCENARIOS = [("steady_state", steady_state), ("node_tunnel_down", node_tunnel_down),
             ("one_way_loss", one_way_loss), ("aggregator_isolated", aggregator_isolated),
             ("replica_stopped", replica_stopped), ("link_flapping", link_flapping), ("brownout", brownout),
             # Last: a promoted replica would need a rebuild to restore the lab.
             ("region_blackholed", region_blackholed)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--only", help="comma-separated scenario names")
    args = parser.parse_args()
    wanted = args.only.split(",") if args.only else [name for name, _ in SCENARIOS]
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    started = time.monotonic()
    lab = Lab.create(args.build_dir, timings={"hold": HOLD, "dwell": DWELL})
    results = []
    failed = True
    try:
        lab.up()
        obs = Observer(lab)
        baseline(lab, obs, HOLD + 60)
        for name, scenario in SCENARIOS:
            if name not in wanted:
                continue
            print(f"\n== scenario {name}: {scenario.__doc__.strip()}", flush=True)
            s = Scenario(lab)
            t0 = time.monotonic()
            try:
                scenario(s)
            except (ScenarioFailed, LabError) as e:
                s.failures.append(str(e))
                print(f"   FAIL {e}")
            results.append((name, s.failures, time.monotonic() - t0))
            if name != "region_blackholed":
                faults.restore(lab)
                if name == "replica_stopped":
                    wait_until(lambda: lab.psql(lab.primary, "SELECT count(*) FROM pg_stat_replication WHERE "
                                                "state = 'streaming'", check=False).stdout.strip() == "1",
                               30, "the replica streaming again")
                baseline(lab, obs, DWELL + 60)
        failed = any(f for _, f, _ in results)
    except KeyboardInterrupt:
        print("interrupted")
    except Exception:
        traceback.print_exc()
    finally:
        # A second Ctrl-C must not leave half a lab behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        keep = f"/tmp/regionpulse-lab-logs/{lab.run_name}" if failed else None
        lab.down(keep_logs_to=keep)
        if keep:
            print(f"logs kept in {keep}")
    print(f"\n== e2e summary ({time.monotonic() - started:.0f} s)")
    for name, failures, took in results:
        print(f"   {'PASS' if not failures else 'FAIL'} {name} ({took:.0f} s)")
        for f in failures:
            print(f"        {f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
