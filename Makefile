# warren: what each target does is in its comment; `make help` lists them.
SWIFT ?= swift
.DEFAULT_GOAL := build

.PHONY: help build test

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## Build everything (debug)
	$(SWIFT) build

test: ## Build and run all tests; integration tests start a real sshd (needs root and openssh-server)
	$(SWIFT) build --build-tests
	$(SWIFT) test
