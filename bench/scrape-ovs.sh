#!/usr/bin/env bash
# Scrape cost of the ovs collector: PORTS veth ports on an OVS bridge
# (userspace datapath), two exporters side by side on the same host
# (--collector.ovs on, and off), scraped in turn, rounds 1.1 s apart so each
# exporter's 1 s host-scan cache never serves a scrape.
#
#   sudo bash bench/scrape-ovs.sh [PORTS=200] [SCRAPES=60]
#
# Needs the lab (scripts/lab-up.sh: Open vSwitch), Go and curl. Prints a
# markdown table: scrape p50/p90/max (curl) and the ovs collector's own
# nta_collector_duration_seconds p50/p90.
set -euo pipefail
PORTS=${1:-200}; SCRAPES=${2:-60}
cd "$(dirname "$0")/.."
export PATH=/usr/bin:/usr/local/go/bin:$PATH
bash scripts/lab-up.sh >/dev/null
CGO_ENABLED=0 go build -o /tmp/nta-bench-ovs ./cmd/nta-exporter
BR=ntbo-br0
work=
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  ovs-vsctl --timeout=30 --if-exists del-br "$BR" || true
  for i in $(seq "$PORTS"); do ip link del "ntbo$i" 2>/dev/null || true; done
  [ -z "$work" ] || rm -rf "$work"
}
trap cleanup EXIT
cleanup
work=$(mktemp -d /tmp/nta-bench-ovs.XXXXXX)
ovs-vsctl add-br "$BR" -- set bridge "$BR" datapath_type=netdev
args=()
for i in $(seq "$PORTS"); do
  ip link add "ntbo$i" type veth peer name "ntbo${i}p"
  ip link set "ntbo$i" up
  args+=(-- add-port "$BR" "ntbo$i")
done
ovs-vsctl --timeout=120 "${args[@]}"

. bench/onoff.sh
start_exporter /tmp/nta-bench-ovs 19841 --collector.ovs
start_exporter /tmp/nta-bench-ovs 19842 --no-collector.ovs
inview() { curl -sf http://127.0.0.1:19841/metrics >"$work/check" && grep -q "^nta_ovs_interface_info.*interface=\"ntbo$PORTS\"" "$work/check"; }
for _ in $(seq 100); do inview && break; sleep 0.2; done
inview || { echo "ports not in the view" >&2; exit 1; }

scrape_rounds 19841 19842 ovs "$SCRAPES"
echo "| exporter | OVS ports | series | scrape p50 ms | p90 ms | max ms | ovs collector p50 ms | p90 ms |"
echo "|---|---|---|---|---|---|---|---|"
echo "| ovs on | $PORTS | $(grep -vc '^#' "$work/m19841") | $(stats <"$work/t19841") | $(collector_stats) |"
echo "| ovs off | $PORTS | $(grep -vc '^#' "$work/m19842") | $(stats <"$work/t19842") | - | - |"
