# signal-apiserver: the front door. `make help` lists the targets.

SHELL := /usr/bin/env bash -o errexit -o nounset -o pipefail
.DEFAULT_GOAL := help

BIN_DIR        := $(CURDIR)/bin
SERVER_BINARY  := $(BIN_DIR)/signal-apiserver
EVENT_SOURCE_BINARY := $(BIN_DIR)/signal-event-source
KUBE_VERSION   ?= v1.37.2
ETCD_VERSION   ?= v3.7.0
CONTROL_PLANE  := $(BIN_DIR)/control-plane/kube-$(KUBE_VERSION)-etcd-$(ETCD_VERSION)
ALERTMANAGER_VERSION ?= v0.35.0
ALERTMANAGER   := $(BIN_DIR)/alertmanager-$(ALERTMANAGER_VERSION)/alertmanager
CLUSTER_COMPONENTS := $(BIN_DIR)/cluster/kube-$(KUBE_VERSION)
PREVIOUS_SERVER_BINARY := $(BIN_DIR)/signal-apiserver-$(shell cut -c1-7 test/upgrade/PREVIOUS_RELEASE)
GINKGO_FLAGS   ?=
BENCH_FLAGS    ?=

export KUBE_VERSION ETCD_VERSION ALERTMANAGER_VERSION

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Run

.PHONY: run
run: build control-plane ## Start a local control plane with signal-apiserver registered (Ctrl-C stops it).
	go run ./hack/local-up --bin-dir "$(CONTROL_PLANE)" --server-binary "$(SERVER_BINARY)"

##@ Cluster

.PHONY: cluster
cluster: control-plane cluster-components alertmanager cluster-deps ## Run a single-node cluster with signal-apiserver installed from its images; prints `export KUBECONFIG=...` (Ctrl-C tears it down).
	hack/build-images.sh --e2e >/dev/null
	go run ./hack/cluster --control-plane "$(CONTROL_PLANE)" --components "$(CLUSTER_COMPONENTS)"

.PHONY: cluster-deps
cluster-deps: ## Install the Debian packages the cluster needs (containerd, runc, CNI plugins, iptables, conntrack), if missing.
	hack/cluster-deps.sh

##@ Build

.PHONY: build
build: ## Build bin/signal-apiserver and bin/signal-event-source.
	go build -o "$(SERVER_BINARY)" ./cmd/signal-apiserver
	go build -o "$(EVENT_SOURCE_BINARY)" ./cmd/signal-event-source

.PHONY: control-plane
control-plane: ## Build kube-apiserver, kubectl and etcd from Go modules once, into bin/control-plane/.
	hack/build-control-plane.sh >/dev/null

.PHONY: previous-release
previous-release: ## Build the previous release's signal-apiserver (the commit in test/upgrade/PREVIOUS_RELEASE) once, into bin/signal-apiserver-<commit>, for test/upgrade.
	hack/build-previous-release.sh >/dev/null

.PHONY: alertmanager
alertmanager: ## Build Alertmanager for the integration tests from its Go module once, into bin/alertmanager-<version>/.
	hack/build-alertmanager.sh >/dev/null

.PHONY: image
image: ## Build OCI image archives of signal-apiserver and signal-event-source into bin/images/, offline and reproducibly (IMAGE_REGISTRY=... names them).
	hack/build-images.sh

.PHONY: cluster-components
cluster-components: ## Build kubelet, kube-controller-manager, kube-scheduler and kube-proxy from Go modules once, into bin/cluster/.
	hack/build-cluster-components.sh >/dev/null

.PHONY: generate
generate: ## Regenerate deepcopy, conversion, defaults, clients, OpenAPI and the CRD.
	hack/update-codegen.sh

##@ Test

.PHONY: test
test: test-unit test-integration ## Run the unit tests, then the integration suites against a real kube-apiserver, etcd and Alertmanager.

.PHONY: test-unit
test-unit: ## Run the unit tests (apis, pkg, cmd) with the race detector.
	go test -race ./apis/... ./pkg/... ./cmd/... -count=1

.PHONY: test-integration
test-integration: build control-plane alertmanager previous-release ## Run the integration, reliability and upgrade suites against a real kube-apiserver, etcd and Alertmanager (GINKGO_FLAGS="--ginkgo.focus=..." runs some).
	KUBEBUILDER_ASSETS="$(CONTROL_PLANE)" SIGNAL_APISERVER_BINARY="$(SERVER_BINARY)" ALERTMANAGER_BINARY="$(ALERTMANAGER)" \
		SIGNAL_EVENT_SOURCE_BINARY="$(EVENT_SOURCE_BINARY)" SIGNAL_APISERVER_PREVIOUS_BINARY="$(PREVIOUS_SERVER_BINARY)" go test $$(go list ./test/... | grep -v /test/e2e) -count=1 -timeout 30m $(if $(GINKGO_FLAGS),-args $(GINKGO_FLAGS))

.PHONY: e2e
e2e: control-plane cluster-components alertmanager cluster-deps ## Bring up the single-node cluster, install from the images, run the e2e suite (test/e2e) and tear it all down.
	hack/build-images.sh --e2e >/dev/null
	go run ./hack/cluster --control-plane "$(CONTROL_PLANE)" --components "$(CLUSTER_COMPONENTS)" -- \
		go test ./test/e2e -count=1 -timeout 60m -v $(if $(GINKGO_FLAGS),-args $(GINKGO_FLAGS))

.PHONY: bench
bench: build control-plane ## Benchmark signal-apiserver against its limits and the gateway algorithm (quick: BENCH_FLAGS="--scale 0.1").
	go run ./cmd/signal-bench --server-binary "$(SERVER_BINARY)" $(BENCH_FLAGS)

SOAK ?= 10m

.PHONY: soak
soak: build control-plane ## Send mixed signals for SOAK (default 10m) and sample the server's RSS and heap (not part of make test).
	go run ./cmd/signal-bench --server-binary "$(SERVER_BINARY)" --soak $(SOAK) --json bin/bench/soak.json

FUZZTIME ?= 20s
FUZZ_TARGETS := FuzzValidateSignal:./apis/signals/validation FuzzFingerprint:./pkg/fingerprint FuzzResolveSpellings:./pkg/targets FuzzDecodeSignal:./apis/signals/install FuzzKeyWindow:./pkg/dedup

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 20s) on top of its checked-in seed corpus.
	@for t in $(FUZZ_TARGETS); do \
		echo "go test -run '^$$' -fuzz '^$${t%%:*}$$' -fuzztime $(FUZZTIME) $${t#*:}"; \
		go test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZTIME) "$${t#*:}" || exit 1; \
	done

.PHONY: clean
clean: ## Remove what the build and the tests leave: bin/ (binaries and the cached control plane, cluster components and tools), .local/ (make run's state), .cluster/ and test binaries.
	rm -rf bin/ _output/ .local/ .cluster/
	find . -name '*.test' -type f -delete

.PHONY: verify
verify: ## Check formatting, vet, go.mod tidiness, that generated code is fresh, and lint.
	hack/verify.sh

.PHONY: lint
lint: ## Run golangci-lint with klog's logcheck (.golangci.yaml), built once into bin/.
	hack/lint.sh
