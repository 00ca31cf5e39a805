"""The grid pass computed from the weights: the activations a stopped grid pass records, without running the model.

Every model we analyse is a :class:`~modadd_interp.config.ModelConfig` transformer: token plus positional
embeddings, then blocks of attention (pattern ``rate * softmax(q k^T / sqrt(d_head)) + (1 - rate)``, causal or not)
and an MLP (ReLU or GeLU), no LayerNorm. So its forward pass up to the readout layer's ``resid_mid`` is a short
function of its canonical weights, and two facts make it much cheaper than the model's:

* in layer 0 each position's query, key and value depend only on that position's token: they are tables of
  ``[seq_len, d_vocab]`` rows, computed once per set of weights, and an input's are gathered from them;
* in the readout layer only the last query reaches the answer (the MLP and unembedding after it are replayed
  by :class:`~modadd_interp.probes.cache.GridCache` at the last position, as for a stopped pass).

The grid cache uses it in place of the model's forward only when no hook but the model's own is attached (a
user's hook must run) and the model's own logits agree with it on a sample of the grid
(:func:`disagreement`); otherwise it runs the model and says why. ``tests/test_weight_pass.py`` checks every
recorded activation against the model's hooks on the fixtures (paper, Clock-and-Pizza, deeper, every operation).

Examples:
    >>> import modadd_interp as mi
    >>> from modadd_interp import tl_adapter
    >>> model, task = mi.load()
    >>> cfg, canonical_weights = tl_adapter.model_config(model), tl_adapter.canonical_weights(model)
    >>> forward = WeightPass(cfg, canonical_weights, [hook_name("resid_mid", 0), hook_name("z", 0)])
    >>> for rows, logits, acts in forward.chunks(task.grid.pairs, 8192):
    ...     acts[hook_name("resid_mid", 0)].shape                                    # [m, d_model]
    torch.Size([8192, 128])
    torch.Size([4577, 128])
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch

from ..config import ModelConfig
from ..hook_names import hook_name


class WeightPass:
    """A ``ModelConfig`` transformer's forward pass up to the readout layer's ``resid_mid``, from its weights.

    Records, for each input, what a stopped :class:`~modadd_interp.grid.GridRecorder` records at the last
    position: ``hook_name("pattern", l)`` ``[m, n_heads, seq_len]`` (the last query's pattern, after the attention
    rate), ``hook_name("post", l)`` ``[m, d_mlp]`` for layers before the readout layer, and the readout layer's
    ``z_hook`` ``[m, n_heads, d_head]`` and ``resid_mid_hook`` ``[m, d_model]``; float32, as the model computes.

    Args:
        cfg: the architecture; weights: canonical float32 weights (:mod:`modadd_interp.config`).
        names: the hook names to record (others are not kept; any of the above).
    """

    def __init__(self, cfg: ModelConfig, weights: dict[str, torch.Tensor], names: Sequence[str]) -> None:
        supported = {hook_name("pattern", layer) for layer in range(cfg.n_layers)}
        supported |= {hook_name("post", layer) for layer in range(cfg.n_layers - 1)}
        supported |= {hook_name("z", cfg.n_layers - 1), hook_name("resid_mid", cfg.n_layers - 1)}
        unknown = sorted(set(names) - supported)
        if unknown:
            raise ValueError(f"a weight pass records only {sorted(supported)}; got {unknown}")
        self.cfg, self.w, self.names = cfg, weights, set(names)
        seq, attn = cfg.seq_len, "blocks.0.attn"
        self._w_o = [column_major(weights[f"blocks.{layer}.attn.W_O"].reshape(-1, cfg.d_model))
                     for layer in range(cfg.n_layers)]  # [n_heads d_head, d_model]
        self._mlp = [tuple(column_major(weights[f"blocks.{layer}.mlp.W_{x}"]) for x in ("in", "out"))
                     for layer in range(cfg.n_layers - 1)]
        # [seq, d_vocab, d_model]: every (position, token)'s layer-0 residual; its q, k, v: [seq, d_vocab, h, d_head]
        self._embedded = weights["embed.W_E"][None] + weights["pos_embed.W_pos"][:seq, None]
        self._qkv = [torch.einsum("tvd,hde->tvhe", self._embedded, weights[f"{attn}.W_{x}"])
                     + weights[f"{attn}.b_{x}"] for x in "QKV"]
        self._last_scores = None
        if cfg.n_layers == 1 and cfg.n_heads:  # layer 0 is the readout layer, read at the last query only: a table
            # [seq, d_vocab (last token), d_vocab (key token), h]
            self._last_scores = torch.einsum("vhe,suhe->svuh", self._qkv[0][seq - 1], self._qkv[1]) / math.sqrt(
                cfg.d_head)

    def run(self, tokens: torch.Tensor) -> dict[str, torch.Tensor]:
        """The recorded activations of ``tokens`` ``[m, seq_len]`` (the model's layout, :meth:`ModelConfig.encode`)."""
        cfg, w = self.cfg, self.w
        seq, last = tokens.shape[1], cfg.n_layers - 1
        position = torch.arange(seq)
        if cfg.arch == "mlp":  # no attention: the readout layer's input is the operands' embeddings, summed
            mid = self._embedded[position, tokens].sum(1)  # each in its slot (modadd_interp.mlp)
            out = {hook_name("resid_mid", 0): mid, hook_name("z", 0): mid.new_zeros(len(tokens), 0, 0),
                   hook_name("pattern", 0): mid.new_zeros(len(tokens), 0, seq)}
            return {name: out[name] for name in self.names}
        out: dict[str, torch.Tensor] = {}
        resid = None  # [m, seq, d_model], the residual stream entering the layer (from layer 1 on)
        for layer in range(cfg.n_layers):
            a, queries = f"blocks.{layer}.attn", (slice(None) if layer < last else slice(seq - 1, seq))
            if layer == 0 and self._last_scores is not None:
                before, pattern, z = self._one_query(tokens)
            else:
                if layer == 0:  # q, k, v: [m, seq, h, d_head] from the tables
                    q, k, v = (table[position, tokens] for table in self._qkv)
                    before, q = self._embedded[position[queries], tokens[:, queries]], q[:, queries]
                else:
                    before = resid[:, queries]
                    q, k, v = (torch.einsum("msd,hde->mshe", x, w[f"{a}.W_{name}"]) + w[f"{a}.b_{name}"]
                               for x, name in ((before, "Q"), (resid, "K"), (resid, "V")))
                pattern = self._pattern(self._scores(q, k, queries))  # [m, h, queries, seq]
                z = torch.einsum("mhqs,mshe->mqhe", pattern, v)
            heads = z.reshape(*z.shape[:2], -1) @ self._w_o[layer]  # [m, queries, d_model]
            mid = heads.add_(before).add_(w[f"{a}.b_O"])  # before + heads + b_O, in place (same sums)
            if hook_name("pattern", layer) in self.names:
                out[hook_name("pattern", layer)] = pattern[:, :, -1].clone()
            if layer == last:
                last_z, last_mid = z[:, -1], mid[:, -1]  # copies only when other queries would be kept alive
                out.update({hook_name("z", last): last_z.clone() if z.shape[1] > 1 else last_z,
                            hook_name("resid_mid", last): last_mid.clone() if mid.shape[1] > 1 else last_mid})
                return {name: out[name] for name in self.names}
            mlp = f"blocks.{layer}.mlp"
            w_in, w_out = self._mlp[layer]
            neurons = activation(cfg.act_fn, mid @ w_in + w[f"{mlp}.b_in"])
            if hook_name("post", layer) in self.names:
                out[hook_name("post", layer)] = neurons[:, -1].clone()
            resid = mid + neurons @ w_out + w[f"{mlp}.b_out"]
        raise AssertionError("unreachable: the readout layer returns")

    def _one_query(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A one-layer model's attention at the last query, from the tables: ``(resid_pre [m, 1, d_model], pattern
        [m, h, 1, seq], z [m, 1, h, d_head])``. Rows are gathered per position, and a position whose token is the
        same for every input (``'='``) is one broadcast row."""
        seq, vocab = tokens.shape[1], self.cfg.d_vocab
        columns = [tokens[:, s] for s in range(seq)]
        constant = [bool((c == c[0]).all()) for c in columns]

        def rows(table: torch.Tensor, s: int) -> torch.Tensor:  # table[token at position s], [m or 1, ...]
            return table[columns[s][:1]] if constant[s] else table.index_select(0, columns[s])

        last = columns[-1]
        scores = torch.stack([rows(self._last_scores[s][last[0]], s).expand(len(tokens), -1) if constant[-1] else
                              self._last_scores[s].reshape(vocab * vocab, -1).index_select(0, last * vocab + columns[s])
                              for s in range(seq)], -1)  # [m, h, seq]
        pattern = self._pattern(scores)
        z = rows(self._qkv[2][0], 0) * pattern[:, :, :1]
        for s in range(1, seq):
            z.addcmul_(rows(self._qkv[2][s], s), pattern[:, :, s : s + 1])
        return rows(self._embedded[seq - 1], seq - 1)[:, None], pattern[:, :, None], z[:, None]

    def _scores(self, q: torch.Tensor, k: torch.Tensor, queries: slice) -> torch.Tensor:
        """``[m, h, n_queries, seq]``: the attention scores of queries ``q`` ``[m, n_queries, h, d_head]`` at
        positions ``queries`` over keys ``k`` ``[m, seq, h, d_head]``, causally masked when the model is."""
        scores = torch.einsum("mqhe,mshe->mhqs", q, k) / math.sqrt(self.cfg.d_head)
        seq = k.shape[1]
        if self.cfg.attention_dir == "causal":
            at = torch.arange(seq)[queries]
            scores = scores.masked_fill(torch.arange(seq)[None, :] > at[:, None], float("-inf"))
        return scores

    def _pattern(self, scores: torch.Tensor) -> torch.Tensor:
        """The softmax of ``scores`` over keys, mixed by the attention rate (every entry, unmasked)."""
        # written out: torch's softmax over a last dimension of 2-4 keys is 4x slower (measured)
        pattern = (scores - scores.amax(-1, keepdim=True)).exp_()
        pattern /= pattern.sum(-1, keepdim=True)
        rate = self.cfg.attn_rate
        return pattern if rate == 1.0 else rate * pattern + (1.0 - rate)

    def chunks(self, pairs: torch.Tensor, step: int) -> Iterator[tuple[slice, None, dict[str, torch.Tensor]]]:
        """Like :meth:`GridRecorder.chunks` of a stopped pass: ``(rows, None, activations)`` per ``step`` inputs."""
        for start in range(0, len(pairs), step):
            rows = slice(start, min(len(pairs), start + step))
            yield rows, None, self.run(self.cfg.encode(pairs[rows]))


def disagreement(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """The largest difference of two logit tensors relative to the largest logit of ``theirs`` (at least 1)."""
    return float((ours - theirs).abs().max() / theirs.abs().max().clamp_min(1.0)) if theirs.numel() else 0.0


def column_major(matrix: torch.Tensor) -> torch.Tensor:
    """The same ``[k, n]`` matrix stored column by column (a transposed view of its contiguous transpose, the layout
    of ``nn.Linear``'s weight): MKL's sgemm multiplies by it 5-8% faster at this project's shapes, to the same bits
    (measured: ``[4068, 128] @ [128, 512]`` 2.80 -> 2.66 ms, ``[4068, 512] @ [512, 128]`` 2.95 -> 2.76 ms)."""
    return matrix.T.contiguous().T


def activation(act_fn: str, pre: torch.Tensor) -> torch.Tensor:
    """The MLP's activation function (ReLU in place on ``pre``, GeLU, or an MLP's square)."""
    if act_fn == "relu":
        return pre.relu_()
    return torch.nn.functional.gelu(pre) if act_fn == "gelu" else pre.square_()
