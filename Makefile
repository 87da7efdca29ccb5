# driftwatch — build, run and test. See README.md.
GO      ?= go
# Reference data beside the clone (Falco's rule files for the eval baselines).
SHARED  ?= ../shared
BIN     := bin/driftwatch
PKGS    := ./...
# Arguments for `make run`; the agent with built-in defaults (store under ./var),
# containers in auto mode (each image's categories learn until stable, then detect).
RUN_ARGS ?= agent --db var/driftwatch.db --metrics-addr 127.0.0.1:9464 --default-mode auto
# Stamped into `driftwatch version` and the image's tag and label.
# Expanded once, so every step of one make run uses the same value.
ifeq ($(origin VERSION),undefined)
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
endif
# Every build: no local paths, no symbol or DWARF tables, the version set.
BUILD_FLAGS := -trimpath -ldflags "-s -w -X main.version=$(VERSION)"
# The image `make image` writes; deploy/daemonset.yaml runs $(IMAGE_REPO):local.
IMAGE_REPO ?= ghcr.io/driftwatch/driftwatch
IMAGE_TAR  := bin/driftwatch-image.tar
# containerd namespace the kubelet uses.
CTR_NAMESPACE ?= k8s.io

.PHONY: all build run test test-unit test-cluster generate bench bench-overhead lint datasets eval-results clean image image-load

all: build

# Static (no cgo): the image holds no libc.
build:
	@# Without cgo: the agent drops capabilities on every thread (agent/harden).
	CGO_ENABLED=0 $(GO) build $(BUILD_FLAGS) -o $(BIN) ./cmd/driftwatch

# The agent's OCI image (no Docker daemon): bin/driftwatch-image.tar, tagged
# $(IMAGE_REPO):local and $(IMAGE_REPO):$(VERSION). See docs/cluster.md.
image: build
	CGO_ENABLED=0 $(GO) run $(BUILD_FLAGS) ./internal/tools/mkimage -binary $(BIN) -out $(IMAGE_TAR) \
		-name $(IMAGE_REPO):local,$(IMAGE_REPO):$(VERSION) -version $(VERSION)

# Imports the image into containerd for the kubelet (root; needs ctr;
# CONTAINERD_ADDRESS selects another containerd socket).
image-load: image
	ctr -n $(CTR_NAMESPACE) images import $(IMAGE_TAR)

# Cluster-wide profile tests against a real kube-apiserver and etcd, the
# image build, then the single-node cluster (test/cluster: kubelet on
# containerd, `kubectl apply -k deploy/`, the DaemonSet from `make
# image-load`). Root; builds the kube binaries into the cache on first use
# (test/e2e/build-kube.sh cluster). `make test` runs the single-node test
# too, as root (README).
test-cluster:
	@./test/install-tools.sh
	@if [ "$$(id -u)" = 0 ]; then ./test/e2e/build-kube.sh cluster >/dev/null; fi
	$(GO) test -count=1 -timeout 20m ./agent/cluster/ ./internal/tools/... ./deploy/
	$(GO) test -count=1 -timeout 20m -run 'TestAgentPublishesClusterProfile' ./test/e2e/
	DRIFTWATCH_CLUSTER_TEST=1 $(GO) test -count=1 -v -timeout 20m ./test/cluster/

# Starts the main job on this host as root (sudo when not root).
run: build
	@mkdir -p var
	@if [ "$$(id -u)" = 0 ]; then ./$(BIN) $(RUN_ARGS); else sudo ./$(BIN) $(RUN_ARGS); fi

lint:
	$(GO) vet $(PKGS)

# The whole suite: vet; every package but the end-to-end one under the race
# detector; then the end-to-end tests. As root it first installs the test
# tools from Debian when missing (test/install-tools.sh) and builds
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet
# and kubectl into a cache outside the clone (seconds when cached, ~17-20
# min cold, progress on stderr), and ends with the single-node cluster test
# (test/cluster). Without root the tests that need it skip and say why.
E2E_PKGS := ./test/e2e/
test: lint
	@./test/install-tools.sh
	@if [ "$$(id -u)" = 0 ]; then ./test/e2e/build-kube.sh cluster >/dev/null; fi
	$(GO) test -race -count=1 -timeout 45m $$($(GO) list $(PKGS) | grep -v '/test/e2e$$')
	$(GO) test -count=1 -timeout 30m $(E2E_PKGS)
	@if [ "$$(id -u)" = 0 ]; then DRIFTWATCH_CLUSTER_TEST=1 $(GO) test -count=1 -timeout 20m ./test/cluster/; \
	else echo "test/cluster: skipped (needs root: kubelet, containerd, BPF)"; fi

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

# Regenerates the eval reports kept in docs/results (the figures quoted in
# docs/datasets.md and docs/eval.md; TestSuiteHeadlineFigures and
# TestSuiteV2HeadlineFigures check them; containers-v2 needs $(SHARED)).
# ADFA-LD is not in the repo: pass ADFA=/path/to/ADFA-LD to refresh its report.
eval-results: build
	./$(BIN) eval --dataset datasets/containers-v1 --report var/eval/containers-v1
	mkdir -p docs/results/containers-v1
	cp var/eval/containers-v1/report.json var/eval/containers-v1/report.md docs/results/containers-v1/
	./$(BIN) eval --dataset datasets/containers-v2 --report var/eval/containers-v2 \
		--baseline-rules $(SHARED)/compat/falco_rules.yaml --baseline-rules $(SHARED)/compat/falco-incubating_rules.yaml \
		--baseline-rules $(SHARED)/compat/falco-sandbox_rules.yaml
	mkdir -p docs/results/containers-v2
	cp var/eval/containers-v2/report.json var/eval/containers-v2/report.md docs/results/containers-v2/
	@if [ -n "$(ADFA)" ]; then \
		./$(BIN) eval --dataset "$(ADFA)" --report var/eval/adfa-ld && \
		mkdir -p docs/results/adfa-ld && \
		cp var/eval/adfa-ld/report.json var/eval/adfa-ld/report.md docs/results/adfa-ld/; \
	fi

clean:
	rm -rf bin var
