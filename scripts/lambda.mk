# Build targets of the two Lambdas, included by the top-level Makefile.
#
# `sam build` (template.yaml: CodeUri ".", Metadata BuildMethod makefile)
# runs `make build-<LogicalId>` with ARTIFACTS_DIR set, and expects the
# function's `bootstrap` there. The tests run the same recipes with
# LAMBDA_ARCH set to the host's architecture.
#
#   make build-WebSocketFunction ARTIFACTS_DIR=/tmp/ws           # arm64, as deployed
#   make build-AdminFunction ARTIFACTS_DIR=/tmp/a LAMBDA_ARCH=amd64
#   make lambda                                                  # both, both arches, under bin/lambda/

LAMBDA_MK := $(lastword $(MAKEFILE_LIST))
GO ?= go
# LAMBDA_ARCH must match the template's Architectures (arm64).
LAMBDA_ARCH ?= arm64
LAMBDA_BUILD = GOOS=linux GOARCH=$(LAMBDA_ARCH) CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w'

.PHONY: build-WebSocketFunction build-AdminFunction lambda

build-WebSocketFunction:
	$(if $(ARTIFACTS_DIR),,$(error ARTIFACTS_DIR is not set))
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./cmd/lambda-ws

build-AdminFunction:
	$(if $(ARTIFACTS_DIR),,$(error ARTIFACTS_DIR is not set))
	$(LAMBDA_BUILD) -o $(ARTIFACTS_DIR)/bootstrap ./cmd/lambda-admin

lambda:
	$(MAKE) -f $(LAMBDA_MK) build-WebSocketFunction ARTIFACTS_DIR=bin/lambda/ws-arm64 LAMBDA_ARCH=arm64
	$(MAKE) -f $(LAMBDA_MK) build-AdminFunction ARTIFACTS_DIR=bin/lambda/admin-arm64 LAMBDA_ARCH=arm64
	$(MAKE) -f $(LAMBDA_MK) build-WebSocketFunction ARTIFACTS_DIR=bin/lambda/ws-amd64 LAMBDA_ARCH=amd64
	$(MAKE) -f $(LAMBDA_MK) build-AdminFunction ARTIFACTS_DIR=bin/lambda/admin-amd64 LAMBDA_ARCH=amd64
