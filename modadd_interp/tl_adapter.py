"""The one place that knows TransformerLens versions.

TransformerLens <= 3.x gives us ``HookedTransformer``; 4.x removed it and builds
small models with ``TransformerBridge.boot_native``. Both expose the same hook
names (``hook_embed``, ``blocks.0.mlp.hook_post``, ...) and weight properties
(``W_E``, ``blocks[0].attn.W_Q``, ...). This module builds either from canonical
weights (see :mod:`modadd_interp.config`), reads canonical weights back, and runs
hooked forward passes that never leave a hook behind.

Traps handled here (checked on TL 4.3):
    * inside a hook, ``hook.name`` is the bridge's canonical name: we key on the
      name we registered, never on ``hook.name``;
    * the bridge's ``W_Q``/``W_K``/``W_V``/``W_O`` are computed tensors: we read them
      (detached) and write weights only through ``load_state_dict``;
    * ``boot_native`` returns a model in training mode: :func:`build_model` returns eval mode;
    * the bridge installs two internal pre-hooks on its first forward pass; they are
      part of the model, so leak checks compare hook counts before and after;
    * an edit at ``blocks.0.hook_resid_mid`` reaches the MLP input but not the residual sum
      on the bridge (on HookedTransformer it reaches both): interventions edit only output
      hooks (``hook_embed``, ``attn.hook_z``, ``hook_attn_out``, ``mlp.hook_post``,
      ``hook_mlp_out``), which behave the same on both (tests/test_hook_semantics.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.metadata
from collections.abc import Callable, Iterator, Sequence

import torch

from . import mlp as mlp_models
from .config import ACT_FNS, ATTENTION_DIRS, ModelConfig, check_weights, frozen_biases
from .errors import ArchitectureError

TL_VERSION = importlib.metadata.version("transformer-lens")
TL_MAJOR = int(TL_VERSION.split(".")[0])
HAS_HOOKED_TRANSFORMER = TL_MAJOR < 4

HookFn = Callable[[torch.Tensor], torch.Tensor | None]


def _bridge_classes():
    import transformer_lens.model_bridge.sources.native  # noqa: F401  (registers boot_native)
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge

    return TransformerBridge, TransformerBridgeConfig


def is_bridge(model: object) -> bool:
    """True for a TL 4 ``TransformerBridge`` (or TL 3.x's early bridge)."""
    return type(model).__name__ == "TransformerBridge"


def is_hooked_transformer(model: object) -> bool:
    """True for a TL <= 3 ``HookedTransformer``."""
    return any(cls.__name__ == "HookedTransformer" for cls in type(model).__mro__)


def is_hooked_mlp(model: object) -> bool:
    """True for a one-hidden-layer :class:`modadd_interp.mlp.HookedMLP`."""
    return isinstance(model, mlp_models.HookedMLP)


def backend_name(model: object) -> str:
    """``"bridge"``, ``"hooked_transformer"`` or ``"mlp"`` (a :class:`~modadd_interp.mlp.HookedMLP`)."""
    if is_bridge(model):
        return "bridge"
    if is_hooked_transformer(model):
        return "hooked_transformer"
    if is_hooked_mlp(model):
        return "mlp"
    raise ArchitectureError(
        f"expected a TransformerLens HookedTransformer or TransformerBridge, or a modadd_interp HookedMLP, got "
        f"{type(model).__name__}."
    )


def default_backend(cfg: ModelConfig) -> str:
    """The backend :func:`build_model` uses for ``cfg`` when none is asked: ``"mlp"`` for an MLP, else the
    installed TL's native transformer (HookedTransformer on 3.x, the bridge on 4.x)."""
    if cfg.arch == "mlp":
        return "mlp"
    return "hooked_transformer" if HAS_HOOKED_TRANSFORMER else "bridge"


# ------------------------------------------------------------------ building
def build_model(cfg: ModelConfig, weights: dict[str, torch.Tensor], backend: str | None = None):
    """Build a hooked model in eval mode holding exactly ``weights`` (canonical layout).

    Args:
        cfg: the architecture.
        weights: canonical weights, as :func:`modadd_interp.config.check_weights` accepts.
        backend: ``"hooked_transformer"`` (TL <= 3 only) or ``"bridge"``; default: the
            installed TL's native choice (HookedTransformer on 3.x, the bridge on 4.x). An MLP config
            (``arch="mlp"``) builds a :class:`~modadd_interp.mlp.HookedMLP` (backend ``"mlp"``) on any TL.
    """
    weights = check_weights(cfg, weights)
    check_backend(cfg, backend)
    backend = backend or default_backend(cfg)
    if backend == "mlp":
        return mlp_models.build(cfg.mlp_config(), weights)
    if backend == "hooked_transformer":
        model = _build_hooked_transformer(cfg, weights)
    elif backend == "bridge":
        check_backend(cfg, backend)
        model = _build_bridge(cfg, weights)
    else:
        raise ValueError(f"unknown backend {backend!r}")
    model.eval()
    _set_layout(model, cfg)
    if cfg.attn_rate != 1.0:
        for layer in range(cfg.n_layers):
            model.add_perma_hook(f"blocks.{layer}.attn.hook_pattern", attention_rate_hook(cfg.attn_rate))
    return model


def check_backend(cfg: ModelConfig, backend: str | None = None) -> None:
    """Raise :class:`ArchitectureError` if ``backend`` cannot run ``cfg`` faithfully.

    Called before anything is built or written (:func:`build_model`, :func:`modadd_interp.train`).
    """
    wanted = default_backend(cfg)
    if (backend == "mlp") != (wanted == "mlp") and backend is not None:
        raise ArchitectureError(f"backend {backend!r} cannot build a {cfg.arch}: use backend={wanted!r} (or none).")
    backend = backend or wanted
    if backend == "bridge" and cfg.attn_rate != 1.0 and not _bridge_pattern_hook_is_live():
        raise ArchitectureError(
            f"attention rate {cfg.attn_rate:g} needs a hook_pattern that feeds the attention output, but "
            f"transformer-lens {TL_VERSION}'s TransformerBridge only reports the pattern after computing "
            "the output; use backend='hooked_transformer' (the default on this version) or "
            "transformer-lens >= 4.3."
        )


def attention_rate_hook(rate: float):
    """The permanent ``hook_pattern`` hook of a model with attention rate ``rate`` (Clock and Pizza):
    ``pattern -> rate * pattern + (1 - rate)``, every entry, no renormalisation, no mask.

    It belongs to the model (added by :func:`build_model` with ``add_perma_hook``, which both TL 3.9
    and TL 4 have): ``reset_hooks()`` keeps it, and every forward pass, cache, intervention and
    patching run sees the authors' attention. Recorders of ``hook_pattern`` see the mixed pattern.
    """

    def mix(pattern: torch.Tensor, hook) -> torch.Tensor:  # noqa: ARG001 - TL passes the HookPoint
        return rate * pattern + (1.0 - rate)

    mix.attn_rate = rate  # type: ignore[attr-defined]
    return mix


@functools.cache
def _bridge_pattern_hook_is_live() -> bool:
    """Does a hook on the bridge's ``hook_pattern`` change the attention output?

    Measured, not read from a version table: TL 4.3's ``boot_native`` bridge computes the
    output from the hooked pattern; TL 3.9's fires the hook on the pattern it returns, after the fact.
    """
    bridge_cls, bridge_cfg_cls = _bridge_classes()
    tl_cfg = bridge_cfg_cls(n_layers=1, n_heads=1, d_model=4, d_head=4, d_mlp=4, act_fn="relu",
                            normalization_type=None, d_vocab=3, d_vocab_out=3, n_ctx=2, seed=0)
    model = bridge_cls.boot_native(tl_cfg)
    tokens = torch.tensor([[0, 1]])

    def zero(pattern: torch.Tensor, hook) -> torch.Tensor:  # noqa: ARG001 - TL passes the HookPoint
        return torch.zeros_like(pattern)

    with torch.no_grad():
        clean = model(tokens)
        with model.hooks(fwd_hooks=[("blocks.0.attn.hook_pattern", zero)]):
            zeroed = model(tokens)
    return not torch.allclose(clean, zeroed)


_LAYOUT_ATTR = "_modadd_interp_layout"


def _set_layout(model, cfg: ModelConfig) -> None:
    """Remember what TransformerLens's config cannot say: token layout and attention rate."""
    object.__setattr__(model, _LAYOUT_ATTR, {"has_eq": cfg.has_eq, "separate_b_tokens": cfg.separate_b_tokens,
                                             "attn_rate": cfg.attn_rate})


def _build_hooked_transformer(cfg: ModelConfig, weights: dict[str, torch.Tensor]):
    if not HAS_HOOKED_TRANSFORMER:
        raise ArchitectureError(
            f"HookedTransformer does not exist in transformer-lens {TL_VERSION}; use the bridge."
        )
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    tl_cfg = HookedTransformerConfig(
        n_layers=cfg.n_layers, d_model=cfg.d_model, d_head=cfg.d_head, n_heads=cfg.n_heads,
        d_mlp=cfg.d_mlp, d_vocab=cfg.d_vocab, d_vocab_out=cfg.d_vocab_out, n_ctx=cfg.n_ctx,
        act_fn=cfg.act_fn, normalization_type=None, device="cpu", seed=None, attention_dir=cfg.attention_dir,
    )
    model = HookedTransformer(tl_cfg)
    state = model.state_dict()
    state.update(weights)
    model.load_state_dict(state, strict=True)
    return model


def _build_bridge(cfg: ModelConfig, weights: dict[str, torch.Tensor]):
    bridge_cls, bridge_cfg_cls = _bridge_classes()
    tl_cfg = bridge_cfg_cls(
        n_layers=cfg.n_layers, n_heads=cfg.n_heads, d_model=cfg.d_model, d_head=cfg.d_head,
        d_mlp=cfg.d_mlp, act_fn=cfg.act_fn, normalization_type=None, d_vocab=cfg.d_vocab,
        d_vocab_out=cfg.d_vocab_out, n_ctx=cfg.n_ctx, seed=0, attention_dir=cfg.attention_dir,
    )
    model = bridge_cls.boot_native(tl_cfg)
    model.load_state_dict(canonical_to_bridge(cfg, weights), strict=True)
    return model


# ------------------------------------------------------------- bridge names
@dataclasses.dataclass(frozen=True)
class BridgeName:
    """One row of :data:`BRIDGE_NAMES`: a canonical weight and the ``boot_native`` bridge tensor that holds it.

    Attributes:
        canonical: the canonical name (``"{b}"`` stands for every block, ``"blocks.0"`` ...).
        bridge: the bridge state dict's name (``nn.Linear`` layout).
        axes: the bridge tensor's axes in the layout notation of :mod:`modadd_interp.formats.layout`
            (``"n_heads*d_head"`` is a product of two dimensions).
        move: how the canonical tensor becomes the bridge's: ``"same"``, ``"transpose"``, ``"heads_in"`` (``W_Q``),
            ``"heads_bias"`` (``b_Q``) or ``"heads_out"`` (``W_O``); see :func:`_to_bridge`.
        optional: a bridge state dict may lack it (the unembed bias; read as zeros).
    """

    canonical: str
    bridge: str
    axes: tuple[str, ...]
    move: str
    optional: bool = False


BRIDGE_NAMES: tuple[BridgeName, ...] = (
    BridgeName("embed.W_E", "embed.weight", ("d_vocab", "d_model"), "same"),
    BridgeName("pos_embed.W_pos", "pos_embed.weight", ("n_ctx", "d_model"), "same"),
    *(BridgeName(f"{{b}}.attn.W_{x}", f"{{b}}.attn.{x.lower()}.weight", ("n_heads*d_head", "d_model"), "heads_in")
      for x in "QKV"),
    *(BridgeName(f"{{b}}.attn.b_{x}", f"{{b}}.attn.{x.lower()}.bias", ("n_heads*d_head",), "heads_bias")
      for x in "QKV"),
    BridgeName("{b}.attn.W_O", "{b}.attn.o.weight", ("d_model", "n_heads*d_head"), "heads_out"),
    BridgeName("{b}.attn.b_O", "{b}.attn.o.bias", ("d_model",), "same"),
    BridgeName("{b}.mlp.W_in", "{b}.mlp.in.weight", ("d_mlp", "d_model"), "transpose"),
    BridgeName("{b}.mlp.b_in", "{b}.mlp.in.bias", ("d_mlp",), "same"),
    BridgeName("{b}.mlp.W_out", "{b}.mlp.out.weight", ("d_model", "d_mlp"), "transpose"),
    BridgeName("{b}.mlp.b_out", "{b}.mlp.out.bias", ("d_model",), "same"),
    BridgeName("unembed.W_U", "unembed.weight", ("d_vocab_out", "d_model"), "transpose"),
    BridgeName("unembed.b_U", "unembed.bias", ("d_vocab_out",), "same", optional=True),
)
"""The one table of TL 4 ``boot_native`` bridge names. :func:`bridge_names`, :func:`canonical_to_bridge`,
:func:`bridge_to_canonical`, :func:`canonical_parameters` (hence :func:`canonical_weights` and :func:`set_weights`)
and the bridge format's shape table (:mod:`modadd_interp.formats.bridge`) are all generated from it.

Canonical ``W_Q`` ``[n_heads, d_model, d_head]`` is ``q.weight`` ``[n_heads*d_head, d_model]`` (rows
``h*d_head .. (h+1)*d_head`` hold ``W_Q[h].T``); canonical ``W_O`` ``[n_heads, d_head, d_model]`` is ``o.weight``
``[d_model, n_heads*d_head]``; the MLP and unembedding matrices are transposed (``nn.Linear`` stores
``[out, in]``)."""

def _to_bridge(move: str, t: torch.Tensor, h: int, dh: int, dm: int) -> torch.Tensor:
    """A canonical tensor in the bridge's layout (views and copies only: bit-exact)."""
    if move == "transpose":
        return t.T
    if move == "heads_in":  # [h, dm, dh] -> [h*dh, dm]
        return t.permute(0, 2, 1).reshape(h * dh, dm)
    if move == "heads_bias":  # [h, dh] -> [h*dh]
        return t.reshape(h * dh)
    if move == "heads_out":  # [h, dh, dm] -> [dm, h*dh]
        return t.reshape(h * dh, dm).T
    return t


def _from_bridge(move: str, t: torch.Tensor, h: int, dh: int, dm: int) -> torch.Tensor:
    """The inverse of :func:`_to_bridge`."""
    if move == "transpose":
        return t.T
    if move == "heads_in":
        return t.reshape(h, dh, dm).permute(0, 2, 1)
    if move == "heads_bias":
        return t.reshape(h, dh)
    if move == "heads_out":
        return t.T.reshape(h, dh, dm)
    return t


def _expanded(n_layers: int) -> list[tuple[str, str, BridgeName]]:
    """``(canonical, bridge, row)`` for every tensor of an ``n_layers``-block model, in table order."""
    out = []
    for row in BRIDGE_NAMES:
        for block in [f"blocks.{i}" for i in range(n_layers)] if "{b}" in row.canonical else [""]:
            out.append((row.canonical.replace("{b}", block), row.bridge.replace("{b}", block), row))
    return out


def bridge_names(n_layers: int) -> dict[str, str]:
    """``{canonical name: bridge name}`` for an ``n_layers``-block model.

    Examples:
        >>> bridge_names(1)["blocks.0.attn.W_Q"], bridge_names(1)["unembed.W_U"]
        ('blocks.0.attn.q.weight', 'unembed.weight')
    """
    return {canonical: bridge for canonical, bridge, _ in _expanded(n_layers)}


def canonical_to_bridge(cfg: ModelConfig, w: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Canonical weights -> a ``boot_native`` bridge state dict (``nn.Linear`` layout; :data:`BRIDGE_NAMES`).

    Examples:
        >>> from modadd_interp.config import paper_init
        >>> cfg = ModelConfig.paper(5, d_model=8, n_heads=2, d_head=4, d_mlp=16)
        >>> canonical_to_bridge(cfg, paper_init(cfg, 0))["blocks.0.attn.q.weight"].shape  # [n_heads*d_head, d_model]
        torch.Size([8, 8])
    """
    h, dh, dm = cfg.n_heads, cfg.d_head, cfg.d_model
    return {bridge: _to_bridge(row.move, w[canonical], h, dh, dm).contiguous()
            for canonical, bridge, row in _expanded(cfg.n_layers)}


def bridge_to_canonical(state: dict[str, torch.Tensor], n_heads: int, **layout) -> tuple[ModelConfig, dict]:
    """A ``boot_native`` bridge state dict -> (config, canonical weights) (:data:`BRIDGE_NAMES`).

    A bridge state dict does not record the head count, so the caller gives ``n_heads``; nor the
    activation, attention direction, attention rate or token layout (``layout``: :class:`ModelConfig`
    fields; default: ReLU, causal, rate 1, ``'='`` when ``n_ctx >= 3``). Its shapes are checked by the
    caller (:mod:`modadd_interp.formats.bridge`); a missing unembed bias is zeros.
    """
    d_vocab, d_model = state["embed.weight"].shape
    n_layers = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("blocks."))
    hd = state["blocks.0.attn.q.weight"].shape[0]
    if hd % n_heads:
        raise ArchitectureError(
            f"n_heads={n_heads} does not divide the attention width {hd}; pass the right n_heads."
        )
    n_ctx = state["pos_embed.weight"].shape[0]
    layout.setdefault("has_eq", n_ctx >= 3)
    cfg = ModelConfig(
        d_vocab=d_vocab, d_vocab_out=state["unembed.weight"].shape[0],
        n_ctx=n_ctx, d_model=d_model, n_heads=n_heads,
        d_head=hd // n_heads, d_mlp=state["blocks.0.mlp.in.weight"].shape[0], n_layers=n_layers, **layout,
    )
    h, dh = n_heads, hd // n_heads
    w = {}
    for canonical, bridge, row in _expanded(n_layers):
        if bridge not in state and row.optional:
            w[canonical] = torch.zeros(cfg.shapes()[canonical])
        else:
            w[canonical] = _from_bridge(row.move, state[bridge], h, dh, d_model).contiguous()
    return cfg, w


# ------------------------------------------------------------------- reading
def model_config(model) -> ModelConfig:
    """The :class:`ModelConfig` of a live model; refuses architectures we cannot analyse.

    The token layout and attention rate are those :func:`build_model` recorded on the model; for a
    model built elsewhere: ``(a, b, '=')`` when ``n_ctx >= 3``, else ``(a, b)``, and rate 1.

    Raises:
        ArchitectureError: LayerNorm, an activation other than ReLU/GeLU, attention-only or gated MLPs,
            or positional schemes other than learned absolute embeddings.
    """
    if backend_name(model) == "mlp":
        m = model.mlp_cfg
        return ModelConfig.mlp(m.n, d_embed=m.d_embed, d_mlp=m.d_mlp, embed=m.embed, shared_embed=m.shared_embed,
                               act_fn=m.act_fn, mlp_bias=m.bias, d_vocab_out=m.d_vocab_out)
    c = model.cfg
    problems = []
    if getattr(c, "normalization_type", None) is not None:
        problems.append(f"normalization_type={c.normalization_type!r} (LayerNorm is not supported)")
    if getattr(c, "attn_only", False):
        problems.append("attn_only=True (the circuit needs an MLP)")
    if getattr(c, "gated_mlp", False):
        problems.append("gated_mlp=True")
    if getattr(c, "positional_embedding_type", "standard") != "standard":
        problems.append(f"positional_embedding_type={c.positional_embedding_type!r}")
    if getattr(c, "parallel_attn_mlp", False):
        problems.append("parallel_attn_mlp=True")
    if c.act_fn not in ACT_FNS:
        problems.append(f"act_fn={c.act_fn!r} (the probes read {' or '.join(ACT_FNS)} neurons)")
    if getattr(c, "attention_dir", "causal") not in ATTENTION_DIRS:
        problems.append(f"attention_dir={c.attention_dir!r}")
    if problems:
        raise ArchitectureError(
            "this model's architecture is not supported: " + "; ".join(problems)
            + ". modadd_interp analyses attention + MLP (ReLU or GeLU) transformers without LayerNorm."
        )
    layout = getattr(model, _LAYOUT_ATTR, None) or {"has_eq": c.n_ctx >= 3}
    return ModelConfig(
        d_vocab=c.d_vocab, d_vocab_out=c.d_vocab_out, n_ctx=c.n_ctx, d_model=c.d_model,
        n_heads=c.n_heads, d_head=c.d_head, d_mlp=c.d_mlp, n_layers=c.n_layers, act_fn=c.act_fn,
        attention_dir=getattr(c, "attention_dir", "causal"), **layout,
    )


@torch.no_grad()
def canonical_weights(model) -> dict[str, torch.Tensor]:
    """Detached float32 copies of a live model's weights, in canonical layout."""
    cfg = model_config(model)
    if is_hooked_mlp(model):
        return model.canonical()
    if is_bridge(model):
        # read the stored tensors: the bridge's W_Q... are computed, and TL 3.9's bridge lacks W_pos
        _, w = bridge_to_canonical(model.state_dict(), n_heads=cfg.n_heads, has_eq=cfg.has_eq,
                                   separate_b_tokens=cfg.separate_b_tokens)
    else:
        w = {k: v for k, v in model.state_dict().items() if k in cfg.shapes()}
    return {k: v.detach().to(torch.float32).clone() for k, v in w.items()}


def canonical_parameters(model) -> dict[str, torch.nn.Parameter]:
    """The live trainable parameters, keyed by the canonical weight each one holds.

    Used by training; a parameter absent here (the bridge's unembed bias) is a buffer. An MLP's parameters are
    keyed by its own names (``embed_x``, ``W_in``...: :meth:`~modadd_interp.mlp.HookedMLP.own_weights`), as its
    canonical weights are placements of them.
    """
    if is_hooked_mlp(model):
        return dict(model.own_weights())
    if is_hooked_transformer(model):
        return dict(model.named_parameters())
    native = model.state_dict(keep_vars=True)
    params = {id(p) for p in model.parameters()}
    names = {bridge: canonical for canonical, bridge in bridge_names(model_config(model).n_layers).items()}
    return {names[k]: v for k, v in native.items() if id(v) in params}


_HEAD_WEIGHTS = ("W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V")  # [n_heads, ...] in the canonical layout


def component_weights(cfg: ModelConfig) -> dict[str, list[tuple[str, int | None]]]:
    """The transformer's components, each as ``(canonical weight, head or None for all of it)`` pairs.

    Named as devinterp's weight restrictions are: ``"embed"`` (``W_E``), ``"pos_embed"`` (``W_pos``), per
    layer ``i`` ``"l{i} attn"`` (``W_Q``/``W_K``/``W_V``/``W_O`` and their biases), ``"l{i}h{j}"`` (head
    ``j``'s slices of ``W_Q``/``W_K``/``W_V``/``W_O``/``b_Q``/``b_K``/``b_V``; ``b_O`` is shared by the heads)
    and ``"l{i} mlp"`` (``W_in``, ``b_in``, ``W_out``, ``b_out``), then ``"unembed"`` (``W_U``, ``b_U``).
    An MLP (``arch="mlp"``) has ``"embed"`` (its operand tables), ``"l0 mlp"`` (``W_in``, ``b_in``) and ``"unembed"``
    (``W_U``, ``b_U``), in its own parameter names (:func:`component_parameters`).

    Examples:
        >>> list(component_weights(mi.ModelConfig()))   # doctest: +SKIP
        ['embed', 'pos_embed', 'l0 attn', 'l0h0', 'l0h1', 'l0h2', 'l0h3', 'l0 mlp', 'unembed']
    """
    if cfg.arch == "mlp":
        return {"embed": [("embed.W_E", None)], "l0 mlp": [("blocks.0.mlp.W_in", None), ("blocks.0.mlp.b_in", None)],
                "unembed": [("unembed.W_U", None), ("unembed.b_U", None)]}
    table: dict[str, list[tuple[str, int | None]]] = {"embed": [("embed.W_E", None)],
                                                      "pos_embed": [("pos_embed.W_pos", None)]}
    for layer in range(cfg.n_layers):
        a, m = f"blocks.{layer}.attn", f"blocks.{layer}.mlp"
        table[f"l{layer} attn"] = [(f"{a}.{w}", None) for w in (*_HEAD_WEIGHTS, "b_O")]
        for head in range(cfg.n_heads):
            table[f"l{layer}h{head}"] = [(f"{a}.{w}", head) for w in _HEAD_WEIGHTS]
        table[f"l{layer} mlp"] = [(f"{m}.{w}", None) for w in ("W_in", "b_in", "W_out", "b_out")]
    table["unembed"] = [("unembed.W_U", None), ("unembed.b_U", None)]
    return table


@torch.no_grad()
def component_parameters(model) -> dict[str, dict[str, torch.Tensor | None]]:
    """Each component's trainable parameters on a live model, as devinterp ``ParamMasks``.

    ``{component: {name in model.named_parameters(): bool mask of the parameter's shape, or None for all of
    it}}``, components as :func:`component_weights` names them. The canonical selection is carried into the
    model's own layout (on a bridge, head ``j`` is rows ``j*d_head:(j+1)*d_head`` of ``q/k/v.weight`` and
    the same columns of ``o.weight``; on a HookedTransformer, index ``j`` of ``W_Q[j]``...). A weight that is
    not a parameter is left out: the bridge's unembed bias is a buffer. So is a bias the paper's recipe does not
    train (:func:`modadd_interp.config.frozen_biases`: the attention's ``b_Q``, ``b_K``, ``b_V``, ``b_O`` and
    ``b_U``) when it is exactly zero: it is not a weight of the model that was trained, and sampling it would
    count directions training never used (on the shipped model, half the attention's restricted LLC). A family
    model that trained those biases (nonzero) keeps them.

    Examples:
        >>> import modadd_interp as mi
        >>> model, _ = mi.load()
        >>> sorted(component_parameters(model))
        ['embed', 'l0 attn', 'l0 mlp', 'l0h0', 'l0h1', 'l0h2', 'l0h3', 'pos_embed', 'unembed']
        >>> masks = component_parameters(model)["l0h1"]
        >>> sum(int(m.sum()) for m in masks.values())     # W_Q, W_K, W_V, W_O of head 1 (its biases are zero)
        16384
    """
    cfg = model_config(model)
    if is_hooked_mlp(model):
        own = model.own_weights()
        groups = {"embed": ("embed_x", "embed_y"), "l0 mlp": ("W_in", "b_in"), "unembed": ("W_U", "b_U")}
        trained = {name for name in own if name not in frozen_biases(cfg)}
        return {component: {name: None for name in names if name in trained} for component, names in groups.items()}
    native = model.state_dict(keep_vars=True)
    names = {id(p): name for name, p in model.named_parameters()}
    canonical = canonical_weights(model)
    untrained = {k for k in frozen_biases(cfg) if k in canonical and not bool(canonical[k].any())}
    out: dict[str, dict[str, torch.Tensor | None]] = {}
    for component, selection in component_weights(cfg).items():
        chosen = {k: torch.zeros(shape) for k, shape in cfg.shapes().items()}
        for weight, head in selection:
            if weight not in untrained:
                (chosen[weight] if head is None else chosen[weight][head]).fill_(1.0)
        laid_out = canonical_to_bridge(cfg, chosen) if is_bridge(model) else chosen  # the same layout moves
        masks: dict[str, torch.Tensor | None] = {}
        for key, mask in laid_out.items():
            tensor = native.get(key)
            if tensor is None or id(tensor) not in names or not bool(mask.any()):
                continue
            masks[names[id(tensor)]] = None if bool(mask.all()) else mask.bool()
        out[component] = masks
    return out


# --------------------------------------------------------------------- hooks
def hook_count(model) -> int:
    """Total forward/backward hooks on every submodule (for leak checks)."""
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        for m in model.modules()
    )


def foreign_hook_count(model) -> int:
    """Hooks on ``model``'s TransformerLens hook points beyond its own attention-rate hooks (:func:`build_model`):
    the interventions a user attached (``model.hooks``, ``add_hook``, ``run_with_hooks``). Hooks that TL wires
    on other submodules for itself (the TL 4 bridge's capture hooks) are not counted."""
    from transformer_lens.hook_points import HookPoint

    own = model_config(model).n_layers if getattr(model, _LAYOUT_ATTR, {}).get("attn_rate", 1.0) != 1.0 else 0
    on_hook_points = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                         for m in model.modules() if isinstance(m, HookPoint))
    return on_hook_points - own


@contextlib.contextmanager
def hooked(model, fwd_hooks: Sequence[tuple[str, HookFn]]) -> Iterator[None]:
    """Attach ``(hook_name, fn(activation) -> activation | None)`` pairs for the block's duration.

    ``fn`` receives only the activation: results are keyed by the name you registered,
    never by TL's ``hook.name`` (which is canonical on the bridge). Hooks are removed on exit,
    even on error.
    """
    wrapped = [(name, _strip_hook_arg(fn)) for name, fn in fwd_hooks]
    with model.hooks(fwd_hooks=wrapped):
        yield


def _strip_hook_arg(fn: HookFn):
    def hook(activation, hook):  # noqa: ARG001 - TL passes the HookPoint
        return fn(activation)

    return hook


@torch.no_grad()
def set_weights(model, cfg: ModelConfig, weights: dict[str, torch.Tensor]) -> None:
    """Load canonical ``weights`` into a model built by :func:`build_model` (ours, never a user's)."""
    weights = check_weights(cfg, weights)
    if is_hooked_mlp(model):
        for name, value in mlp_models.from_canonical(cfg.mlp_config(), weights).items():
            getattr(model, name).copy_(value)
    elif is_bridge(model):
        model.load_state_dict(canonical_to_bridge(cfg, weights), strict=True)
    else:
        model.load_state_dict(weights, strict=False)
