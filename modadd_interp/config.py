"""The architecture we analyse, and its weights in one canonical layout.

Canonical weights use TransformerLens ``HookedTransformer`` names and shapes
(``embed.W_E`` is ``[d_vocab, d_model]``, ``blocks.0.attn.W_Q`` is
``[n_heads, d_model, d_head]``, ...). Every checkpoint format is converted to
this layout, and :mod:`modadd_interp.tl_adapter` builds a live model from it.

Examples:
    >>> cfg = ModelConfig.paper(p=113)
    >>> weights = paper_init(cfg, seed=0)
    >>> weights["embed.W_E"].shape
    torch.Size([114, 128])
"""

from __future__ import annotations

import dataclasses
import math

import torch

from .errors import ArchitectureError, InvalidWeightsError

ACT_FNS = ("relu", "gelu", "quad")
ATTENTION_DIRS = ("causal", "bidirectional")
ARCHS = ("transformer", "mlp")
_INT_FIELDS = ("d_vocab", "d_vocab_out", "n_ctx", "d_model", "n_heads", "d_head", "d_mlp", "n_layers")
_MLP_FIELDS = ("d_embed", "embed", "shared_embed", "mlp_bias")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """An attention + MLP transformer without LayerNorm, 1 or more blocks, on two operands.

    The input is ``(a, b, '=')`` (``has_eq``) or ``(a, b)``; the answer is read at the last position.
    ``b`` is token ``b``, or token ``p + b`` with ``separate_b_tokens`` (the Clock-and-Pizza
    ``diff_vocab``); ``'='`` is the last token id. So ``d_vocab = p * (1 + separate_b_tokens) + has_eq``.
    ``d_vocab_out`` is at least ``p``: the answers are outputs ``0..p-1`` (the paper keeps an ``'='``
    output, the Clock-and-Pizza models output their whole vocabulary).

    ``attn_rate`` is the Clock-and-Pizza *attention rate* ``alpha``: every attention pattern is
    ``alpha * softmax(QK^T / sqrt(d_head)) + (1 - alpha)`` (all ones, not normalised), so ``alpha = 0``
    is constant attention. ``attention_dir`` is ``"causal"`` (TransformerLens's default, the paper's
    models) or ``"bidirectional"`` (the Clock-and-Pizza models apply no mask).

    ``arch="mlp"`` is a one-hidden-layer MLP (:mod:`modadd_interp.mlp`, :meth:`ModelConfig.mlp`) seen as this
    architecture's readout layer with no attention: ``n_heads = d_head = 0``, tokens ``(x, n + y)``, ``d_model =
    d_in + d_mlp`` (the input slot and the MLP's output slot); ``d_embed``, ``embed``, ``shared_embed`` and
    ``mlp_bias`` describe it (and are left out of :meth:`to_dict` for a transformer).

    Examples:
        >>> cfg = ModelConfig.paper(59, has_eq=False, attn_rate=0.0, n_layers=2)
        >>> cfg.p, cfg.d_vocab, cfg.encode(torch.tensor([[3, 4]])).tolist()
        (59, 59, [[3, 4]])
        >>> mlp = ModelConfig.mlp(24, d_embed=32, d_mlp=64)
        >>> mlp.arch, mlp.d_model, mlp.encode(torch.tensor([[3, 4]])).tolist()
        ('mlp', 128, [[3, 28]])
    """

    d_vocab: int
    d_vocab_out: int
    n_ctx: int = 3
    d_model: int = 128
    n_heads: int = 4
    d_head: int = 32
    d_mlp: int = 512
    n_layers: int = 1
    act_fn: str = "relu"
    attn_rate: float = 1.0
    attention_dir: str = "causal"
    has_eq: bool = True
    separate_b_tokens: bool = False
    arch: str = "transformer"
    d_embed: int = 0
    embed: str = "concat"
    shared_embed: bool = False
    mlp_bias: bool = False

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ArchitectureError(f"arch must be one of {ARCHS}, got {self.arch!r}.")
        for name in _INT_FIELDS:
            value = getattr(self, name)
            zero_ok = self.arch == "mlp" and name in ("n_heads", "d_head")
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if zero_ok else 1):
                raise ArchitectureError(f"{name} must be a positive integer, got {value!r}.")
        if self.act_fn not in ACT_FNS or (self.act_fn == "quad" and self.arch != "mlp"):
            raise ArchitectureError(
                f"act_fn {self.act_fn!r} is not supported; the probes read relu or gelu neurons (and an MLP's "
                "quad ones)."
            )
        if self.arch == "mlp":
            self._check_mlp()
        rate = self.attn_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= float(rate) <= 1.0:
            raise ArchitectureError(f"attn_rate must be a number in [0, 1], got {rate!r}.")
        object.__setattr__(self, "attn_rate", float(rate))
        if self.attention_dir not in ATTENTION_DIRS:
            raise ArchitectureError(f"attention_dir must be one of {ATTENTION_DIRS}, got {self.attention_dir!r}.")
        for name in ("has_eq", "separate_b_tokens"):
            if not isinstance(getattr(self, name), bool):
                raise ArchitectureError(f"{name} must be True or False, got {getattr(self, name)!r}.")
        numbers = self.d_vocab - int(self.has_eq)
        if self.separate_b_tokens and numbers % 2:
            raise ArchitectureError(
                f"d_vocab={self.d_vocab} does not fit separate a and b tokens (2p{' + 1' if self.has_eq else ''})."
            )
        if self.p < 2:
            raise ArchitectureError(f"d_vocab={self.d_vocab} leaves p={self.p} numbers; a task needs p >= 2.")
        if self.n_ctx < self.seq_len:
            raise ArchitectureError(
                f"n_ctx={self.n_ctx}, but the input {self.layout} needs {self.seq_len} positions."
            )
        if self.d_vocab_out < self.p:
            raise ArchitectureError(
                f"d_vocab_out={self.d_vocab_out} is smaller than p={self.p}: the model cannot output every answer."
            )

    def _check_mlp(self) -> None:
        from .mlp import EMBEDS

        if self.embed not in EMBEDS:
            raise ArchitectureError(f"embed must be one of {EMBEDS}, got {self.embed!r}.")
        d_in = self.d_embed * (2 if self.embed == "concat" else 1)
        expected = dict(n_heads=0, d_head=0, n_layers=1, has_eq=False, separate_b_tokens=True, n_ctx=2,
                        d_model=d_in + self.d_mlp)
        wrong = {k: getattr(self, k) for k, v in expected.items() if getattr(self, k) != v}
        if self.d_embed < 1 or wrong:
            raise ArchitectureError(f"an MLP config needs d_embed >= 1 and {expected} (d_model = d_in + d_mlp); "
                                    f"got d_embed={self.d_embed} and {wrong}. Build it with ModelConfig.mlp(...).")

    @classmethod
    def mlp(cls, n: int, d_embed: int = 256, d_mlp: int = 128, embed: str = "concat", shared_embed: bool = False,
            act_fn: str = "relu", mlp_bias: bool = False, d_vocab_out: int | None = None) -> ModelConfig:
        """A one-hidden-layer MLP on two operands of ``n`` tokens each (:mod:`modadd_interp.mlp`); the defaults are
        Chughtai et al.'s (embeddings of 256, 128 hidden neurons, concatenated, ReLU, no biases)."""
        d_in = d_embed * (2 if embed == "concat" else 1)
        return cls(d_vocab=2 * n, d_vocab_out=d_vocab_out or n, n_ctx=2, d_model=d_in + d_mlp, n_heads=0, d_head=0,
                   d_mlp=d_mlp, n_layers=1, act_fn=act_fn, attention_dir="bidirectional", has_eq=False,
                   separate_b_tokens=True, arch="mlp", d_embed=d_embed, embed=embed, shared_embed=shared_embed,
                   mlp_bias=mlp_bias)

    def mlp_config(self):
        """The :class:`modadd_interp.mlp.MLPConfig` of an ``arch="mlp"`` config."""
        from .mlp import MLPConfig

        if self.arch != "mlp":
            raise ArchitectureError("mlp_config() is for an MLP's config (arch='mlp').")
        return MLPConfig(n=self.p, d_embed=self.d_embed, d_mlp=self.d_mlp, d_vocab_out=self.d_vocab_out,
                         embed=self.embed, shared_embed=self.shared_embed, act_fn=self.act_fn, bias=self.mlp_bias)

    @classmethod
    def paper(cls, p: int, has_eq: bool = True, separate_b_tokens: bool = False, **overrides) -> ModelConfig:
        """The paper's architecture for modulus ``p`` (d_model 128, 4 heads, d_mlp 512), with overrides.

        ``has_eq=False`` drops the ``'='`` token (``n_ctx`` 2), as in the Clock-and-Pizza models.
        """
        d_vocab = p * (2 if separate_b_tokens else 1) + int(has_eq)
        overrides.setdefault("n_ctx", 2 + int(has_eq))
        return cls(d_vocab=d_vocab, d_vocab_out=p, has_eq=has_eq, separate_b_tokens=separate_b_tokens, **overrides)

    @property
    def p(self) -> int:
        """The modulus implied by the vocabulary and the token layout."""
        return (self.d_vocab - int(self.has_eq)) // (2 if self.separate_b_tokens else 1)

    @property
    def seq_len(self) -> int:
        """Tokens per input: 3 with ``'='``, else 2."""
        return 2 + int(self.has_eq)

    @property
    def eq_token(self) -> int | None:
        """The token id of ``'='`` (the last id), or None."""
        return self.d_vocab - 1 if self.has_eq else None

    @property
    def layout(self) -> str:
        """The input layout in words, e.g. ``"(a, b, '=')"`` or ``"(a, p + b)"``."""
        b = "p + b" if self.separate_b_tokens else "b"
        return f"(a, {b}, '=')" if self.has_eq else f"(a, {b})"

    def encode(self, pairs: torch.Tensor) -> torch.Tensor:
        """``[n, seq_len]`` int64 tokens of operand pairs ``[n, 2]`` in this model's layout."""
        a, b = pairs[:, 0].long(), pairs[:, 1].long()
        parts = [a, b + self.p if self.separate_b_tokens else b]
        if self.has_eq:
            parts.append(torch.full_like(a, self.d_vocab - 1))
        return torch.stack(parts, dim=1)

    def number_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``([p], [p])``: the embedding rows of the numbers as ``a`` and as ``b`` (equal without separate tokens)."""
        rows = torch.arange(self.p)
        return rows, rows + self.p if self.separate_b_tokens else rows

    def to_dict(self) -> dict:
        """JSON-safe description (a transformer's leaves out the MLP-only fields)."""
        out = dataclasses.asdict(self)
        if self.arch == "transformer":
            for name in ("arch", *_MLP_FIELDS):
                out.pop(name)
        return out

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """The canonical weight names and their shapes."""
        h, dm, dh, dmlp = self.n_heads, self.d_model, self.d_head, self.d_mlp
        shapes: dict[str, tuple[int, ...]] = {
            "embed.W_E": (self.d_vocab, dm),
            "pos_embed.W_pos": (self.n_ctx, dm),
        }
        for layer in range(self.n_layers):
            b = f"blocks.{layer}"
            for x in "QKV":
                shapes[f"{b}.attn.W_{x}"] = (h, dm, dh)
                shapes[f"{b}.attn.b_{x}"] = (h, dh)
            shapes[f"{b}.attn.W_O"] = (h, dh, dm)
            shapes[f"{b}.attn.b_O"] = (dm,)
            shapes[f"{b}.mlp.W_in"] = (dm, dmlp)
            shapes[f"{b}.mlp.b_in"] = (dmlp,)
            shapes[f"{b}.mlp.W_out"] = (dmlp, dm)
            shapes[f"{b}.mlp.b_out"] = (dm,)
        shapes["unembed.W_U"] = (dm, self.d_vocab_out)
        shapes["unembed.b_U"] = (self.d_vocab_out,)
        return shapes


def check_weights(cfg: ModelConfig, weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Validate canonical ``weights`` against ``cfg``; return them as float32 tensors.

    Raises:
        InvalidWeightsError: a key is missing or extra, a shape is wrong, or a value is NaN/inf.
    """
    expected = cfg.shapes()
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise InvalidWeightsError(
            f"the weights do not match the architecture: missing keys {missing}, "
            f"unexpected keys {extra}."
        )
    out = {}
    for name, shape in expected.items():
        tensor = weights[name]
        if tuple(tensor.shape) != shape:
            raise InvalidWeightsError(
                f"{name} has shape {tuple(tensor.shape)}, expected {shape} for {cfg}."
            )
        if not torch.is_floating_point(tensor):
            raise InvalidWeightsError(f"{name} has dtype {tensor.dtype}; weights must be floats.")
        if not torch.isfinite(tensor).all():
            bad = int((~torch.isfinite(tensor)).sum())
            raise InvalidWeightsError(
                f"{name} has {bad} NaN/inf values; the checkpoint is corrupt or training diverged."
            )
        out[name] = tensor.detach().to(torch.float32).contiguous()
    return out


def paper_init(cfg: ModelConfig, seed: int) -> dict[str, torch.Tensor]:
    """The paper's initialisation, in canonical layout.

    Every matrix is ``randn / sqrt(d_model)``, except ``W_U``, which is
    ``randn / sqrt(d_vocab)``; every bias is zero. Deterministic for a given seed. An MLP gets Chughtai et
    al.'s (:class:`modadd_interp.mlp.HookedMLP`).
    """
    if cfg.arch == "mlp":
        from .mlp import HookedMLP

        return HookedMLP(cfg.mlp_config(), seed=seed).canonical()
    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for name, shape in cfg.shapes().items():
        if ".b_" in name:
            weights[name] = torch.zeros(shape)
        else:
            scale = math.sqrt(cfg.d_vocab if name == "unembed.W_U" else cfg.d_model)
            weights[name] = torch.randn(shape, generator=generator) / scale
    return weights


def frozen_biases(cfg: ModelConfig) -> list[str]:
    """The canonical biases the paper's model does not have: they stay zero in training (for an MLP without biases,
    its own ``b_in`` and ``b_U``: the names :func:`modadd_interp.tl_adapter.canonical_parameters` gives)."""
    if cfg.arch == "mlp":
        return [] if cfg.mlp_bias else ["b_in", "b_U"]
    names = [f"blocks.{i}.attn.b_{x}" for i in range(cfg.n_layers) for x in "QKVO"]
    return names + ["unembed.b_U"]
