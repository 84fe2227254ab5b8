# Everyday commands. Each one creates or updates .venv first: from requirements.lock (the service
# and its servers) for run and serve, with requirements-dev.lock (tests, linters) on top for
# test, and bench/requirements.lock on top for bench.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEV_INSTALLED := $(VENV)/.dev-installed
BENCH_INSTALLED := $(VENV)/.bench-installed
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check
HOST ?= 127.0.0.1
PORT ?= 8000

# Debian packages the live tests drive: a real browser, a real proxy for the deployment,
# podman (with runc, debootstrap for a local base image, and catatonit for the pause process of
# the pods `podman kube play` starts) for the container image and the Kubernetes manifests,
# iproute2 for the hosts of the multi-host test (network namespaces), and a real channel layer
# and database server for the fast consumer (Redis, PostgreSQL).
SYSTEM_PACKAGES := chromium nginx podman runc debootstrap catatonit iproute2 redis-server \
	postgresql
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install system-packages run serve serve-uvicorn collectstatic test runtime-check lint \
	format lock bench bench-quick clean

install: $(INSTALLED)

$(INSTALLED): requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements.lock
	touch $@

$(DEV_INSTALLED): $(INSTALLED) requirements-dev.lock
	$(PIP_INSTALL) -r requirements-dev.lock
	touch $@

## Install whichever of $(SYSTEM_PACKAGES) is missing, with apt-get
system-packages:
	@missing=""; \
	for package in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "install ok installed" \
			|| missing="$$missing $$package"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing$$missing with apt-get"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

## Development server (daphne through manage.py runserver) on http://$(HOST):$(PORT)
run: $(INSTALLED)
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} $(BIN)/python manage.py runserver $(HOST):$(PORT)

## Production-style server: DEBUG off, so DJANGO_SECRET_KEY must be set
serve: collectstatic
	$(BIN)/daphne --bind $(HOST) --port $(PORT) project.asgi:application

## The same under uvicorn, with the project's protocol classes (docs/servers.md)
serve-uvicorn: collectstatic
	$(BIN)/uvicorn --host $(HOST) --port $(PORT) --no-proxy-headers --lifespan off \
		--http servers.uvicorn:EchoHTTPProtocol \
		--ws servers.uvicorn:EchoWebSocketProtocol \
		project.asgi:application

## Static files, content-hashed, into DJANGO_STATIC_ROOT (./staticfiles by default)
collectstatic: $(INSTALLED)
	DJANGO_DEBUG=$${DJANGO_DEBUG:-false} $(BIN)/python manage.py collectstatic --noinput -v 0

## Lint, format check and the whole test suite
test: lint system-packages $(DEV_INSTALLED)
	$(BIN)/python -m pytest

## A production install from requirements.lock alone: the service and its servers start, and no
## test or benchmark tool is installed
RUNTIME_VENV := .venv-runtime-check
runtime-check:
	rm -rf $(RUNTIME_VENV) && $(PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(RUNTIME_VENV)/bin/python -m tools.runtime_check; status=$$?; rm -rf $(RUNTIME_VENV); exit $$status

$(BENCH_INSTALLED): $(INSTALLED) bench/requirements.lock
	$(PIP_INSTALL) -r bench/requirements.lock
	touch $@

## The benchmark against the peers (about 40 minutes on 2 cores); results in bench/results/
bench: $(BENCH_INSTALLED)
	$(BIN)/python -m bench.run

## A smoke run of the benchmark (about three minutes)
bench-quick: $(BENCH_INSTALLED)
	$(BIN)/python -m bench.run --quick

lint: $(DEV_INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEV_INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Re-pin the three lock files from the ranges in pyproject.toml
lock: $(INSTALLED)
	$(PIP_INSTALL) uv
	$(BIN)/uv pip compile --universal --python-version 3.11 --extra uvicorn --no-header \
		pyproject.toml -o requirements.lock
	$(BIN)/uv pip compile --universal --python-version 3.11 --extra dev --no-header \
		-c requirements.lock pyproject.toml -o requirements-dev.lock
	$(BIN)/uv pip compile --universal --python-version 3.11 --extra bench --no-header \
		-c requirements.lock pyproject.toml -o bench/requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
