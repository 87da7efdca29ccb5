# driftwatch — build, run and test. See README.md.
GO      ?= go
BIN     := bin/driftwatch
PKGS    := ./...
# Arguments for `make run`; the agent with built-in defaults (store under ./var),
# containers in auto mode (each image's categories learn until stable, then detect).
RUN_ARGS ?= agent --db var/driftwatch.db --metrics-addr 127.0.0.1:9464 --default-mode auto

.PHONY: all build run test test-unit generate bench bench-overhead lint datasets clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/driftwatch

# Starts the main job on this host as root (sudo when not root).
run: build
	@mkdir -p var
	@if [ "$$(id -u)" = 0 ]; then ./$(BIN) $(RUN_ARGS); else sudo ./$(BIN) $(RUN_ARGS); fi

lint:
	$(GO) vet $(PKGS)

# The whole suite: vet, unit tests, and (as root) the BPF and end-to-end tests.
test: lint
	@# As root: cache kube-apiserver and etcd for internal/testinfra (seconds when cached).
	@if [ "$$(id -u)" = 0 ]; then ./test/e2e/build-kube.sh >/dev/null; fi
	$(GO) test -count=1 -timeout 30m $(PKGS)

test-unit:
	$(GO) test -count=1 -short $(PKGS)

# Regenerates the committed eBPF objects and vmlinux.h (installs clang and bpftool from Debian).
generate:
	./bpf/generate.sh
	cd event && $(GO) generate ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./bpf/ ./event/... ./rules/... ./model/... ./profiler/...

bench-overhead: build
	./$(BIN) bench overhead

# Records both labelled suites (root): containers-v1 (~35 min), then
# containers-v2 (~95 min: 30 min training, 23 attack captures, a 36-minute
# benign capture of the five services = 3 container-hours).
datasets: build
	./datasets/record-all.sh
	SUITE=containers-v2 ./datasets/record-all.sh

clean:
	rm -rf bin var
