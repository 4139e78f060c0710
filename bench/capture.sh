#!/usr/bin/env bash
# Live capture benchmark: nta's AF_PACKET TPACKET_V3 capture against tcpdump and
# pmacctd on the same veth at the same rates.
#
# A veth pair joins the host to a namespace made here; trafgen (netsniff-ng) in
# that namespace sends 64-byte UDP frames (60 bytes + FCS) of FLOWS flows to
# the host end, pinned to CPU 0; each capture tool runs alone on the host end,
# pinned to CPU 1. Frames go to a MAC that is not the host end's and to
# 198.18.0.0/15, so the host stack drops them (PACKET_OTHERHOST): nothing is
# forwarded anywhere.
#
# Per rate and tool: packets the host end received (ip -s link, the offered
# load), the kernel's ring drops as the tool reports them, what the tool
# counted, and the tool's CPU time (utime+stime of it and its children from
# /proc/PID/stat) over the send, as % of one core.
#
# Usage: sudo bench/capture.sh [rates...]     (default: 100000 250000 400000 550000 max)
# Env:   SECONDS_PER_RATE (8), MAX_COUNT (5000000), FLOWS (4000), OUT (bench/results-capture.md),
#        NTA_ARGS (extra nta-capture-bench flags, e.g. "-fanout 2"), TOOLS ("nta tcpdump pmacctd"),
#        REPEAT (1: runs per rate and tool, one table row each)
# Needs: root, iproute2, go, trafgen (netsniff-ng), tcpdump, pmacct (pmacctd, pmacct).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(100000 250000 400000 550000 max)
per_rate=${SECONDS_PER_RATE:-8}
max_count=${MAX_COUNT:-5000000}
flows=${FLOWS:-4000}
out=${OUT:-$here/results-capture.md}
nta_args=${NTA_ARGS:-}
read -r -a tools <<<"${TOOLS:-nta tcpdump pmacctd}"
repeat=${REPEAT:-1}

die() { echo "capture.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (creates a network namespace and captures)"
for t in ip go trafgen tcpdump pmacctd pmacct taskset; do
	command -v "$t" >/dev/null || die "$t not found — apt-get install -y iproute2 netsniff-ng tcpdump pmacct util-linux"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs: the generator on CPU 0, the capture on CPU 1"

id=$$
ns=ntab-gen-$id
host=ntab$id
peer=ntabp$id
work=$(mktemp -d /tmp/nta-capture-bench.XXXXXX)
tool_pid=

cleanup() {
	if [ -n "$tool_pid" ] && kill -0 "$tool_pid" 2>/dev/null; then
		kill -TERM "$tool_pid" 2>/dev/null || true
		wait "$tool_pid" 2>/dev/null || true
	fi
	ip link del "$host" 2>/dev/null || true
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "building nta-capture-bench" >&2
(cd "$root" && CGO_ENABLED=0 go build -o "$here/nta-capture-bench" ./bench/capturebench)

ip netns add "$ns"
ip link add "$host" type veth peer name "$peer" netns "$ns"
sysctl -qw "net.ipv6.conf.$host.disable_ipv6=1"
ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$peer.disable_ipv6=1"
ip link set "$host" up
ip -n "$ns" link set "$peer" up

# 14 Ethernet + 20 IPv4 + 8 UDP + 18 payload = 60 bytes; source port cycles over $flows values.
cat >"$work/trafgen.cfg" <<EOF
{ eth(da=02:6e:74:61:00:02, sa=02:6e:74:61:00:01), ipv4(sa=198.18.0.1, da=198.18.0.2, ttl=64), udp(sp=dinc(1024, $((1024 + flows - 1))), dp=9), fill(0x41, 18) }
EOF

cat >"$work/pmacctd.conf" <<EOF
daemonize: false
pcap_interface: $host
promisc: false
aggregate: src_host, dst_host, src_port, dst_port, proto
plugins: memory
imt_path: $work/pmacct.pipe
! Defaults lose data between the core and the plugin at these rates
! ("Missing data detected"); these follow CONFIG-KEYS' 1:1000 advice.
plugin_buffer_size: 102400
plugin_pipe_size: 102400000
pmacctd_pipe_size: 4194304
EOF

rx_packets() { ip -s -j link show dev "$host" | sed -E 's/.*"rx":\{[^}]*"packets":([0-9]+).*/\1/'; }

# cpu_ticks PID: utime+stime of PID and its children, in clock ticks.
cpu_ticks() {
	local sum=0 p f
	for p in "$1" $(pgrep -P "$1" || true); do
		[ -r "/proc/$p/stat" ] || continue
		f=$(sed -E 's/^.*\) //' "/proc/$p/stat")
		set -- $f
		sum=$((sum + ${12} + ${13}))
	done
	echo "$sum"
}

# wait_ready FILE PATTERN: wait until a tool says it is capturing.
wait_ready() {
	local i
	for i in $(seq 100); do
		grep -q "$2" "$1" 2>/dev/null && { sleep 0.5; return 0; }
		sleep 0.1
	done
	die "tool did not start: $(cat "$1")"
}

start_tool() {
	: >"$work/tool.out"
	: >"$work/tool.err"
	case $1 in
	nta)
		# shellcheck disable=SC2086
		taskset -c 1 "$here/nta-capture-bench" -iface "$host" $nta_args >"$work/tool.out" 2>"$work/tool.err" &
		tool_pid=$!
		wait_ready "$work/tool.err" running
		;;
	tcpdump)
		# Same ring size (4 MiB) and snap length (256) as nta's defaults; no promiscuous mode.
		taskset -c 1 tcpdump -i "$host" -p -n -s 256 -B 4096 -w /dev/null >"$work/tool.out" 2>"$work/tool.err" &
		tool_pid=$!
		wait_ready "$work/tool.err" listening
		;;
	pmacctd)
		rm -f "$work/pmacct.pipe"
		taskset -c 1 pmacctd -f "$work/pmacctd.conf" >"$work/tool.out" 2>"$work/tool.err" &
		tool_pid=$!
		wait_ready "$work/tool.err" "waiting for data"
		;;
	esac
}

# stop_tool TOOL: writes "kernel_packets kernel_drops counted" to $work/stop.
stop_tool() {
	local counted=0 kp kd
	case $1 in
	nta)
		kill -INT "$tool_pid"
		wait "$tool_pid" || true
		read -r kp kd counted <<<"$(sed -E 's/.*"kernel_packets":([0-9]+),"kernel_drops":([0-9]+),.*"table_packets":([0-9]+).*/\1 \2 \3/' "$work/tool.out")"
		;;
	tcpdump)
		kill -INT "$tool_pid"
		wait "$tool_pid" || true
		counted=$(sed -nE 's/^([0-9]+) packets captured.*/\1/p' "$work/tool.err")
		kp=$(sed -nE 's/^([0-9]+) packets received by filter.*/\1/p' "$work/tool.err")
		kd=$(sed -nE 's/^([0-9]+) packets dropped by kernel.*/\1/p' "$work/tool.err")
		;;
	pmacctd)
		sleep 1 # let the core flush its buffer to the plugin
		counted=$(pmacct -s -p "$work/pmacct.pipe" | awk '$1 ~ /^[0-9]/ && NF >= 7 { p += $(NF-1) } END { print p + 0 }')
		kill -INT "$tool_pid"
		wait "$tool_pid" || true
		# pmacctd prints the pcap statistics on exit, on stdout.
		kp=$(cat "$work/tool.out" "$work/tool.err" | sed -nE 's/.*received_packets=([0-9]+).*/\1/p' | tail -1)
		kd=$(cat "$work/tool.out" "$work/tool.err" | sed -nE 's/.*dropped_packets=([0-9]+).*/\1/p' | tail -1)
		;;
	esac
	tool_pid=
	echo "${kp:-?} ${kd:-?} ${counted:-0}" >"$work/stop"
}

results=$work/results.tsv
for rate in "${rates[@]}"; do
	for run in $(seq "$repeat"); do for tool in "${tools[@]}"; do
		if [ "$rate" = max ]; then
			count=$max_count
			rate_args=()
		else
			count=$((rate * per_rate))
			rate_args=(-b "${rate}pps")
		fi
		start_tool "$tool"
		load=$(cut -d' ' -f1 /proc/loadavg)
		rx0=$(rx_packets)
		c0=$(cpu_ticks "$tool_pid")
		t0=$(date +%s.%N)
		ip netns exec "$ns" taskset -c 0 trafgen --dev "$peer" --conf "$work/trafgen.cfg" \
			-n "$count" --cpus 1 "${rate_args[@]}" -q >"$work/trafgen.log" 2>&1 ||
			die "trafgen failed: $(tail -5 "$work/trafgen.log")"
		t1=$(date +%s.%N)
		c1=$(cpu_ticks "$tool_pid")
		sleep 0.5 # let the tool drain its ring before stopping it
		rx=$(($(rx_packets) - rx0))
		stop_tool "$tool"
		read -r kp kd counted <"$work/stop"
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$rate" "$tool" "$rx" "$t0" "$t1" "$((c1 - c0))" "$kp" "$kd" "$counted" "$load" >>"$results"
		echo "rate=$rate run=$run tool=$tool sent=$rx kernel_packets=$kp drops=$kd counted=$counted" >&2
	done; done
done

tck=$(getconf CLK_TCK)
{
	echo "# Capture benchmark"
	echo
	echo "$(date -u +%Y-%m-%dT%H:%MZ) on Linux $(uname -r), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'))."
	echo "trafgen $(trafgen --version 2>/dev/null | sed -n 's/^trafgen \([^ ]*\).*/\1/p' | head -1) on CPU 0 in a namespace, capture on CPU 1, $flows UDP flows of 60-byte frames (64 on the wire)."
	echo "Command: \`sudo bench/capture.sh ${rates[*]}\` (SECONDS_PER_RATE=$per_rate, REPEAT=$repeat${nta_args:+, NTA_ARGS=\"$nta_args\"})."
	echo
	echo "- nta: \`nta-capture-bench\` (flowagg Capturer + Aggregator), defaults: 16 × 256 KiB TPACKET_V3 ring, snaplen 256 via the socket filter."
	echo "- tcpdump: \`tcpdump -p -n -s 256 -B 4096 -w /dev/null\` (same ring size and snaplen); counted = packets captured."
	echo "- pmacctd: memory plugin, \`aggregate: src_host, dst_host, src_port, dst_port, proto\`, plugin_buffer_size 100 KB, plugin_pipe_size 100 MB, pmacctd_pipe_size 4 MiB; counted = sum of packets in \`pmacct -s\`."
	echo "- sent = packets the host end of the veth received (ip -s link); rate = sent / trafgen run time;"
	echo "  kernel pkts/drops = the tool's own report of PACKET_STATISTICS (tp_packets includes drops);"
	echo "  lost = sent − counted; CPU = user+system time of the tool (and children) during the send, % of one core;"
	echo "  load = 1-minute load average when the run started (the machine is shared: other builds and tests run on it)."
	echo
	echo "| target pps | tool | sent | rate kpps | kernel pkts | kernel drops | counted | lost % | CPU % | load |"
	echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
	awk -F'\t' -v tck="$tck" '{
		wall = $5 - $4; kpps = $3 / wall / 1000; cpu = $6 / tck / wall * 100
		lost = $3 > 0 ? ($3 - $9) / $3 * 100 : 0
		printf "| %s | %s | %d | %.0f | %s | %s | %d | %.2f | %.1f | %s |\n", $1, $2, $3, kpps, $7, $8, $9, lost, cpu, $10
	}' "$results"
	echo
	# Knee: the lowest rate from which every nta run lost more than 0.1 %.
	awk -F'\t' '$2 == "nta" {
		wall = $5 - $4; n++; rate[n] = $3 / wall / 1000; target[n] = $1
		lossy[n] = ($3 - $9) / $3 > 0.001; drops[n] = $8 + 0
	} END {
		knee = 0
		for (i = n; i >= 1 && lossy[i]; i--) knee = i
		some = ""
		for (i = 1; i <= n; i++) if (drops[i] > 0) some = some sprintf(" %.0f kpps (%d drops);", rate[i], drops[i])
		if (knee) printf "Knee: nta loses more than 0.1 %% from %.0f kpps (target %s) up.\n", rate[knee], target[knee]
		else printf "Knee: not reached; nta lost at most 0.1 %% at every rate tried (up to what one trafgen CPU sends).\n"
		if (some != "") printf "nta runs with kernel drops:%s\n", some
	}' "$results"
} >"$out"
cat "$out"
