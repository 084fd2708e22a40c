# Shared by the agent benchmarks (rtt_accuracy, agent_cost); sourced, not run.
# Network namespaces joined by veth, regionpulse-agent processes in them with their reports
# logged (--report-log), and the machine's state each published figure has to name.

# bench_build BUILD_DIR TARGET...: builds the targets whose binaries are missing (nice, -j2:
# the machine is shared).
bench_build() {
  local build=$1
  shift
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  nice cmake --build "$build" -j2 --target "$@" >/dev/null
}

# bench_install COMMAND PACKAGE: installs the Debian package when the command is missing.
bench_install() {
  command -v "$1" >/dev/null && return
  apt-get install -y -qq "$2" >/dev/null
}

# A 128-bit probe key as 32 hex digits, what the agents' key_file holds.
bench_probe_key() { od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; }

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# Time the hypervisor ran something else on our vCPUs (all CPUs), in ms.
steal_ms() { awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.0f", $9 * 1000 / hz }' /proc/stat; }
# CPU time of a process (utime + stime, all threads), in microseconds.
cpu_us() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f", ($14 + $15) * 1e6 / hz }' "/proc/$1/stat"; }
# Resident set of a process, in KiB.
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
# Peak resident set of a process, in KiB.
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

bench_machine() {
  echo "$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) vCPUs, $(free -g | awk '/^Mem:/ {print $2}') GiB, kernel $(uname -r)"
}

# bench_agent_yaml NODE REGION ADDRESS IFACE KEY_FILE INTERVAL REGION_LINES PEER_LINES: an agent
# configuration with no aggregator, probing its static peers. REGION_LINES and PEER_LINES are
# YAML list items, one per line ("  - {name: r, cidrs: [...]}", "  - {node: ..., port: ...}").
# The reflector listens on every address of the namespace (port 8620).
bench_agent_yaml() {
  cat <<YAML
node: $1
region: $2
zone: $2a
regions:
$7
probe:
  port: 8620
  listen_address: 0.0.0.0
  advertise_address: $3
  interval: $6
  timeout: 500ms
  key_file: $5
  # Every target of a bench is one reflector reached from one address: thousands of sessions
  # from one source, far beyond a real node's per-source rate.
  reflector_limits: {rate_per_source: 1000000, burst_per_source: 1000000}
  # No aggregator plans here: room in a report for up to 8,000 static peers (the agent refuses
  # static peers plus max_targets above the 8,192 paths a report carries).
  plan_limits: {max_targets: 192}
window: 1s
interfaces: [$4]
status:
  listen: 127.0.0.1:0
static_peers:
$8
YAML
}
