"""Fold inference-time BatchNorm into neighbouring convolution and linear layers.

In eval mode a BatchNorm is a fixed per-channel affine map ``y = x * s + t`` with
``s = weight / sqrt(running_var + eps)`` and ``t = bias - running_mean * s``. This pass
finds every normalization layer through the GRAPH (``torch.fx.symbolic_trace``; when that
fails, ``torch.export`` and ``ep.module()``), never through module names, and decides the
fate of each one:

1. **folded into X** -- its input is a Conv1d/2d/3d (any groups, with or without bias),
   ConvTranspose1d/2d/3d or Linear whose only user is the BN: X's weights and bias are
   rescaled per output channel (``torch.nn.utils.fusion.fuse_conv_bn_weights`` /
   ``fuse_linear_bn_weights``) and the BN disappears.
2. **folded forward into Y** -- the producer cannot absorb it (the producer's output has
   other users, the BN follows an activation, the BN reads the graph input, ...), but the
   BN's only user is a Conv (not transposed) that sees no implicit zero padding
   (``padding=0``, ``'valid'``, a 1x1 ``'same'``, or a non-zero ``padding_mode`` which pads
   the affine-mapped tensor exactly), or a Linear on 2-D input. Then
   ``conv(x*s + t) = conv_{W*s}(x) + (b + sum W*t)`` exactly, and the BN disappears.
   With zero padding the border would see ``0`` instead of ``t``: not exact, not done.
3. **kept as affine** -- otherwise the BN becomes :class:`Affine` (``x * scale[c] + shift[c]``,
   exportable), which is what it computes at inference anyway.
4. **not foldable** -- LayerNorm, GroupNorm, InstanceNorm, RMSNorm and LocalResponseNorm
   normalize with statistics of each input; a ``batch_norm`` called as a function (a BN
   subclass or ``F.batch_norm``) is reported and left alone as well.

The input model is never modified (the pass works on a deep copy). Folding is for inference
only: a model or BN in training mode, or a BN without running statistics, is a
:class:`~edgekit.errors.UsageError`.

Note: torch's ``fuse_conv_bn_weights(..., transpose=True)`` scales the weight's dim 1,
which is ``out_channels / groups`` for a grouped ConvTranspose; edgekit regroups such a
weight to the plain-conv layout before calling it (otherwise it either raises or, with
``out_channels == groups``, silently broadcasts to a wrong weight shape).
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import fx, nn
from torch.nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights

from edgekit.errors import EdgekitError, UsageError
from edgekit.passes.eval_mode import to_eval

FOLDED = "folded into"
FOLDED_FORWARD = "folded forward into"
KEPT_AFFINE = "kept as affine"
NOT_FOLDABLE = "not foldable"

_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
# exact types (docs/architecture.md, the block style): a subclass may change forward, so it is never folded into
_CONV_TYPES: dict[type, tuple[str, int]] = {
    nn.Conv1d: ("conv", 1), nn.Conv2d: ("conv", 2), nn.Conv3d: ("conv", 3),
    nn.ConvTranspose1d: ("conv_transpose", 1), nn.ConvTranspose2d: ("conv_transpose", 2),
    nn.ConvTranspose3d: ("conv_transpose", 3), nn.Linear: ("linear", 0),
}
_PER_INPUT_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d,
                    nn.InstanceNorm3d, nn.LocalResponseNorm) + (
    (nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ())
_PER_INPUT_REASON = ("normalizes with statistics computed from each input at inference "
                     "(not fixed running statistics), so it is not a fixed affine map")
_FUNCTIONAL_NORMS = {
    "layer_norm": "LayerNorm", "group_norm": "GroupNorm", "instance_norm": "InstanceNorm",
    "rms_norm": "RMSNorm", "local_response_norm": "LocalResponseNorm",
    "native_layer_norm": "LayerNorm", "native_group_norm": "GroupNorm",
}
_FUNCTIONAL_BN = {"batch_norm", "_native_batch_norm_legit_no_training",
                  "_native_batch_norm_legit", "native_batch_norm"}


class Affine(nn.Module):
    """``y = x * scale[c] + shift[c]`` over channel dim 1: a BatchNorm at inference.

    ``ndim`` is the input rank when known (reshape-broadcast); otherwise the channel dim
    is moved last and back, which works for any rank >= 2. Traceable and exportable.
    """

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor, *, ndim: int | None = None):
        super().__init__()
        self.register_buffer("scale", scale.detach().clone())
        self.register_buffer("shift", shift.detach().clone())
        self.ndim = ndim

    def forward(self, x):
        if self.ndim is not None:
            shape = (-1,) + (1,) * (self.ndim - 2)
            return x * self.scale.reshape(shape) + self.shift.reshape(shape)
        return (x.transpose(1, -1) * self.scale + self.shift).transpose(1, -1)

    def extra_repr(self) -> str:
        return f"channels={self.scale.numel()}, ndim={self.ndim}"


@dataclass(frozen=True)
class BNFate:
    """What happened to one normalization layer (plain data; the CLI renders it)."""

    name: str  # module path of the normalization layer ("layer1.0.bn1")
    kind: str  # its class: "BatchNorm2d", "LayerNorm", ...
    fate: str  # FOLDED | FOLDED_FORWARD | KEPT_AFFINE | NOT_FOLDABLE
    into: str | None  # module path of the layer it was folded into, else None
    reason: str


@dataclass
class FoldResult:
    """``model`` is a new GraphModule (the input is untouched). ``folded`` counts BNs that
    disappeared (into a producer or forward); ``kept`` counts normalization layers that still
    compute at inference (BNs kept as :class:`Affine` and not-foldable norms)."""

    model: nn.Module
    report: list[BNFate]
    folded: int
    kept: int
    method: str = "torch.fx.symbolic_trace"  # or "torch.export"
    max_rel_error: float | None = None  # folded vs original on example_inputs, if given
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "folded": self.folded,
            "kept": self.kept,
            "max_rel_error": self.max_rel_error,
            "notes": list(self.notes),
            "report": [asdict(f) for f in self.report],
        }


# --------------------------------------------------------------------------- graph views


@dataclass
class _BN:
    """One BatchNorm occurrence in the graph, with its (snapshotted) parameters."""

    node: fx.Node  # the op computing the BN
    out: fx.Node  # the node whose value is the normalized tensor (node, or getitem[0])
    input: fx.Node
    name: str
    kind: str
    mean: torch.Tensor
    var: torch.Tensor
    weight: torch.Tensor | None
    bias: torch.Tensor | None
    eps: float
    module_target: str | None = None  # fx path: the call_module target

    @property
    def channels(self) -> int:
        return int(self.mean.numel())

    def scale_shift(self) -> tuple[torch.Tensor, torch.Tensor]:
        w = self.weight if self.weight is not None else torch.ones_like(self.mean)
        b = self.bias if self.bias is not None else torch.zeros_like(self.mean)
        scale = w.double() * torch.rsqrt(self.var.double() + self.eps)
        shift = b.double() - self.mean.double() * scale
        return scale.to(self.mean.dtype), shift.to(self.mean.dtype)


@dataclass
class _Layer:
    """A conv/linear node whose weight and bias edgekit may rewrite."""

    node: fx.Node
    name: str
    kind: str  # "conv" | "conv_transpose" | "linear"
    cls: str  # "Conv2d", ...
    spatial: int
    groups: int
    exact_padding: bool  # no implicit zero padding of the input
    padding_desc: str
    uses: int  # how many graph nodes use this layer's weight (shared layers are not rewritten)
    get: Callable[[], tuple[torch.Tensor, torch.Tensor | None]]
    set: Callable[[torch.Tensor, torch.Tensor], None]

    @property
    def out_channels(self) -> int:
        w, _ = self.get()
        return int(w.shape[1] * self.groups) if self.kind == "conv_transpose" else int(w.shape[0])

    @property
    def in_channels(self) -> int:
        w, _ = self.get()
        if self.kind == "conv_transpose":
            return int(w.shape[0])
        return int(w.shape[1] * self.groups) if self.kind == "conv" else int(w.shape[1])


def _fetch(root: nn.Module, target: str):
    obj = root
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _assign(root: nn.Module, target: str, value: torch.Tensor) -> None:
    prefix, _, leaf = target.rpartition(".")
    owner = _fetch(root, prefix) if prefix else root
    if leaf in owner._buffers:
        owner._buffers[leaf] = value.detach()
    else:
        setattr(owner, leaf, nn.Parameter(value.detach(), requires_grad=False))


def _delete_attr(root: nn.Module, target: str) -> None:
    prefix, _, leaf = target.rpartition(".")
    try:
        owner = _fetch(root, prefix) if prefix else root
    except AttributeError:
        return
    for store in (owner._parameters, owner._buffers):
        store.pop(leaf, None)


def _zero_padding_free(padding, kernel, dilation) -> bool:
    if isinstance(padding, str):
        if padding == "valid":
            return True
        return all(d * (k - 1) == 0 for k, d in zip(kernel, dilation))  # 'same'
    pads = padding if isinstance(padding, (tuple, list)) else (padding,)
    return all(int(p) == 0 for p in pads)


def _rank(node) -> int | None:
    if not isinstance(node, fx.Node):
        return None
    val = node.meta.get("val")
    if isinstance(val, torch.Tensor):
        return val.dim()
    tm = node.meta.get("tensor_meta")
    shape = getattr(tm, "shape", None)
    return len(shape) if shape is not None else None


def _op_name(target) -> str:
    schema = getattr(target, "_schema", None)
    if schema is not None:
        return schema.name.split("::")[-1]
    return getattr(target, "__name__", str(target))


def _schema_args(node: fx.Node) -> dict[str, Any]:
    """An aten call's arguments by schema name, defaults filled in."""
    out = {}
    for i, arg in enumerate(node.target._schema.arguments):
        if i < len(node.args):
            out[arg.name] = node.args[i]
        elif arg.name in node.kwargs:
            out[arg.name] = node.kwargs[arg.name]
        else:
            out[arg.name] = arg.default_value if arg.has_default_value() else None
    return out


# --- torch.fx.symbolic_trace view: call_module nodes ---------------------------------


class _FxView:
    method = "torch.fx.symbolic_trace"

    def __init__(self, gm: fx.GraphModule):
        self.gm = gm
        self.calls: dict[str, int] = {}
        for n in gm.graph.nodes:
            if n.op == "call_module":
                self.calls[n.target] = self.calls.get(n.target, 0) + 1
        self.snap: dict[str, _BN] = {}
        self.erased: set[fx.Node] = set()

    def module(self, node):
        if isinstance(node, fx.Node) and node.op == "call_module":
            return self.gm.get_submodule(node.target)
        return None

    def bn(self, node) -> _BN | None:
        if node.op != "call_module" or node.target not in self.snap:
            return None
        s = self.snap[node.target]
        src = node.args[0] if node.args else node.kwargs.get("input")
        return _BN(node=node, out=node, input=src, name=node.target, kind=s.kind,
                   mean=s.mean, var=s.var, weight=s.weight, bias=s.bias, eps=s.eps,
                   module_target=node.target)

    def snapshot(self) -> None:
        for n in self.gm.graph.nodes:
            mod = self.module(n)
            if type(mod) in _BN_TYPES and n.target not in self.snap:
                self.snap[n.target] = _BN(
                    node=n, out=n, input=None, name=n.target, kind=type(mod).__name__,
                    mean=mod.running_mean.detach().clone(), var=mod.running_var.detach().clone(),
                    weight=None if mod.weight is None else mod.weight.detach().clone(),
                    bias=None if mod.bias is None else mod.bias.detach().clone(), eps=float(mod.eps))

    def other_norm(self, node) -> tuple[str, str, str] | None:
        """(name, kind, reason) for a normalization that is not a foldable BN module."""
        mod = self.module(node)
        if isinstance(mod, _PER_INPUT_NORMS):
            return node.target, type(mod).__name__, _PER_INPUT_REASON
        if isinstance(mod, nn.modules.batchnorm._NormBase) and type(mod) not in _BN_TYPES:
            return node.target, type(mod).__name__, (
                f"{type(mod).__name__} is a BatchNorm subclass whose forward may do more than "
                "normalize; edgekit folds exact nn.BatchNorm1d/2d/3d only")
        if node.op in ("call_function", "call_method"):
            name = _op_name(node.target)
            if name in _FUNCTIONAL_NORMS:
                return node.name, _FUNCTIONAL_NORMS[name], _PER_INPUT_REASON
            if name in _FUNCTIONAL_BN:
                return node.name, "batch_norm", (
                    "batch_norm is called as a function (a BatchNorm subclass or F.batch_norm), "
                    "not as an nn.BatchNorm module; edgekit folds nn.BatchNorm1d/2d/3d modules only")
        return None

    def layer(self, node) -> _Layer | None:
        mod = self.module(node)
        if mod is None or type(mod) not in _CONV_TYPES:
            return None
        kind, spatial = _CONV_TYPES[type(mod)]

        def get(mod=mod):
            return mod.weight, mod.bias

        def put(w, b, mod=mod):
            mod.weight = nn.Parameter(w.detach(), requires_grad=mod.weight.requires_grad)
            mod.bias = nn.Parameter(b.detach(), requires_grad=mod.weight.requires_grad)

        if kind == "linear":
            exact, desc, groups = True, "", 1
        else:
            groups = mod.groups
            exact = mod.padding_mode != "zeros" or _zero_padding_free(
                mod.padding, mod.kernel_size, mod.dilation)
            desc = (f"padding_mode={mod.padding_mode!r}" if mod.padding_mode != "zeros"
                    else f"padding={mod.padding}")
        return _Layer(node=node, name=node.target, kind=kind, cls=type(mod).__name__,
                      spatial=spatial, groups=groups, exact_padding=exact, padding_desc=desc,
                      uses=self.calls.get(node.target, 0), get=get, set=put)

    def describe(self, node) -> str:
        mod = self.module(node)
        if mod is not None:
            return f"{type(mod).__name__} '{node.target}'"
        if node.op == "placeholder":
            return f"the graph input '{node.target}'"
        if node.op in ("call_function", "call_method"):
            return f"'{_op_name(node.target)}' ('{node.name}')"
        return f"'{node.name}'"

    def replace_bn(self, bn: _BN, replacement: fx.Node | None, affine: Affine | None) -> None:
        if affine is not None:  # same node, same name: the module becomes an Affine
            if type(self.gm.get_submodule(bn.module_target)) in _BN_TYPES:
                self.gm.add_submodule(bn.module_target, affine)
            return
        bn.out.replace_all_uses_with(replacement)
        self.gm.graph.erase_node(bn.node)
        self.erased.add(bn.node)
        self.calls[bn.module_target] -= 1
        if self.calls[bn.module_target] == 0:
            self.gm.delete_submodule(bn.module_target)

    def finish(self) -> None:
        pass


# --- torch.export view: aten call_function nodes with get_attr parameters ------------

_ATEN_LAYERS = {
    "conv1d": ("conv", 1), "conv2d": ("conv", 2), "conv3d": ("conv", 3),
    "conv_transpose1d": ("conv_transpose", 1), "conv_transpose2d": ("conv_transpose", 2),
    "conv_transpose3d": ("conv_transpose", 3), "convolution": (None, None),
    "linear": ("linear", 0),
}
_LAYER_CLS = {("conv", 1): "Conv1d", ("conv", 2): "Conv2d", ("conv", 3): "Conv3d",
              ("conv_transpose", 1): "ConvTranspose1d", ("conv_transpose", 2): "ConvTranspose2d",
              ("conv_transpose", 3): "ConvTranspose3d", ("linear", 0): "Linear"}


def _stack_entry(node) -> tuple[str | None, str | None]:
    stack = node.meta.get("nn_module_stack")
    if not stack:
        return None, None
    path, cls = list(stack.values())[-1]
    path = path.replace("L['self'].", "").replace("L__self___", "")
    cls_name = cls.rsplit(".", 1)[-1] if isinstance(cls, str) else getattr(cls, "__name__", None)
    return path or None, cls_name


class _ExportView:
    method = "torch.export"

    def __init__(self, gm: fx.GraphModule):
        self.gm = gm
        self.attr_uses: dict[str, int] = {}
        for n in gm.graph.nodes:
            if n.op == "get_attr":
                self.attr_uses[n.target] = self.attr_uses.get(n.target, 0) + len(n.users)
        self.dead_attrs: set[str] = set()
        self.erased: set[fx.Node] = set()
        self.n_affine = 0

    def _tensor(self, node) -> torch.Tensor | None:
        if isinstance(node, fx.Node) and node.op == "get_attr":
            return _fetch(self.gm, node.target)
        return None

    def snapshot(self) -> None:
        pass

    def bn(self, node) -> _BN | None:
        if node.op != "call_function" or _op_name(node.target) not in (
                "batch_norm", "_native_batch_norm_legit_no_training"):
            return None
        a = _schema_args(node)
        if a.get("training"):
            return None
        params = [a["running_mean"], a["running_var"], a["weight"], a["bias"]]
        if any(p is not None and (not isinstance(p, fx.Node) or p.op != "get_attr") for p in params):
            return None
        if a["running_mean"] is None or a["running_var"] is None:
            return None
        out = node
        if _op_name(node.target) != "batch_norm":  # returns (out, save_mean, save_rstd)
            getters = list(node.users)
            if any(u.target is not operator.getitem for u in getters):
                return None
            firsts = [u for u in getters if u.args[1] == 0]
            if len(firsts) != 1 or len(getters) != 1:
                return None
            out = firsts[0]
        path, cls = _stack_entry(node)
        tensors = [None if p is None else self._tensor(p).detach().clone() for p in params]
        return _BN(node=node, out=out, input=a["input"], name=path or node.name,
                   kind=cls or "BatchNorm", mean=tensors[0], var=tensors[1], weight=tensors[2],
                   bias=tensors[3], eps=float(a["eps"]))

    def other_norm(self, node) -> tuple[str, str, str] | None:
        if node.op != "call_function":
            return None
        name = _op_name(node.target)
        if name in _FUNCTIONAL_NORMS:
            path, cls = _stack_entry(node)
            return path or node.name, cls or _FUNCTIONAL_NORMS[name], _PER_INPUT_REASON
        if name in _FUNCTIONAL_BN and self.bn(node) is None:
            path, cls = _stack_entry(node)
            return path or node.name, cls or "batch_norm", (
                "this batch_norm uses batch statistics or computed parameters, so it is not a "
                "fixed affine map")
        return None

    def layer(self, node) -> _Layer | None:
        if node.op != "call_function" or _op_name(node.target) not in _ATEN_LAYERS:
            return None
        opname = _op_name(node.target)
        kind, spatial = _ATEN_LAYERS[opname]
        a = _schema_args(node)
        w_node, b_node = a["weight"], a.get("bias")
        if not (isinstance(w_node, fx.Node) and w_node.op == "get_attr"):
            return None
        if b_node is not None and not (isinstance(b_node, fx.Node) and b_node.op == "get_attr"):
            return None
        weight = self._tensor(w_node)
        if kind is None:  # aten.convolution
            kind = "conv_transpose" if a["transposed"] else "conv"
            spatial = weight.dim() - 2
        groups = int(a.get("groups") or 1)
        if kind == "linear":
            exact, desc = True, ""
        else:
            kernel = tuple(weight.shape[2:])
            dil = a.get("dilation") or 1
            dil = tuple(dil) if isinstance(dil, (list, tuple)) else (dil,) * spatial
            if len(dil) == 1:
                dil = dil * spatial
            exact = _zero_padding_free(a.get("padding") or 0, kernel, dil)
            desc = f"padding={a.get('padding') or 0}"
        uses = self.attr_uses.get(w_node.target, 0)
        if b_node is not None:
            uses = max(uses, self.attr_uses.get(b_node.target, 0))
        path, _ = _stack_entry(node)
        gm = self.gm

        def get():
            b = self._tensor(_schema_args(node).get("bias"))
            return self._tensor(w_node), b

        def put(w, b):
            _assign(gm, w_node.target, w)
            cur = _schema_args(node).get("bias")
            if cur is not None:
                _assign(gm, cur.target, b)
                return
            target = w_node.target.rpartition(".")[0]
            target = (target + "." if target else "") + "bias"
            i = 0
            while True:
                try:
                    _fetch(gm, target)
                except AttributeError:
                    break
                i += 1
                target = target.rstrip("0123456789_") + f"_{i}"
            prefix, _, leaf = target.rpartition(".")
            owner = _fetch(gm, prefix) if prefix else gm
            owner.register_parameter(leaf, nn.Parameter(b.detach(), requires_grad=False))
            with gm.graph.inserting_before(node):
                bnode = gm.graph.get_attr(target)
            if "bias" in node.kwargs:
                node.update_kwarg("bias", bnode)
            elif len(node.args) > 2:
                node.update_arg(2, bnode)
            else:
                node.args = tuple(node.args[:2]) + (bnode,)

        return _Layer(node=node, name=path or node.name, kind=kind,
                      cls=_LAYER_CLS[(kind, spatial)], spatial=spatial, groups=groups,
                      exact_padding=exact, padding_desc=desc, uses=uses, get=get, set=put)

    def describe(self, node) -> str:
        if node.op == "placeholder":
            return f"the graph input '{node.target}'"
        path, cls = _stack_entry(node)
        op = _op_name(node.target) if node.op == "call_function" else node.name
        if path:
            return f"{cls} '{path}' ({op})"
        return f"'{op}'" if op == node.name else f"'{op}' ('{node.name}')"

    def replace_bn(self, bn: _BN, replacement: fx.Node | None, affine: Affine | None) -> None:
        if affine is not None:
            base = "bn_affine_" + bn.name.replace(".", "_")
            target, i = base, 0
            while hasattr(self.gm, target):
                i += 1
                target = f"{base}_{i}"
            self.gm.add_submodule(target, affine)
            with self.gm.graph.inserting_before(bn.node):
                replacement = self.gm.graph.call_module(target, (bn.input,))
            replacement.meta = dict(bn.out.meta)
            self.n_affine += 1
        bn.out.replace_all_uses_with(replacement)
        params = [a for a in bn.node.all_input_nodes if a.op == "get_attr"]
        if bn.out is not bn.node:
            self.gm.graph.erase_node(bn.out)
            self.erased.add(bn.out)
        self.gm.graph.erase_node(bn.node)
        self.erased.add(bn.node)
        for arg in params:
            self.dead_attrs.add(arg.target)
            if not arg.users:
                self.gm.graph.erase_node(arg)
                self.erased.add(arg)

    def finish(self) -> None:
        for n in list(self.gm.graph.nodes):  # e.g. an unused num_batches_tracked
            if n.op == "get_attr" and not n.users and n.target.rpartition(".")[0] in {
                    t.rpartition(".")[0] for t in self.dead_attrs}:
                self.gm.graph.erase_node(n)
        live = {n.target for n in self.gm.graph.nodes if n.op == "get_attr"}
        for target in self.dead_attrs - live:
            _delete_attr(self.gm, target)
            stem = target.rpartition(".")[0]
            _delete_attr(self.gm, (stem + "." if stem else "") + "num_batches_tracked")


# --------------------------------------------------------------------------- the math


def _fold_into_producer(layer: _Layer, bn: _BN) -> None:
    w, b = layer.get()
    with torch.no_grad():
        if layer.kind == "linear":
            nw, nb = fuse_linear_bn_weights(w, b, bn.mean, bn.var, bn.eps, bn.weight, bn.bias)
        elif layer.kind == "conv_transpose" and layer.groups > 1:
            # weight (in, out/g, *k) -> plain-conv layout (out, in/g, *k), fuse, and back
            g = layer.groups
            cin, cout_g, k = w.shape[0], w.shape[1], w.shape[2:]
            as_conv = w.reshape(g, cin // g, cout_g, *k).transpose(1, 2).reshape(g * cout_g, cin // g, *k)
            nw, nb = fuse_conv_bn_weights(as_conv, b, bn.mean, bn.var, bn.eps, bn.weight, bn.bias)
            nw = nw.reshape(g, cout_g, cin // g, *k).transpose(1, 2).reshape(w.shape)
        else:
            nw, nb = fuse_conv_bn_weights(w, b, bn.mean, bn.var, bn.eps, bn.weight, bn.bias,
                                          transpose=layer.kind == "conv_transpose")
    layer.set(nw, nb)


def _fold_forward(layer: _Layer, bn: _BN) -> None:
    """Rewrite ``layer(x*s + t)`` as ``layer'(x)``: scale input channels, absorb t in the bias."""
    w, b = layer.get()
    scale, shift = bn.scale_shift()
    with torch.no_grad():
        wd = w.double()
        if layer.kind == "linear":
            s, t = scale.double().reshape(1, -1), shift.double()
            nw = wd * s
            extra = wd @ t
        else:
            g = layer.groups
            cout, cin_g = w.shape[0], w.shape[1]
            # input channel of weight[o, j] is (o // (cout/g)) * cin_g + j
            def per_out(v):
                return v.double().reshape(g, 1, cin_g).expand(g, cout // g, cin_g).reshape(cout, cin_g)

            s, t = per_out(scale), per_out(shift)
            nw = wd * s.reshape(cout, cin_g, *([1] * layer.spatial))
            extra = (wd.sum(dim=tuple(range(2, wd.dim()))) * t).sum(1)
        nb = extra if b is None else b.double() + extra
    layer.set(nw.to(w.dtype), nb.to(w.dtype))


# --------------------------------------------------------------------------- the pass


def _as_tuple(example_inputs) -> tuple | None:
    if example_inputs is None:
        return None
    if isinstance(example_inputs, torch.Tensor):
        return (example_inputs,)
    return tuple(example_inputs)


def _check_inference(model: nn.Module) -> None:
    if model.training:
        raise UsageError(
            f"{type(model).__name__} is in training mode; call model.eval() first "
            "(BatchNorm folding is for inference only: training uses batch statistics)")
    for name, mod in model.named_modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            if mod.training:
                raise UsageError(
                    f"BatchNorm '{name}' is in training mode while the model is not; call "
                    "model.eval() (folding is for inference only)")
            if mod.running_mean is None or mod.running_var is None:
                raise UsageError(
                    f"BatchNorm '{name}' has no running statistics (track_running_stats=False): "
                    "it normalizes with each batch's statistics even in eval mode, so it cannot "
                    "be folded; folding is for inference with fixed statistics")


def _trace(model: nn.Module, example_inputs: tuple | None) -> tuple[fx.GraphModule, Any, list[str]]:
    notes = []
    try:
        gm = fx.symbolic_trace(model)
        view: Any = _FxView(gm)
        if example_inputs is not None:
            import contextlib
            import io

            from torch.fx.passes.shape_prop import ShapeProp

            # ShapeProp prints the traceback of a failing node itself; the failure is handled below
            with torch.no_grad(), contextlib.redirect_stderr(io.StringIO()):
                ShapeProp(gm).propagate(*example_inputs)
        return gm, view, notes
    except Exception as exc:  # the model's forward is not symbolically traceable
        why = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ''}"
        if example_inputs is None:
            raise UsageError(
                f"torch.fx.symbolic_trace cannot trace {type(model).__name__} ({why}); pass "
                "example_inputs so edgekit can capture it with torch.export instead") from exc
        notes.append(f"torch.fx.symbolic_trace failed ({why}); used torch.export")
    from edgekit.graph.capture import export_module

    ep = export_module(model, example_inputs)
    gm = ep.module()
    return gm, _ExportView(gm), notes


def _max_rel_error(ref, out) -> float:
    from torch.utils._pytree import tree_leaves

    refs = [t for t in tree_leaves(ref) if isinstance(t, torch.Tensor)]
    outs = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
    if len(refs) != len(outs):
        raise EdgekitError(f"folded model returns {len(outs)} tensors, original {len(refs)}")
    worst = 0.0
    for r, o in zip(refs, outs):
        if not r.is_floating_point():
            worst = max(worst, 0.0 if torch.equal(r, o) else math.inf)
            continue
        denom = r.abs().max().item() or 1.0
        worst = max(worst, (r - o).abs().max().item() / denom)
    return worst


def fold_bn(model: nn.Module, example_inputs=None) -> FoldResult:
    """Fold every BatchNorm of ``model`` (eval mode) into a neighbouring layer where exact.

    ``example_inputs`` (a tensor or a tuple of tensors) is optional; with it, edgekit knows
    tensor ranks (needed to fold a BatchNorm1d forward into a Linear), can fall back to
    ``torch.export`` when ``symbolic_trace`` fails, and reports ``max_rel_error`` between
    the folded and the original model. Returns a :class:`FoldResult`; prints nothing.
    """
    if not isinstance(model, nn.Module):
        raise UsageError(f"fold_bn expects an nn.Module, got {type(model).__name__}")
    _check_inference(model)
    inputs = _as_tuple(example_inputs)
    work = copy.deepcopy(model)
    gm, view, notes = _trace(work, inputs)
    view.snapshot()

    report: list[BNFate] = []
    for node in list(gm.graph.nodes):
        if node in view.erased:
            continue
        bn = view.bn(node)
        if bn is None:
            other = view.other_norm(node)
            if other is not None:
                report.append(BNFate(name=other[0], kind=other[1], fate=NOT_FOLDABLE, into=None,
                                     reason=other[2]))
            continue
        report.append(_decide(view, bn))
    view.finish()
    gm.graph.lint()
    gm.recompile()
    to_eval(gm)  # a GraphModule from torch.export's ep.module() starts in training mode

    max_err = None
    if inputs is not None:
        with torch.no_grad():
            max_err = _max_rel_error(model(*inputs), gm(*inputs))
    folded = sum(f.fate in (FOLDED, FOLDED_FORWARD) for f in report)
    return FoldResult(model=gm, report=report, folded=folded, kept=len(report) - folded,
                      method=view.method, max_rel_error=max_err, notes=notes)


def _decide(view, bn: _BN) -> BNFate:
    # 1. into the producer
    why_not = _producer_obstacle(view, bn)
    if why_not is None:
        layer = view.layer(bn.input)
        _fold_into_producer(layer, bn)
        view.replace_bn(bn, bn.input, None)
        assumed = ("" if layer.kind != "linear" or _rank(bn.input) is not None
                   else " (input assumed 2-D (N, C): no example_inputs to check)")
        return BNFate(bn.name, bn.kind, FOLDED, layer.name,
                      f"follows {layer.cls} '{layer.name}' (its only user): weight and bias "
                      f"rescaled per output channel{assumed}")
    # 2. forward into the consumer
    fwd_not, layer = _consumer_obstacle(view, bn)
    if fwd_not is None:
        _fold_forward(layer, bn)
        view.replace_bn(bn, bn.input, None)
        how = "Linear on 2-D input" if layer.kind == "linear" else f"{layer.padding_desc}, so exact"
        return BNFate(bn.name, bn.kind, FOLDED_FORWARD, layer.name,
                      f"cannot fold into its producer ({why_not}); its only user {layer.cls} "
                      f"'{layer.name}' absorbs it ({how}): input channels scaled, shift added "
                      "to the bias")
    # 3. kept as a per-channel affine
    scale, shift = bn.scale_shift()
    ndim = {"BatchNorm2d": 4, "BatchNorm3d": 5}.get(bn.kind) or _rank(bn.input)
    view.replace_bn(bn, None, Affine(scale, shift, ndim=ndim))
    return BNFate(bn.name, bn.kind, KEPT_AFFINE, None,
                  f"cannot fold into its producer ({why_not}) nor forward ({fwd_not}); "
                  "replaced by a per-channel x*scale+shift")


def _producer_obstacle(view, bn: _BN) -> str | None:
    src = bn.input
    if not isinstance(src, fx.Node):
        return "its input is not a graph value"
    if src.op == "placeholder":
        return "it reads the graph input"
    layer = view.layer(src)
    if layer is None:
        return f"its input comes from {view.describe(src)}, not a convolution or linear layer"
    if len(src.users) != 1:
        return (f"the output of {layer.cls} '{layer.name}' has {len(src.users)} users, so "
                "changing it would change the others")
    if layer.uses != 1:
        return f"{layer.cls} '{layer.name}' is used {layer.uses} times in the graph (shared weights)"
    if layer.out_channels != bn.channels:
        return f"{layer.cls} '{layer.name}' has {layer.out_channels} output channels, the BN {bn.channels}"
    rank = _rank(src)
    if rank is not None and layer.kind != "linear" and rank != layer.spatial + 2:
        return f"{layer.cls} '{layer.name}' runs on unbatched input (rank {rank})"
    if rank is not None and layer.kind == "linear" and rank != 2:
        return (f"Linear '{layer.name}' output has rank {rank}: BatchNorm normalizes dim 1, "
                "Linear's features are the last dim")
    return None


def _consumer_obstacle(view, bn: _BN) -> tuple[str | None, _Layer | None]:
    users = list(bn.out.users)
    if len(users) != 1:
        return f"its output has {len(users)} users", None
    user = users[0]
    layer = view.layer(user)
    if layer is None:
        return f"its only user is {view.describe(user)}, not a convolution or linear layer", None
    if user.args[0] is not bn.out or sum(a is bn.out for a in user.all_input_nodes) != 1:
        return f"{layer.cls} '{layer.name}' uses the BN output as more than its input", None
    if layer.kind == "conv_transpose":
        return (f"the following {layer.cls} '{layer.name}' is transposed (border outputs see "
                "fewer input positions, so the shift does not fold exactly)"), None
    if layer.uses != 1:
        return f"{layer.cls} '{layer.name}' is used {layer.uses} times in the graph (shared weights)", None
    if layer.in_channels != bn.channels:
        return f"{layer.cls} '{layer.name}' has {layer.in_channels} input channels, the BN {bn.channels}", None
    rank = _rank(bn.out)
    if layer.kind == "linear":
        if rank is None:
            return ("the following Linear needs 2-D input to absorb it and the rank is unknown "
                    "(pass example_inputs)"), None
        if rank != 2:
            return (f"the following Linear '{layer.name}' acts on the last dim of a rank-{rank} "
                    "tensor, BatchNorm on dim 1"), None
        return None, layer
    if rank is not None and rank != layer.spatial + 2:
        return f"{layer.cls} '{layer.name}' runs on unbatched input (rank {rank})", None
    if not layer.exact_padding:
        return (f"the following {layer.cls} '{layer.name}' zero-pads its input ({layer.padding_desc}):"
                " the border would see 0 instead of the BN shift"), None
    return None, layer
