#!/usr/bin/env bash
# The test suite: lint, the strict docs build, all tests under transformer-lens 4.x, then the model-adapter
# tests again under transformer-lens 3.9 (HookedTransformer). Sets up what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup.sh --tl3
.venv/bin/ruff check modadd_interp tests benchmarks examples scripts
bash scripts/docs.sh
# the benchmarks in quick mode: they must run; timings are reported, never asserted
.venv/bin/python benchmarks/run.py --quick --json "$(mktemp -d)/benchmarks.json"
.venv/bin/python benchmarks/scale.py --p 113 --json "$(mktemp -d)/scale.json"
.venv/bin/python benchmarks/verdicts.py --quick  # asserts: nothing confirmed that does not generalize; recall >= 0.95
.venv-tl3/bin/python -m pytest -q -m adapter "$@"
.venv/bin/python -m pytest -q "$@"
