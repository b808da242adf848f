#!/usr/bin/env bash
# Side by side on loopback (issue 20, workload W7 in WORKLOADS.md): a 3-node raftkv
# cluster, a 3-node etcd cluster and one redis-server, each fsyncing every commit, driven with the
# same load by raftkv's load generator (examples/loadgen.rs), which speaks RESP and etcd's v3
# HTTP/JSON gateway. Prints one table: throughput and p50/p99 latency of writes and linearizable
# reads, unpipelined and pipelined, with the ratio of raftkv's throughput to each.
#
#   raftkv/bench/run.sh            # from the workspace root
#
# Settings (environment): REQUESTS (20000 per measurement), CLIENTS (50), VALUE_BYTES (100),
# PIPELINES ("1 16"), KEYS (10000), BASE_PORT (17000: raftkv uses BASE+1..3, redis BASE+10, etcd
# BASE+20..25). Installs etcd-server, etcd-client and redis-server with apt-get if missing.
# Everything listens on 127.0.0.1 only, every wait is bounded, and everything started is stopped
# at the end (also on Ctrl-C or a failure).
set -euo pipefail
cd "$(dirname "$0")/../.."

REQUESTS=${REQUESTS:-20000}
CLIENTS=${CLIENTS:-50}
VALUE_BYTES=${VALUE_BYTES:-100}
PIPELINES=${PIPELINES:-"1 16"}
KEYS=${KEYS:-10000}
BASE_PORT=${BASE_PORT:-17000}
TARGET=${CARGO_TARGET_DIR:-target}

need() { command -v "$1" >/dev/null 2>&1; }
if ! need etcd || ! need etcdctl || ! need redis-server || ! need redis-cli; then
  echo "== installing etcd-server, etcd-client, redis-server (apt-get)"
  apt-get update -qq
  apt-get install -y -qq etcd-server etcd-client redis-server redis-tools >/dev/null
fi

echo "== building raftkv and the load generator (release)"
cargo build --release --locked -p raftkv --bin raftkv --example loadgen
RAFTKV="$TARGET/release/raftkv"
LOADGEN="$TARGET/release/examples/loadgen"

WORK=$(mktemp -d /tmp/raftkv-bench-XXXXXX)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Polls "$@" every 0.2 s, at most 150 times (30 s); fails the run if it never succeeds.
wait_until() {
  local what=$1; shift
  for _ in $(seq 1 150); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "run.sh: timed out waiting for $what" >&2
  exit 1
}

echo "== starting raftkv (3 nodes), etcd (3 members), redis-server on 127.0.0.1"
"$RAFTKV" cluster --nodes 3 --base-port $((BASE_PORT + 1)) --dir "$WORK/raftkv" \
  >"$WORK/raftkv.log" 2>&1 &
PIDS+=($!)

redis-server --bind 127.0.0.1 --port $((BASE_PORT + 10)) --dir "$WORK" --save '' \
  --appendonly yes --appendfsync always --daemonize no --logfile "$WORK/redis.log" &
PIDS+=($!)

ETCD_CLUSTER=""
for i in 1 2 3; do
  ETCD_CLUSTER+="${ETCD_CLUSTER:+,}e$i=http://127.0.0.1:$((BASE_PORT + 19 + 2 * i))"
done
ETCD_ENDPOINTS=""
for i in 1 2 3; do
  client=$((BASE_PORT + 18 + 2 * i)); peer=$((BASE_PORT + 19 + 2 * i))
  ETCD_ENDPOINTS+="${ETCD_ENDPOINTS:+,}127.0.0.1:$client"
  # etcd fsyncs its WAL on every commit by default (only --unsafe-no-fsync turns that off).
  etcd --name "e$i" --data-dir "$WORK/etcd-$i" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "$ETCD_CLUSTER" --initial-cluster-state new \
    --initial-cluster-token raftkv-bench >"$WORK/etcd-$i.log" 2>&1 &
  PIDS+=($!)
done

raftkv_leader() {
  for port in $((BASE_PORT + 1)) $((BASE_PORT + 2)) $((BASE_PORT + 3)); do
    if redis-cli -p "$port" INFO 2>/dev/null | tr -d '\r' | grep -qx 'role:leader'; then
      echo "127.0.0.1:$port"; return 0
    fi
  done
  return 1
}
etcd_leader() {
  # `endpoint status` lines: endpoint, id, version, db size, is leader, ...
  etcdctl --endpoints="$ETCD_ENDPOINTS" endpoint status 2>/dev/null |
    awk -F', ' '$5 == "true" { print $1; found = 1 } END { exit !found }'
}
wait_until "a raftkv leader" raftkv_leader
wait_until "an etcd leader" etcd_leader
wait_until "redis-server" redis-cli -p $((BASE_PORT + 10)) PING
RAFTKV_ADDR=$(raftkv_leader)
ETCD_ADDR=$(etcd_leader)
REDIS_ADDR="127.0.0.1:$((BASE_PORT + 10))"
echo "raftkv leader $RAFTKV_ADDR, etcd leader $ETCD_ADDR, redis $REDIS_ADDR"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

RESULTS="$WORK/results"
: >"$RESULTS"
measure() { # system protocol addr op pipeline
  local line
  line=$("$LOADGEN" --protocol "$2" --addr "$3" --op "$4" --pipeline "$5" --requests "$REQUESTS" \
    --clients "$CLIENTS" --value-bytes "$VALUE_BYTES" --keys "$KEYS")
  echo "$1 $4 $5 $line" | tee -a "$RESULTS"
}
# Writes first (they fill the keys the reads then get); systems alternate at every step.
for op in set get; do
  for pipeline in $PIPELINES; do
    measure raftkv resp "$RAFTKV_ADDR" "$op" "$pipeline"
    measure etcd etcd "$ETCD_ADDR" "$op" "$pipeline"
    measure redis resp "$REDIS_ADDR" "$op" "$pipeline"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "Durability: every system fsyncs each commit before acknowledging it (raftkv: one fsync per"
echo "Ready on a quorum; etcd: WAL fsync per commit on a quorum, its default; redis-server:"
echo "appendonly yes, appendfsync always, one node). Reads: raftkv ReadIndex, etcd linearizable"
echo "range, redis single node. $CLIENTS clients, $VALUE_BYTES-byte values, $REQUESTS requests each."
echo
awk '
  function field(name,   i) { for (i = 4; i <= NF; i++) if (index($i, name "=") == 1) return substr($i, length(name) + 2); return "" }
  { sys[NR] = $1; op[NR] = $2; pipe[NR] = $3; ops[NR] = field("ops_per_sec"); p50[NR] = field("p50_ms"); p99[NR] = field("p99_ms"); err[NR] = field("errors")
    if ($1 == "raftkv") base[$2 " " $3] = ops[NR] }
  END {
    printf "| system | operation | pipeline | ops/s | p50 ms | p99 ms | errors | raftkv ops/s ÷ this |\n"
    printf "|---|---|---|---|---|---|---|---|\n"
    for (i = 1; i <= NR; i++) {
      name = (op[i] == "set") ? "write" : "linearizable read"
      ratio = (ops[i] > 0) ? sprintf("%.2fx", base[op[i] " " pipe[i]] / ops[i]) : "-"
      printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", sys[i], name, pipe[i], ops[i], p50[i], p99[i], err[i], ratio
    }
  }' "$RESULTS"
