"""Models whose ground truth is known by construction: planted clocks, pizzas and mixtures, a lookup-table
memorizer, partially formed circuits beside a table, and untrained initialisations.

Every builder returns ``(ModelConfig, canonical weights)`` for a one-layer transformer in the paper's layout
``(a, b, '=')``; :func:`modadd_interp.tl_adapter.build_model` makes it a hooked model.

**Planted circuits** (:func:`planted`). Two heads copy the operands' circles into separate subspaces (head 0 reads
position ``a``, head 1 position ``b``). Each key frequency ``k`` has its own neurons:

* a **pizza** frequency: ``ReLU(cos(w x + phi_j) + cos(w y + phi_j))`` for ``phases`` phases ``phi_j``. The sum
  of the two cosines is ``2 cos(w (x + y) / 2 + phi) cos(w (x - y) / 2)``: the two points are averaged, so the
  output carries the pizza's ``|cos(w (x - y) / 2)|`` envelope (Zhong et al.);
* a **clock** frequency: ``ReLU(cos(w x + phi_i) + cos(w y + psi_j))`` over every pair of ``phases`` phases. The
  pairs with ``psi = phi + pi`` difference the points, so the least-squares readout can multiply the angles
  (``cos(w x) cos(w y) - sin(w x) sin(w y)``) and its output depends on ``x + y`` alone.

A least-squares readout maps the neurons onto ``cos / sin(w_k (x + y))`` and ``W_U`` reads them as
``scale_k cos(w_k (x + y - z))``. ``pad_to`` embeds the circuit in a wider model (``d_model``, ``d_mlp``) whose
other weights are a small paper initialisation (``noise`` times it), as in ``benchmarks/scale.py``.

**Lookup table** (:func:`lookup_table`): one neuron per input ``(a, b)`` that fires only on that input (one-hot
copies of both operands, bias ``-1.5``) and writes a one-hot answer: the correct one on training pairs, a random
wrong one (seeded) on held-out pairs, or nothing there (``held_out="blank"``). Its logits are a table; it has no
circuit. **Partial circuit** (:func:`partial`): a planted circuit at a small scale plus the table: it answers its
training pairs by the table and the held-out pairs by whichever of the circuit and the table's wrong answer is
larger, so its held-out accuracy is set by the two scales.

Examples:
    >>> cfg, weights = planted(31, {3: "clock", 11: "clock"})
    >>> cfg.d_vocab, cfg.n_heads
    (32, 2)
"""

from __future__ import annotations

import math

import torch

from modadd_interp.config import ModelConfig, paper_init
from modadd_interp.task import ModularTask

DTYPE = torch.float64


def _trig(k: int, v: torch.Tensor, p: int) -> tuple[torch.Tensor, torch.Tensor]:
    angle = 2 * math.pi * k * v.to(DTYPE) / p
    return torch.cos(angle), torch.sin(angle)


def _neuron_phases(kind: str, phases: int) -> list[tuple[float, float]]:
    """``[(phi, psi)]``: the phases on the ``x`` and ``y`` circles of one frequency's neurons."""
    step = [2 * math.pi * j / phases for j in range(phases)]
    if kind == "pizza":
        return [(phi, phi) for phi in step]
    if kind == "clock":
        return [(phi, psi) for phi in step for psi in step]
    raise ValueError(f"kind must be 'clock' or 'pizza', got {kind!r}")


def planted(p: int, kinds: dict[int, str], scales: dict[int, float] | None = None, phases: int = 6,
            pad_to: tuple[int, int] | None = None, noise: float = 1e-3, seed: int = 0,
            extra_dims: int = 0, extra_neurons: int = 0) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """A one-layer model running a planted circuit: ``kinds`` maps each key frequency to ``"clock"`` or ``"pizza"``.

    Args:
        p: the modulus.
        kinds: ``{k: "clock" | "pizza"}``.
        scales: ``{k: amplitude of cos(w_k(x + y - z)) in the logits}`` (default 30 each).
        phases: phases per circle (a pizza frequency has ``phases`` neurons, a clock frequency ``phases**2``).
        pad_to: ``(d_model, d_mlp)`` of a wider model to embed the circuit in, with ``noise`` x a paper init.
        extra_dims, extra_neurons: room left free for :func:`partial` (residual dimensions and neurons).

    Returns:
        ``(config, weights)``: ``d_model = 8K + 3 + extra_dims`` (or ``pad_to``), 2 heads.
    """
    freqs = sorted(kinds)
    scales = {k: 30.0 for k in freqs} | (scales or {})
    K = len(freqs)
    circ = 2 * K
    a0, b0, out0, pos0 = circ, 2 * circ, 3 * circ, 3 * circ + 2 * K
    d_model = pos0 + 3 + extra_dims
    neurons = [(k, phi, psi) for k in freqs for phi, psi in _neuron_phases(kinds[k], phases)]
    d_mlp = len(neurons) + extra_neurons
    if pad_to is not None:
        if pad_to[0] < d_model or pad_to[1] < d_mlp or pad_to[0] % 2:
            raise ValueError(f"pad_to {pad_to} is smaller than the circuit ({d_model}, {d_mlp}) or odd")
        d_model, d_mlp = pad_to
    cfg = ModelConfig(d_vocab=p + 1, d_vocab_out=p, n_ctx=3, d_model=d_model, n_heads=2, d_head=d_model // 2,
                      d_mlp=d_mlp)
    w = {name: torch.zeros(shape, dtype=DTYPE) for name, shape in cfg.shapes().items()}
    if pad_to is not None:
        for name, t in paper_init(cfg, seed=seed).items():
            w[name] += noise * t.to(DTYPE)
        for name in ("blocks.0.attn.W_Q", "blocks.0.attn.W_K"):
            w[name].zero_()
    t = torch.arange(p)
    for i, k in enumerate(freqs):
        w["embed.W_E"][:p, 2 * i], w["embed.W_E"][:p, 2 * i + 1] = _trig(k, t, p)
    for pos in range(3):
        w["pos_embed.W_pos"][pos, pos0 + pos] = 1.0
    for head, start in enumerate((a0, b0)):
        w["blocks.0.attn.W_Q"][head, pos0 + 2, 0] = 500.0  # the '=' query attends to position `head`
        w["blocks.0.attn.W_K"][head, pos0 + head, 0] = 1.0
        w["blocks.0.attn.W_V"][head, :circ, :circ] = torch.eye(circ, dtype=DTYPE)
        w["blocks.0.attn.W_O"][head, :circ, start: start + circ] = torch.eye(circ, dtype=DTYPE)
    for m, (k, phi, psi) in enumerate(neurons):
        i = freqs.index(k)  # cos(w x + phi) = cos(phi) cos(w x) - sin(phi) sin(w x)
        w["blocks.0.mlp.W_in"][a0 + 2 * i, m], w["blocks.0.mlp.W_in"][a0 + 2 * i + 1, m] = math.cos(phi), -math.sin(phi)
        w["blocks.0.mlp.W_in"][b0 + 2 * i, m], w["blocks.0.mlp.W_in"][b0 + 2 * i + 1, m] = math.cos(psi), -math.sin(psi)
    x = torch.arange(p).repeat_interleave(p)
    y = torch.arange(p).repeat(p)
    angle_x, angle_y = 2 * math.pi * x.to(DTYPE) / p, 2 * math.pi * y.to(DTYPE) / p
    pre = torch.stack([torch.cos(k * angle_x + phi) + torch.cos(k * angle_y + psi) for k, phi, psi in neurons], 1)
    targets = torch.cat([torch.stack(_trig(k, x + y, p), 1) for k in freqs], 1)
    readout = torch.linalg.pinv(torch.relu(pre), rtol=1e-10) @ targets
    w["blocks.0.mlp.W_out"][: len(neurons), out0: out0 + 2 * K] = readout
    for i, k in enumerate(freqs):
        cos_c, sin_c = _trig(k, t, p)
        w["unembed.W_U"][out0 + 2 * i] = scales[k] * cos_c
        w["unembed.W_U"][out0 + 2 * i + 1] = scales[k] * sin_c
    return cfg, {name: v.float() for name, v in w.items()}


def _table_answers(task: ModularTask, held_out: str, seed: int) -> torch.Tensor:
    """``[p*p]`` the table's answer per input: correct on training pairs; on held-out pairs a random wrong one
    (``"random"``) or -1 (``"blank"``: no entry)."""
    p = task.p
    labels = task.labels.clone()
    gen = torch.Generator().manual_seed(seed)
    wrong = (labels + torch.randint(1, p, (p * p,), generator=gen)) % p
    test = task.test_mask
    if held_out == "random":
        labels[test] = wrong[test]
    elif held_out == "blank":
        labels[test] = -1
    else:
        raise ValueError(f"held_out must be 'random' or 'blank', got {held_out!r}")
    return labels


def _add_table(w: dict[str, torch.Tensor], task: ModularTask, start: int, first_neuron: int, heads: tuple[int, int],
               scale: float, test_scale: float, held_out: str, seed: int) -> None:
    """Write the lookup table into ``w`` (in place), using residual dims ``start .. start + 4p`` and neurons
    ``first_neuron .. + p*p``; the two heads' value/output maps copy the token one-hots."""
    p = task.p
    tok, a_dim, b_dim, ans = start, start + p, start + 2 * p, start + 3 * p
    w["embed.W_E"][:p, tok: tok + p] += torch.eye(p, dtype=w["embed.W_E"].dtype)
    for head, dst in zip(heads, (a_dim, b_dim), strict=True):
        w["blocks.0.attn.W_V"][head, tok: tok + p, -p:] = torch.eye(p)
        w["blocks.0.attn.W_O"][head, -p:, dst: dst + p] = torch.eye(p)
    answers = _table_answers(task, held_out, seed)
    pairs = task.pairs
    for i in range(p * p):
        if answers[i] < 0:
            continue
        m = first_neuron + i
        w["blocks.0.mlp.W_in"][a_dim + int(pairs[i, 0]), m] = 1.0
        w["blocks.0.mlp.W_in"][b_dim + int(pairs[i, 1]), m] = 1.0
        w["blocks.0.mlp.b_in"][m] = -1.5
        w["blocks.0.mlp.W_out"][m, ans + int(answers[i])] = 2.0 * (scale if task.train_mask[i] else test_scale)
    w["unembed.W_U"][ans: ans + p, :p] += torch.eye(p)


def lookup_table(p: int, frac_train: float = 0.3, seed: int = 0, scale: float = 20.0, held_out: str = "random",
                 test_scale: float | None = None, op: str = "add"
                 ) -> tuple[ModelConfig, dict[str, torch.Tensor], ModularTask]:
    """A transformer whose logits are a table (module docstring): ``(config, weights, task)``.

    The training pairs' correct answer (of ``op``) gets logit ``scale``; each held-out pair's table entry (a random
    wrong answer) gets ``test_scale`` (default ``scale``). Inputs where ``op`` is undefined get no entry.
    """
    task = ModularTask(p=p, frac_train=frac_train, seed=seed, op=op)
    d_model = 4 * p + 3 + p  # token, a, b, answer one-hots, positions, and the heads' p-dim value space
    d_model += d_model % 2
    cfg = ModelConfig(d_vocab=p + 1, d_vocab_out=p, n_ctx=3, d_model=d_model, n_heads=2, d_head=d_model // 2,
                      d_mlp=p * p)
    w = {name: torch.zeros(shape) for name, shape in cfg.shapes().items()}
    pos0 = 4 * p
    for pos in range(3):
        w["pos_embed.W_pos"][pos, pos0 + pos] = 1.0
    for head in range(2):
        w["blocks.0.attn.W_Q"][head, pos0 + 2, 0] = 500.0
        w["blocks.0.attn.W_K"][head, pos0 + head, 0] = 1.0
    _add_table(w, task, 0, 0, (0, 1), scale, scale if test_scale is None else test_scale, held_out, seed)
    return cfg, w, task


def partial(p: int, kinds: dict[int, str], circuit_scale: float, frac_train: float = 0.3, seed: int = 0,
            table_scale: float = 20.0, test_scale: float = 6.0, phases: int = 6
            ) -> tuple[ModelConfig, dict[str, torch.Tensor], ModularTask]:
    """A planted circuit at ``circuit_scale`` beside a lookup table (module docstring): ``(config, weights, task)``.

    The table answers the training pairs (logit ``table_scale``) and gives each held-out pair a random wrong answer
    (logit ``test_scale``); the circuit adds ``circuit_scale cos(w_k(x + y - z))`` per key frequency everywhere.
    """
    task = ModularTask(p=p, frac_train=frac_train, seed=seed)
    extra = 4 * p + p
    extra += (8 * len(kinds) + 3 + extra) % 2
    cfg, w = planted(p, kinds, {k: circuit_scale for k in kinds}, phases=phases, extra_dims=extra,
                     extra_neurons=p * p)
    # the table's heads reuse heads 0 and 1: their value space is the top p dims of each head (unused by the circuit)
    start = 8 * len(kinds) + 3
    n_circuit = sum(len(_neuron_phases(kind, phases)) for kind in kinds.values())
    _add_table(w, task, start, n_circuit, (0, 1), table_scale, test_scale, "random", seed)
    return cfg, w, task


def untrained(p: int, seed: int = 0, d_model: int = 64, d_mlp: int = 256
              ) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """The paper's initialisation at a narrow width (what every trained model starts from)."""
    cfg = ModelConfig.paper(p, d_model=d_model, d_head=d_model // 4, d_mlp=d_mlp)
    return cfg, paper_init(cfg, seed=seed)
