# wsgate: the two commands a newcomer needs are `make run` (same as
# `go run ./cmd/local`) and `make test` (everything CI runs).

GO ?= go

.PHONY: run test deps vet bench clean

run:
	$(GO) run ./cmd/local

# test installs the pinned test tools, starts dynalite, and runs vet, gofmt,
# every Go test under -race and the browser tests in headless Chromium.
test:
	./scripts/test.sh

deps:
	./scripts/deps.sh

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

# bench runs the side-by-side load benchmark (bare coder/websocket vs wsgate).
bench:
	./scripts/bench.sh

clean:
	rm -rf bin artifacts

# The Lambdas' build targets (sam build runs make build-<LogicalId>).
include scripts/lambda.mk
