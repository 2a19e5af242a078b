# ControlPlane operator. `make up` runs it on an embedded local control plane; `make test` runs every test.
SHELL := /bin/bash
DOTNET ?= dotnet
CONFIGURATION ?= Debug
IMG ?= controlplane-operator:dev
KUBECTL ?= kubectl

.PHONY: help tools build manifests verify-manifests test unit-test up install uninstall run docker-build bench chaos clean

help: ## Show the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

tools: ## Install what the tests and `make up` need: etcd, kube-apiserver, kube-controller-manager, PostgreSQL 15 (idempotent, cached)
	bash hack/install-control-plane.sh

build: ## Build the solution (warnings are errors)
	$(DOTNET) build ControlPlane.sln -c $(CONFIGURATION)

manifests: ## Regenerate crds/ from the C# API types
	$(DOTNET) run --project operator -c $(CONFIGURATION) -- generate-manifests $(CURDIR)

verify-manifests: manifests ## Fail when crds/ drifts from the C# types
	git diff --exit-code -- crds/ config/rbac/workspace-roles.yaml

test: tools ## Install what is missing, then run every test (unit and integration on a real control plane and Postgres)
	bash hack/test.sh

unit-test: ## Only the tests that need no servers
	bash hack/test.sh --filter "FullyQualifiedName!~TenantTests"

up: tools ## Start a local control plane + Postgres, install CRDs, run the operator, apply samples/ (Ctrl-C stops)
	$(DOTNET) run --project tests/ControlPlane.LocalEnv -c $(CONFIGURATION) -- $(ARGS)

install: ## Install CRDs and cluster roles into the current kubeconfig's cluster
	$(KUBECTL) apply -f crds/
	$(KUBECTL) apply -f config/rbac/

uninstall: ## Remove CRDs and cluster roles from the current kubeconfig's cluster
	$(KUBECTL) delete --ignore-not-found -f config/rbac/
	$(KUBECTL) delete --ignore-not-found -f crds/

run: ## Run the operator against the current kubeconfig (set ControlPlane__SystemDatabase and ControlPlane__Regions__<r>__Database)
	$(DOTNET) run --project operator -c $(CONFIGURATION)

bench: tools ## Benchmarks on the local control plane: converge vs floor, idle, memory, one change, restart, webhook latency (writes bench/results/)
	$(DOTNET) run --project bench/ControlPlane.Bench -c Release

chaos: tools ## Chaos: 200 workspaces with databases while the operator is SIGKILLed 20 times, the API server restarted twice, Postgres once, etcd compacted once; checks nothing is lost, duplicated or left (writes chaos/results/latest.json; CHAOS_SEED=n replays)
	$(DOTNET) run --project chaos/ControlPlane.Chaos -c Release

docker-build: ## Build the operator image
	docker build -t $(IMG) .

clean:
	$(DOTNET) clean ControlPlane.sln
	rm -rf .local
