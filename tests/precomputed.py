"""The planted p = 1009 model's causal analysis, precomputed: what the report test cannot afford to recompute.

``verify_circuit`` at p = 1009 re-runs the model over the million-input grid about ten times (the excluded-loss
search, the Fourier losses, the ablation table, the hypothesis tests and their resampling partners): about six
minutes on 2 idle cores, half of CI's budget. The report test (tests/test_large_p_report.py) therefore runs the
planted model's grid pass and its cheap probes for real, and reads the results of those sweeps from
``tests/data/planted_p1009.json``, which this script writes from one full ``verify_circuit``:

    OMP_NUM_THREADS=1 python tests/precomputed.py           # ~6 min idle, much longer on a busy machine

Stored: the key frequencies, the Fourier losses, the ablation table, the patching, the hypothesis tests, the
isolated circles, Zhong et al.'s diagnostics, the verdict and the claims (all small: ~100 KB of JSON). Not stored,
recomputed by the test from the grid cache: the neuron, embedding and logit probes (they are statistics of the
one grid pass, and the stored claims about them must agree with the recomputed values, which ties the file
to the model). Regenerate the file when those result classes or the analysis change: loading fails loudly on a
field it does not know.

The format is JSON with tagged values (no pickle): ``{"__class__": "modadd_interp.x.Y", ...fields}`` for the
package's dataclasses (only those are rebuilt), ``{"__tensor__": [...], "dtype": "..."}``, ``{"__tuple__": [...]}``
and ``{"__items__": [[key, value], ...]}`` for dicts whose keys are not strings.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "data" / "planted_p1009.json"
P = 1009
STORED = ("key_frequencies", "losses", "table", "patching", "hypotheses", "circles", "diagnostics", "verdict",
          "claims")
"""The CircuitReport fields read from the file; the others (neurons, embedding, logits) are recomputed."""


def encode(value):
    """A JSON-safe tagged form of ``value`` (see the module docstring)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        cls = type(value)
        if not cls.__module__.startswith("modadd_interp."):
            raise TypeError(f"only modadd_interp's dataclasses are stored, not {cls.__module__}.{cls.__qualname__}")
        return {"__class__": f"{cls.__module__}.{cls.__qualname__}",
                **{f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, torch.Tensor):
        return {"__tensor__": value.tolist(), "dtype": str(value.dtype).removeprefix("torch.")}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: encode(v) for k, v in value.items()}
        return {"__items__": [[encode(k), encode(v)] for k, v in value.items()]}
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": str(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot store a {type(value).__name__}")


def decode(value):
    """The inverse of :func:`encode`; rebuilds only classes of the ``modadd_interp`` package."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        return torch.tensor(value["__tensor__"], dtype=getattr(torch, value["dtype"]))
    if "__tuple__" in value:
        return tuple(decode(v) for v in value["__tuple__"])
    if "__items__" in value:
        return {decode(k): decode(v) for k, v in value["__items__"]}
    if "__float__" in value:
        return float(value["__float__"])
    if "__class__" in value:
        module, _, name = value["__class__"].rpartition(".")
        if not module.startswith("modadd_interp."):
            raise ValueError(f"refusing to rebuild {value['__class__']}: not a modadd_interp class")
        cls = getattr(importlib.import_module(module), name)
        fields = {k: decode(v) for k, v in value.items() if k != "__class__"}
        known = {f.name for f in dataclasses.fields(cls)}
        if set(fields) != known:
            raise ValueError(f"{value['__class__']} has fields {sorted(known)}, the file {sorted(fields)}: "
                             "regenerate it (python tests/precomputed.py)")
        return cls(**fields)
    return {k: decode(v) for k, v in value.items()}


def planted_model():
    """The planted p = 1009 model (benchmarks/scale.py) and its task (the paper's default split)."""
    sys.path.insert(0, str(ROOT))
    import modadd_interp as mi
    from benchmarks.scale import planted_freqs, planted_paper_weights
    from modadd_interp import tl_adapter
    from modadd_interp.config import ModelConfig

    model = tl_adapter.build_model(ModelConfig.paper(P), planted_paper_weights(P))
    return model, mi.ModularTask(p=P), planted_freqs(P)


def load_circuit(model, task, cache, path: Path = FIXTURE):
    """The planted model's CircuitReport: the stored fields from ``path``, the probes recomputed from ``cache``."""
    from modadd_interp.causal import CircuitReport
    from modadd_interp.probes import probe_embedding, probe_logits, probe_neurons

    stored = json.loads(path.read_text())
    fields = {name: decode(stored["report"][name]) for name in STORED}
    key = tuple(fields["key_frequencies"].freqs)
    fields["neurons"] = probe_neurons(model, task, cache=cache)
    fields["embedding"] = probe_embedding(model, task, key_freqs=key, cache=cache)
    fields["logits"] = probe_logits(model, task, key_freqs=key, cache=cache)
    return CircuitReport(**fields), stored


def main() -> int:
    """Run the full analysis of the planted p = 1009 model and write the fixture (with its timings)."""
    import modadd_interp as mi
    from modadd_interp.probes import grid_cache

    torch.set_num_threads(1)
    model, task, planted = planted_model()
    start = time.perf_counter()
    cache = grid_cache(model, task)
    grid_seconds = time.perf_counter() - start
    report = mi.verify_circuit(model, task, cache=cache)
    seconds = time.perf_counter() - start
    if list(report.key_freqs) != planted:
        raise SystemExit(f"found {report.key_freqs}, planted {planted}: not writing the fixture")
    payload = {"p": P, "planted": planted, "verdict": report.verdict.line,
               "seconds": {"grid_cache": round(grid_seconds, 1), "verify_circuit": round(seconds - grid_seconds, 1)},
               "report": {name: encode(getattr(report, name)) for name in STORED}}
    FIXTURE.write_text(json.dumps(payload, separators=(",", ":")) + "\n")
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size / 1e3:.0f} kB): {report.verdict.line}; "
          f"grid pass {grid_seconds:.0f} s, verify_circuit {seconds - grid_seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
