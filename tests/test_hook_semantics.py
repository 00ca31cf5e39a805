"""The hook points we edit behave the same on a TL 4 bridge and a TL 3 HookedTransformer.

Each edit is compared with an independent forward pass that applies the same edit; the
interventions in modadd_interp.causal write only to these output hooks.
"""

from __future__ import annotations

import pytest
import torch
from conftest import random_weights, small_config
from reference import canonical_forward

from modadd_interp import tl_adapter
from modadd_interp.task import ModularTask

pytestmark = pytest.mark.adapter


def _halve(a, *_):
    return a * 0.5


def _zero_head_1(a, *_):
    a = a.clone()
    a[:, :, 1] = 0
    return a


EDITS = {
    "hook_embed": ("embed", _halve),
    "blocks.0.attn.hook_z": ("z", _zero_head_1),
    "blocks.0.hook_attn_out": ("attn_out", _halve),
    "blocks.0.mlp.hook_post": ("post", _halve),
    "blocks.0.hook_mlp_out": ("mlp_out", _halve),
}


@pytest.mark.parametrize("hook_name", list(EDITS))
def test_output_hook_edits_propagate_like_the_reference(hook_name, backend):
    cfg = small_config()
    w = random_weights(cfg, seed=2)
    model = tl_adapter.build_model(cfg, w, backend=backend)
    tokens = ModularTask(p=13).inputs[:50]
    where, edit = EDITS[hook_name]
    with torch.no_grad(), tl_adapter.hooked(model, [(hook_name, edit)]):
        got = model(tokens)
    torch.testing.assert_close(got, canonical_forward(w, tokens, {where: edit}), rtol=1e-4, atol=1e-4)
