#!/usr/bin/env bash
# The test command (`make test`, called by .ci/run): installs the pinned
# tools, starts one in-memory dynalite on a free loopback port for the whole
# run, runs vet, gofmt, the Go tests under -race and the browser tests, and
# stops dynalite whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh

echo "== vet and gofmt"
go vet ./...
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '^node_modules/'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi

port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
node node_modules/dynalite/cli.js --host 127.0.0.1 --port "$port" --createTableMs 0 >/dev/null 2>&1 &
dynalite=$!
trap 'kill $dynalite 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
export WSGATE_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
export WSGATE_RIE="$PWD/bin/aws-lambda-rie"
echo "== go test (dynalite at $WSGATE_TEST_DYNAMODB_ENDPOINT)"
go test -race -count=1 -timeout 12m ./...

echo "== browser tests (headless chromium)"
go build -o bin/wsgate-local ./cmd/local
WSGATE_BIN="$PWD/bin/wsgate-local" node --test --test-concurrency=1 test/browser/
