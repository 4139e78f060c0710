#!/usr/bin/env bash
# Scrape cost of the flows collector over many idle interfaces: N namespaces,
# each with a veth whose host end is captured and which carries no traffic.
# Exporters run side by side on the same host and the same veths, scraped in
# turn (one round = one scrape of each, rounds 1.1 s apart so each exporter's
# 1 s host-scan cache never serves a scrape):
#   flows off   this tree's binary, --no-collector.flows
#   flows on    this tree's binary, capturing on the N host ends
#   base on     (with BASE=binary) another build, e.g. the pre-change commit
#
#   sudo bash bench/scrape-idle-flows.sh [N=34] [SCRAPES=30]
#   sudo BASE=/tmp/nta-base bash bench/scrape-idle-flows.sh 34 30
# Needs root, go, iproute2, curl. Prints a markdown table: total scrape
# time (curl) p50/p90/max and the flows collector's own duration
# (nta_collector_duration_seconds{collector="flows"}) p50/p90.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH
n=${1:-34}; scrapes=${2:-30}; base=${BASE:-}
work=$(mktemp -d /tmp/nta-scrape-idle.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for i in $(seq "$n"); do
    ip link del "ntwks$i" 2>/dev/null || true; ip netns del "ntwk-s$i" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
cleanup
CGO_ENABLED=0 go build -o "$work/nta-exporter" ./cmd/nta-exporter
for i in $(seq "$n"); do
  ip netns add "ntwk-s$i"
  ip link add "ntwks$i" type veth peer name "ntwkp$i" netns "ntwk-s$i"
  sysctl -qw "net.ipv6.conf.ntwks$i.disable_ipv6=1"
  ip netns exec "ntwk-s$i" sysctl -qw "net.ipv6.conf.ntwkp$i.disable_ipv6=1"
  ip link set "ntwks$i" up; ip -n "ntwk-s$i" link set "ntwkp$i" up
done

common=(--log.level=warn --no-collector.docker)
flows=(--collector.flows --collector.flows.roles=none '--collector.flows.interfaces=ntwks*')
labels=("flows off" "flows on"); ports=(19831 19832)
"$work/nta-exporter" --web.listen-address=127.0.0.1:19831 "${common[@]}" --no-collector.flows & pids+=($!)
"$work/nta-exporter" --web.listen-address=127.0.0.1:19832 "${common[@]}" "${flows[@]}" & pids+=($!)
if [ -n "$base" ]; then
  labels+=("base on"); ports+=(19833)
  "$base" --web.listen-address=127.0.0.1:19833 "${common[@]}" "${flows[@]}" & pids+=($!)
fi
for p in "${ports[@]}"; do
  for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$p/metrics" && break; sleep 0.2; done
done
sleep 2
for p in "${ports[@]}"; do # every exporter captures on all N
  c=$(curl -s "http://127.0.0.1:$p/metrics" | grep -c '^nta_capture_kernel_packets_total{' || true)
  [ "$p" = 19831 ] || [ "$c" -ge "$n" ] || { echo "exporter on :$p captures $c interfaces, want $n" >&2; exit 1; }
done

for r in $(seq "$scrapes"); do
  for k in "${!ports[@]}"; do
    t=$(curl -s -o "$work/m$k.txt" -w '%{time_total}' "http://127.0.0.1:${ports[$k]}/metrics")
    echo "$t" >>"$work/total$k"
    awk '/^nta_collector_duration_seconds\{collector="flows"\}/ {print $2}' "$work/m$k.txt" >>"$work/flows$k"
  done
  sleep 1.1
done

pct() { sort -n "$1" | awk '{a[NR]=$1} END {if (NR == 0) {print "- - -"; exit} printf "%.1f %.1f %.1f\n", a[int((NR+1)/2)]*1000, a[int(NR*0.9)]*1000, a[NR]*1000}'; }
echo "| exporter | idle veths | scrapes | scrape p50 ms | p90 ms | max ms | flows collector p50 ms | p90 ms |"
echo "|---|---|---|---|---|---|---|---|"
for k in "${!ports[@]}"; do
  read -r p50 p90 pmax < <(pct "$work/total$k")
  read -r f50 f90 _ < <(pct "$work/flows$k")
  echo "| ${labels[$k]} | $n | $scrapes | $p50 | $p90 | $pmax | $f50 | $f90 |"
done
