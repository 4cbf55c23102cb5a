# Gold Bean: the two commands a new machine needs are `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 5000
# the suite runs on every core (pytest-xdist); each worker has its own scratch databases and ports
PYTEST_ARGS ?= -n auto

.PHONY: install run test lint migrate seed verify clean bench chaos ha-up ha-down ha-status

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Gold Bean needs Python 3.11 or newer"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# front-end libraries come from npm through this step, never committed (see docs/ui.md): jsQR (the till's camera),
# qrcode-generator (the wallet's offline code, drawn on the phone), JsBarcode (the pay code's barcode) and Leaflet
# (the coverage board's map: posts as points over a plain background, no tile server is reachable)
VENDOR_LIBS := jsqr@1 qrcode-generator@2 jsbarcode@3 leaflet@1
VENDOR := admin_ui/static/vendor/node_modules/.goldbean-vendor-3
$(VENDOR):
	@if command -v npm >/dev/null 2>&1; then npm install --silent --no-audit --no-fund --prefix admin_ui/static/vendor $(VENDOR_LIBS) && touch $@; \
	else echo "npm not found: the till's camera scanner, the wallet's offline code, its barcode and the coverage map are off"; fi

# test-only: axe-core, injected by the accessibility test into the pages (tests/admin_ui/test_accessibility.py);
# kept under .venv, never served
AXE := $(VENV)/npm/node_modules/axe-core/axe.min.js
$(AXE): $(STAMP)
	@if command -v npm >/dev/null 2>&1; then npm install --silent --no-audit --no-fund --prefix $(VENV)/npm axe-core@4; \
	else echo "npm not found: the accessibility test is skipped"; fi

install: $(STAMP) $(VENDOR) $(AXE)

## make run: install, migrate the SQLite database, seed the demo district, serve on http://127.0.0.1:5000
run: install
	GOLDBEAN_DEMO=1 $(BIN)/goldbean db upgrade
	GOLDBEAN_DEMO=1 $(BIN)/goldbean seed-demo
	@echo "Gold Bean on http://$(HOST):$(PORT)/ (sign in at /signin; Ctrl-C stops the server and its worker)"
	@GOLDBEAN_DEMO=1 $(BIN)/goldbean worker & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	GOLDBEAN_DEMO=1 GOLDBEAN_BIND=$(HOST):$(PORT) GOLDBEAN_WORKERS=$${GOLDBEAN_WORKERS:-2} $(BIN)/goldbean serve

## make test: install and run the whole suite (PostgreSQL tests run when GOLDBEAN_TEST_POSTGRES_URL is reachable)
test: install lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make lint: ruff and the import contracts that keep the rooms' doors where they are (docs/architecture.md)
lint: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports

## make bench [QUICK=1]: posting, batches, growth, verify/export next to the database's own speed (docs/performance.md)
bench: install
	$(BIN)/python -m bench.run $(if $(filter 1 yes true,$(QUICK)),--quick,)

## make chaos [DURATION=600] [DB=postgres|sqlite|both|ha]: fault injection under load, then the checker (docs/security.md);
## DB=ha: a local Patroni cluster whose primary is killed, stopped and paused (>= 1 failover per 2 minutes)
DURATION ?= 600
DB ?= both
MIN_FAULTS ?= 20
chaos: install
	$(BIN)/python -m tests.chaos --db $(DB) --duration $(DURATION) --min-faults $(MIN_FAULTS)

## make ha-up / ha-down: a local highly available PostgreSQL (Patroni + etcd, a primary and two standbys,
## strict synchronous replication) in $(HA_DIR), for trying it out (docs/operations.md, "High availability")
HA_DIR ?= .ha
ha-up: install
	$(BIN)/python -m goldbean.ha_local up --dir $(HA_DIR)

ha-down:
	$(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON)) -m goldbean.ha_local down --dir $(HA_DIR)

ha-status:
	$(BIN)/python -m goldbean.ha_local status --dir $(HA_DIR)

migrate: install
	$(BIN)/goldbean db upgrade

verify: install
	$(BIN)/goldbean ledger verify

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
