# warren: what each target does is in its comment; `make help` lists them.
SWIFT ?= swift
PROMTOOL ?= promtool
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share/warren
SYSTEMD_DIR ?= $(PREFIX)/lib/systemd/system
# Staging root for packagers: make install DESTDIR=/tmp/pkg
DESTDIR ?=
.DEFAULT_GOAL := build

.PHONY: help build release test test-compat validate-deploy demo bench bench-scale soak install uninstall

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## Build everything (debug)
	$(SWIFT) build

release: ## Build the optimised binary that install installs
	$(SWIFT) build -c release

# The Compat suites are test-compat's: left out here, not counted as skipped.
test: validate-deploy ## Build and run all tests but the bastion matrix; integration tests start a real sshd (needs root and openssh-server)
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip 'WarrenIntegrationTests\.Compat'

test-compat: ## The bastion matrix: every scenario on sshd 9.2, sshd 10.5 (penalties on) and Dropbear with ssh 9.2 and 10.5 (root; builds OpenSSH 10.5p1 once, ~3 min, cached in /var/cache/warren-compat)
	SWIFT="$(SWIFT)" bash scripts/test-compat.sh

validate-deploy: ## Validate deploy/kubernetes offline against the Kubernetes schemas (pip install kubernetes-validate) and deploy/prometheus's alerting rules with their unit tests (promtool, Debian's prometheus); fails, never skips, without them
	python3 deploy/validate.py
	@command -v $(PROMTOOL) >/dev/null 2>&1 || { echo "validate-deploy: $(PROMTOOL) not found: apt-get install prometheus (it ships promtool)" >&2; exit 1; }
	$(PROMTOOL) check rules deploy/prometheus/warren-rules.yml
	cd deploy/prometheus && $(PROMTOOL) test rules warren-rules.test.yml

demo: ## Show warren keeping a tunnel up: local sshd as bastion, echo target, kill and recover (root; installs openssh-server)
	bash scripts/demo.sh

install: release ## Install the binary to BINDIR, templates to DATADIR/templates, warren.service and warren@.service to SYSTEMD_DIR (PREFIX=/usr/local)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/templates $(DESTDIR)$(SYSTEMD_DIR)
	install -m 0755 "$$($(SWIFT) build -c release --show-bin-path)/warren" $(DESTDIR)$(BINDIR)/warren
	install -m 0644 Templates/*.mustache $(DESTDIR)$(DATADIR)/templates/
	sed 's|@BINDIR@|$(BINDIR)|g' Templates/warren.service > $(DESTDIR)$(SYSTEMD_DIR)/warren.service
	sed 's|@BINDIR@|$(BINDIR)|g' deploy/systemd/warren@.service > $(DESTDIR)$(SYSTEMD_DIR)/warren@.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_DIR)/warren.service $(DESTDIR)$(SYSTEMD_DIR)/warren@.service
	@echo "installed; for systemd: create the warren user (see $(SYSTEMD_DIR)/warren.service), then systemctl daemon-reload"

uninstall: ## Remove what install installed
	rm -f $(DESTDIR)$(BINDIR)/warren $(DESTDIR)$(SYSTEMD_DIR)/warren.service $(DESTDIR)$(SYSTEMD_DIR)/warren@.service
	rm -rf $(DESTDIR)$(DATADIR)

bench: ## warren vs autossh vs bare ssh: time to ready, recovery, half-dead, footprint, reload (root; ~12 min, QUICK=1 about 3)
	python3 bench/bench.py $(if $(QUICK),--quick,)

# make bench-scale SCALE_TUNNELS=100 SCALE_BASTIONS=5 for a small run
SCALE_TUNNELS ?= 1000
SCALE_BASTIONS ?= 50
bench-scale: ## warren vs autossh, SCALE_TUNNELS over SCALE_BASTIONS loopback sshd: time to all up, MaxStartups drops, idle CPU, RSS, threads (root)
	python3 bench/bench.py --only scale --scale-tunnels $(SCALE_TUNNELS) --scale-bastions $(SCALE_BASTIONS) $(if $(QUICK),--quick,)

# make soak SOAK_SECONDS=600 SOAK_TUNNELS=40 SOAK_SEED=7 SOAK_POSTGRES=40; more flags: python3 bench/soak.py --help
SOAK_SECONDS ?= 240
SOAK_TUNNELS ?= 20
SOAK_SEED ?= 1
SOAK_POSTGRES ?= 10
soak: ## Seeded chaos run over many tunnels (kills, drops, freezes, sshd and target restarts, held ports): recovery per fault kind (root; ~6 min)
	python3 bench/soak.py --duration $(SOAK_SECONDS) --tunnels $(SOAK_TUNNELS) --seed $(SOAK_SEED) --postgres $(SOAK_POSTGRES)
