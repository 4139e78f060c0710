#!/usr/bin/env bash
# Scrape cost of large flow tables while capture runs: the real exporter
# captures on a veth fed by trafgen at RATE pps over FLOWS distinct UDP flows
# (2 series per flow); we scrape /metrics SCRAPES times and compare the
# kernel's ring drops during the scrapes with an equally long quiet window.
#
#   sudo bash bench/scrape-flows.sh [FLOWS...]     (default: 5000 50000 → 10k and 100k flow series)
# Env: RATE (250000), SCRAPES (10), QUIET (10 s)
# Needs root, go, trafgen (netsniff-ng), curl.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(5000 50000)
rate=${RATE:-250000}; scrapes=${SCRAPES:-10}; quiet=${QUIET:-10}
ns=ntsf-gen; host=ntsf0; peer=ntsf1; port=19820
work=$(mktemp -d /tmp/nta-scrape-flows.XXXXXX)
cleanup() {
  [ -n "${tg:-}" ] && kill "$tg" 2>/dev/null || true
  [ -n "${ex:-}" ] && kill "$ex" 2>/dev/null || true
  wait 2>/dev/null || true
  ip link del "$host" 2>/dev/null || true; ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
cleanup
CGO_ENABLED=0 go build -o "$work/nta-exporter" ./cmd/nta-exporter
ip netns add "$ns"
ip link add "$host" type veth peer name "$peer" netns "$ns"
sysctl -qw "net.ipv6.conf.$host.disable_ipv6=1"
ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$peer.disable_ipv6=1"
ip link set "$host" up; ip -n "$ns" link set "$peer" up

metric() { awk -v m="$1" -v i="$host" 'index($0, m"{") == 1 && index($0, "interface=\""i"\"") {s += $NF} END {printf "%d", s}' "$2"; }
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }

echo "| flow series | flows in table | scrape p50 ms | scrape max ms | bytes/scrape | gzip bytes | drops in ${quiet}s quiet | drops during ${scrapes} scrapes | capture pps | exporter CPU % |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for flows in "${sizes[@]}"; do
  cat >"$work/tg.cfg" <<CFG
{ eth(da=02:6e:74:61:00:02, sa=02:6e:74:61:00:01), ipv4(sa=198.18.0.1, da=198.18.0.2, ttl=64), udp(sp=dinc(1024, $((1024 + flows - 1))), dp=9), fill(0x41, 18) }
CFG
  "$work/nta-exporter" --web.listen-address=127.0.0.1:$port --log.level=warn --no-collector.docker \
    --collector.flows --collector.flows.roles=none --collector.flows.interfaces=$host --collector.flows.granularity=5tuple \
    --collector.flows.max-flows-per-interface=$((flows + 1000)) --collector.flows.max-flows=$((flows + 1000)) \
    --collector.flows.idle-timeout=10m &
  ex=$!
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$port/metrics" && break; sleep 0.2; done
  sleep 2
  ip netns exec "$ns" taskset -c 0 trafgen --dev "$peer" --conf "$work/tg.cfg" -n $((rate * (quiet + scrapes * 2 + 30))) --cpus 1 -b "${rate}pps" -q >/dev/null 2>&1 &
  tg=$!
  sleep 8  # every flow seen
  curl -s -o "$work/a.txt" "http://127.0.0.1:$port/metrics"
  sleep "$quiet"
  curl -s -o "$work/b.txt" "http://127.0.0.1:$port/metrics"
  p0=$(metric nta_capture_kernel_packets_total "$work/b.txt")
  c0=$(cpu "$ex"); t0=$(date +%s.%N)
  times=()
  for i in $(seq "$scrapes"); do
    times+=("$(curl -s -o "$work/s.txt" -w '%{time_total}' "http://127.0.0.1:$port/metrics")")
    sleep 1
  done
  c1=$(cpu "$ex"); t1=$(date +%s.%N)
  p1=$(metric nta_capture_kernel_packets_total "$work/s.txt")
  series=$(grep -c '^nta_flow_\(bytes\|packets\)_total{' "$work/s.txt")
  tflows=$(metric nta_flow_table_flows "$work/s.txt")
  bytes=$(wc -c <"$work/s.txt")
  gz=$(curl -s -H 'Accept-Encoding: gzip' "http://127.0.0.1:$port/metrics" | wc -c)
  dq=$(( $(metric nta_capture_kernel_drops_total "$work/b.txt") - $(metric nta_capture_kernel_drops_total "$work/a.txt") ))
  ds=$(( $(metric nta_capture_kernel_drops_total "$work/s.txt") - $(metric nta_capture_kernel_drops_total "$work/b.txt") ))
  read -r p50 pmax < <(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.0f %.0f\n", a[int((NR+1)/2)]*1000, a[NR]*1000}')
  pps=$(awk -v a="$p0" -v b="$p1" -v s="$t0" -v e="$t1" 'BEGIN {printf "%.0f", (b-a)/(e-s)}')
  cpupct=$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b-a)/hz/(e-s)*100}')
  echo "| $series | $tflows | $p50 | $pmax | $bytes | $gz | $dq | $ds | $pps | $cpupct |"
  kill "$tg" 2>/dev/null || true; wait "$tg" 2>/dev/null || true; tg=
  kill "$ex"; wait "$ex" 2>/dev/null || true; ex=
done
