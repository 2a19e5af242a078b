# ControlPlane operator. `make up` runs it on an embedded local control plane; `make test` runs every test.
SHELL := /bin/bash
DOTNET ?= dotnet
CONFIGURATION ?= Debug
IMG ?= controlplane-operator:dev
KUBECTL ?= kubectl

.PHONY: help tools build manifests verify-manifests test unit-test up install uninstall run docker-build bench chaos clean plugin plugin-pack plugin-krew

help: ## Show the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-18s %s\n", $$1, $$2}'

tools: ## Install what the tests and `make up` need: etcd, kube-apiserver, kube-controller-manager, PostgreSQL 15, Helm 3.17, s3rver, Prometheus (idempotent, cached)
	bash hack/install-control-plane.sh
	bash hack/install-helm.sh
	bash hack/install-s3.sh
	bash hack/install-prometheus.sh

build: ## Build the solution (warnings are errors)
	$(DOTNET) build ControlPlane.sln -c $(CONFIGURATION)

GENERATED := crds/ docs/api/ config/rbac/ charts/controlplane/files/ dist/ samples/gitops/argocd-cm-health.yaml

manifests: ## Regenerate crds/, docs/api/ (the API reference), the workspace roles, the chart's copies of them and dist/install.yaml (helm template)
	DOTNET=$(DOTNET) CONFIGURATION=$(CONFIGURATION) bash hack/manifests.sh

verify-manifests: manifests ## Fail when anything generated drifts from its source (crds/, docs/api/, config/rbac, the chart, dist/)
	git diff --exit-code -- $(GENERATED)
	@test -z "$$(git status --porcelain -- $(GENERATED))" || { git status --porcelain -- $(GENERATED); echo "untracked generated files: commit them"; exit 1; }

test: tools ## Install what is missing, then run every test (unit and integration on a real control plane and Postgres)
	bash hack/test.sh

unit-test: ## Only the unit project (tests/ControlPlane.UnitTests): no server starts, no tools needed, under a minute
	bash hack/test.sh --unit

PLUGIN_RID ?= $(shell $(DOTNET) --info | awk '/RID:/{print $$2; exit}')

plugin: ## Build the kubectl plugin as one file: bin/kubectl-controlplane (and bin/kubectl_complete-controlplane, kubectl's completion hook); put bin/ on PATH and run kubectl controlplane --help
	$(DOTNET) publish operator/ControlPlane.Cli -c Release -r $(PLUGIN_RID) --self-contained false -p:PublishSingleFile=true -p:PackAsTool=false -p:DebugType=none -o .local/plugin
	mkdir -p bin
	cp .local/plugin/kubectl-controlplane bin/kubectl-controlplane
	printf '#!/bin/sh\n# kubectl (1.26+) asks this for completions of `kubectl controlplane ...`\nexec kubectl-controlplane __complete "$$@"\n' > bin/kubectl_complete-controlplane
	chmod +x bin/kubectl-controlplane bin/kubectl_complete-controlplane

RELEASE_URI ?= file://$(CURDIR)/bin/krew/kubectl-controlplane-linux-amd64.tar.gz
plugin-krew: plugin ## Pack the plugin for krew: bin/krew/kubectl-controlplane-linux-amd64.tar.gz and bin/krew/controlplane.yaml (plugins/krew/controlplane.yaml with its sha256 and RELEASE_URI)
	mkdir -p bin/krew
	tar -C bin -czf bin/krew/kubectl-controlplane-linux-amd64.tar.gz kubectl-controlplane kubectl_complete-controlplane
	sed -e "s|RELEASE_URI|$(RELEASE_URI)|" -e "s|ARCHIVE_SHA256|$$(sha256sum bin/krew/kubectl-controlplane-linux-amd64.tar.gz | cut -d' ' -f1)|" plugins/krew/controlplane.yaml > bin/krew/controlplane.yaml

plugin-pack: ## Pack the plugin as a dotnet tool (bin/nupkg/ControlPlane.KubectlPlugin.*.nupkg): dotnet tool install -g --add-source bin/nupkg ControlPlane.KubectlPlugin
	$(DOTNET) pack operator/ControlPlane.Cli -c Release -o bin/nupkg

up: tools plugin ## Start a local control plane + Postgres, install CRDs, run the operator, apply samples/ (Ctrl-C stops)
	$(DOTNET) run --project tests/ControlPlane.LocalEnv -c $(CONFIGURATION) -- $(ARGS)

install: ## Install CRDs and cluster roles into the current kubeconfig's cluster
	$(KUBECTL) apply -f crds/
	$(KUBECTL) apply -f config/rbac/

uninstall: ## Remove CRDs, cluster roles and the operator's webhook configurations from the current kubeconfig's cluster
	$(KUBECTL) delete --ignore-not-found mutatingwebhookconfiguration/controlplane-mutating validatingwebhookconfiguration/controlplane-validating
	$(KUBECTL) delete --ignore-not-found -f config/rbac/
	$(KUBECTL) delete --ignore-not-found -f crds/

# An operator outside the cluster cannot be reached through the in-cluster webhook Service, and a
# configuration pointing at a Service without endpoints fails every controlplane.io write. So `make run`
# serves no webhooks unless WEBHOOK_URL says where the API server reaches this machine
# (e.g. WEBHOOK_URL=https://192.168.1.10:9443 WEBHOOK_SAN=192.168.1.10).
WEBHOOK_URL ?=
WEBHOOK_SAN ?=
run: ## Run the operator against the current kubeconfig (set ControlPlane__SystemDatabase and ControlPlane__Regions__<r>__Database; WEBHOOK_URL to serve admission)
	@if [ -z "$(WEBHOOK_URL)" ]; then \
	  echo "*** make run: admission webhooks are OFF (no WEBHOOK_URL): nothing validates or stamps controlplane.io objects. ***" >&2; \
	  echo "*** Set WEBHOOK_URL=https://<address the API server reaches>:9443 (and WEBHOOK_SAN=<that address>) to serve them. ***" >&2; \
	fi
	ControlPlane__Webhook__Enabled=$(if $(WEBHOOK_URL),true,false) \
	ControlPlane__Webhook__Url=$(WEBHOOK_URL) \
	$(if $(WEBHOOK_SAN),ControlPlane__Webhook__ExtraSans__0=$(WEBHOOK_SAN)) \
	$(DOTNET) run --project operator/ControlPlane.Operator -c $(CONFIGURATION)

bench: tools ## Benchmarks on the local control plane: converge vs floor, idle, memory, one change, restart, webhook latency, exposure publication, backup vs pg_dump floor and restore, rollout breach-to-rollback and idle soak, the audit API over 100,000 rows, foreign load (50,000 foreign pods, status churn), notification delivery and backlog drain (writes bench/results/)
	$(DOTNET) run --project bench/ControlPlane.Bench -c Release

chaos: tools ## Chaos: 200 workspaces with databases while the operator is SIGKILLed 20 times, the API server restarted twice, Postgres once, etcd compacted once; checks nothing is lost, duplicated or left (writes chaos/results/latest.json; CHAOS_SEED=n replays)
	$(DOTNET) run --project chaos/ControlPlane.Chaos -c Release

docker-build: ## Build the operator image
	docker build -t $(IMG) .

clean:
	$(DOTNET) clean ControlPlane.sln
	rm -rf .local
