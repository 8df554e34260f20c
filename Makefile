# `make test` is the one command that runs every test; it installs the
# Debian packages the tests need first (see .ci/deps).
GO ?= go

.PHONY: test check deps vet build run fuzz

# No random fuzzing here (see fuzz below): the same code gets the same verdict.
test: deps vet check

# check runs the Go tests alone. A test that needs something from outside
# the repository that is missing (../shared/conformance beside the checkout,
# a Debian tool) skips; the skips are collected and named in one line at the
# end. With MAILAUTOCONF_REQUIRE_ALL=1 (.ci/run sets it) they fail instead.
check:
	@log=$$(mktemp); \
	MAILAUTOCONF_SKIPLOG="$$log" $(GO) test -race -count=1 -timeout 30m ./...; rc=$$?; \
	bash .ci/skips "$$log"; rm -f "$$log"; exit $$rc

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

# Fuzz targets, as package:name (every func Fuzz* in the repository;
# internal/testutil's TestMakefileFuzzTargets checks the list is complete).
# `go test` (and so `make test`) runs each target's seed corpus as an
# ordinary test: f.Add seeds and testdata/fuzz/<name>/. Random search runs
# only here, in `make fuzz`: it finds new inputs, so it cannot give the same
# verdict twice and has no place in `make test`. `make fuzz` runs every
# target, reports every failing one, and saves each finding in the target's
# testdata/fuzz/<name>/, where it becomes a seed that `go test` runs.
# Budgets are execution counts, not -fuzztime durations: with Go 1.26 a
# duration can end in a spurious "context deadline exceeded" failure
# (go.dev/issue/75804). `make fuzz FUZZ_EXECS=10000000` is the longer run.
FUZZ_TARGETS = ./internal/address:FuzzParse ./internal/address:FuzzSimpleParse ./internal/config:FuzzParse \
  ./autodiscover:FuzzParseRequest ./autodiscover:FuzzFastRequest \
  ./internal/dnsserver:FuzzPacket ./internal/dnsserver:FuzzAnswers \
  ./internal/e2e:FuzzHTTP ./internal/e2e:FuzzDNS ./internal/e2e:FuzzConfig \
  ./internal/web:FuzzQuery ./internal/fastlog:FuzzSameOutput
FUZZ_EXECS ?= 200000

fuzz:
	@failed=""; for t in $(FUZZ_TARGETS); do \
	  echo "fuzz $${t#*:} in $${t%%:*}: $(FUZZ_EXECS) inputs"; \
	  $(GO) test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZ_EXECS)x "$${t%%:*}" || failed="$$failed $$t"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failing targets:$$failed (new inputs in their testdata/fuzz/)"; exit 1; fi
