#!/usr/bin/env bash
# Scrape cost of the libvirt collector: VMS running diskless QEMU VMs on a
# Linux bridge next to CONTAINERS containers, two exporters side by side on
# the same host (--collector.libvirt on, and off), scraped in turn, rounds
# 1.1 s apart so each exporter's 1 s host-scan cache never serves a scrape.
#
#   sudo bash bench/scrape-vms.sh [VMS=10] [CONTAINERS=50] [SCRAPES=60]
#
# Needs the lab (scripts/lab-up.sh: dockerd, libvirtd), Go and curl. Prints
# a markdown table: scrape p50/p90/max (curl) and the libvirt collector's
# own nta_collector_duration_seconds p50/p90.
set -euo pipefail
VMS=${1:-10}; N=${2:-50}; SCRAPES=${3:-60}
cd "$(dirname "$0")/.."
export PATH=/usr/bin:/usr/local/go/bin:$PATH
bash scripts/lab-up.sh >/dev/null
CGO_ENABLED=0 go build -o /tmp/nta-bench-vms ./cmd/nta-exporter
go test -count=1 -run TestEnsureIdempotent ./internal/testimage/ >/dev/null
IMG=nta-test/app:1
V="virsh -c qemu:///system"
work=
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for i in $(seq "$VMS"); do $V destroy "ntbv-vm$i" >/dev/null 2>&1 || true; done
  ip link del ntbv-br0 2>/dev/null || true
  docker ps -aq --filter label=nta-bench=1 | xargs -r docker rm -f >/dev/null 2>&1 || true
  [ -z "$work" ] || rm -rf "$work"
}
trap cleanup EXIT
cleanup
work=$(mktemp -d /tmp/nta-bench-vms.XXXXXX)
ip link add ntbv-br0 type bridge && ip link set ntbv-br0 up
for i in $(seq "$VMS"); do
  mac=$(printf '52:54:00:be:%02x:01' "$i")
  cat >"$work/vm$i.xml" <<XML
<domain type='qemu'><name>ntbv-vm$i</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os>
<devices><interface type='bridge'><source bridge='ntbv-br0'/><mac address='$mac'/><model type='virtio'/></interface></devices></domain>
XML
  $V create "$work/vm$i.xml" >/dev/null
done
for i in $(seq "$N"); do
  docker run -d --label nta-bench=1 --name "nta-bench-$i" "$IMG" >/dev/null
done

. bench/onoff.sh
start_exporter /tmp/nta-bench-vms 19831 --collector.libvirt
start_exporter /tmp/nta-bench-vms 19832 --no-collector.libvirt
inview() { curl -sf http://127.0.0.1:19831/metrics >"$work/check" && grep -q "^nta_libvirt_domain_info.*ntbv-vm$VMS\"" "$work/check"; }
for _ in $(seq 100); do inview && break; sleep 0.2; done
inview || { echo "VMs not in the view" >&2; exit 1; }

scrape_rounds 19831 19832 libvirt "$SCRAPES"
series=$(grep -vc '^#' "$work/m19831")
echo "| exporter | VMs | containers | series | scrape p50 ms | p90 ms | max ms | libvirt collector p50 ms | p90 ms |"
echo "|---|---|---|---|---|---|---|---|---|"
echo "| libvirt on | $VMS | $N | $series | $(stats <"$work/t19831") | $(collector_stats) |"
echo "| libvirt off | $VMS | $N | $(grep -vc '^#' "$work/m19832") | $(stats <"$work/t19832") | - | - |"
