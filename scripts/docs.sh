#!/usr/bin/env bash
# Build the documentation site strictly (any warning fails): bash scripts/docs.sh [OUT_DIR]
# OUT_DIR defaults to a temporary directory that is removed afterwards; pass site/ to keep the HTML.
# Installs the `docs` extra (mkdocs-material, mkdocstrings[python]) into .venv when it is missing.
#
# The build executes docs/tutorial.ipynb (mkdocs.yml: mkdocs-jupyter `execute: true`, `allow_errors: false`) in a
# fresh kernel of .venv's interpreter, offline, so the page shows its verdicts, tables and figures; the notebook
# itself stays without outputs. The kernel imports this checkout, and draws plotly figures as HTML that loads
# nothing: plotly's own notebook renderers add a MathJax <script> from a CDN to every figure (and the default one
# emits only plotly's JSON, which the page cannot draw), so the kernel's IPython startup registers a renderer that
# inlines plotly.js once (on the first figure) and each figure as a div with its data.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
if ! .venv/bin/python -c "import material, mkdocstrings_handlers.python, mkdocs_jupyter" 2>/dev/null; then
    .venv/bin/python -m pip install -q -e ".[docs]"
fi
out=${1:-}
kernel=$(mktemp -d)
if [ -z "$out" ]; then
    out=$(mktemp -d)
    trap 'rm -rf "$out" "$kernel"' EXIT
else
    trap 'rm -rf "$kernel"' EXIT
fi
mkdir -p "$kernel/profile_default/startup"
cat > "$kernel/profile_default/startup/00-offline-figures.py" <<'PY'
import warnings

import plotly.io as pio

# this kernel has no ipywidgets; tqdm's notice about it (with this machine's paths) is not the tutorial's output
warnings.filterwarnings("ignore", message="IProgress not found")


class OfflineHtml(type(pio.renderers["notebook"])):  # the notebook renderer: plotly.js inlined on first use
    def to_mimebundle(self, fig_dict):
        return {"text/html": pio.to_html(fig_dict, include_plotlyjs=False, include_mathjax=False, full_html=False,
                                         default_width="100%", default_height=525, validate=False)}


pio.renderers["offline_html"] = OfflineHtml()
pio.renderers.default = "offline_html"
PY
export IPYTHONDIR="$kernel" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export NO_MKDOCS_2_WARNING=1  # mkdocs-material's banner about its successor; not a build warning
start=$SECONDS
.venv/bin/mkdocs build --strict --quiet -d "$out"
echo "docs built (strict, the tutorial executed) into $out in $((SECONDS - start)) s"
