"""A hand-built model that runs the Fourier algorithm on frequencies we choose.

W_E puts each number on circles at the planted frequencies; one head attends
uniformly so that the '=' position holds E[a] + E[b]; each MLP neuron computes
ReLU(cos(w a + phi) + cos(w b + phi)) for a spread of phases; a least-squares readout
maps the neurons onto cos/sin(w(a+b)), and W_U turns those into cos(w(a+b-c)).
Distractors that the key-frequency rule must ignore can be added: an embedding
frequency nothing reads, and a few stray neurons whose output is unused.
"""

from __future__ import annotations

import math

import torch

from modadd_interp.config import ModelConfig


def planted_model(
    p: int, freqs: list[int], phases: int = 8, scale: float = 30.0,
    embed_only: int | None = None, stray: int | None = None, n_stray: int = 3,
) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Canonical weights of a model whose key frequencies are exactly ``freqs``."""
    circle_freqs = list(freqs) + ([embed_only] if embed_only else []) + ([stray] if stray and stray not in freqs
                                                                          and stray != embed_only else [])
    n_in = 2 * len(circle_freqs)
    n_out = 2 * len(freqs)
    d_model = n_in + n_out
    n_planted = len(freqs) * phases
    d_mlp = n_planted + (n_stray if stray else 0)
    cfg = ModelConfig(d_vocab=p + 1, d_vocab_out=p, n_ctx=3, d_model=d_model, n_heads=1, d_head=n_in,
                      d_mlp=d_mlp)
    x = torch.arange(p, dtype=torch.float64)
    w = {name: torch.zeros(shape, dtype=torch.float64) for name, shape in cfg.shapes().items()}
    for i, k in enumerate(circle_freqs):
        w["embed.W_E"][:p, 2 * i] = torch.cos(2 * math.pi * k * x / p)
        w["embed.W_E"][:p, 2 * i + 1] = torch.sin(2 * math.pi * k * x / p)
    # uniform attention (zero Q, K) over (a, b, '='); OV = 3 * identity on the circle dims
    w["blocks.0.attn.W_V"][0, :n_in, :] = torch.eye(n_in, dtype=torch.float64)
    w["blocks.0.attn.W_O"][0, :, :n_in] = 3 * torch.eye(n_in, dtype=torch.float64)
    # neurons: ReLU(cos(wa + phi) + cos(wb + phi)) = ReLU(cos phi (ca + cb) - sin phi (sa + sb))
    neuron_freqs = [(k, j) for k in freqs for j in range(phases)]
    if stray:
        neuron_freqs += [(stray, j) for j in range(n_stray)]
    for n, (k, j) in enumerate(neuron_freqs):
        i = circle_freqs.index(k)
        phi = 2 * math.pi * j / phases
        w["blocks.0.mlp.W_in"][2 * i, n] = math.cos(phi)
        w["blocks.0.mlp.W_in"][2 * i + 1, n] = -math.sin(phi)
    # readout: least squares from the planted neurons' grid activations onto cos/sin(w(a+b))
    a = x.repeat_interleave(p)
    b = x.repeat(p)
    pre = torch.stack([
        math.cos(2 * math.pi * j / phases) * (torch.cos(2 * math.pi * k * a / p) + torch.cos(2 * math.pi * k * b / p))
        - math.sin(2 * math.pi * j / phases) * (torch.sin(2 * math.pi * k * a / p) + torch.sin(2 * math.pi * k * b / p))
        for k, j in neuron_freqs[:n_planted]
    ], dim=1)
    acts = torch.relu(pre)
    targets = torch.cat([torch.stack([torch.cos(2 * math.pi * k * (a + b) / p),
                                      torch.sin(2 * math.pi * k * (a + b) / p)], 1) for k in freqs], 1)
    readout = torch.linalg.pinv(acts, rtol=1e-10) @ targets  # [n_planted, 2K]; acts is rank-deficient
    w["blocks.0.mlp.W_out"][:n_planted, n_in:] = readout
    for i, k in enumerate(freqs):
        w["unembed.W_U"][n_in + 2 * i] = scale * torch.cos(2 * math.pi * k * x / p)
        w["unembed.W_U"][n_in + 2 * i + 1] = scale * torch.sin(2 * math.pi * k * x / p)
    return cfg, {name: t.float() for name, t in w.items()}


def planted_op_model(p: int, op: str, freqs: list[int], phases: int = 8, scale: float = 30.0,
                     zero_logit: float = 1000.0) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """A hand-built model computing ``a op b mod p`` with the clock on ``freqs`` of the operation's group.

    Built in the operation's coordinates (``x = a`` or ``log_g a``; written here without modadd_interp's
    own coordinate code): each number token sits on circles ``cos/sin(w_k u)`` at its coordinate ``u``
    (``u = log_g t`` for mul/div); head 0 copies the ``a`` position and head 1 the ``b`` position into
    separate subspaces (attention by position); neuron ``(k, j)`` is ``ReLU(cos(w_k x + phi_j) +
    cos(w_k y + phi_j))`` with ``y = +-u_b`` (b reflected for sub and div); a least-squares readout maps the
    neurons onto ``cos/sin(w_k(x + y))`` and ``W_U`` reads ``cos(w_k(x + y - z))``. Under mul/div the token 0
    carries a flag that both heads copy and ``W_U`` reads as a large logit for the answer 0.
    """
    multiplicative = op in ("mul", "div")
    sign = -1 if op in ("sub", "div") else 1
    if multiplicative:
        g = next(g for g in range(2, p) if len({pow(g, e, p) for e in range(p - 1)}) == p - 1) if p > 2 else 1
        n = p - 1
        log = {pow(g, e, p): e for e in range(n)}
    else:
        n, log = p, {t: t for t in range(p)}
    K = len(freqs)
    circ = 2 * K
    # residual dims: [token circles | zero flag | a circles | a flag | b circles | b flag | out | positions]
    e_flag, a0, a_flag = circ, circ + 1, 2 * circ + 1
    b0, b_flag, out0 = 2 * circ + 2, 3 * circ + 2, 3 * circ + 3
    pos0 = out0 + 2 * K
    d_model = pos0 + 3
    d_head = circ + 1
    neuron_freqs = [(k, j) for k in freqs for j in range(phases)]
    cfg = ModelConfig(d_vocab=p + 1, d_vocab_out=p, n_ctx=3, d_model=d_model, n_heads=2, d_head=d_head,
                      d_mlp=len(neuron_freqs))
    w = {name: torch.zeros(shape, dtype=torch.float64) for name, shape in cfg.shapes().items()}
    for t, u in log.items():
        for i, k in enumerate(freqs):
            w["embed.W_E"][t, 2 * i] = math.cos(2 * math.pi * k * u / n)
            w["embed.W_E"][t, 2 * i + 1] = math.sin(2 * math.pi * k * u / n)
    if multiplicative:
        w["embed.W_E"][0, e_flag] = 1.0
    for pos in range(3):
        w["pos_embed.W_pos"][pos, pos0 + pos] = 1.0
    for head, (start, flag) in enumerate(((a0, a_flag), (b0, b_flag))):
        w["blocks.0.attn.W_Q"][head, pos0 + 2, 0] = 50.0  # the '=' query ...
        w["blocks.0.attn.W_K"][head, pos0 + head, 0] = 1.0  # ... attends to position `head`
        w["blocks.0.attn.W_V"][head, : circ + 1, :] = torch.eye(circ + 1, dtype=torch.float64)
        w["blocks.0.attn.W_O"][head, :circ, start : start + circ] = torch.eye(circ, dtype=torch.float64)
        w["blocks.0.attn.W_O"][head, circ, flag] = 1.0
    for m, (k, j) in enumerate(neuron_freqs):
        i, phi = freqs.index(k), 2 * math.pi * j / phases
        # cos(w x + phi) = cos phi cos wx - sin phi sin wx; y = sign * u_b flips the sin of b
        w["blocks.0.mlp.W_in"][a0 + 2 * i, m] = math.cos(phi)
        w["blocks.0.mlp.W_in"][a0 + 2 * i + 1, m] = -math.sin(phi)
        w["blocks.0.mlp.W_in"][b0 + 2 * i, m] = math.cos(phi)
        w["blocks.0.mlp.W_in"][b0 + 2 * i + 1, m] = -sign * math.sin(phi)
    x = torch.arange(n, dtype=torch.float64).repeat_interleave(n)
    y = torch.arange(n, dtype=torch.float64).repeat(n)
    pre = torch.stack([math.cos(2 * math.pi * j / phases) * (torch.cos(2 * math.pi * k * x / n)
                                                            + torch.cos(2 * math.pi * k * y / n))
                       - math.sin(2 * math.pi * j / phases) * (torch.sin(2 * math.pi * k * x / n)
                                                              + torch.sin(2 * math.pi * k * y / n))
                       for k, j in neuron_freqs], dim=1)
    targets = torch.cat([torch.stack([torch.cos(2 * math.pi * k * (x + y) / n),
                                      torch.sin(2 * math.pi * k * (x + y) / n)], 1) for k in freqs], 1)
    w["blocks.0.mlp.W_out"][:, out0 : out0 + 2 * K] = torch.linalg.pinv(torch.relu(pre), rtol=1e-10) @ targets
    for t, u in log.items():
        for i, k in enumerate(freqs):
            w["unembed.W_U"][out0 + 2 * i, t] = scale * math.cos(2 * math.pi * k * u / n)
            w["unembed.W_U"][out0 + 2 * i + 1, t] = scale * math.sin(2 * math.pi * k * u / n)
    if multiplicative:
        w["unembed.W_U"][a_flag, 0] = w["unembed.W_U"][b_flag, 0] = zero_logit
    return cfg, {name: t.float() for name, t in w.items()}


def planted_group_model(group, irrep, d_mlp: int = 512, scale: float = 8.0, seed: int = 0,
                        fit_inputs: int = 60_000) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """A hand-built representation clock on one irrep of ``group`` (a :class:`modadd_interp.groups.Group`).

    Each token ``x`` is embedded as ``vec R(x)`` (``R`` the irrep's orthogonal matrices, ``r x r``); head 0 copies the
    first position and head 1 the second into their own subspaces (attention by position, from '='); each neuron is
    ``ReLU(u . vec R(x) + v . vec R(y) + c)`` with random ``u, v, c`` (seeded); a least-squares readout over
    ``fit_inputs`` grid inputs maps the neurons onto ``vec R(x) R(y)``, and ``W_U`` reads ``scale tr(R(x) R(y) R(z)^T)
    = scale χ(x y z⁻¹)``. Written without modadd_interp's analysis code. Accuracy on the grid: 100% for S4 and S6
    (d_mlp 512 and 2048), 99.7% for S5 at d_mlp 512 (measured 2026-12-06).
    """
    n = group.order
    rep = group.representation(irrep).double()  # [n, r, r]
    r = rep.shape[1]
    dv = r * r
    vec = rep.reshape(n, dv)
    tok, a0, b0, out0, pos0 = 0, dv, 2 * dv, 3 * dv, 4 * dv  # residual: token | a | b | readout | positions
    cfg = ModelConfig(d_vocab=n + 1, d_vocab_out=n, n_ctx=3, d_model=pos0 + 3, n_heads=2, d_head=dv, d_mlp=d_mlp)
    w = {name: torch.zeros(shape, dtype=torch.float64) for name, shape in cfg.shapes().items()}
    w["embed.W_E"][:n, tok : tok + dv] = vec
    for pos in range(3):
        w["pos_embed.W_pos"][pos, pos0 + pos] = 1.0
    for head, start in enumerate((a0, b0)):
        w["blocks.0.attn.W_Q"][head, pos0 + 2, 0] = 50.0  # the '=' query ...
        w["blocks.0.attn.W_K"][head, pos0 + head, 0] = 1.0  # ... attends to position `head`
        w["blocks.0.attn.W_V"][head, tok : tok + dv, :] = torch.eye(dv, dtype=torch.float64)
        w["blocks.0.attn.W_O"][head, :, start : start + dv] = torch.eye(dv, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    u = torch.randn(dv, d_mlp, generator=gen, dtype=torch.float64) / math.sqrt(dv)
    v = torch.randn(dv, d_mlp, generator=gen, dtype=torch.float64) / math.sqrt(dv)
    c = 0.3 * torch.randn(d_mlp, generator=gen, dtype=torch.float64)
    w["blocks.0.mlp.W_in"][a0 : a0 + dv] = u
    w["blocks.0.mlp.W_in"][b0 : b0 + dv] = v
    w["blocks.0.mlp.b_in"][:] = c
    index = torch.randperm(n * n, generator=gen)[:fit_inputs]
    x, y = index // n, index % n
    acts = torch.relu(vec[x] @ u + vec[y] @ v + c)
    target = (rep[x] @ rep[y]).reshape(len(index), dv)
    w["blocks.0.mlp.W_out"][:, out0 : out0 + dv] = torch.linalg.lstsq(acts, target, driver="gelsd").solution
    w["unembed.W_U"][out0 : out0 + dv, :] = scale * vec.T
    return cfg, {name: t.float() for name, t in w.items()}
