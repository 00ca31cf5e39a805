"""Independent forward passes written from raw weights, for checking the loaders.

Nothing here imports modadd_interp: each follows its format's own conventions.
"""

from __future__ import annotations

import torch


def canonical_forward(w: dict[str, torch.Tensor], tokens: torch.Tensor, edits: dict | None = None) -> torch.Tensor:
    """TransformerLens-layout weights (``W_E`` [vocab, d_model], ``W_Q`` [h, d_model, d_head]).

    ``edits`` maps ``"embed"``, ``"z"``, ``"attn_out"``, ``"post"``, ``"mlp_out"`` to functions
    applied to that activation (``attn_out`` and ``mlp_out`` also receive the residual they add to).
    """
    edits = edits or {}
    ident = lambda a, *_: a  # noqa: E731
    embed = edits.get("embed", ident)(w["embed.W_E"][tokens])
    x = embed + w["pos_embed.W_pos"][: tokens.shape[1]]
    q = torch.einsum("bpd,hde->bphe", x, w["blocks.0.attn.W_Q"]) + w["blocks.0.attn.b_Q"]
    k = torch.einsum("bpd,hde->bphe", x, w["blocks.0.attn.W_K"]) + w["blocks.0.attn.b_K"]
    v = torch.einsum("bpd,hde->bphe", x, w["blocks.0.attn.W_V"]) + w["blocks.0.attn.b_V"]
    scores = torch.einsum("bqhe,bkhe->bhqk", q, k) / q.shape[-1] ** 0.5
    n = tokens.shape[1]
    scores = scores.masked_fill(~torch.ones(n, n, dtype=torch.bool).tril(), float("-inf"))
    z = edits.get("z", ident)(torch.einsum("bhqk,bkhe->bqhe", scores.softmax(-1), v))
    attn_out = torch.einsum("bqhe,hed->bqd", z, w["blocks.0.attn.W_O"]) + w["blocks.0.attn.b_O"]
    x = x + edits.get("attn_out", ident)(attn_out, x)
    h = edits.get("post", ident)(torch.relu(x @ w["blocks.0.mlp.W_in"] + w["blocks.0.mlp.b_in"]))
    mlp_out = h @ w["blocks.0.mlp.W_out"] + w["blocks.0.mlp.b_out"]
    x = x + edits.get("mlp_out", ident)(mlp_out, x)
    return x @ w["unembed.W_U"] + w["unembed.b_U"]


def paper_forward(sd: dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
    """The progress-measures paper's own Transformer.forward, from its state dict layout."""
    x = sd["embed.W_E"][:, tokens].permute(1, 2, 0) + sd["pos_embed.W_pos"][: tokens.shape[1]]
    d_head = sd["blocks.0.attn.W_Q"].shape[1]
    k = torch.einsum("ihd,bpd->biph", sd["blocks.0.attn.W_K"], x)
    q = torch.einsum("ihd,bpd->biph", sd["blocks.0.attn.W_Q"], x)
    v = torch.einsum("ihd,bpd->biph", sd["blocks.0.attn.W_V"], x)
    scores = torch.einsum("biph,biqh->biqp", k, q)
    n = tokens.shape[1]
    mask = torch.tril(torch.ones(n, n))
    scores = torch.tril(scores) - 1e10 * (1 - mask)
    attn = torch.softmax(scores / d_head**0.5, dim=-1)
    z = torch.einsum("biph,biqp->biqh", v, attn)
    z_flat = z.permute(0, 2, 1, 3).reshape(z.shape[0], n, -1)  # 'b i q h -> b q (i h)'
    x = x + torch.einsum("df,bqf->bqd", sd["blocks.0.attn.W_O"], z_flat)
    pre = torch.einsum("md,bpd->bpm", sd["blocks.0.mlp.W_in"], x) + sd["blocks.0.mlp.b_in"]
    x = x + torch.einsum("dm,bpm->bpd", sd["blocks.0.mlp.W_out"], torch.relu(pre)) + sd["blocks.0.mlp.b_out"]
    return x @ sd["unembed.W_U"]


def to_bridge_state(w: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """TransformerLens-layout weights as a boot_native bridge state dict (nn.Linear layout)."""
    h, dm, dh = w["blocks.0.attn.W_Q"].shape
    out = {"embed.weight": w["embed.W_E"], "pos_embed.weight": w["pos_embed.W_pos"]}
    for x in "QKV":
        out[f"blocks.0.attn.{x.lower()}.weight"] = torch.cat([w[f"blocks.0.attn.W_{x}"][i].T for i in range(h)])
        out[f"blocks.0.attn.{x.lower()}.bias"] = w[f"blocks.0.attn.b_{x}"].flatten()
    out["blocks.0.attn.o.weight"] = torch.cat([w["blocks.0.attn.W_O"][i].T for i in range(h)], dim=1)
    out["blocks.0.attn.o.bias"] = w["blocks.0.attn.b_O"]
    out["blocks.0.mlp.in.weight"] = w["blocks.0.mlp.W_in"].T
    out["blocks.0.mlp.in.bias"] = w["blocks.0.mlp.b_in"]
    out["blocks.0.mlp.out.weight"] = w["blocks.0.mlp.W_out"].T
    out["blocks.0.mlp.out.bias"] = w["blocks.0.mlp.b_out"]
    out["unembed.weight"] = w["unembed.W_U"].T
    out["unembed.bias"] = w["unembed.b_U"]
    return {k: v.contiguous() for k, v in out.items()}


def pizza_forward(sd: dict[str, torch.Tensor], config: dict, tokens: torch.Tensor | None,
                  embedded: torch.Tensor | None = None) -> torch.Tensor:
    """The Clock-and-Pizza model's forward pass (Zhong et al.'s ``code/train-main.py``), from its published
    description: the progress-measures paper's layout, no attention mask applied, every pattern mixed as
    ``attn_coeff * softmax + (1 - attn_coeff)`` with an all-ones constant, ReLU or GeLU, no unembedding bias.
    ``embedded`` (token embeddings plus positions, ``[batch, pos, d_model]``) replaces ``tokens``."""
    if embedded is None:
        embedded = sd["embed.W_E"][:, tokens].permute(1, 2, 0) + sd["pos_embed.W_pos"][: tokens.shape[1]]
    x = embedded
    rate = config["attn_coeff"]
    for layer in range(config.get("n_layers", 1)):
        b = f"blocks.{layer}"
        k = torch.einsum("ihd,bpd->biph", sd[f"{b}.attn.W_K"], x)
        q = torch.einsum("ihd,bpd->biph", sd[f"{b}.attn.W_Q"], x)
        v = torch.einsum("ihd,bpd->biph", sd[f"{b}.attn.W_V"], x)
        scores = torch.einsum("biph,biqh->biqp", k, q) / sd[f"{b}.attn.W_Q"].shape[1] ** 0.5
        attn = scores.softmax(-1) * rate + (1 - rate)
        z = torch.einsum("biph,biqp->biqh", v, attn)
        z_flat = z.permute(0, 2, 1, 3).reshape(z.shape[0], z.shape[2], -1)
        x = x + torch.einsum("df,bqf->bqd", sd[f"{b}.attn.W_O"], z_flat)
        pre = torch.einsum("md,bpd->bpm", sd[f"{b}.mlp.W_in"], x) + sd[f"{b}.mlp.b_in"]
        act = torch.relu(pre) if config.get("act_fn", "ReLU") == "ReLU" else torch.nn.functional.gelu(pre)
        x = x + torch.einsum("dm,bpm->bpd", sd[f"{b}.mlp.W_out"], act) + sd[f"{b}.mlp.b_out"]
    return x @ sd["unembed.W_U"]


def pizza_tokens(config: dict) -> torch.Tensor:
    """Their dataset's inputs in grid order ``i = a * C + b``: ``[a, b (+ C if diff_vocab), (= if eqn_sign)]``."""
    c = config["C"]
    a = torch.arange(c).repeat_interleave(c)
    b = torch.arange(c).repeat(c)
    parts = [a, b + c if config.get("diff_vocab") else b]
    if config.get("eqn_sign"):
        parts.append(torch.full_like(a, c * (2 if config.get("diff_vocab") else 1)))
    return torch.stack(parts, 1)
