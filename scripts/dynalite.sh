#!/usr/bin/env bash
# dynalite.sh starts dynalite (an in-memory DynamoDB-API server, pinned in
# package.json) on a free loopback port, exports its endpoint as
# WSGATE_TEST_DYNAMODB_ENDPOINT and WSGATE_DYNAMODB_ENDPOINT, runs the
# command given, then stops dynalite and exits with the command's status.
#
#   scripts/dynalite.sh go test -race ./...
#   scripts/dynalite.sh                      # serve until interrupted
#
# Needs node and `npm ci` run at the repository root.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cli="$root/node_modules/dynalite/cli.js"
if [[ ! -f "$cli" ]]; then
	echo "dynalite.sh: $cli missing: run npm ci in $root" >&2
	exit 2
fi

port="$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')"
node "$cli" --host 127.0.0.1 --port "$port" --createTableMs 0 >/dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true' EXIT

for _ in $(seq 200); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		break
	fi
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "dynalite.sh: dynalite exited at start" >&2
		exit 1
	fi
	sleep 0.05
done

export WSGATE_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
export WSGATE_DYNAMODB_ENDPOINT="$WSGATE_TEST_DYNAMODB_ENDPOINT"
echo "dynalite.sh: dynalite at $WSGATE_TEST_DYNAMODB_ENDPOINT (pid $pid)" >&2

if [[ $# -eq 0 ]]; then
	wait "$pid"
else
	status=0
	"$@" || status=$?
	exit "$status"
fi
