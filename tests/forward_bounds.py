"""Independent forward passes of the authors' models (plain torch over their raw state dicts), in float64, each with a
bound on how far a float32 evaluation of the same function may lie from it.

**The tolerance.** A float32 dot product of length ``K`` has, whatever its summation order, an error of at most
``γ_K · Σ|x_i y_i|`` with ``γ_K = K u / (1 - K u)``, ``u = 2^-24`` (Higham, *Accuracy and Stability of Numerical
Algorithms*, §3.1); an addition at most ``u·|result|``. We carry, beside every float64 value, a first-order bound
``e`` on the float32 error of computing it: ``x @ W`` gets ``e_x @ |W| + γ_K (|x| @ |W|)``, ReLU keeps ``e``
(1-Lipschitz), a softmax ``p = softmax(s)`` gets ``p_i (e_i + max_j e_j) + (2 n + 4) u p_i`` (from
``dp_i = p_i (ds_i - Σ_j p_j ds_j)``, and ``n`` exps, a sum and a division), ``Σ_j p_j v_j`` the product rule.
The loaded model, in float32, must then lie within ``SAFETY * e`` of the float64 reference; ``SAFETY = 2`` covers
the neglected second-order terms. The bound is per logit: large where the logit is a sum of large terms.

That worst case is loose (measured errors are ~1e-3 of it), so the tests also hold the model to the *typical* bound:
the same propagation with ``γ_K`` replaced by ``4 sqrt(K) u`` (:func:`gamma_typical`: independent roundings of mean
zero, four standard deviations), which a wrong element order, a dropped bias or a transposed matrix exceeds by orders
of magnitude.
"""

from __future__ import annotations

import math

import torch

U = 2.0**-24
SAFETY = 2.0


def gamma(k: int) -> float:
    """``γ_k = k u / (1 - k u)``: the worst case of a length-``k`` sum, whatever its order."""
    return k * U / (1 - k * U)


def gamma_typical(k: int) -> float:
    """``4 sqrt(k) u``: a length-``k`` sum's error when its roundings are independent and of mean zero (Higham §3.8:
    the error then grows as ``sqrt(k) u``; 4 is four standard deviations)."""
    return 4 * math.sqrt(k) * U


def linear(x: torch.Tensor, ex: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, g=gamma):
    """``x @ w (+ b)`` and its error bound (``x`` ``[..., K]``, ``w`` ``[K, N]``; ``g`` is :func:`gamma` or
    :func:`gamma_typical`)."""
    w = w.double()
    y = x @ w
    e = ex @ w.abs() + g(w.shape[0] + 1) * (x.abs() @ w.abs())
    if b is not None:
        y = y + b.double()
        e = e + U * y.abs()
    return y, e


def add(a, ea, b, eb):
    """``a + b`` and its error bound."""
    s = a + b
    return s, ea + eb + U * s.abs()


def chughtai_mlp(state: dict, x: torch.Tensor, y: torch.Tensor, g=gamma):
    """Their ``OneLayerMLP``: ``relu(hstack(W_x[x], W_y[y]) @ W) @ W_U``; ``(logits [B, n], bound [B, n])``."""
    h = torch.hstack((state["W_x"][x], state["W_y"][y])).double()
    pre, e = linear(h, torch.zeros_like(h), state["W"], g=g)
    return linear(torch.relu(pre), e, state["W_U"], g=g)


def pizza_mlp(state: dict, x: torch.Tensor, y: torch.Tensor, g=gamma):
    """Zhong et al.'s MyModelA/D/X: embed, (sum | concat), ``relu(l1(.))``, ``@ unembed.weight.T``."""
    if "embed1.weight" in state:
        a, b = state["embed1.weight"][x].double(), state["embed2.weight"][y].double()
        h, eh = add(a, 0 * a, b, 0 * b)
    else:
        a, b = state["embed.weight"][x].double(), state["embed.weight"][y].double()
        if state["l1.weight"].shape[1] == 2 * a.shape[1]:
            h = torch.cat([a, b], dim=1)
            eh = torch.zeros_like(h)
        else:
            h, eh = add(a, 0 * a, b, 0 * b)
    pre, e = linear(h, eh, state["l1.weight"].T, state["l1.bias"], g=g)
    return linear(torch.relu(pre), e, state["unembed.weight"].T, g=g)


def hooked_transformer(state: dict, tokens: torch.Tensor, g=gamma):
    """A one-block TransformerLens ``HookedTransformer`` (no LayerNorm, ReLU, causal attention) from its state dict;
    ``(last-position logits [B, d_vocab_out], bound)``."""
    s = {k: v.double() for k, v in state.items() if v.is_floating_point()}
    resid, er = add(s["embed.W_E"][tokens], 0.0, s["pos_embed.W_pos"][: tokens.shape[1]], 0.0)
    a = "blocks.0.attn."
    q, eq = _heads(resid, er, s[a + "W_Q"], s[a + "b_Q"], g)
    k, ek = _heads(resid, er, s[a + "W_K"], s[a + "b_K"], g)
    v, ev = _heads(resid, er, s[a + "W_V"], s[a + "b_V"], g)
    d_head, n = q.shape[-1], tokens.shape[1]
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d_head)
    e_scores = (torch.einsum("bqhd,bkhd->bhqk", eq, k.abs()) + torch.einsum("bqhd,bkhd->bhqk", q.abs(), ek)
                + g(d_head + 2) * torch.einsum("bqhd,bkhd->bhqk", q.abs(), k.abs())) / math.sqrt(d_head)
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    scores = scores.masked_fill(~causal, float("-inf"))
    e_scores = e_scores.masked_fill(~causal, 0.0)
    pattern = scores.softmax(-1)
    e_pattern = pattern * (e_scores + e_scores.amax(-1, keepdim=True)) + (2 * n + 4) * U * pattern
    z = torch.einsum("bhqk,bkhd->bqhd", pattern, v)
    ez = (torch.einsum("bhqk,bkhd->bqhd", e_pattern, v.abs()) + torch.einsum("bhqk,bkhd->bqhd", pattern, ev)
          + g(n) * torch.einsum("bhqk,bkhd->bqhd", pattern, v.abs()))
    w_o = s[a + "W_O"].reshape(-1, s[a + "W_O"].shape[-1])  # [n_heads * d_head, d_model]
    out, eo = linear(z.flatten(2), ez.flatten(2), w_o, s[a + "b_O"], g=g)
    resid, er = add(resid, er, out, eo)
    m = "blocks.0.mlp."
    pre, ep = linear(resid, er, s[m + "W_in"], s[m + "b_in"], g=g)
    mlp_out, em = linear(torch.relu(pre), ep, s[m + "W_out"], s[m + "b_out"], g=g)
    resid, er = add(resid, er, mlp_out, em)
    logits, el = linear(resid[:, -1], er[:, -1], s["unembed.W_U"], s["unembed.b_U"], g=g)
    return logits, el


def _heads(resid, er, w, b, g=gamma):
    """``[B, pos, n_heads, d_head]`` of ``resid @ w[h] + b[h]`` and its bound (``w`` ``[n_heads, d_model, d_head]``)."""
    y = torch.einsum("bpm,hmd->bphd", resid, w) + b
    e = (torch.einsum("bpm,hmd->bphd", er, w.abs()) + g(w.shape[1] + 1)
         * torch.einsum("bpm,hmd->bphd", resid.abs(), w.abs()) + U * y.abs())
    return y, e


def check_within(model_logits: torch.Tensor, reference: torch.Tensor, bound: torch.Tensor) -> tuple[float, float]:
    """Assert ``|model - reference| <= SAFETY * bound`` everywhere; return ``(max |Δ|, max of |Δ| / bound)``."""
    delta = (model_logits.double() - reference).abs()
    worst = (delta / (SAFETY * bound)).max().item()
    assert worst <= 1.0, f"a logit differs by {delta.max().item():.3g}, beyond its float32 bound ({worst:.2f}x)"
    return delta.max().item(), worst
