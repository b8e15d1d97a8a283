#!/usr/bin/env bash
# Installs what the tests need, pinned by the project's own files:
# npm packages from package-lock.json (dynalite, playwright-core), Debian's
# chromium for the browser tests, and the AWS Lambda Runtime Interface
# Emulator from the Go module proxy.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.wsgate-lock; then
  echo "deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json node_modules/.wsgate-lock
fi

if ! command -v chromium >/dev/null 2>&1; then
  echo "deps: apt-get install chromium"
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: chromium is missing and installing it needs root: apt-get install -y chromium" >&2
    exit 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

RIE_VERSION=v0.0.0-20261030222936-bef5c4ba774d
if [ ! -x bin/aws-lambda-rie ] || [ "$(cat bin/.rie-version 2>/dev/null)" != "$RIE_VERSION" ]; then
  echo "deps: go install aws-lambda-rie@$RIE_VERSION"
  mkdir -p bin
  GOBIN="$PWD/bin" go install "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@$RIE_VERSION"
  echo "$RIE_VERSION" > bin/.rie-version
fi
