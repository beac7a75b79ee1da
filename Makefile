# Makefile for runsc. `make demo` and `make test` do all set-up on a fresh
# Debian 12 machine (see README.md); BUILD.md explains the build.

GO ?= go
export PATH := /usr/local/go/bin:$(PATH)
# runsc re-executes itself after pivot_root into a root that holds no
# dynamic loader or libc, so it is always built static, without cgo.
export CGO_ENABLED := 0
GOFLAGS_BUILD := -trimpath -ldflags "-s -w"

BIN := bin/runsc
# The containerd shim (runtime type io.containerd.runsc.v1) goes next to
# runsc, which it runs by default.
SHIM := bin/containerd-shim-runsc-v1
SOURCES := $(shell find . -name '*.go' -not -path './bin/*') go.mod go.sum

.PHONY: all build deps test unit fuzz integration soak lint demo bench clean

all: build

build: $(BIN) $(SHIM)

$(BIN): $(SOURCES)
	$(GO) build $(GOFLAGS_BUILD) -o $@ ./runsc

$(SHIM): $(SOURCES)
	$(GO) build $(GOFLAGS_BUILD) -o $@ ./shim/containerd-shim-runsc-v1

# deps installs what the build and the tests need (idempotent).
deps:
	./scripts/deps.sh

lint:
	@out="$$(gofmt -l .)"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -count=1 $$($(GO) list ./... | grep -v /tests)

# fuzz runs every fuzz target (the parsers of untrusted input) for
# FUZZTIME each, after its checked-in seed corpus; a crash fails it and
# leaves the input under the package's testdata/fuzz. The budget is a
# count of inputs, not a duration: Go 1.26's coordinator can fail a
# target with "context deadline exceeded" when a -fuzztime deadline
# passes while a worker is busy (go.dev/issue/75804, fixed in 1.27).
# FUZZTIME=5m make fuzz still fuzzes longer by time.
FUZZTIME ?= 20000x
fuzz:
	@set -e; for pkg in $$($(GO) list ./... | grep -v /tests); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
			$(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) -parallel=2 $$pkg > /tmp/runsc-fuzz.log 2>&1 || { cat /tmp/runsc-fuzz.log; exit 1; }; \
		done; \
	done

# integration needs root; as another user its tests skip with a message.
# The end-to-end tests with real clients, and the OCI runtime-tools suite
# run against runc and runsc (tests/conformance), run one package after
# another, verbose, so that the log shows what each step checked.
E2E := ./tests/podman ./tests/containerd ./tests/cri ./tests/critest ./tests/conformance
integration: build
	RUNSC_BINARY=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 20m $$($(GO) list ./tests/... | grep -v -x -F "$$($(GO) list $(E2E))")
	RUNSC_BINARY=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 1 -v -timeout 20m $(E2E)

test: deps lint unit fuzz integration

# soak runs the long versions of the soak and fault tests (outside CI's
# time budget; make test runs short ones): 1000 create/start/exec/kill/
# delete cycles, 200 sandboxes killed while mounting.
soak: build
	RUNSC_BINARY=$(CURDIR)/$(BIN) RUNSC_SOAK_CYCLES=1000 RUNSC_MOUNT_KILLS=200 $(GO) test -count=1 -v -timeout 60m -run 'TestSoak|TestSandboxKilledWhileMounting|TestFaults' ./tests

demo: deps build
	./scripts/demo.sh

# bench compares runsc with native (chroot) and runc, which it installs.
# BENCH_ROUNDS sets the rounds; RUNSC_ANCHOR=/path/to/runsc adds a column.
BENCH_ROUNDS ?= 5
bench: build
	./scripts/deps.sh bench
	$(GO) run ./tests/bench --runsc $(BIN) --rounds $(BENCH_ROUNDS)

clean:
	rm -rf bin
