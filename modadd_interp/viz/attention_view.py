"""circuitsvis attention-pattern views that render offline.

circuitsvis's own HTML (``str(view)``, ``show_code()``) loads its JavaScript from
a CDN, and its notebook repr probes the network first. This module uses only the
JavaScript bundle shipped inside the circuitsvis wheel (``dist/cdn/iife.js``) and
``circuitsvis.utils.convert_props.convert_props`` for the props: both are internal,
so they are checked on first use and a :class:`~modadd_interp.errors.VizError`
says what is wrong when a circuitsvis release moves them.

No model is run here: the views are built from attention patterns already cached
(``blocks.0.attn.hook_pattern``, shape ``[batch, n_heads, n_ctx, n_ctx]``).

Examples:
    >>> import torch
    >>> view = AttentionView(torch.eye(3).repeat(4, 1, 1), ["12", "45", "="])
    >>> view.n_heads, view.tokens
    (4, ('12', '45', '='))
    >>> "CircuitsVis.render" in view.to_html()
    True
"""

from __future__ import annotations

import dataclasses
import functools
import html
import importlib.metadata
import importlib.resources
import json
import re
import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ..errors import VizError

#: The circuitsvis releases whose internal names this module was checked against.
SUPPORTED_CIRCUITSVIS = ">=1.43,<1.44"


def script_safe(js: str) -> str:
    """Make JavaScript source safe to place inside an inline ``<script>`` element.

    ``</script`` would end the element early; ``<\\/script`` means the same in JS
    strings, regexes and comments. A trailing ``sourceMappingURL`` comment is dropped,
    so that developer tools do not try to fetch a map file that is not there.

    Examples:
        >>> script_safe('x = "</script>";')
        'x = "<\\\\/script>";'
    """
    js = re.sub(r"</(script)", r"<\\/\1", js, flags=re.IGNORECASE)
    return re.sub(r"^//# sourceMappingURL=.*$", "", js, flags=re.MULTILINE)


def json_for_script(props_json: str) -> str:
    """Escape ``<``, ``>`` and ``&`` in a JSON text so it can sit inside ``<script>``.

    Examples:
        >>> json_for_script('{"t": "</script>"}')
        '{"t": "\\\\u003c/script\\\\u003e"}'
    """
    return props_json.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _circuitsvis_version() -> str:
    try:
        return importlib.metadata.version("circuitsvis")
    except importlib.metadata.PackageNotFoundError as e:
        raise VizError(f"circuitsvis is not installed: pip install 'circuitsvis{SUPPORTED_CIRCUITSVIS}'.") from e


@functools.lru_cache(maxsize=1)
def circuitsvis_bundle() -> str:
    """The circuitsvis browser bundle (``CircuitsVis`` global), made safe for inline use.

    Raises:
        VizError: circuitsvis is missing, or its bundle does not export what we use.

    Examples:
        >>> "var CircuitsVis" in circuitsvis_bundle()
        True
    """
    version = _circuitsvis_version()
    where = "circuitsvis/dist/cdn/iife.js"
    try:
        js = (importlib.resources.files("circuitsvis") / "dist" / "cdn" / "iife.js").read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as e:
        raise VizError(
            f"circuitsvis {version} has no bundled {where}; this package supports "
            f"circuitsvis{SUPPORTED_CIRCUITSVIS}."
        ) from e
    missing = [name for name in ("var CircuitsVis", "AttentionHeads:", "render:") if name not in js]
    if missing:
        raise VizError(
            f"{where} of circuitsvis {version} lacks {missing}; this package supports "
            f"circuitsvis{SUPPORTED_CIRCUITSVIS}."
        )
    return script_safe(js)


def _convert_props(props: dict[str, Any]) -> str:
    try:
        from circuitsvis.utils.convert_props import convert_props
    except ImportError as e:
        raise VizError(
            f"circuitsvis {_circuitsvis_version()} has no circuitsvis.utils.convert_props.convert_props; "
            f"pin circuitsvis{SUPPORTED_CIRCUITSVIS}."
        ) from e
    return json_for_script(convert_props(props))


@dataclasses.dataclass(frozen=True, eq=False)
class AttentionView:
    """One circuitsvis ``AttentionHeads`` view: every head's pattern for one input.

    Construct it from one input's pattern, or pick an input out of patterns cached
    over the whole grid with :meth:`from_grid`. Put it on a page with
    ``Page.attention(view)``, or show it in a notebook: its ``_repr_html_`` works
    offline (the bundle is inlined).

    Args:
        pattern: ``[n_heads, n_ctx, n_ctx]`` (destination, source) attention
            probabilities: a torch tensor, numpy array or nested list; stored as float64.
        tokens: one string per position, e.g. ``["12", "45", "="]``.
        head_names: one label per head; default ``"head 0"``, ``"head 1"``, ...
        title: a short description, shown as the view's caption.

    Raises:
        VizError: the shapes do not fit, or the pattern holds NaN/inf.

    Examples:
        >>> v = AttentionView([[[1.0, 0.0], [0.5, 0.5]]], ["7", "="], title="7 =")
        >>> v.pattern.shape, v.tokens, v.head_names
        ((1, 2, 2), ('7', '='), ('head 0',))
    """

    pattern: np.ndarray
    tokens: tuple[str, ...]
    head_names: tuple[str, ...] = ()
    title: str = ""

    #: The circuitsvis React component drawn.
    COMPONENT: ClassVar[str] = "AttentionHeads"

    def __post_init__(self) -> None:
        arr = _as_numpy(self.pattern)
        if arr.ndim != 3 or arr.shape[1] != arr.shape[2]:
            raise VizError(f"pattern must have shape [n_heads, n_ctx, n_ctx], got {tuple(arr.shape)}.")
        n_heads, n_ctx, _ = arr.shape
        if n_heads == 0 or n_ctx == 0:
            raise VizError(f"pattern is empty: shape {tuple(arr.shape)}.")
        tokens = tuple(str(t) for t in self.tokens)
        if len(tokens) != n_ctx:
            raise VizError(f"got {len(tokens)} tokens for a pattern over {n_ctx} positions.")
        if not np.isfinite(arr).all():
            raise VizError("pattern contains NaN or inf.")
        names = tuple(str(h) for h in self.head_names) or tuple(f"head {h}" for h in range(n_heads))
        if len(names) != n_heads:
            raise VizError(f"got {len(names)} head names for {n_heads} heads.")
        object.__setattr__(self, "pattern", arr)
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "head_names", names)

    @classmethod
    def from_grid(
        cls,
        patterns: Any,
        p: int,
        a: int,
        b: int,
        *,
        equals_token: str = "=",
        head_names: Sequence[str] = (),
    ) -> AttentionView:
        """The view for input ``(a, b, '=')``, picked out of patterns cached over the full grid.

        Args:
            patterns: ``[p * p, n_heads, 3, 3]`` in grid order (input index ``a * p + b``),
                e.g. ``cache["blocks.0.attn.hook_pattern"]`` from one forward pass over
                ``task.inputs``. Only the chosen row is copied.
            p: the modulus.
            a: first operand, in ``0..p-1``.
            b: second operand, in ``0..p-1``.
            equals_token: the label of the last position.
            head_names: labels for the heads.

        Examples:
            >>> import torch
            >>> cached = torch.full((5 * 5, 2, 3, 3), 1 / 3)
            >>> v = AttentionView.from_grid(cached, p=5, a=3, b=4)
            >>> v.tokens, v.title
            (('3', '4', '='), '3 + 4 = 2 (mod 5)')
        """
        shape = tuple(getattr(patterns, "shape", np.shape(patterns)))
        if len(shape) != 4 or shape[0] != p * p or shape[2] != 3:
            raise VizError(f"patterns must have shape [p*p={p * p}, n_heads, 3, 3], got {shape}.")
        if not (0 <= a < p and 0 <= b < p):
            raise VizError(f"a and b must be in 0..{p - 1}, got a={a}, b={b}.")
        title = f"{a} + {b} = {(a + b) % p} (mod {p})"
        return cls(patterns[a * p + b], (str(a), str(b), equals_token), tuple(head_names), title)

    @property
    def n_heads(self) -> int:
        """Number of heads."""
        return int(self.pattern.shape[0])

    def props_json(self) -> str:
        """The view's props as JSON that is safe inside an inline ``<script>``.

        Examples:
            >>> AttentionView([[[1.0]]], ["<b>"]).props_json()[:52]
            '{"attention": [[[1.0]]], "tokens": ["\\\\u003cb\\\\u003e"]'
        """
        return _convert_props(
            {
                "attention": self.pattern,
                "tokens": list(self.tokens),
                "attentionHeadNames": list(self.head_names),
                "maxValue": 1.0,
                "minValue": 0.0,
            }
        )

    def render_script(self, element_id: str) -> str:
        """The JavaScript that draws this view into the element with id ``element_id``.

        Needs the circuitsvis bundle (:func:`circuitsvis_bundle`) loaded before it runs.
        """
        target = json_for_script(json.dumps(element_id))
        return f"CircuitsVis.render({target}, CircuitsVis.{self.COMPONENT}, {self.props_json()});"

    def to_html(self, element_id: str = "circuitsvis-view") -> str:
        """A standalone offline HTML fragment: the title, then the bundle inlined, then this view.

        Works in Jupyter (``IPython.display.HTML(view.to_html())``) and as the body of
        a file. The bundle is about 1.3 MB; a page with many views should use
        :class:`~modadd_interp.viz.page.Page`, which includes it once.

        Examples:
            >>> fragment = AttentionView([[[1.0]]], ["="]).to_html()
            >>> fragment.count("CircuitsVis.render("), "<script src" in fragment
            (1, False)
        """
        title = f'<p class="cv-title">{html.escape(self.title)}</p>\n' if self.title else ""
        # the bundle's top-level `var CircuitsVis` is global; a second fragment on the page skips it
        return (
            f'{title}<div id="{html.escape(element_id)}" class="cv-view"></div>\n'
            f"<script>if (typeof CircuitsVis === 'undefined') {{\n{circuitsvis_bundle()}\n}}</script>\n"
            f"<script>{self.render_script(element_id)}</script>\n"
        )

    def _repr_html_(self) -> str:
        """Notebook display, offline (unlike circuitsvis's own repr, which probes the network)."""
        return self.to_html(f"circuitsvis-{uuid.uuid4().hex[:12]}")


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor; avoid importing torch here
        x = x.detach().to("cpu").double().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise VizError(f"could not read the attention pattern as a float array: {e}") from e
