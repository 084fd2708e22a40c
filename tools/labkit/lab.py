# The lab's life cycle: it builds three regions of nodes (a network namespace plus a persistent
# mount namespace each) joined by wireguard-go over a hub whose WAN emulator adds the delays,
# starts PostgreSQL replication, the aggregators, the agents, the write load and the failover
# controller, and takes every one of them down again. Its state is a JSON file in
# /run/regionpulse-lab/<run>/ so later `tools/lab` commands find a running lab.
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from . import topology as topo

STATE_ROOT = "/run/regionpulse-lab"
PG_BIN = "/usr/lib/postgresql/15/bin"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Seconds. evidence_window 2 s: a 1 s window sometimes holds no report at all (a window's
# report lands just after the evaluation that would count it) and the verdict stays HOLD.
DEFAULT_TIMINGS = {
    "hold": 10, "dwell": 20, "matrix_window": 10, "evidence_window": 2, "not_reporting_timeout": 3,
    "replication_staleness": 5,
}


class LabError(Exception):
    pass


def log(message):
    print(f"[lab {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run(argv, check=True, capture=True, timeout=60, input_text=None, new_session=False):
    # new_session: what it leaves running (pg_ctl's postmaster) must not get our Ctrl-C.
    result = subprocess.run(argv, input=input_text, text=True, timeout=timeout,
                            stdout=subprocess.PIPE if capture else None,
                            stderr=subprocess.PIPE if capture else None, start_new_session=new_session)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(argv)} exited {result.returncode}: {(result.stderr or '').strip()}")
    return result


def wait_until(predicate, timeout, what, interval=0.2):
    """Polls predicate until it returns something truthy; raises naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def binaries(build_dir):
    b = os.path.abspath(build_dir)
    return {
        "agent": f"{b}/agent/regionpulse-agent",
        "aggregator": f"{b}/aggregator/regionpulse-aggregator",
        "pulsectl": f"{b}/tools/pulsectl/pulsectl",
        "wan": f"{b}/tools/wan_emulator/regionpulse-wan",
        "controller": f"{b}/tools/failover_controller/regionpulse-failover-controller",
    }


class Lab:
    """One lab run. Made by Lab.create (a new run) or Lab.load (a running one, from its state)."""

    def __init__(self, state):
        self.state = state
        self.run_name = state["run"]
        self.dir = state["dir"]
        self.nodes = [topo.Node(**n) for n in state["nodes"]]
        self.bin = state["binaries"]

    # ---- state ----

    @classmethod
    def create(cls, build_dir, counts=None, timings=None, run_name=None):
        run_name = run_name or f"rpl{os.getpid()}"
        state = {
            "run": run_name,
            "dir": f"{STATE_ROOT}/{run_name}",
            "nodes": [vars(n) for n in topo.make_nodes(counts or topo.parse_node_counts(""))],
            "binaries": binaries(build_dir),
            "timings": dict(DEFAULT_TIMINGS, **(timings or {})),
            "processes": {},
            "started_at": time.time(),
        }
        for name, path in state["binaries"].items():
            if not os.access(path, os.X_OK):
                raise LabError(f"{name} binary missing: {path} (build it first)")
        return cls(state)

    @classmethod
    def load(cls, run_name=None):
        runs = list_runs()
        if run_name is None:
            if not runs:
                raise LabError("no lab is running (nothing in " + STATE_ROOT + ")")
            if len(runs) > 1:
                raise LabError("several labs are running (" + ", ".join(runs) + "): name one")
            run_name = runs[0]
        path = f"{STATE_ROOT}/{run_name}/state.json"
        try:
            with open(path) as f:
                return cls(json.load(f))
        except FileNotFoundError:
            raise LabError(f"no state for run {run_name} ({path})")

    def save(self):
        tmp = f"{self.dir}/state.json.tmp"
        with open(tmp, "w") as f:
            json.dump(self.state, f, indent=1)
        os.replace(tmp, f"{self.dir}/state.json")

    # ---- names and commands ----

    def node(self, name):
        for n in self.nodes:
            if n.name == name:
                return n
        raise LabError(f"no node {name!r} (nodes: {', '.join(n.name for n in self.nodes)})")

    def netns(self, node):
        return f"{self.run_name}-{node.name}"

    @property
    def hub(self):
        return f"{self.run_name}-hub"

    def mount_ns(self, node):
        return f"{self.dir}/mnt/{node.name}"

    def in_node(self, node):
        """The argv prefix that runs a command on a node: its network and its mount namespace."""
        return ["nsenter", f"--mount={self.mount_ns(node)}", f"--net=/run/netns/{self.netns(node)}"]

    def in_hub(self):
        return ["nsenter", f"--net=/run/netns/{self.hub}"]

    @property
    def primary(self):
        return topo.first_node(self.nodes, topo.ACTIVE)

    @property
    def replica(self):
        return topo.first_node(self.nodes, topo.STANDBY)

    @property
    def writer_node(self):
        # The write load stands for the application's users: it reaches the database over the
        # WAN, so when us-east-1 goes dark its writes fail as users' would. It runs in the
        # observer region: from eu-west-1 its connections to port 5432 would count as the
        # replication flow into eu-west-1 and hide a stalled replica.
        return [n for n in self.nodes if n.region == "ap-southeast-1"][-1]

    @property
    def wan_socket(self):
        return f"{self.dir}/wan.sock"

    def aggregator_node(self, region):
        return topo.first_node(self.nodes, region)

    # ---- processes ----

    def spawn(self, key, argv, env=None, log_name=None):
        """Starts a long-running process in its own session, output to a log file."""
        log_path = f"{self.dir}/logs/{log_name or key}.log"
        out = open(log_path, "ab")
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(os.environ, **(env or {})), start_new_session=True)
        out.close()
        self.state["processes"][key] = {"pid": proc.pid, "argv": argv, "env": env or {}, "log": log_path}
        self.save()
        return proc.pid

    def alive(self, key):
        info = self.state["processes"].get(key)
        if not info:
            return False
        try:
            os.kill(info["pid"], 0)
        except ProcessLookupError:
            return False
        # A zombie child of ours counts as dead.
        try:
            with open(f"/proc/{info['pid']}/stat") as f:
                return f.read().split(")")[-1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    def stop(self, key, sig=signal.SIGTERM, timeout=10):
        info = self.state["processes"].get(key)
        if not info:
            return
        pid = info["pid"]
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while self.alive(key) and time.monotonic() < deadline:
            reap(pid)
            time.sleep(0.05)
        if self.alive(key):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        reap(pid)

    def restart(self, key):
        info = self.state["processes"][key]
        self.stop(key)
        return self.spawn(key, info["argv"], info["env"], os.path.basename(info["log"])[:-4])

    # ---- bring-up ----

    def up(self):
        os.makedirs(STATE_ROOT, exist_ok=True)
        for sub in ["logs", "mnt", "config", "pg", "wg"]:
            os.makedirs(f"{self.dir}/{sub}", exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.save()
        ensure_kernel_mounts()
        t0 = time.monotonic()
        self._underlay()
        self._wan()
        self._wireguard()
        log(f"network up: {len(self.nodes)} nodes, WireGuard mesh through the WAN emulator "
            f"({time.monotonic() - t0:.1f} s)")
        self._postgres()
        self._aggregators()
        self._agents()
        self._writer()
        self._controller()
        self.state["up_at"] = time.time()
        self.save()
        log(f"lab {self.run_name} up in {time.monotonic() - t0:.1f} s; state in {self.dir}/state.json")

    def _underlay(self):
        run(["ip", "netns", "add", self.hub])
        hub = ["ip", "-n", self.hub]
        run(hub + ["link", "set", "lo", "up"])
        run(hub + ["link", "add", "br0", "type", "bridge"])
        run(hub + ["addr", "add", f"{topo.UNDERLAY_HUB}/{topo.UNDERLAY_PREFIX}", "dev", "br0"])
        run(hub + ["link", "set", "br0", "up"])
        # Persistent mount namespaces need their bind-mount files on a private mount.
        mnt = f"{self.dir}/mnt"
        run(["mount", "--bind", mnt, mnt])
        run(["mount", "--make-private", mnt])
        os.makedirs("/run/wireguard", exist_ok=True)
        for n in self.nodes:
            ns = self.netns(n)
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(hub + ["link", "add", f"n{n.index}", "type", "veth", "peer", "name", "eth0", "netns", ns])
            run(hub + ["link", "set", f"n{n.index}", "master", "br0", "up"])
            run(["ip", "-n", ns, "addr", "add", f"{n.underlay_ip}/{topo.UNDERLAY_PREFIX}", "dev", "eth0"])
            run(["ip", "-n", ns, "link", "set", "eth0", "up"])
            # The node's own mount namespace: a private /run/wireguard, so every node can have
            # its UAPI socket /run/wireguard/cilium_wg0.sock.
            open(self.mount_ns(n), "w").close()
            run(["unshare", f"--mount={self.mount_ns(n)}", "--propagation", "private",
                 "mount", "-t", "tmpfs", "-o", "size=1m", f"{self.run_name}-wg", "/run/wireguard"])

    def _wan(self):
        config = f"{self.dir}/config/wan.yaml"
        write(config, topo.wan_config(self.nodes, self.wan_socket))
        ports = {}
        for line in run([self.bin["wan"], "ports", "--config", config]).stdout.splitlines():
            frm, to, port = line.split()
            ports[(frm, to)] = int(port)
        self.state["relay_ports"] = [[f, t, p] for (f, t), p in ports.items()]
        self.spawn("wan", self.in_hub() + [self.bin["wan"], "--config", config])
        wait_until(lambda: self.wan("show", check=False).returncode == 0, 10, "the WAN emulator's control socket")

    def _wireguard(self):
        keys = {}
        pubs = {}
        for n in self.nodes:
            keys[n.name] = run(["wg", "genkey"]).stdout.strip()
            pubs[n.name] = run(["wg", "pubkey"], input_text=keys[n.name]).stdout.strip()
        ports = {(f, t): p for f, t, p in self.state["relay_ports"]}
        for n in self.nodes:
            self.spawn(f"wireguard-go/{n.name}", self.in_node(n) + ["wireguard-go", "-f", "cilium_wg0"],
                       env={"LOG_LEVEL": "error"}, log_name=f"wireguard-{n.name}")
        for n in self.nodes:
            wait_until(lambda: run(self.in_node(n) + ["test", "-S", "/run/wireguard/cilium_wg0.sock"],
                                   check=False).returncode == 0, 10, f"wireguard-go on {n.name}")
            conf = f"{self.dir}/wg/{n.name}.conf"
            fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(topo.wireguard_config(n, self.nodes, keys, pubs, ports))
            self.node_cmd(n, ["wg", "setconf", "cilium_wg0", conf])
            self._overlay_address(n)
        # Every node reaches every other over the tunnel (the first packet starts a handshake).
        for n in self.nodes:
            for peer in self.nodes:
                if peer.name != n.name:
                    wait_until(lambda: self.node_cmd(n, ["ping", "-c", "1", "-W", "1", peer.overlay_ip],
                                                     check=False).returncode == 0,
                               20, f"a ping from {n.name} to {peer.name} over cilium_wg0", interval=0)

    def _overlay_address(self, n):
        self.node_cmd(n, ["ip", "addr", "add", f"{n.overlay_ip}/32", "dev", "cilium_wg0"])
        self.node_cmd(n, ["ip", "link", "set", "cilium_wg0", "up", "mtu", "1420"])
        for region in topo.REGIONS:
            self.node_cmd(n, ["ip", "route", "replace", topo.CIDRS[region], "dev", "cilium_wg0", "src",
                              n.overlay_ip])

    def node_cmd(self, n, argv, check=True, timeout=60, input_text=None, new_session=False):
        return run(self.in_node(n) + argv, check=check, timeout=timeout, input_text=input_text,
                   new_session=new_session)

    # ---- PostgreSQL: a primary in us-east-1 streaming to a hot standby in eu-west-1 ----

    def pg_dir(self, n):
        return f"{self.dir}/pg/{n.name}"

    def pg_ctl(self, n, action, check=True):
        d = self.pg_dir(n)
        return self.node_cmd(n, ["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", f"{d}/data",
                                 "-l", f"{d}/postgres.log", "-w", "-t", "60", "-m", "fast", action],
                             check=check, timeout=90, new_session=True)

    def psql(self, n, sql, host=None, check=True, timeout=20):
        return self.node_cmd(n, ["psql", "-X", "-q", "-At", "-h", host or n.overlay_ip, "-U", "postgres",
                                 "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             check=check, timeout=timeout)

    def _pg_node_settings(self, n):
        return (f"\n# regionpulse lab, node {n.name}\nlisten_addresses = '{n.overlay_ip}'\nport = {topo.PG_PORT}\n"
                f"unix_socket_directories = '{self.pg_dir(n)}'\n")

    def _postgres(self):
        p, r = self.primary, self.replica
        for n in (p, r):
            os.makedirs(self.pg_dir(n), exist_ok=True)
            shutil.chown(self.pg_dir(n), "postgres", "postgres")
        pdata = f"{self.pg_dir(p)}/data"
        self.node_cmd(p, ["runuser", "-u", "postgres", "--", f"{PG_BIN}/initdb", "-D", pdata, "-A", "trust",
                          "-U", "postgres", "--no-sync"], timeout=120)
        with open(f"{pdata}/postgresql.conf", "a") as f:
            f.write(self._pg_node_settings(p) +
                    "wal_level = replica\nmax_wal_senders = 5\nwal_keep_size = 256MB\nhot_standby = on\n"
                    "fsync = off\nshared_buffers = 32MB\nwal_sender_timeout = 10s\n")
        with open(f"{pdata}/pg_hba.conf", "a") as f:
            f.write("host all all 10.0.0.0/8 trust\nhost replication all 10.0.0.0/8 trust\n")
        self.pg_ctl(p, "start")
        self.psql(p, "CREATE TABLE ledger (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())")
        self.rebuild_replica()
        log(f"PostgreSQL primary on {p.name} ({p.overlay_ip}) streams to a hot standby on {r.name} "
            f"({r.overlay_ip}) over the tunnel")

    def rebuild_replica(self):
        """(Re)creates the eu-west-1 standby from the us-east-1 primary (pg_basebackup -R)."""
        p, r = self.primary, self.replica
        rdata = f"{self.pg_dir(r)}/data"
        if os.path.exists(f"{rdata}/postmaster.pid"):
            self.pg_ctl(r, "stop", check=False)
        shutil.rmtree(rdata, ignore_errors=True)
        self.node_cmd(r, ["runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_basebackup", "-h", p.overlay_ip, "-U",
                          "postgres", "-D", rdata, "-R", "-X", "stream", "-c", "fast", "--no-sync"], timeout=120)
        with open(f"{rdata}/postgresql.conf", "a") as f:
            f.write(self._pg_node_settings(r) + "wal_receiver_timeout = 10s\n")
        self.pg_ctl(r, "start")
        wait_until(lambda: self.psql(p, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'",
                                     check=False).stdout.strip() == "1", 30, "the standby to stream")

    # ---- regionpulse ----

    def _aggregators(self):
        for region in topo.REGIONS:
            n = self.aggregator_node(region)
            config = f"{self.dir}/config/aggregator-{region}.yaml"
            write(config, topo.aggregator_config(region, self.state["timings"],
                                                 f"{self.dir}/aggregator-{region}/history.log"))
            os.makedirs(f"{self.dir}/aggregator-{region}", exist_ok=True)
            self.spawn(f"aggregator/{region}",
                       self.in_node(n) + [self.bin["aggregator"], "--config", config, "--plaintext",
                                          "--grpc-listen", f"{n.overlay_ip}:{topo.AGGREGATOR_PORT}",
                                          "--metrics-listen", f"{n.overlay_ip}:9101"],
                       log_name=f"aggregator-{region}")

    def _agents(self):
        key = f"{self.dir}/config/probe.key"
        with open(key, "wb") as f:
            f.write(os.urandom(32))
        for n in self.nodes:
            config = f"{self.dir}/config/agent-{n.name}.yaml"
            write(config, topo.agent_config(n, self.nodes, key, self.primary))
            self.start_agent(n)

    def start_agent(self, n):
        config = f"{self.dir}/config/agent-{n.name}.yaml"
        # HOST_IP is what the downward API sets: the address the agent announces for probes.
        # Every closed report as a JSON line (report_log): what the scenarios read the first
        # window showing a fault from (its window_end), not from when they polled.
        return self.spawn(f"agent/{n.name}", self.in_node(n) + [self.bin["agent"], "--config", config,
                                                                 "--report-log", self.report_log(n)],
                          env={"HOST_IP": n.overlay_ip}, log_name=f"agent-{n.name}")

    def report_log(self, n):
        return f"{self.dir}/reports-{n.name}.jsonl"

    # ---- the write load and the failover controller ----

    @property
    def writer_target_file(self):
        return f"{self.dir}/writer.target"

    @property
    def ledger(self):
        return f"{self.dir}/ledger.log"

    def point_writer(self, n):
        tmp = self.writer_target_file + ".tmp"
        write(tmp, f"{n.region} host={n.overlay_ip} port={topo.PG_PORT} user=postgres dbname=postgres\n")
        os.replace(tmp, self.writer_target_file)

    def _writer(self):
        self.point_writer(self.primary)
        self.spawn("writer", self.in_node(self.writer_node) + [
            "/usr/bin/python3", f"{REPO}/tools/lab_writer", "--target-file", self.writer_target_file,
            "--ledger", self.ledger, "--rate", "20", "--connections", "6"], log_name="writer")
        wait_until(lambda: ledger_entries(self.ledger), 30, "the first committed write")

    def hook_script(self, region):
        """The controller's hook for a FAILOVER to the standby: promote, then repoint the writes.
        It runs where the controller runs, on the replica's node (its namespaces)."""
        r = self.replica
        path = f"{self.dir}/config/failover-to-{region}.sh"
        write(path, f"""#!/bin/sh
# Failover hook of the lab (run by regionpulse-failover-controller): promote the {region}
# replica and send the application's writes there.
set -eu
psql -X -At -h {r.overlay_ip} -U postgres -d postgres -c 'SELECT pg_promote(true, 30)'
printf '%s\\n' '{r.region} host={r.overlay_ip} port={topo.PG_PORT} user=postgres dbname=postgres' > {self.writer_target_file}.tmp
mv {self.writer_target_file}.tmp {self.writer_target_file}
echo "promoted {r.name} and repointed the write load"
""")
        os.chmod(path, 0o755)
        return path

    def _controller(self):
        config = f"{self.dir}/config/controller.yaml"
        # Aggregators outside the active region first; the controller skips a verdict from the
        # active region's own aggregator anyway.
        order = [r for r in topo.REGIONS if r != topo.ACTIVE] + [topo.ACTIVE]
        write(config, topo.controller_config([topo.aggregator_address(self.nodes, r) for r in order],
                                             f"{self.dir}/controller.state",
                                             {topo.STANDBY: [self.hook_script(topo.STANDBY)]}))
        self.start_controller()

    def start_controller(self):
        n = self.replica  # the controller runs in eu-west-1, next to what it promotes
        return self.spawn("controller", self.in_node(n) + [self.bin["controller"], "--config",
                                                            f"{self.dir}/config/controller.yaml"])

    # ---- the WAN ----

    def wan(self, *args, check=True):
        return run([self.bin["wan"], "ctl", "--socket", self.wan_socket] + list(args), check=check)

    # ---- teardown ----

    def down(self, keep_logs_to=None):
        if keep_logs_to:
            shutil.copytree(f"{self.dir}/logs", keep_logs_to, dirs_exist_ok=True)
            for n in (self.primary, self.replica):
                if os.path.exists(f"{self.pg_dir(n)}/postgres.log"):
                    shutil.copy(f"{self.pg_dir(n)}/postgres.log", f"{keep_logs_to}/postgres-{n.name}.log")
        # The controller and the writer first (they act on the rest), then agents (they flush),
        # aggregators, PostgreSQL, WireGuard and the emulator.
        procs = self.state["processes"]
        order = (["controller", "writer"] + [k for k in procs if k.startswith("agent/")] +
                 [k for k in procs if k.startswith("aggregator/")])
        # Each group is signalled at once and then awaited: agents flush for up to 5 s each
        # when an aggregator is unreachable, and one after the other that adds up.
        for group in (order[:2], [k for k in order[2:] if k.startswith("agent/")],
                      [k for k in order if k.startswith("aggregator/")]):
            for key in group:
                if key in procs and self.alive(key):
                    os.kill(procs[key]["pid"], signal.SIGTERM)
            for key in group:
                if key in procs:
                    self.stop(key, timeout=6)
        for n in (self.primary, self.replica):
            if os.path.exists(f"{self.pg_dir(n)}/data/postmaster.pid"):
                self.pg_ctl(n, "stop", check=False)
        teardown_run(self.run_name)


def reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def ledger_entries(path):
    """The write load's ledger: one line per committed transaction, 'ID UNIX_TIME REGION'."""
    try:
        with open(path) as f:
            return [(int(i), float(t), region) for i, t, region in (line.split() for line in f if line.strip())]
    except FileNotFoundError:
        return []


def ensure_kernel_mounts():
    for target, fstype in [("/sys/fs/bpf", "bpf"), ("/sys/kernel/tracing", "tracefs")]:
        if subprocess.run(["mountpoint", "-q", target]).returncode != 0:
            run(["mount", "-t", fstype, fstype, target])


def list_runs():
    if not os.path.isdir(STATE_ROOT):
        return []
    return sorted(d for d in os.listdir(STATE_ROOT) if os.path.isdir(f"{STATE_ROOT}/{d}"))


def lab_namespaces(run_name=None):
    out = run(["ip", "netns", "list"], check=False).stdout
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    if run_name:
        return [n for n in names if n.startswith(run_name + "-")]
    return [n for n in names if n.startswith("rpl") and "-" in n and n.split("-")[0][3:].isdigit()]


def teardown_run(run_name):
    """Removes everything of one run, whatever state it is in: every process in its
    namespaces (PostgreSQL included), the namespaces, the mount namespaces and the run dir."""
    namespaces = lab_namespaces(run_name)
    # Processes whose network namespace is the run's: TERM, then KILL what is left.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = set()
        for ns in namespaces:
            pids.update(int(p) for p in run(["ip", "netns", "pids", ns], check=False).stdout.split())
        pids.discard(os.getpid())
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while pids and time.monotonic() < deadline:
            for pid in list(pids):
                reap(pid)
                if not os.path.exists(f"/proc/{pid}") or _is_zombie(pid):
                    pids.discard(pid)
            time.sleep(0.05)
    for ns in namespaces:
        run(["ip", "netns", "del", ns], check=False)
    d = f"{STATE_ROOT}/{run_name}"
    mnt = f"{d}/mnt"
    if os.path.isdir(mnt):
        for name in os.listdir(mnt):
            run(["umount", f"{mnt}/{name}"], check=False)
        run(["umount", mnt], check=False)
    wan_socket = f"{d}/wan.sock"
    if os.path.exists(wan_socket):
        os.unlink(wan_socket)
    shutil.rmtree(d, ignore_errors=True)


def _is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def teardown_all():
    runs = set(list_runs())
    runs.update(ns.split("-")[0] for ns in lab_namespaces())
    for r in sorted(runs):
        log(f"tearing down {r}")
        teardown_run(r)
    return sorted(runs)
