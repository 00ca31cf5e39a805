#!/usr/bin/env bash
# Build the documentation site strictly (any warning fails): bash scripts/docs.sh [OUT_DIR]
# OUT_DIR defaults to a temporary directory that is removed afterwards; pass site/ to keep the HTML.
# Installs the `docs` extra (mkdocs-material, mkdocstrings[python]) into .venv when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
if ! .venv/bin/python -c "import material, mkdocstrings_handlers.python, mkdocs_jupyter" 2>/dev/null; then
    .venv/bin/python -m pip install -q -e ".[docs]"
fi
out=${1:-}
if [ -z "$out" ]; then
    out=$(mktemp -d)
    trap 'rm -rf "$out"' EXIT
fi
export NO_MKDOCS_2_WARNING=1  # mkdocs-material's banner about its successor; not a build warning
.venv/bin/mkdocs build --strict --quiet -d "$out"
echo "docs built (strict) into $out"
