# `tools/lab demo`, the README's main command: the seed's incident end to end. The active
# region goes dark, the verdict waits out the hold time, the failover controller promotes the
# replica in eu-west-1, and the recovery time and the data lost are measured, not assumed.
import os
import signal
import subprocess
import sys
import time

from . import faults
from . import topology as topo
from .lab import REPO, Lab, LabError, ledger_entries, log, wait_until
from .observe import Observer, Timeline, region_state, seconds, short_action

SEED_RTO_S = 180  # the seed platform's targets: RTO 3 min, RPO 1-2 min
SEED_RPO_S = (60, 120)
TARGETS = ["regionpulse-agent", "regionpulse-aggregator", "pulsectl", "regionpulse-wan",
           "regionpulse-failover-controller"]


def say(text=""):
    print(text, flush=True)


def heading(text):
    say()
    say(f"== {text}")


def setup_and_build(build_dir):
    heading("installing Debian packages (tools/setup) and building the programs")
    subprocess.run([f"{REPO}/tools/setup"], check=True)
    subprocess.run(["cmake", "-S", REPO, "-B", build_dir, "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                    "-DREGIONPULSE_BUILD_TESTS=OFF"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", build_dir, "-j", str(os.cpu_count() or 2), "--target"] + TARGETS,
                   check=True)


class Demo:
    def __init__(self, lab):
        self.lab = lab
        self.obs = Observer(lab)
        self.failures = []
        self.predicted_at_most = None

    def expect(self, ok, what):
        if not ok:
            self.failures.append(what)
            say(f"   !! NOT AS EXPECTED: {what}")
        return ok

    def run(self):
        lab, obs = self.lab, self.obs
        hold = lab.state["timings"]["hold"]
        dwell = lab.state["timings"]["dwell"]
        heading(f"waiting for every aggregator to leave HOLD: each refuses to answer before it has a "
                f"full hold window ({hold} s) of data")
        wait_until(lambda: all(short_action(obs.verdict(r)) == "STAY" for r in topo.REGIONS), hold + 60,
                   "STAY from every aggregator")
        say(obs.text(topo.STANDBY, "agents"))
        say(obs.text(topo.STANDBY, "matrix"))
        say(obs.text(topo.STANDBY, "status"))
        say(obs.text(topo.ACTIVE, "flows"))
        before = len(ledger_entries(lab.ledger))
        say(f"the write load has committed {before} transactions to the us-east-1 primary so far")

        heading(f"us-east-1 goes dark: the WAN emulator blackholes every link to and from it. The hold "
                f"time is {hold} s in this demo (120 s by default), so FAILOVER may come only after it")
        fault_at = time.time()
        faults.blackhole_region(lab, topo.ACTIVE)
        timeline = Timeline(fault_at)
        seen_states = []
        failover_verdict = None
        deadline = time.monotonic() + hold + 40
        while time.monotonic() < deadline:
            v = obs.verdict(topo.STANDBY)
            state = region_state(v, topo.ACTIVE)
            action = short_action(v)
            label = f"us-east-1 {state}, verdict {action}"
            if not seen_states or seen_states[-1] != label:
                seen_states.append(label)
                say(f"   +{time.time() - fault_at:5.1f} s  eu-west-1's aggregator: {label}")
            timeline.mark("DEGRADED", state in ("DEGRADED", "UNREACHABLE"))
            timeline.mark("UNREACHABLE", state == "UNREACHABLE")
            if v and v.get("action") == "ACTION_FAILOVER":
                timeline.mark("FAILOVER", True)
                failover_verdict = v
                break
            time.sleep(0.25)
        if not self.expect(failover_verdict is not None, f"no FAILOVER within hold + 40 s"):
            say(obs.text(topo.STANDBY, "status"))
            return
        # When eu-west-1's aggregator decided, from its history (the poll above adds up to a second).
        decided = obs.first_transition_to(topo.STANDBY, "ACTION_FAILOVER", fault_at)
        if decided is not None:
            timeline.first["FAILOVER"] = decided - fault_at
        failover_s = timeline.get("FAILOVER")
        self.expect(failover_s >= hold, f"FAILOVER after {failover_s:.1f} s, before the hold time of {hold} s")
        target = failover_verdict.get("target_region")
        self.expect(target == topo.STANDBY,
                    f"FAILOVER target is {target}, not {topo.STANDBY} (the only region with the replica)")
        say(obs.text(topo.STANDBY, "status"))
        self.print_data_at_risk(failover_verdict)

        heading("the failover controller (reading eu-west-1's aggregator) runs its hook: pg_promote() on "
                "the eu-west-1 replica, then repoints the write load")
        if target != topo.STANDBY:
            say(f"   the controller has hooks for {topo.STANDBY} only: for a FAILOVER to {target} it does nothing "
                f"and leaves the decision to a human")
            say(self.controller_log())
            self.restore_and_recover(dwell)
            return
        try:
            first_new = wait_until(lambda: next((e for e in ledger_entries(lab.ledger) if e[2] == topo.STANDBY),
                                                None), 60, "the first committed write in eu-west-1")
        except LabError as e:
            self.expect(False, str(e))
            say(self.controller_log())
            return
        say(self.controller_log())
        rto = first_new[1] - fault_at
        rpo_missing, rpo_window = self.rpo()
        heading("what it cost, measured")
        say(f"   RTO  {rto:6.1f} s   from the blackhole to the first write committed in eu-west-1 "
            f"(seed target: {SEED_RTO_S // 60} min)")
        say(f"   RPO  {rpo_missing:6d} committed transactions missing in the promoted eu-west-1 database"
            + (f", spanning the last {rpo_window:.1f} s before the cut" if rpo_missing else "")
            + f" (seed target: {SEED_RPO_S[0] // 60}-{SEED_RPO_S[1] // 60} min of writes)")
        if self.predicted_at_most is not None:
            say(f"        the verdict had said at most {self.predicted_at_most:.1f} s of writes were at risk")
        say(f"   detection: {timeline.describe(['DEGRADED', 'UNREACHABLE', 'FAILOVER'])} after the fault; "
            f"hold {hold} s")
        self.expect(rto <= SEED_RTO_S, f"RTO {rto:.0f} s exceeds the seed's {SEED_RTO_S} s")
        self.rto, self.rpo_missing = rto, rpo_missing

        self.restore_and_recover(dwell)

    def restore_and_recover(self, dwell):
        obs = self.obs
        heading(f"the link comes back: us-east-1 must look healthy for the dwell ({dwell} s) before its "
                f"state recovers")
        faults.blackhole_region(self.lab, topo.ACTIVE, on=False)
        restored_at = time.time()
        try:
            wait_until(lambda: region_state(obs.verdict(topo.STANDBY), topo.ACTIVE) == "HEALTHY", dwell + 60,
                       "us-east-1 HEALTHY again")
            say(f"   us-east-1 HEALTHY again {time.time() - restored_at:.1f} s after the link came back")
        except LabError as e:
            self.expect(False, str(e))
        say(obs.text(topo.STANDBY, "status"))
        say("   The controller does not fail back on its own: after a failover it stays latched until an "
            "operator re-arms it (--rearm) or the aggregators name eu-west-1 active and say STAY.")

    def print_data_at_risk(self, verdict):
        """What the verdict said failing over would lose, flow by flow, before anyone acted."""
        risks = verdict.get("data_at_risk", [])
        limit = seconds(verdict.get("max_data_loss")) or 0
        for r in risks:
            say(f"   data at risk, {r.get('flow')} into {r.get('target_region')}: the replica was "
                f"{seconds(r.get('replica_lag')) or 0:.1f} s behind in the last report from {r.get('source_region')}, "
                f"{int(r.get('bytes_outstanding', 0))} bytes unacknowledged, and {r.get('source_region')} was seen "
                f"{seconds(r.get('evidence_gap')) or 0:.1f} s after that report: at most "
                f"{seconds(r.get('at_most')) or 0:.1f} s of writes (max_data_loss {limit:.0f} s)")
        if not risks:
            say("   the verdict names no replication flow into the target: what failing over loses is unknown")
        if verdict.get("manual_decision"):
            say("   beyond max_data_loss: the verdict is HOLD for a person to decide")
        self.predicted_at_most = max((seconds(r.get("at_most")) or 0 for r in risks), default=None)

    def controller_log(self):
        path = self.lab.state["processes"]["controller"]["log"]
        with open(path) as f:
            lines = [line.rstrip() for line in f if any(
                k in line for k in ("FAILOVER", "decision: FAILOVER", "hook", "failover from", "running"))]
        return "\n".join("   " + line for line in lines[-8:])

    def rpo(self):
        """Committed ids in the ledger (written to us-east-1) that the promoted database lacks."""
        lab = self.lab
        out = lab.psql(lab.replica, "SELECT id FROM ledger").stdout.split()
        present = {int(i) for i in out}
        written = [(i, t) for i, t, region in ledger_entries(lab.ledger) if region == topo.ACTIVE]
        missing = [(i, t) for i, t in written if i not in present]
        if not missing:
            return 0, 0.0
        return len(missing), max(t for _, t in missing) - min(t for _, t in missing)


def main(args):
    started = time.monotonic()
    build_dir = os.path.abspath(args.build_dir)
    if not args.no_setup:
        setup_and_build(build_dir)
    build_s = time.monotonic() - started
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    lab = Lab.create(build_dir, timings={"hold": args.hold, "dwell": 2 * args.hold})
    heading(f"starting lab {lab.run_name}: 3 regions x 2 nodes, WireGuard (cilium_wg0) through the WAN "
            f"emulator (35 ms each way us-east-1<->eu-west-1, 80 ms to ap-southeast-1), an aggregator per "
            f"region, PostgreSQL us-east-1 -> eu-west-1, a write load, the failover controller")
    demo = Demo(lab)
    failed = False
    try:
        lab.up()
        demo.run()
    except KeyboardInterrupt:
        say("interrupted")
        failed = True
    except Exception as e:  # the demo says what broke, then tears down
        say(f"tools/lab demo: {type(e).__name__}: {e}")
        failed = True
    finally:
        failed = failed or bool(demo.failures)
        # A second Ctrl-C must not leave half a lab behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        keep = f"/tmp/regionpulse-lab-logs/{lab.run_name}" if failed else None
        heading("tearing the lab down")
        lab.down(keep_logs_to=keep)
        if keep:
            say(f"logs kept in {keep}")
    total = time.monotonic() - started
    heading("summary")
    if failed:
        for f in demo.failures:
            say(f"   - {f}")
        say(f"the demo did NOT show what it should (above); {total:.0f} s")
        return 1
    say(f"   us-east-1 went dark; the verdict waited out the {args.hold} s hold and said FAILOVER to eu-west-1; "
        f"the controller promoted the replica;")
    say(f"   writes resumed in eu-west-1 {demo.rto:.1f} s after the fault with {demo.rpo_missing} committed "
        f"transactions lost (seed targets: RTO 3 min, RPO 1-2 min).")
    say(f"   {total:.0f} s in all ({build_s:.0f} s installing and building); nothing left behind.")
    return 0
