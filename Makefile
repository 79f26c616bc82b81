# The two commands: `make demo` runs the product, `make test` runs every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DATA ?= .demo
DEMO_PORT ?= 8000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: screenshots demo test test-hub-postgresql test-shifted faketime postgresql kiosk-setup-tools bench soak lint format install chromium translations clean

$(STAMP): pyproject.toml
	@# Debian's own python3 ships venv without ensurepip: python3-venv brings it.
	@$(PY) -c 'import ensurepip' 2>/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y python3-venv)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(STAMP)

# Browser tests drive Debian's Chromium (Playwright cannot download its own here).
chromium:
	@test -x /usr/bin/chromium || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

# The hub's PostgreSQL tests start Debian's server as a throwaway cluster in a temporary
# folder, as the unprivileged `postgres` user the package makes (tests/pg.py); the
# package's own always-on `main` cluster is not wanted (createcluster.d says so first).
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || ( \
	  $(SUDO) mkdir -p /etc/postgresql-common/createcluster.d && \
	  echo 'create_main_cluster = false' | $(SUDO) tee /etc/postgresql-common/createcluster.d/kiosk-tests.conf >/dev/null && \
	  $(SUDO) apt-get update && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql)

demo: $(STAMP)
	$(BIN)/kiosk demo --data $(DEMO_DATA) --port $(DEMO_PORT)

# kiosk-setup's tests: shellcheck on its scripts, cage (headless) and grim to screenshot
# the kiosk screen, systemd-analyze on its units (Debian 12 has systemd).
kiosk-setup-tools:
	@command -v shellcheck >/dev/null && command -v cage >/dev/null && command -v grim >/dev/null && command -v Xwayland >/dev/null || ( \
	  $(SUDO) apt-get update && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y shellcheck cage grim xwayland)

test: $(STAMP) chromium postgresql kiosk-setup-tools
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 2
	$(MAKE) --no-print-directory test-hub-postgresql
	$(MAKE) --no-print-directory test-shifted

# The hub's whole suite again with its database on PostgreSQL (every test marked `hub`:
# those that use a seeded hub), on a throwaway cluster of Debian's server (tests/pg.py).
test-hub-postgresql: $(STAMP) chromium postgresql
	@echo "== the hub's tests again, on PostgreSQL"
	KIOSK_TEST_HUB_BACKEND=postgresql $(BIN)/python -m pytest -q -p no:cacheprovider -n 2 -m hub

# The shifted runs fake the SYSTEM clock of every process (tests and the servers they
# start) with Debian's libfaketime: tests about time (marker `clock`) must pass on any date.
faketime:
	@dpkg -L libfaketime 2>/dev/null | grep -q '/libfaketime\.so\.1$$' || ($(SUDO) apt-get update && $(SUDO) apt-get install -y faketime)

# libfaketime fakes the monotonic clock too, but not sem_clockwait(), through which
# Python times its waits (Event.wait...): tests/faketime/timed_waits.c, preloaded first,
# puts those deadlines back on the kernel's clock, or every background thread hangs.
TIMED_WAITS := $(VENV)/faketime-timed-waits.so
$(TIMED_WAITS): tests/faketime/timed_waits.c
	@command -v cc >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y gcc libc6-dev)
	cc -shared -fPIC -O2 -Wall -o $@ $< -ldl

# FAKETIME_DONT_RESET: servers started later keep the same running clock as the tests
# (without it, each new process would start again at the "@" instant).
# On two processes like the main pass (xdist's workers inherit the preloads and FAKETIME:
# each pass 2 min 10 s -> 1 min 20 s).
CLOCK_TESTS := $(BIN)/python -m pytest -q -p no:cacheprovider -n 2 -m "clock and not browser"
SHIFTED = TZ=UTC FAKETIME_DONT_RESET=1 \
	LD_PRELOAD="$(CURDIR)/$(TIMED_WAITS) $$(dpkg -L libfaketime | grep '/libfaketime\.so\.1$$' | head -n 1)"

test-shifted: $(STAMP) faketime $(TIMED_WAITS)
	@echo "== clock tests with the system clock shifted 400 days ahead (FAKETIME=+400d)"
	$(SHIFTED) FAKETIME=+400d $(CLOCK_TESTS)
	@start="$$($(BIN)/python -m tests.dates)"; \
	echo "== clock tests on the night Paris springs forward: system clock from $$start UTC (01:59 in Paris), running"; \
	$(SHIFTED) FAKETIME="@$$start" $(CLOCK_TESTS)

bench: $(STAMP) postgresql
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/search_typos.py
	$(BIN)/python benchmarks/kiosk_recognised.py
	$(BIN)/python benchmarks/orders.py
	$(BIN)/python benchmarks/sync.py
	$(BIN)/python benchmarks/carts.py
	$(BIN)/python benchmarks/hub_scale.py --stores 10,40 --seconds 15
	$(BIN)/python benchmarks/hub_scale.py --backend postgresql --workers 2 --stores 100 --seconds 15
	$(BIN)/python benchmarks/hub_pages.py --stores 1000 --repeat 10

# Every screen of the demo (kiosk portrait and landscape, counter, head office, phone)
# into screenshots/ with an index.html; see the README ("What it looks like").
screenshots: $(STAMP) chromium
	$(BIN)/python -m tools.screenshots --out screenshots

# Hundreds of kill -9 rounds of the store server during bursts and sync (tests/test_sync_crash.py).
soak: $(STAMP)
	KIOSK_SOAK_ROUNDS=300 $(BIN)/python -m pytest -q tests/test_sync_crash.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Refresh the translation template and the French catalog from the sources.
translations: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o app/web/translations/messages.pot --no-location --sort-output .
	$(BIN)/pybabel update -i app/web/translations/messages.pot -d app/web/translations --no-fuzzy-matching --ignore-obsolete

clean:
	rm -rf $(VENV) $(DEMO_DATA) .pytest_cache test-artifacts
