# warren: what each target does is in its comment; `make help` lists them.
SWIFT ?= swift
.DEFAULT_GOAL := build

.PHONY: help build test demo bench install

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## Build everything (debug)
	$(SWIFT) build

test: ## Build and run all tests; integration tests start a real sshd (needs root and openssh-server)
	$(SWIFT) build --build-tests
	$(SWIFT) test

demo: ## Show warren keeping a tunnel up: local sshd as bastion, echo target, kill and recover (root; installs openssh-server)
	bash scripts/demo.sh

bench: ## warren vs autossh vs bare ssh: time to ready, recovery, half-dead, footprint, reload (root; ~12 min, QUICK=1 about 3)
	python3 bench/bench.py $(if $(QUICK),--quick,)
