# `make test` is the one command that runs every test; it installs the
# Debian packages the tests need first (see .ci/deps).
GO ?= go

.PHONY: test deps vet build run fuzz

test: deps vet
	$(GO) test -race -count=1 -timeout 30m ./...

deps:
	bash .ci/deps

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...

build:
	$(GO) build -o bin/mailautoconf ./cmd/mailautoconf

run:
	$(GO) run ./cmd/mailautoconf serve
