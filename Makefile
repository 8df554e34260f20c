# `make test` is the one command that runs every test; it installs the
# Debian packages the tests need first (see .ci/deps).
GO ?= go

.PHONY: test deps vet build run fuzz fuzz-short

test: deps vet fuzz-short
	$(GO) test -race -count=1 -timeout 30m ./...

deps:
	bash .ci/deps

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

build:
	$(GO) build -o bin/mailautoconf ./cmd/mailautoconf

run:
	$(GO) run ./cmd/mailautoconf serve

# Fuzz targets, as package:name. `make test` runs each briefly (fuzz-short)
# so a regression in a parser shows up in CI; `make fuzz` searches longer.
# Budgets are execution counts, not -fuzztime durations: with Go 1.26 a
# duration can end in a spurious "context deadline exceeded" failure
# (go.dev/issue/75804). New findings land in testdata/fuzz/<name>/.
FUZZ_TARGETS = ./internal/address:FuzzParse ./internal/config:FuzzParse \
  ./autodiscover:FuzzParseRequest ./autodiscover:FuzzFastRequest ./internal/dnsserver:FuzzPacket \
  ./internal/e2e:FuzzHTTP ./internal/e2e:FuzzDNS ./internal/e2e:FuzzConfig \
  ./internal/web:FuzzQuery ./internal/fastlog:FuzzSameOutput
FUZZ_SHORT_EXECS ?= 10000
FUZZ_EXECS ?= 2000000

fuzz-short:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $${t#*:} in $${t%%:*}: $(FUZZ_SHORT_EXECS) inputs"; \
	  $(GO) test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZ_SHORT_EXECS)x -fuzzminimizetime=100x "$${t%%:*}"; \
	done

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $${t#*:} in $${t%%:*}: $(FUZZ_EXECS) inputs"; \
	  $(GO) test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZ_EXECS)x "$${t%%:*}"; \
	done
