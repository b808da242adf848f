#!/usr/bin/env bash
# Linearizable GETs, two raftkv builds and redis-server in the same session (issue 20): for each
# run, a 3-node cluster of the first build, then of the second, then one redis-server with
# `appendonly yes` and `appendfsync always`, each driven by redis-benchmark (50 clients, GETs of
# one 3-byte key) against the leader and a follower, at `-P 16` and unpipelined. One line per
# measurement: requests/s, p50 ms, the CPU time of the three nodes (or of redis-server) per GET,
# and the GETs served per ReadIndex request (INFO's reads_served / read_rounds, where the build
# has them). Alternate builds and run it more than once: the machine's other load moves every
# figure.
#
#   raftkv/bench/reads.sh OLD_BINARY NEW_BINARY [RUNS]
#
# Settings (environment): PIPELINED (1000000 GETs per -P 16 measurement), UNPIPELINED (100000),
# BASE_PORT (18800: the builds use BASE+1..3 and BASE+11..13, redis BASE+90). Everything listens
# on 127.0.0.1 and is stopped at the end.
set -euo pipefail

OLD=${1:?usage: reads.sh OLD_BINARY NEW_BINARY [RUNS]}
NEW=${2:?usage: reads.sh OLD_BINARY NEW_BINARY [RUNS]}
RUNS=${3:-3}
PIPELINED=${PIPELINED:-1000000}
UNPIPELINED=${UNPIPELINED:-100000}
BASE_PORT=${BASE_PORT:-18800}
HZ=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/raftkv-reads-XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

info_field() { redis-cli -p "$1" INFO 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"; }
cpu_ticks() { # the user + system ticks of the given pids
  local t=0 pid
  for pid in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
  echo "$t"
}

# measure LABEL PORT PIPELINE REQUESTS PIDS...: one redis-benchmark run and its line.
measure() {
  local label=$1 port=$2 pipeline=$3 requests=$4
  shift 4
  local served0 rounds0 ticks0 out ticks1 served1 rounds1 rps p50 cpu per_round=""
  served0=$(info_field "$port" reads_served)
  rounds0=$(info_field "$port" read_rounds)
  ticks0=$(cpu_ticks "$@")
  out=$(redis-benchmark -p "$port" -t get -n "$requests" -c 50 -P "$pipeline" 2>/dev/null | tr '\r' '\n')
  ticks1=$(cpu_ticks "$@")
  served1=$(info_field "$port" reads_served)
  rounds1=$(info_field "$port" read_rounds)
  rps=$(echo "$out" | awk '/throughput summary/ {print $3}')
  p50=$(echo "$out" | grep -A2 'latency summary' | tail -1 | awk '{print $3}')
  cpu=$(awk -v t=$((ticks1 - ticks0)) -v hz="$HZ" -v n="$requests" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}')
  if [ -n "$rounds1" ] && [ "$rounds1" -gt "${rounds0:-0}" ]; then
    per_round=$(( (served1 - served0) / (rounds1 - rounds0) ))
  fi
  printf '%-28s -P %-2s %10s req/s  p50 %s ms  %s us CPU/GET  %s GETs/round  load %s\n' \
    "$label" "$pipeline" "$rps" "$p50" "$cpu" "${per_round:--}" "$(cut -d' ' -f1 /proc/loadavg)"
}

# cluster NAME BINARY BASE: starts 3 nodes, measures leader and follower, stops them.
cluster() {
  local name=$1 binary=$2 base=$3 dir leader="" follower pids port
  dir="$WORK/$name"
  mkdir -p "$dir"
  "$binary" cluster --nodes 3 --base-port "$base" --dir "$dir" >"$dir/cluster.out" 2>&1 &
  local cluster_pid=$!
  PIDS+=("$cluster_pid")
  for _ in $(seq 1 150); do
    for port in $((base)) $((base + 1)) $((base + 2)); do
      if [ "$(info_field "$port" role)" = leader ]; then leader=$port; fi
    done
    [ -n "$leader" ] && break
    sleep 0.2
  done
  [ -n "$leader" ] || { echo "reads.sh: no leader for $name" >&2; exit 1; }
  follower=$base
  [ "$follower" = "$leader" ] && follower=$((base + 1))
  redis-cli -p "$leader" SET key:__rand_int__ xxx >/dev/null
  pids=()
  for port in $((base)) $((base + 1)) $((base + 2)); do pids+=("$(info_field "$port" process_id)"); done
  measure "$name leader" "$leader" 16 "$PIPELINED" "${pids[@]}"
  measure "$name follower" "$follower" 16 "$PIPELINED" "${pids[@]}"
  measure "$name leader" "$leader" 1 "$UNPIPELINED" "${pids[@]}"
  measure "$name follower" "$follower" 1 "$UNPIPELINED" "${pids[@]}"
  kill -TERM "$cluster_pid"
  wait "$cluster_pid" 2>/dev/null || true
}

redis() {
  local port=$((BASE_PORT + 90)) dir="$WORK/redis"
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --appendonly yes \
    --appendfsync always --save '' >"$dir/log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 50); do redis-cli -p "$port" PING >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p "$port" SET key:__rand_int__ xxx >/dev/null
  measure "redis-server" "$port" 16 "$PIPELINED" "$pid"
  measure "redis-server" "$port" 1 "$UNPIPELINED" "$pid"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
}

for run in $(seq 1 "$RUNS"); do
  echo "== run $run of $RUNS, $(uptime | sed 's/.*load/load/')"
  cluster old "$OLD" $((BASE_PORT + 1))
  cluster new "$NEW" $((BASE_PORT + 11))
  redis
done
