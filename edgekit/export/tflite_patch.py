"""Write patch-based inference into a .tflite (no TensorFlow, no torch): the stage's ops, once per patch.

``apply_patches(data, split, grid)`` rewrites an int8 (or float) .tflite so that the ops computing the
tensor ``split`` run on ``grid`` spatial patches (``analysis.patches``: the regions, the SLICE/PAD/
CONCATENATION ops, why the result is the same integers). The rewrite goes through the flatbuffer object
API of ``ai_edge_litert.schema_py_generated``, as ``export.tflite_plan`` does:

- the stage's ops are copied per patch (same weights and bias tensors: no weight is duplicated; the
  options are copied and window ops made VALID), with new activation tensors that take the quantization
  parameters of the tensor they are a region of (copied, never recalibrated);
- new SLICE / PAD / PADV2 / CONCATENATION ops read new small int32 constants (begin, size, paddings),
  shared between patches when equal;
- the stage's inner tensors and the constants only they used disappear (their buffers are emptied;
  buffer indices stay), the other tensors keep their order and names, signatures are renumbered;
- an ``OfflineMemoryAllocation`` entry is dropped (its offsets are for the old tensors): patches come
  first, then ``export.tflite_plan`` plans the patched model.

The written model is read back (``graph.tflite_reader``) and must be, op for op and tensor for tensor,
the Graph ``analysis.patches.patched_graph`` predicted, on which the arena was predicted.
"""

from __future__ import annotations

import copy

import numpy as np

from edgekit.analysis.patch_rewrite import PatchRewrite, patch_rewrite, patched_graph
from edgekit.analysis.patches import WINDOW_OPS, PatchError
from edgekit.errors import ArtifactError, UsageError
from edgekit.export.tflite_plan import OFFLINE_METADATA, pack_model
from edgekit.graph.ir import Graph
from edgekit.graph.tflite_reader import parse_tflite, schema

# version of a new operator code, when the model has none for that builtin yet: the lowest version
# that accepts int8 (tensorflow/lite/tools/versioning/op_version.cc)
_VERSIONS = {"SLICE": 2, "PAD": 2, "PADV2": 2, "CONCATENATION": 2}
_TYPE_CODES = {"int32": "INT32", "int8": "INT8", "int16": "INT16", "uint8": "UINT8", "float32": "FLOAT32"}


def write_rewrite(data: bytes, g: Graph, rw: PatchRewrite) -> bytes:
    """``data`` (whose Graph is ``g``) with the rewrite ``rw`` written in; checked by reading it back."""
    s = schema()
    model = s.ModelT.InitFromObj(s.Model.GetRootAsModel(data, 0))
    if len(model.subgraphs or []) != 1:
        raise ArtifactError(f"the model has {len(model.subgraphs or [])} subgraphs: only single-subgraph models "
                            f"are patched")
    if any(b.data is None and (b.size or 0) > 0 for b in model.buffers or []):
        raise ArtifactError("the model stores buffers outside the flatbuffer; re-serialize it with inline "
                            "buffers first (edgekit.export.tflite.inline_buffers)")
    sg = model.subgraphs[0]
    keep = [i for i in range(len(sg.tensors)) if i not in rw.removed]
    idx = {old: new for new, old in enumerate(keep)}

    def ref(r: int) -> int:
        return idx[r] if r >= 0 else len(keep) - r - 1

    new_tensors = [_tensor(s, model, sg, nt) for nt in rw.tensors]
    old_ops = sg.operators
    at = g.tensors[rw.split].producer
    stage = set(rw.stage.ops)
    ops = []
    for i, op in enumerate(old_ops):
        if i == at:
            ops.extend(_operator(s, model, old_ops, nop, ref) for nop in rw.ops)
        if i in stage:
            continue
        op.inputs = [ref(int(t)) if t >= 0 else -1 for t in op.inputs]
        op.outputs = [ref(int(t)) for t in op.outputs]
        ops.append(op)
    sg.operators = ops
    sg.tensors = [sg.tensors[i] for i in keep] + new_tensors
    sg.inputs = [ref(int(t)) for t in sg.inputs]
    sg.outputs = [ref(int(t)) for t in sg.outputs]
    for sd in model.signatureDefs or []:
        for tm in (sd.inputs or []) + (sd.outputs or []):
            tm.tensorIndex = ref(int(tm.tensorIndex))
    _drop_offline_plan(model)
    _empty_unused_buffers(model)
    out = pack_model(model)
    _check_written(out, patched_graph(g, rw))
    return out


def _tensor(s, model, sg, nt):
    """A TensorT for a new tensor: a copy of the tensor it is a region of (type, quantization) with its
    own shape and name, or a new constant with its own buffer."""
    if nt.data is None:
        t = copy.deepcopy(sg.tensors[nt.like])
        t.shapeSignature = None
    else:
        t = s.TensorT()
        t.type = getattr(s.TensorType, _TYPE_CODES[nt.dtype])
        buf = s.BufferT()
        buf.data = np.frombuffer(nt.data, dtype=np.uint8)
        model.buffers.append(buf)
        t.buffer = len(model.buffers) - 1
    t.shape = list(nt.shape)
    t.name = nt.name
    return t


def _opcode_index(s, model, name: str) -> int:
    code = getattr(s.BuiltinOperator, name)
    for k, oc in enumerate(model.operatorCodes):
        if max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode)) == code and not oc.customCode:
            return k
    oc = s.OperatorCodeT()
    oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), _VERSIONS.get(name, 1)
    model.operatorCodes.append(oc)
    return len(model.operatorCodes) - 1


def _operator(s, model, old_ops, nop, ref):
    if nop.like is not None:
        op = copy.deepcopy(old_ops[nop.like])
        refs = iter(nop.inputs)
        op.inputs = [ref(next(refs)) if int(t) >= 0 else -1 for t in op.inputs]
        op.outputs = [ref(t) for t in nop.outputs]
        if nop.opcode in WINDOW_OPS:
            op.builtinOptions.padding = s.Padding.VALID
        if "new_shape" in nop.options and op.builtinOptions is not None and hasattr(op.builtinOptions, "newShape"):
            op.builtinOptions.newShape = list(nop.options["new_shape"])
        return op
    op = s.OperatorT()
    op.opcodeIndex = _opcode_index(s, model, nop.opcode)
    op.inputs = [ref(t) for t in nop.inputs]
    op.outputs = [ref(t) for t in nop.outputs]
    if nop.opcode == "CONCATENATION":
        opts = s.ConcatenationOptionsT()
        opts.axis, opts.fusedActivationFunction = int(nop.options["axis"]), s.ActivationFunctionType.NONE
        op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.ConcatenationOptions, opts
    else:
        kind = {"SLICE": "SliceOptions", "PAD": "PadOptions", "PADV2": "PadV2Options"}[nop.opcode]
        op.builtinOptionsType, op.builtinOptions = getattr(s.BuiltinOptions, kind), getattr(s, kind + "T")()
    return op


def _name(md) -> str:
    n = md.name
    return n.decode(errors="replace") if isinstance(n, bytes) else str(n or "")


def _drop_offline_plan(model) -> None:
    model.metadata = [md for md in model.metadata or [] if _name(md) != OFFLINE_METADATA]


def _empty_unused_buffers(model) -> None:
    """Buffers no tensor or metadata entry refers to any more lose their data (indices stay valid)."""
    used = {int(t.buffer) for sg in model.subgraphs for t in sg.tensors or []}
    used |= {int(md.buffer) for md in model.metadata or []}
    for k, b in enumerate(model.buffers or []):
        if k not in used and b.data is not None:
            b.data = None


def _check_written(out: bytes, want: Graph) -> None:
    got = parse_tflite(out, where="the patched model")
    same_ops = [(o.attrs.get("opcode"), o.inputs, o.outputs) for o in got.ops] == \
               [(o.attrs.get("opcode"), o.inputs, o.outputs) for o in want.ops]
    same_tensors = [(t.shape, t.dtype, t.is_const, t.nbytes, t.name) for t in got.tensors] == \
                   [(t.shape, t.dtype, t.is_const, t.nbytes, t.name) for t in want.tensors]
    if not (same_ops and same_tensors and got.inputs == want.inputs and got.outputs == want.outputs):
        raise ArtifactError(f"internal error: the patched .tflite does not read back as the patched graph "
                            f"(ops {same_ops}, tensors {same_tensors})")


def apply_patches(data: bytes, split, grid, *, force: bool = False) -> bytes:
    """``data`` with the stage that computes ``split`` run on ``grid`` patches (see the module doc).

    ``split``: a tensor id, a tensor name or a layer (module path, e.g. ``"features.5"``: the patch
    stage ends with that layer's output; ``analysis.patches.resolve_split``). ``grid``: (rows, columns)
    or ``"3x3"``. Raises UsageError when the split is not a patchable cut or the grid does not fit it,
    and, unless ``force``, when the patched model is predicted to need no less arena than the original
    (TFLite-Micro's own plan) — a patched model that is worse is never written."""
    from edgekit.analysis.patches import parse_grid, resolve_split, split_label
    from edgekit.analysis.tflm_arena import predict_tflm_arena

    g = parse_tflite(data)
    tid = resolve_split(g, split)
    try:
        rw = patch_rewrite(g, tid, parse_grid(grid))
    except PatchError as exc:
        raise UsageError(f"cannot patch at {split!r}: {exc}") from None
    if not force:
        before = predict_tflm_arena(g).total_bytes
        after = predict_tflm_arena(patched_graph(g, rw)).total_bytes
        if after >= before:
            raise UsageError(f"{rw.grid[0]}x{rw.grid[1]} patches up to {split_label(g, tid)} do not help: "
                             f"predicted arena {after:,d} B >= {before:,d} B unpatched (the per-patch ops' "
                             f"persistent data outweighs the smaller activations)")
    return write_rewrite(data, g, rw)
