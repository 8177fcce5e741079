"""Shuffle-free ShuffleNet: move every channel shuffle into the weights of the convolutions
around it, so the exported graph has no TRANSPOSE for it and no tensor of rank > 4.

A channel shuffle is a fixed permutation of channels. Instead of computing it, the rewritten
model stores each tensor of a shuffle region with its channels in another order (chosen by
``edgekit.passes.channel_layout``, which proves the choice exact by simulation):

- the convolutions writing into the region permute their output channels (weight rows, bias);
- the convolutions and linear layers reading from it permute their input channels (weight
  columns), depthwise convs and activations on the way carry the order (their per-channel
  weights are permuted with it);
- the shuffle itself disappears, and the ``chunk`` that splits a shuffled tensor in the next
  ShuffleNet unit reads every k-th stored channel instead of a contiguous half.

That strided channel split is spelled so every runtime takes it whole (``layout``):

- ``"nhwc"`` (for .tflite): ``x.permute(0, 2, 3, 1).reshape(n, h*w, c/k, k)[..., j]`` then
  back: litert-torch cancels the permutes against its own NCHW->NHWC layout, leaving
  RESHAPE, SLICE, RESHAPE (all rank <= 4, all taken by XNNPACK; measured). A plain strided
  slice becomes STRIDED_SLICE, which the XNNPACK delegate refuses (stride != 1).
  The concats of the region are then done channels-last too (``cat(..., dim=3)`` between explicit
  permutes), because litert-torch's layout partitioner would otherwise concatenate in NCHW with a
  TRANSPOSE on each side (measured: 30 TRANSPOSEs on ShuffleNetV2-0.5).
- ``"conv"`` (for .pte): a grouped 1x1 conv with a constant 0/1 weight (groups = c/k, output m =
  input m*k + j; exact: one product by 1.0 per output). ExecuTorch's XNNPACK delegate computes in
  NHWC and converts any NCHW reshape of the channel axis with a transpose on each side (measured:
  41 inside the delegate with "nchw", 76 with "nhwc"); the conv needs none and adds c MACs per
  pixel per split (~1 % of ShuffleNetV2's MACs).
- ``"nchw"``: ``x.reshape(n, c/k, k, h*w)[:, :, j]`` then back, rank 4.
- ``"strided"``: ``x[:, j::k]`` (one STRIDED_SLICE; XNNPACK refuses strides, TFLite-Micro takes it).

The outputs are those of the original model up to the float rounding of a reordered sum
(``max_rel_error`` is measured on ``example_inputs``); in int8 every accumulation is an exact
integer sum, so the quantized model computes the same values in another channel order.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch import fx, nn

from edgekit.errors import EdgekitError, UsageError
from edgekit.passes.channel_layout import Layout, op_name, plan_layouts, shape, split_sizes
from edgekit.passes.eval_mode import to_eval

LAYOUTS = ("nhwc", "nchw", "conv", "strided")
_PERMUTING = {"permute", "transpose", "channel_shuffle", "native_channel_shuffle"}


@dataclass
class ShuffleFreeResult:
    """``model`` is a GraphModule without the shuffles (or the input model when there were none)."""

    model: nn.Module
    shuffles_removed: int
    regions: int
    layout: str
    max_rel_error: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"shuffles_removed": self.shuffles_removed, "regions": self.regions, "layout": self.layout,
                "max_rel_error": self.max_rel_error, "notes": list(self.notes)}


def layout_for(artifact_format: str, runtime: str | None = None) -> str | None:
    """The spelling of the strided split each runtime takes whole, or None where the shuffle is cheaper
    kept: "nhwc" for a TFLite-Micro .tflite (RESHAPE, SLICE, RESHAPE), "conv" for a .pte (one grouped
    1x1 conv inside the XNNPACK delegate, instead of 15 partitions around ``split_with_sizes_copy``).

    None for a .tflite run by LiteRT: XNNPACK's TRANSPOSE is a vectorized kernel, while the strided
    channel gather that replaces it copies one element at a time (measured, ShuffleNetV2-1.0 at 224,
    1 thread: int8 1.22 ms with the shuffles, 2.27 ms shuffle-free; fp32 2.23 vs 3.51 ms). On
    TFLite-Micro the two cost the same time (7.05 vs 7.08 ms, reference kernels on the host) and the
    shuffle-free graph needs 2,176 B less arena and no TRANSPOSE kernel."""
    if artifact_format not in ("tflite", "pte"):
        raise UsageError(f"unknown artifact format {artifact_format!r}: choose tflite or pte")
    if artifact_format == "pte":
        return "conv"
    return None if runtime == "litert" else "nhwc"


def shuffle_free(model: nn.Module, example_inputs, *, layout: str = "nhwc",
                 tolerance: float = 1e-5) -> ShuffleFreeResult:
    """Remove every channel shuffle of ``model`` that can be moved into weights (see module doc).

    ``example_inputs``: a tensor or a tuple of tensors. The input model is not modified.
    Raises EdgekitError when the rewritten model's outputs differ from the original's by more
    than ``tolerance`` (relative to the largest output) -- a bug, never a silent change.
    """
    if layout not in LAYOUTS:
        raise UsageError(f"unknown shuffle-free layout {layout!r}: choose one of {', '.join(LAYOUTS)}")
    if not isinstance(model, nn.Module):
        raise UsageError(f"shuffle_free expects an nn.Module, got {type(model).__name__}")
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    if not _may_permute(model):
        return ShuffleFreeResult(model, 0, 0, layout, notes=["no permute/transpose/channel_shuffle in the graph"])
    gm = _aten_graph(model, inputs)
    layouts, notes = plan_layouts(gm)
    if not layouts:
        return ShuffleFreeResult(model, 0, 0, layout, notes=notes or ["no channel shuffle found"])
    _permute_weights(gm, layouts)
    removed = sum(_rewrite_region(gm, lay, layout) for lay in layouts)
    gm.graph.lint()
    gm.recompile()
    err = _max_rel_error(model, gm, inputs)
    if err > tolerance:
        raise EdgekitError(f"shuffle_free changed the model's outputs (max relative error {err:.3g} > "
                           f"{tolerance:g}): this is a bug in edgekit, please report it")
    return ShuffleFreeResult(gm, removed, len(layouts), layout, max_rel_error=err, notes=notes)


def _may_permute(model: nn.Module) -> bool:
    """False only when ``model`` is a GraphModule with no op that can permute channels (fast path)."""
    if not isinstance(model, fx.GraphModule):
        return True
    for node in model.graph.nodes:
        if node.op == "call_module" and isinstance(model.get_submodule(node.target), nn.ChannelShuffle):
            return True
        name = op_name(node) if node.op == "call_function" else str(node.target)
        if any(p in name for p in _PERMUTING):
            return True
    return False


def _aten_graph(model: nn.Module, inputs: tuple) -> fx.GraphModule:
    from torch.fx.passes.shape_prop import ShapeProp

    from edgekit.graph.capture import export_module

    if isinstance(model, fx.GraphModule) and _is_aten(model):
        gm = copy.deepcopy(model)
    else:
        gm = export_module(model, inputs).module()
    to_eval(gm)
    with torch.no_grad():
        ShapeProp(gm).propagate(*inputs)
    return gm


def _is_aten(gm: fx.GraphModule) -> bool:
    return any(isinstance(n.target, torch._ops.OpOverload) for n in gm.graph.nodes if n.op == "call_function")


def _max_rel_error(ref_model, new_model, inputs) -> float:
    with torch.no_grad():
        ref, out = ref_model(*inputs), new_model(*inputs)
    ref, out = torch.as_tensor(ref), torch.as_tensor(out)
    denom = float(ref.abs().max()) or 1.0
    return float((ref - out).abs().max()) / denom


# ---------------------------------------------------------------------------- weights

def _permute_weights(gm: fx.GraphModule, layouts: list[Layout]) -> None:
    """Apply every row/column/carrier permutation to the weights (and biases) in place."""
    new: dict[str, torch.Tensor] = {}
    readers = Counter(n.target for n in gm.graph.nodes if n.op == "get_attr")

    def get(node):
        target = node.target
        if target not in new:
            if readers[target] != 1 or len(node.users) != 1:
                raise EdgekitError(f"shuffle_free: {target} is shared by several layers; cannot permute it")
            new[target] = _fetch(gm, target).detach().clone()
        return target

    for lay in layouts:
        for conv, perm in list(lay.rows.items()) + list(lay.carriers.items()):
            idx = torch.as_tensor(perm, dtype=torch.long)
            w = get(conv.args[1])
            new[w] = new[w][idx]
            bias = conv.args[2] if len(conv.args) > 2 else None
            if bias is not None:
                b = get(bias)
                new[b] = new[b][idx]
        for sink, perm in lay.cols.items():
            w = get(sink.args[1])
            new[w] = new[w][:, torch.as_tensor(perm, dtype=torch.long)]
    for target, value in new.items():
        _assign(gm, target, value)


def _fetch(root: nn.Module, target: str) -> torch.Tensor:
    obj = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _assign(root: nn.Module, target: str, value: torch.Tensor) -> None:
    *path, name = target.split(".")
    owner = root
    for part in path:
        owner = getattr(owner, part)
    if isinstance(getattr(owner, name), nn.Parameter):
        setattr(owner, name, nn.Parameter(value, requires_grad=False))
    else:
        setattr(owner, name, value)


# ---------------------------------------------------------------------------- graph

def _rewrite_region(gm: fx.GraphModule, lay: Layout, layout: str) -> int:
    """Drop the region's shuffles and turn its strided splits into slices; return shuffles dropped."""
    reg = lay.region
    for end, sh in reg.shuffles.items():
        end.replace_all_uses_with(sh.start)
    for sp in lay.strided:
        _strided_split(gm, sp, layout)
    for sh in reg.shuffles.values():
        for node in reversed(sh.nodes):
            if not node.users:
                gm.graph.erase_node(node)
    if layout == "nhwc":
        _channels_last_cats(gm, [n for n in gm.graph.nodes if n in reg.values and op_name(n) == "cat"])
    return len(reg.shuffles)


def _strided_split(gm: fx.GraphModule, sp: fx.Node, layout: str) -> None:
    """``getitem(chunk(x, k), j)`` -> the stored channels ``j, j+k, j+2k, ...`` of ``x``."""
    aten = torch.ops.aten
    x = sp.args[0]
    n, c, h, w = shape(x)
    k = len(split_sizes(sp, c))
    g = gm.graph
    with g.inserting_after(sp):
        base = None
        if layout == "nhwc":
            t = g.call_function(aten.permute.default, (x, [0, 2, 3, 1]))
            base = g.call_function(aten.reshape.default, (t, [n, h * w, c // k, k]))
            _order([t, base])
        elif layout == "nchw":
            base = g.call_function(aten.reshape.default, (x, [n, c // k, k, h * w]))
    anchor = base if base is not None else sp
    for item in sorted(sp.users, key=lambda u: u.args[1]):
        j = int(item.args[1])
        with g.inserting_after(anchor):
            if layout == "nhwc":
                s = g.call_function(aten.slice.Tensor, (base, 3, j, j + 1))
                r = g.call_function(aten.reshape.default, (s, [n, h, w, c // k]))
                out = g.call_function(aten.permute.default, (r, [0, 3, 1, 2]))
                new_nodes = [s, r, out]
            elif layout == "nchw":
                s = g.call_function(aten.slice.Tensor, (base, 2, j, j + 1))
                out = g.call_function(aten.reshape.default, (s, [n, c // k, h, w]))
                new_nodes = [s, out]
            elif layout == "conv":
                sel = g.get_attr(_selector(gm, c, k, j))
                out = g.call_function(aten.conv2d.default, (x, sel, None, [1, 1], [0, 0], [1, 1], c // k))
                new_nodes = [sel, out]
            else:
                out = g.call_function(aten.slice.Tensor, (x, 1, j, c, k))
                new_nodes = [out]
        _order(new_nodes)
        anchor = out
        item.replace_all_uses_with(out)
        g.erase_node(item)
    g.erase_node(sp)


_TO_NCHW, _TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def _is_permute(node, perm) -> bool:
    return op_name(node) == "permute" and [int(p) % 4 for p in node.args[1]] == perm


def _channels_last_cats(gm: fx.GraphModule, cats: list) -> None:
    """Concatenate in NHWC where a cat's inputs arrive as NHWC->NCHW permutes (the strided
    splits of the "nhwc" spelling): ``cat(permute(a), permute(b), dim=1)`` ->
    ``permute(cat(a, b, dim=3))``; the permutes that then meet their inverse cancel. Without
    this, litert-torch's layout partitioner (a min cut that does not know an explicit permute
    cancels its own NCHW->NHWC transpose) concatenates in NCHW, with a TRANSPOSE on each side."""
    aten, g = torch.ops.aten, gm.graph
    for cat in cats:
        inputs = list(cat.args[0])
        with g.inserting_before(cat):
            nhwc = [a.args[0] if _is_permute(a, _TO_NCHW) else g.call_function(aten.permute.default, (a, _TO_NHWC))
                    for a in inputs]
            new = g.call_function(aten.cat.default, (nhwc, 3))
            back = g.call_function(aten.permute.default, (new, _TO_NCHW))
        cat.replace_all_uses_with(back)
        g.erase_node(cat)
        for a in inputs:
            if not a.users:
                g.erase_node(a)
        for user in list(back.users):
            if _is_permute(user, _TO_NHWC):
                user.replace_all_uses_with(new)
                g.erase_node(user)
        if not back.users:
            g.erase_node(back)


def _selector(gm: fx.GraphModule, c: int, k: int, j: int) -> str:
    """A constant grouped 1x1 conv weight picking channel j of every group of k: output m = input m*k + j.
    One buffer per conv: PT2E quantizes a weight shared by two convs for the first one only (measured:
    the second then runs in float inside the XNNPACK delegate, with a dequantize/quantize around it)."""
    n = sum(1 for name, _ in gm.named_buffers() if name.startswith("_shuffle_free_select_"))
    name = f"_shuffle_free_select_{n}"
    w = torch.zeros(c // k, k, 1, 1)
    w[:, j] = 1.0
    gm.register_buffer(name, w)
    return name


def _order(nodes: list) -> None:
    """``inserting_after`` puts each new node right after the anchor: restore creation order."""
    for prev, node in zip(nodes, nodes[1:]):
        prev.append(node)
