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
