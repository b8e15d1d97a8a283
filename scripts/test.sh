#!/usr/bin/env bash
# The test command (`make test`, called by .ci/run): installs the pinned
# tools, runs vet and gofmt, the Go tests under -race against one in-memory
# dynalite (started and stopped by scripts/dynalite.sh), and the browser
# tests in headless Chromium.
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

export WSGATE_RIE="$PWD/bin/aws-lambda-rie"
echo "== go test -race (against one in-memory dynalite: scripts/dynalite.sh)"
./scripts/dynalite.sh go test -race -count=1 -timeout 5m ./...

echo "== browser tests (headless chromium)"
go build -o bin/wsgate-local ./cmd/local
WSGATE_BIN="$PWD/bin/wsgate-local" node --test --test-concurrency=1 test/browser/
