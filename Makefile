# infergate: `make setup`, `make test`, `make demo`, `make deploy`. See README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: setup controlplane controllers test unit demo demo-down deploy undeploy sync-policy bench clean

# The venv, the control-plane binaries, the ecosystem's controllers, helm and a headless Chromium: everything the
# project and its tests need.
setup: $(INSTALLED)
	bash devcluster/build.sh
	bash devcluster/install-chromium.sh

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# Builds etcd, kube-apiserver, kube-scheduler, kube-controller-manager and kwok once, into ~/.cache/infergate/.
controlplane:
	bash devcluster/build.sh controlplane

# Builds the LeaderWorkerSet, JobSet, KServe and OME controller managers once, into ~/.cache/infergate/.
controllers:
	bash devcluster/build.sh lws jobset kserve ome

# The whole suite: unit, integration and end-to-end against a real local control plane.
test: setup
	INFERGATE_E2E_REQUIRED=1 $(BIN)/pytest

# Everything that needs no control plane.
unit: setup
	$(BIN)/pytest -m "not e2e"

# A local control plane with the webhook and the extender, every sample applied; `make demo-down` stops it.
demo: setup
	$(BIN)/python -m devcluster.demo up --dir .demo

demo-down:
	$(BIN)/python -m devcluster.demo down --dir .demo

# Installs into the current kubectl context. OVERLAY=cert-manager uses cert-manager instead of `infergate certs`.
OVERLAY ?= self-signed
deploy: setup
	@if [ "$(OVERLAY)" = self-signed ]; then bash deploy/overlays/self-signed/setup.sh; fi
	$(BIN)/kubectl apply -k deploy/overlays/$(OVERLAY)

undeploy: setup
	$(BIN)/kubectl delete -k deploy/overlays/$(OVERLAY) --ignore-not-found

# Copies policies/*.yaml into the policy ConfigMap of deploy/base (a test fails when they drift apart).
sync-policy:
	bash deploy/sync-policy.sh

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
