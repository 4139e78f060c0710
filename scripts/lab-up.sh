#!/usr/bin/env bash
# Installs (idempotently) and starts everything nta's tests need on a fresh
# Debian 12 machine, as root and without systemd: Docker Engine, libvirt +
# QEMU, Open vSwitch, Prometheus/promtool, the traffic tools and headless
# Chromium.
set -euo pipefail

log() { printf 'lab-up: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  log "must run as root (creates namespaces, bridges and starts daemons)"; exit 1
fi

pkgs=(docker.io openvswitch-switch libvirt-daemon-system qemu-system-x86 prometheus prometheus-alertmanager
      iproute2 iputils-ping tcpdump netsniff-ng pmacct iperf3 graphviz bridge-utils conntrack
      chromium)  # chromium: headless browser of the topology page test (e2e/page_test.go)
missing=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
fi

wait_for() { # wait_for SECONDS CMD...
  local n=$1; shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  return 1
}

# Docker Engine. /usr/bin/docker is Debian's client; prefer it (it matches the engine).
if ! wait_for 1 /usr/bin/docker info; then
  log "starting dockerd"
  nohup dockerd >/var/log/nta-dockerd.log 2>&1 &
  wait_for 60 /usr/bin/docker info || { log "dockerd did not start; see /var/log/nta-dockerd.log"; tail -20 /var/log/nta-dockerd.log >&2; exit 1; }
fi

# libvirt.
mkdir -p /var/log/libvirt /var/run/libvirt
if ! wait_for 1 virsh -c qemu:///system version; then
  log "starting virtlogd + libvirtd"
  pgrep -x virtlogd >/dev/null || virtlogd -d
  pgrep -x libvirtd >/dev/null || libvirtd -d
  wait_for 30 virsh -c qemu:///system version || { log "libvirtd did not answer"; exit 1; }
fi

# Open vSwitch (userspace datapath here).
if ! wait_for 1 ovs-vsctl --timeout=2 show; then
  log "starting Open vSwitch"
  /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >/dev/null
  wait_for 30 ovs-vsctl --timeout=2 show || { log "ovsdb-server did not answer"; exit 1; }
fi

# Kernel connection tracking (the nat collector; Docker's NAT loads it too).
if [ ! -e /proc/sys/net/netfilter/nf_conntrack_max ]; then
  log "loading nf_conntrack"
  modprobe nf_conntrack 2>/dev/null || true
  [ -e /proc/sys/net/netfilter/nf_conntrack_max ] || { log "nf_conntrack not available (modprobe nf_conntrack failed)"; exit 1; }
fi
command -v conntrack >/dev/null || { log "conntrack missing after install"; exit 1; }

command -v promtool >/dev/null || { log "promtool missing after install"; exit 1; }
hv=$(virsh -c qemu:///system version 2>/dev/null | sed -n 's/^Running hypervisor: //p')
log "lab ready: docker $(/usr/bin/docker version --format '{{.Server.Version}}'), libvirt ${hv:-?}, ovs $(ovs-vsctl --version | head -1 | awk '{print $NF}')"
