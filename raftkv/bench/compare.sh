#!/usr/bin/env bash
# Compares two raftkv builds with redis-benchmark, alternating them, each run against a fresh
# 3-node cluster (`raftkv cluster --nodes 3`) and a fresh redis-server (`appendonly yes`,
# `appendfsync always`) on 127.0.0.1, both started here:
#
#   raftkv/bench/compare.sh OLD_BINARY NEW_BINARY [RUNS]
#
# Per run and build: SET and GET at `-P 16` (200,000 requests) and unpipelined (50,000), 50
# clients, against the leader, a follower and redis; the CPU time of the three node processes
# (redis's own for redis) per request, from /proc; then unpipelined GETs (20 clients) on the
# leader alone and again while 50 clients write at `-P 16` (whose CPU that line then counts
# too). Prints one line per measurement (build, target, command, pipeline, requests/s, p50 ms,
# µs of CPU per request) and the load average. Environment: RUNS (3), BASE_PORT (18100: raftkv BASE+1..3, redis BASE+50).
set -eu

OLD=${1:?usage: compare.sh OLD_BINARY NEW_BINARY [RUNS]}
NEW=${2:?usage: compare.sh OLD_BINARY NEW_BINARY [RUNS]}
RUNS=${3:-${RUNS:-3}}
BASE=${BASE_PORT:-18100}
REDIS_PORT=$((BASE + 50))
for tool in redis-server redis-cli redis-benchmark; do
  command -v $tool >/dev/null || { echo "needs $tool (Debian: redis-server, redis-tools)"; exit 1; }
done

CLUSTER="" REDIS="" WORK=""
stop() {
  local pid
  for pid in $CLUSTER $REDIS; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
  CLUSTER="" REDIS="" WORK=""
}
trap stop EXIT

info() { redis-cli -p "$1" INFO 2>/dev/null | tr -d "\r" | grep "^$2:" | cut -d: -f2 || true; }

# CPU ticks (user + system, 1/100 s) of the processes $1.
ticks() {
  local total=0 pid
  for pid in $1; do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo $total
}

# measure LABEL TARGET PORT COMMAND PIPELINE REQUESTS CLIENTS PIDS
measure() {
  local before after out
  before=$(ticks "$8")
  out=$(redis-benchmark -p "$3" -t "$4" -n "$6" -c "$7" -q -P "$5" 2>/dev/null | tr '\r' '\n' |
    grep -i 'requests per second' | tail -1)
  after=$(ticks "$8")
  echo "$1 $2 $4 P$5 $(echo "$out" | sed -E 's/.*: ([0-9.]+) requests per second, p50=([0-9.]+) msec.*/\1 req\/s p50 \2 ms/')" \
    "$(awk -v a="$after" -v b="$before" -v n="$6" 'BEGIN { printf "%.1f us CPU", (a - b) * 10000 / n }')"
}

run() {
  local label=$1 binary=$2 leader="" follower="" pids="" port
  WORK=$(mktemp -d /tmp/raftkv-compare-XXXXXX)
  "$binary" cluster --nodes 3 --base-port $((BASE + 1)) --dir "$WORK/raftkv" >"$WORK/cluster.log" 2>&1 &
  CLUSTER=$!
  redis-server --bind 127.0.0.1 --port $REDIS_PORT --dir "$WORK" --save '' --appendonly yes \
    --appendfsync always --daemonize no --logfile "$WORK/redis.log" &
  REDIS=$!
  for _ in $(seq 150); do
    for port in $((BASE + 1)) $((BASE + 2)) $((BASE + 3)); do
      if [ "$(info $port role)" = leader ]; then leader=$port; fi
    done
    if [ -n "$leader" ]; then break; fi
    sleep 0.2
  done
  if [ -z "$leader" ]; then
    echo "# $label: no leader"
    stop
    return
  fi
  for port in $((BASE + 1)) $((BASE + 2)) $((BASE + 3)); do
    if [ "$port" != "$leader" ] && [ -z "$follower" ]; then follower=$port; fi
    pids="$pids $(info $port process_id)"
  done
  until redis-cli -p $REDIS_PORT PING >/dev/null 2>&1; do sleep 0.1; done
  echo "# $label: leader $leader, follower $follower; load $(cut -d' ' -f1-3 /proc/loadavg)"
  local pipeline requests
  for pipeline in 16 1; do
    if [ $pipeline = 16 ]; then requests=200000; else requests=50000; fi
    measure "$label" leader "$leader" set $pipeline $requests 50 "$pids"
    measure "$label" leader "$leader" get $pipeline $requests 50 "$pids"
    measure "$label" follower "$follower" set $pipeline $requests 50 "$pids"
    measure "$label" follower "$follower" get $pipeline $requests 50 "$pids"
    measure "$label" redis $REDIS_PORT set $pipeline $requests 50 "$REDIS"
    measure "$label" redis $REDIS_PORT get $pipeline $requests 50 "$REDIS"
  done
  measure "$label" leader-idle "$leader" get 1 20000 20 "$pids"
  redis-benchmark -p "$leader" -t set -n 1000000 -c 50 -q -P 16 >/dev/null 2>&1 &
  local writer=$!
  sleep 1
  measure "$label" leader-during-writes "$leader" get 1 20000 20 "$pids"
  kill $writer 2>/dev/null || true
  wait $writer 2>/dev/null || true
  echo "# $label: load $(cut -d' ' -f1-3 /proc/loadavg)"
  stop
}

for i in $(seq "$RUNS"); do
  run old "$OLD"
  run new "$NEW"
done
