# Each target bootstraps its own virtualenv on a fresh machine (Python 3.11+).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench venv clean browser

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m modelops.demo

test: $(STAMP) browser
	$(BIN)/python -m pytest -n 2 --dist loadfile

# The page tests render in Debian's headless chromium (never a browser download): installed
# here where missing, as root and non-interactively; without root or apt they are skipped
# and say why.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (Debian) for the page tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null) \
	      || echo "warning: apt-get could not install chromium; the browser tests will be skipped"; \
	  else echo "warning: chromium missing and not root: sudo apt-get install -y chromium; the browser tests will be skipped"; fi; }

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .modelops .pytest_cache
