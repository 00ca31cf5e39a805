#!/usr/bin/env bash
# Set up from nothing: a virtualenv with the CPU build of torch and this package (editable).
#   bash scripts/setup.sh          -> .venv      with transformer-lens 4.x (TransformerBridge)
#   bash scripts/setup.sh --tl3    -> .venv-tl3  with transformer-lens 3.9 (HookedTransformer)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
venv=.venv
tl="transformer-lens>=4.3,<5"
if [ "${1:-}" = "--tl3" ]; then venv=.venv-tl3; tl="transformer-lens==3.9.0"; fi
[ -x "$venv/bin/python" ] || "$PY" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# torch first, pinned: the CPU build on this machine's disk (an unpinned torch is a CUDA build)
"$venv/bin/python" -m pip install -q "torch==2.13.0"
extras="dev,slt,sweep"; [ "$venv" = .venv ] && extras="dev,docs,slt,sweep"
"$venv/bin/python" -m pip install -q "$tl" -e ".[$extras]"
echo "set up $venv ($("$venv/bin/python" -c 'import importlib.metadata as m; print("transformer-lens", m.version("transformer-lens"))'))"
