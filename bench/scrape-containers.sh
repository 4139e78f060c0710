#!/usr/bin/env bash
# Scrape latency with N containers and the exporter's idle CPU between
# scrapes, measured on the real binary over HTTP.
#
#   sudo bash bench/scrape-containers.sh [N=50] [SCRAPES=100] [IDLE_SECONDS=60]
#
# Needs dockerd (scripts/lab-up.sh) and Go. Prints a markdown table row.
set -euo pipefail
N=${1:-50}; SCRAPES=${2:-100}; IDLE=${3:-60}
cd "$(dirname "$0")/.."
export PATH=/usr/bin:/usr/local/go/bin:$PATH
bash scripts/lab-up.sh >/dev/null
CGO_ENABLED=0 go build -o /tmp/nta-bench-exporter ./cmd/nta-exporter
# The test image (static Go program, built offline).
go test -count=1 -run TestEnsureIdempotent ./internal/testimage/ >/dev/null
IMG=nta-test/app:1
docker image inspect "$IMG" >/dev/null

cleanup() {
  kill "${PID:-}" 2>/dev/null || true
  docker ps -aq --filter label=nta-bench=1 | xargs -r docker rm -f >/dev/null
}
trap cleanup EXIT
cleanup
for i in $(seq "$N"); do
  docker run -d --label nta-bench=1 --name "nta-bench-$i" "$IMG" >/dev/null
done

PORT=19819
/tmp/nta-bench-exporter --web.listen-address=127.0.0.1:$PORT --log.level=warn &
PID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/metrics" >/dev/null && break; sleep 0.2; done
curl -sf "http://127.0.0.1:$PORT/metrics" >/tmp/nta-bench-metrics.txt
series=$(grep -vc '^#' /tmp/nta-bench-metrics.txt)
bytes=$(wc -c </tmp/nta-bench-metrics.txt)

# Scrape latency: SCRAPES sequential scrapes, 1.1 s apart so the host-scan
# cache never serves a scrape (every scrape does the full work).
times=()
for _ in $(seq "$SCRAPES"); do
  t=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$PORT/metrics")
  times+=("$t")
  sleep 1.1
done
read -r p50 p90 max < <(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f %.1f %.1f\n", a[int(NR*0.5)]*1000, a[int(NR*0.9)]*1000, a[NR]*1000}')

# Idle CPU: utime+stime over IDLE seconds without scrapes (Docker events
# and resync keep running).
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$PID/stat"; }
c0=$(cpu); sleep "$IDLE"; c1=$(cpu)
idle=$(awk -v a="$c0" -v b="$c1" -v t="$ticks" -v s="$IDLE" 'BEGIN {printf "%.2f", (b-a)/t/s*100}')
rss=$(awk '/VmRSS/ {print $2/1024}' "/proc/$PID/status")

echo "| containers | series | bytes | scrape p50 ms | p90 ms | max ms | idle CPU % | RSS MiB |"
echo "|---|---|---|---|---|---|---|---|"
echo "| $N | $series | $bytes | $p50 | $p90 | $max | $idle | $rss |"
