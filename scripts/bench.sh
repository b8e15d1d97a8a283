#!/usr/bin/env bash
# Side-by-side load benchmark on loopback: a bare coder/websocket server and
# wsgate's local server (memory store), each in its own process, driven by
# cmd/wsbench from a third. Rounds alternate between the two servers so that
# the shared machine's noise hits both; medians and ratios are printed.
#
#   ROUNDS=3 DURATION=5s CONNS=50 IDLE=2000 SUBS=1000 ./scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-5s} CONNS=${CONNS:-50} IDLE=${IDLE:-2000} SUBS=${SUBS:-1000}
mkdir -p bin artifacts
go build -o bin/wsgate-local ./cmd/local
go build -o bin/wsbench ./cmd/wsbench
out=artifacts/bench.jsonl
: > "$out"
secret=bench-secret-0123456789abcdef0123

start_servers() {
  bin/wsbench bare -addr 127.0.0.1:9101 >/dev/null & bare=$!
  WSGATE_ADDR=127.0.0.1:9102 WSGATE_JWT_SECRET=$secret WSGATE_MAX_CONNECTIONS_PER_IP=0 \
    WSGATE_MAX_CONNECTS_PER_HOUR=0 WSGATE_MAX_MESSAGES_PER_MINUTE=0 \
    bin/wsgate-local >/dev/null 2>&1 & wsgate=$!
  sleep 1
}
stop_servers() { kill $bare $wsgate 2>/dev/null || true; wait $bare $wsgate 2>/dev/null || true; }
trap stop_servers EXIT

for r in $(seq 1 "$ROUNDS"); do
  for srv in bare wsgate; do
    start_servers
    if [ $srv = bare ]; then url=ws://127.0.0.1:9101/ws pid=$bare; else url=ws://127.0.0.1:9102/ws pid=$wsgate; fi
    echo "round $r: $srv" >&2
    bin/wsbench echo -url $url -pid $pid -conns "$CONNS" -duration "$DURATION" -secret $secret | sed "s/^{/{\"server\":\"$srv\",/" >> "$out"
    bin/wsbench idle -url $url -pid $pid -conns "$IDLE" -duration 2s -secret $secret | sed "s/^{/{\"server\":\"$srv\",/" >> "$out"
    if [ $srv = wsgate ]; then
      bin/wsbench fanout -url $url -pid $pid -subs "$SUBS" -duration "$DURATION" -secret $secret | sed "s/^{/{\"server\":\"$srv\",/" >> "$out"
    fi
    stop_servers
  done
done

node -e '
const rows = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
const med = (xs) => { xs = xs.slice().sort((a, b) => a - b); return xs[Math.floor(xs.length / 2)]; };
const pick = (srv, mode, k) => rows.filter(r => r.server === srv && r.mode === mode).map(r => r[k]);
const line = (name, k, mode, unit) => {
  const b = med(pick("bare", mode, k)), w = med(pick("wsgate", mode, k));
  console.log(`${name.padEnd(28)} bare ${b.toFixed(2).padStart(10)} ${unit}   wsgate ${w.toFixed(2).padStart(10)} ${unit}   wsgate/bare ${(w / b).toFixed(2)}`);
};
line("echo messages/s", "msgs_per_sec", "echo", "msg/s");
line("server CPU per message", "server_cpu_us_per_msg", "echo", "us   ");
line("server memory per idle conn", "bytes_per_idle_conn", "idle", "B    ");
const f = rows.filter(r => r.mode === "fanout");
if (f.length) console.log(`fan-out to ${f[0].subscribers} subscribers      median ${med(f.map(r => r.median_ms)).toFixed(2)} ms   p99 ${med(f.map(r => r.p99_ms)).toFixed(2)} ms (median of ${f.length} rounds)`);
' "$out"
