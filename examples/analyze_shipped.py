"""Analyze the grokked p=113 model shipped in the package: key frequencies, neuron clusters, claims.

    python examples/analyze_shipped.py            # the shipped model (mi.load() with no argument)
    python examples/analyze_shipped.py PATH       # any checkpoint file or run directory instead

It runs one grid pass and reuses it for every probe, then tests every claim of the circuit
with an intervention (mi.verify_circuit). About a minute on 2 CPU cores for p=113.
"""

from __future__ import annotations

import argparse
import sys
import warnings

import modadd_interp as mi
from modadd_interp.probes import grid_cache


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=None,
                        help="a checkpoint file or run directory; default: the shipped model")
    args = parser.parse_args()

    try:
        with warnings.catch_warnings():
            # a file that does not record its train/test split gets the paper's default, with a warning
            warnings.simplefilter("ignore", UserWarning)
            model, task = mi.load(args.path)
    except mi.ModAddError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"model: {args.path or 'the shipped model'}")
    print(f"task: (a + b) mod {task.p}, train fraction {task.frac_train}, split seed {task.seed}")

    cache = grid_cache(model, task)  # one forward pass over all p*p inputs, shared below
    kf = mi.key_frequencies(model, task, cache=cache)
    print(f"\nkey frequencies: {list(kf.freqs)} (confidence {kf.confidence})")
    print(f"  why: {kf.reason}")
    if kf.confidence != "high" and kf.candidates:
        print(f"  candidates that were not sufficient: {list(kf.candidates)}")

    neurons = mi.probe_neurons(model, task, cache=cache)
    sizes = neurons.cluster_sizes()
    unclustered = sizes.pop("unclustered")
    print(f"\nneuron clusters (>= {neurons.threshold:.0%} of a neuron's variance in one frequency):")
    for freq, count in sizes.items():
        print(f"  frequency {freq:>3}: {count} neurons")
    print(f"  unclustered:   {unclustered} neurons")

    report = mi.verify_circuit(model, task, cache=cache)
    print("\nclaims:")
    for claim in report.claims:
        verdict = "PASS" if claim.passed else "FAIL"
        print(f"  [{verdict}] {claim.name}")
        print(f"         {claim.metric}: {claim.after:.4g} (needs {claim.comparison} {claim.threshold:.4g})")
    print(f"\ncircuit confirmed: {report.passed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
