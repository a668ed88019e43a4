# The two commands. Each does all of its own set-up on a fresh machine.
#   make demo   train -> export -> verify -> profile -> report on real data available offline
#   make test   the test suite
#   make lava-env / make oracle-test   the real Lava/lava-dl toolchain as an oracle (Python 3.10 env, cached)
PYTHON ?= python3
VENV ?= .venv
# Override for a GPU build, e.g. make test TORCH_SPEC="torch==2.13.0 --index-url ..."
TORCH_SPEC ?= torch==2.13.0
SPIKESEQ_DATA ?= $(abspath ../shared/data)
BIN := $(VENV)/bin
# Peers that pin torch/torchvision/torchaudio in their metadata: installed with --no-deps, their real
# runtime requirements are listed in the `dev`/`data` extras.
PEERS_NO_DEPS ?= snntorch==1.0.0 norse==1.1.0 nirtorch==2.6 spikingjelly==2.0.0 neurobench==2.3.0 dcls==0.1.1 tonic==1.7.0 avalanche-lib==0.6.0 rwkv==0.8.32

# The Lava oracle environment: Python 3.10 + lava-nc 0.10 + lava-dl 0.6 (pins in .ci/lava-requirements.txt),
# built once outside the repository (a few GB), reused while its stamp matches the pins.
SPIKESEQ_CACHE ?= $(HOME)/.cache/spikeseq
LAVA_ENV ?= $(SPIKESEQ_CACHE)/lava-py310

.PHONY: demo test lint bench clean-venv chromium lava-env oracle-test

$(BIN)/.spikeseq-installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e ".[dev,report,gpu]"
	$(BIN)/python -m pip install -q --no-deps $(PEERS_NO_DEPS)
	$(BIN)/python -c "import torch, spikeseq; print('spikeseq', spikeseq.__version__, 'torch', torch.__version__)"
	touch $@

demo: $(BIN)/.spikeseq-installed
	SPIKESEQ_DATA="$(SPIKESEQ_DATA)" $(BIN)/spikeseq demo

# The report test renders the HTML page in headless Chromium (Debian package); installed when missing and root.
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
	  echo "chromium not installed: the report render test skips (fails under SPIKESEQ_REQUIRE_DATA=1)"

test: $(BIN)/.spikeseq-installed chromium
	$(BIN)/ruff check spikeseq tests examples
	$(BIN)/lint-imports
	SPIKESEQ_DATA="$(SPIKESEQ_DATA)" $(BIN)/python -m pytest -q -p no:cacheprovider -m "not oracle" tests

lava-env:
	SPIKESEQ_CACHE="$(SPIKESEQ_CACHE)" SPIKESEQ_LAVA_ENV="$(LAVA_ENV)" bash .ci/lava-env.sh

# Oracle tests (tests marked `oracle`): netx and the generated Lava scripts run by the real Lava. When the
# environment cannot be built they skip, or fail under SPIKESEQ_REQUIRE_ORACLES=1 (set by .ci/run).
oracle-test: $(BIN)/.spikeseq-installed
	@lava_py="$$(SPIKESEQ_CACHE="$(SPIKESEQ_CACHE)" SPIKESEQ_LAVA_ENV="$(LAVA_ENV)" bash .ci/lava-env.sh | tail -n 1)" || \
	  { echo "oracle-test: the Lava environment could not be built (see above)"; lava_py=""; }; \
	echo "oracle-test: SPIKESEQ_LAVA_PYTHON=$$lava_py"; \
	SPIKESEQ_LAVA_PYTHON="$$lava_py" SPIKESEQ_DATA="$(SPIKESEQ_DATA)" \
	  $(BIN)/python -m pytest -q -p no:cacheprovider -m oracle tests/oracles

bench: $(BIN)/.spikeseq-installed
	$(BIN)/spikeseq bench sim

clean-venv:
	rm -rf $(VENV)
