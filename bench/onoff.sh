# Shared by the bench/scrape-*.sh scripts that compare two exporters side
# by side, one collector on and off. Source it after setting `work` (a
# scratch directory) and `pids=()`; the caller's cleanup kills "${pids[@]}".

# start_exporter BIN PORT ARGS...: runs BIN on 127.0.0.1:PORT and waits
# until /metrics answers.
start_exporter() {
  local bin=$1 port=$2; shift 2
  "$bin" --web.listen-address=127.0.0.1:$port --log.level=warn "$@" &
  pids+=($!)
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/metrics" >/dev/null && return; sleep 0.2; done
  echo "exporter on $port did not start" >&2; exit 1
}

# scrape_rounds ON OFF COLLECTOR N: N rounds 1.1 s apart (past the 1 s
# host-scan cache), each scraping port ON then OFF; curl times go to
# $work/tPORT, the last bodies to $work/mPORT, COLLECTOR's own duration on
# ON to $work/collector.
scrape_rounds() {
  local on=$1 off=$2 collector=$3 n=$4
  for _ in $(seq "$n"); do
    for port in "$on" "$off"; do
      curl -s -o "$work/m$port" -w '%{time_total}\n' "http://127.0.0.1:$port/metrics" >>"$work/t$port"
    done
    sed -n "s/^nta_collector_duration_seconds{collector=\"$collector\"} //p" "$work/m$on" >>"$work/collector"
    sleep 1.1
  done
}

# stats: p50 | p90 | max in ms of seconds on stdin.
stats() { sort -n | awk '{a[NR]=$1} END {printf "%.1f | %.1f | %.1f", a[int(NR*0.5)]*1000, a[int(NR*0.9)]*1000, a[NR]*1000}'; }

# collector_stats: p50 | p90 in ms of $work/collector.
collector_stats() { sort -n "$work/collector" | awk '{a[NR]=$1} END {printf "%.2f | %.2f", a[int(NR*0.5)]*1000, a[int(NR*0.9)]*1000}'; }
