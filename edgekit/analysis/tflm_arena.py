"""TFLite-Micro arena model: the ``arena_size`` a user must give ``MicroInterpreter``.

Pure arithmetic on the Graph IR of a .tflite (no torch, no tflite_micro). It replays what
TFLite-Micro's ``MicroAllocator`` does in ``AllocateTensors()`` and returns the smallest
arena with which every phase fits:

1. **Tail** (persistent, allocated downward from the arena end, each allocation aligned
   down): allocator/planner objects (a fixed block), one ``TfLiteEvalTensor`` per tensor,
   one ``NodeAndRegistration`` per op, each op's parsed builtin options, each kernel's
   ``Init`` user data (``OpDataConv`` ...), what its ``Prepare`` allocates (per-channel
   output multipliers and shifts), scratch-buffer handles, and persistent ``TfLiteTensor``
   structs (+ quantization) for the graph inputs and outputs.
2. **Head** (``GreedyMemoryPlanner``): every non-constant tensor and every kernel scratch
   buffer, sizes aligned to 16, lifetimes as in ``AllocationInfoBuilder`` (graph inputs live
   from step 0, graph outputs to the end, op *i* is step *i + 1*), placed largest first
   (ties: later-added buffer first — the planner's stable bubble sort runs on the reversed
   insertion order) at the lowest gap between simultaneously live buffers.
3. **Temporaries** that the recorded "Arena allocation total" does not show but the arena
   must hold: during each kernel's ``Prepare`` the scratch-request array (16 B × (requests
   + 12)) and temporary ``TfLiteTensor`` structs with their quantization arrays (a weight
   tensor with C channels costs 4·C + 92 B while its kernel prepares); during planning the
   ``AllocationInfo`` array (32 B per tensor and scratch buffer) plus 40 B per planned
   buffer of planner working memory.

``total_bytes = max(head + tail, max over phases of (temporary head + tail at that time))``.

Struct sizes are for the 64-bit host build of TFLite-Micro (the ``tflite-micro`` Python
package: reference kernels, compression support compiled in, ``RecordingMicroAllocator``);
each constant below names the TFLite-Micro source it comes from and was confirmed against
the RecordingMicroAllocator report on single-op and whole models
(``tests/test_tflm_arena.py``): head and tail match to the byte on every model tried.
Limits: on a 32-bit MCU the pointer-bearing tail structs are smaller (the head, the bulk,
is the same); optimized kernel libraries (CMSIS-NN, ESP-NN, Xtensa) request scratch
buffers the reference kernels do not, which this model does not add.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from edgekit.graph.ir import Graph, Tensor

ALIGN = 16  # MicroArenaBufferAlignment()

# --- struct sizes, 64-bit host build ------------------------------------------------------
# Fixed tail block measured with one-op models (TRANSPOSE/PAD/RELU/...: nothing else in the
# remainder): RecordingSingleArenaBufferAllocator + GreedyMemoryPlanner +
# RecordingMicroAllocator (recording_micro_allocator.cc Create) + MicroBuiltinDataAllocator +
# SubgraphAllocations (micro_allocator.cc StartModelAllocation).
FIXED_TAIL = 488
EVAL_TENSOR = 24  # TfLiteEvalTensor {void* data; TfLiteIntArray* dims; TfLiteType type}
NODE_AND_REGISTRATION = 64  # TfLiteNode (7 pointer-size fields) + const TFLMRegistration*
TFLITE_TENSOR = 64  # TfLiteTensor as compiled for TFLM (TF_LITE_STATIC_MEMORY)
AFFINE_QUANT = 24  # TfLiteAffineQuantization {TfLiteFloatArray*; TfLiteIntArray*; int32}
SCRATCH_REQUEST = 16  # internal::ScratchBufferRequest {size_t bytes; int node_idx; int subgraph_idx}
MAX_SCRATCH_PER_OP = 12  # kMaxScratchBuffersPerOp (micro_allocator.cc)
SCRATCH_HANDLE = 8  # ScratchBufferHandle {uint8_t* data}
ALLOCATION_INFO = 32  # AllocationInfo {size_t bytes; void** output_ptr; int first, last, offline; bool}
PLANNER_PER_BUFFER = 40  # GreedyMemoryPlanner::per_buffer_size(): BufferRequirements 16 + 3 ints + ListEntry 12
POINTER = 8

# Parsed builtin options (core/c/builtin_op_data.h structs, allocated by the op's Parse*
# function in flatbuffer_conversions.cc with alignof(T)); ops absent here allocate nothing.
# FULLY_CONNECTED measured 32 (sine_float example: 3 ops, remainder 584 = 488 + 3 x 32).
BUILTIN_DATA = {
    "CONV_2D": (28, 4), "DEPTHWISE_CONV_2D": (28, 4), "FULLY_CONNECTED": (32, 4),
    "TRANSPOSE_CONV": (20, 4), "AVERAGE_POOL_2D": (40, 4), "MAX_POOL_2D": (40, 4), "L2_POOL_2D": (40, 4),
    "ADD": (8, 4), "SUB": (8, 4), "MUL": (4, 4), "DIV": (4, 4), "CONCATENATION": (8, 4),
    "RESHAPE": (36, 4), "SQUEEZE": (36, 4), "SOFTMAX": (4, 4), "MEAN": (1, 1), "SUM": (1, 1),
    "REDUCE_MAX": (1, 1), "REDUCE_MIN": (1, 1), "REDUCE_PROD": (1, 1), "STRIDED_SLICE": (24, 4),
    "SPLIT": (4, 4), "SPLIT_V": (4, 4), "PACK": (8, 4), "UNPACK": (8, 4), "GATHER": (8, 4),
    "LEAKY_RELU": (4, 4), "RESIZE_BILINEAR": (2, 1), "RESIZE_NEAREST_NEIGHBOR": (2, 1),
    "BATCH_MATMUL": (3, 1), "ARG_MAX": (4, 4), "ARG_MIN": (4, 4), "CAST": (8, 4),
    "DEPTH_TO_SPACE": (4, 4), "SPACE_TO_DEPTH": (4, 4), "GELU": (1, 1), "CUMSUM": (2, 1),
}

# Kernel Init user data (AllocatePersistentBuffer, 16-aligned), measured with single-op models
# ("requested" bytes of 'Persistent buffer data' minus the 2 x 8 B input/output pointer arrays):
# conv.h OpDataConv 80 (with USE_TFLM_COMPRESSION's two scratch indices), fully_connected.h
# OpDataFullyConnected 72, add.h OpDataAdd 60, sub.h OpDataSub 52, mul.h OpDataMul 36, pad.cc
# OpData 56, reduce.h OpDataReduce 44, pooling.h OpDataPooling 32, SoftmaxParams 80,
# concatenation.cc OpData 80, HardSwishParams 20, OpDataLogistic 16, ReluOpData 28,
# Relu6OpData 8, LeakyReluOpData 24, quantize/dequantize OpData 32, strided_slice OpData 84,
# div.cc OpDataDiv 36 (+ ABS's elementwise OpData 20: measured together, 56).
OP_DATA = {
    "CONV_2D": 80, "DEPTHWISE_CONV_2D": 80, "TRANSPOSE_CONV": 80, "FULLY_CONNECTED": 72,
    "ADD": 60, "SUB": 52, "MUL": 36, "DIV": 36, "PAD": 56, "PADV2": 56, "MIRROR_PAD": 56,
    "MEAN": 44, "SUM": 44, "REDUCE_MAX": 44, "REDUCE_MIN": 44, "AVERAGE_POOL_2D": 32, "MAX_POOL_2D": 32,
    "SOFTMAX": 80, "LOG_SOFTMAX": 80, "CONCATENATION": 80, "HARD_SWISH": 20, "LOGISTIC": 16, "TANH": 16,
    "RELU": 28, "RELU6": 8, "LEAKY_RELU": 24, "QUANTIZE": 32, "DEQUANTIZE": 32, "STRIDED_SLICE": 84,
    "ABS": 20, "RSQRT": 20, "BATCH_MATMUL": 88,
}
# Kernels measured to allocate no user data.
NO_OP_DATA = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "SLICE", "RESIZE_NEAREST_NEIGHBOR",
              "RESIZE_BILINEAR", "MAXIMUM", "MINIMUM"}
OP_DATA_DEFAULT = 64  # unknown kernel: a typical OpData


# ---- hook: which TFLite-Micro build is modelled (edgekit/analysis/tflm_cortex_m.py) ------------

@dataclass(frozen=True)
class TflmBuild:
    """Struct sizes and kernel behaviour of one TFLite-Micro build. :data:`HOST` (the defaults) is
    the 64-bit ``tflite_micro`` package described above; ``tflm_cortex_m.cortex_m_build()`` gives
    a 32-bit Cortex-M build with CMSIS-NN kernels. A kernel hook returns None to keep the
    reference kernel's behaviour for that op."""

    fixed_tail: int = FIXED_TAIL
    ptr_align: int = 8  # alignof(void*): eval tensors, nodes, TfLiteTensor, quantization, handles
    eval_tensor: int = EVAL_TENSOR
    node_and_registration: int = NODE_AND_REGISTRATION
    tflite_tensor: int = TFLITE_TENSOR
    affine_quant: int = AFFINE_QUANT
    scratch_request: int = SCRATCH_REQUEST
    scratch_handle: int = SCRATCH_HANDLE
    allocation_info: int = ALLOCATION_INFO
    pointer: int = POINTER
    op_data: Callable | None = None  # opcode -> Init's OpData bytes | None
    prepare_persistent: Callable | None = None  # (graph, op) -> [bytes] | None
    scratch_requests: Callable | None = None  # (graph, op) -> [bytes] | None
    prepare_temps: Callable | None = None  # (graph, op) -> [Tensor] | None
    name: str = "host tflite_micro (64-bit, reference kernels)"

    def _hook(self, fn, default, *args):
        out = fn(*args) if fn is not None else None
        return default(*args) if out is None else out

    def opdata(self, code: str) -> int:
        return self._hook(self.op_data, lambda c: OP_DATA.get(c, OP_DATA_DEFAULT), code)

    def persistent(self, g, op) -> list[int]:
        return self._hook(self.prepare_persistent, _prepare_persistent, g, op)

    def scratch(self, g, op) -> list[int]:
        return self._hook(self.scratch_requests, _scratch_requests, g, op)

    def temps(self, g, op) -> list[Tensor]:
        return self._hook(self.prepare_temps, _prepare_temps, g, op)


HOST = TflmBuild()


@dataclass
class TflmArenaEstimate:
    """Predicted TFLite-Micro arena (bytes). ``breakdown`` sums to ``total_bytes``."""

    head_bytes: int  # GreedyMemoryPlanner plan: activations + kernel scratch buffers
    tail_bytes: int  # persistent allocations after AllocateTensors()
    total_bytes: int  # minimum arena_size (multiple of 16)
    breakdown: dict[str, int] = field(default_factory=dict)
    binding_phase: str = "invoke"  # "invoke", "prepare <OP>#<i>" or "memory planning"
    notes: list[str] = field(default_factory=list)
    offsets: dict[int, int] = field(default_factory=dict)  # planned buffer id -> head offset


# ---- helpers --------------------------------------------------------------------------------

def _up(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


class _Tail:
    """The persistent allocator: grows down from the (16-aligned) arena end."""

    def __init__(self):
        self.used = 0

    def alloc(self, size: int, align: int = ALIGN) -> int:
        before = self.used
        self.used = _up(self.used + size, align)
        return self.used - before


def _int_array_bytes(n: int) -> int:
    return 4 + 4 * n  # TfLiteIntArray {int size; int data[]}


def _tensor_bytes(t: Tensor) -> int:
    return t.numel * _dtype_size(t.dtype)


def _dtype_size(dtype: str) -> int:
    from edgekit.graph.ir import dtype_nbytes

    return 1 if dtype in ("int4",) else dtype_nbytes(dtype)


def _channels(t: Tensor) -> int:
    return t.quant.num_scales if t.quant is not None else 0


def _opcode(op) -> str:
    return op.attrs.get("opcode") or op.kind.upper()


def _is_int_quantized(g: Graph, op) -> bool:
    ins = [g.tensors[i] for i in op.inputs if not g.tensors[i].is_const]
    ref = ins[0] if ins else (g.tensors[op.outputs[0]] if op.outputs else None)
    return ref is not None and ref.dtype in ("int8", "int16", "uint8")


# ---- per-kernel behaviour --------------------------------------------------------------------

def _prepare_persistent(g: Graph, op) -> list[int]:
    """Sizes the kernel's Prepare allocates with AllocatePersistentBuffer."""
    code = _opcode(op)
    if code in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV") and len(op.inputs) > 1:
        w = g.tensors[op.inputs[1]]
        if len(w.shape) == 4:
            # conv_common.cc ConvPrepare / depthwise_conv_common.cc: per-channel output
            # multiplier and shift, int32 each, for every input type (also float).
            c = w.shape[3] if code == "DEPTHWISE_CONV_2D" else w.shape[0]
            return [4 * c, 4 * c]
    if code == "BATCH_MATMUL" and len(op.inputs) > 1:
        # batch_matmul.cc keeps a transposed copy of the right-hand side (measured with a
        # one-op model: RHS bytes, plus 28 B of requantization data when int8); approximate
        rhs = g.tensors[op.inputs[1]]
        return [_tensor_bytes(rhs) + (28 if _is_int_quantized(g, op) else 0)]
    if code == "FULLY_CONNECTED" and len(op.inputs) > 1:
        w = g.tensors[op.inputs[1]]
        # fully_connected_common.cc: only per-channel quantized weights
        if w.dtype in ("int8", "int4") and _channels(w) > 1 and _is_int_quantized(g, op):
            return [4 * _channels(w), 4 * _channels(w)]
    return []


def _scratch_requests(g: Graph, op) -> list[int]:
    """Bytes of each RequestScratchBufferInArena the kernel makes in Prepare."""
    code = _opcode(op)
    if code in ("MEAN", "SUM") and op.inputs and op.outputs:
        # reduce_common.cc: int index buffer (rank of input) and resolved axes; quantized
        # inputs add an int32 accumulator per output element. Measured with one-op models.
        x, out = g.tensors[op.inputs[0]], g.tensors[op.outputs[0]]
        axis = g.tensors[op.inputs[1]] if len(op.inputs) > 1 else None
        n_axis = axis.numel if axis is not None else 1
        req = [4 * max(len(x.shape), 1), 4 * n_axis]
        if x.dtype in ("int8", "int16", "uint8"):
            req.append(4 * out.numel)
        return req
    if code in ("REDUCE_MAX", "REDUCE_MIN") and op.inputs:
        x = g.tensors[op.inputs[0]]
        axis = g.tensors[op.inputs[1]] if len(op.inputs) > 1 else None
        return [4 * max(len(x.shape), 1), 4 * (axis.numel if axis is not None else 1)]
    if code in ("CONV_2D", "FULLY_CONNECTED", "DEPTHWISE_CONV_2D") and len(op.inputs) > 1:
        w = g.tensors[op.inputs[1]]
        if w.dtype == "int4":  # unpacked filter buffer
            return [w.numel]
    return []


def _temp_tensor_bytes(t: Tensor, b: TflmBuild = HOST) -> list[tuple[int, int]]:
    """(size, align) of AllocateTempTfLiteTensor for ``t``: struct + quantization."""
    allocs = [(b.tflite_tensor, b.ptr_align)]
    c = _channels(t)
    if c > 0:
        allocs += [(b.affine_quant, b.ptr_align), (_int_array_bytes(c), 4)]
    return allocs


def _prepare_temps(g: Graph, op) -> list[Tensor]:
    """Tensors whose temporary TfLiteTensor is alive at the kernel's Prepare peak."""
    code = _opcode(op)
    ins = [g.tensors[i] for i in op.inputs]
    outs = [g.tensors[i] for i in op.outputs]
    if code in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(ins) >= 2:
        # ConvPrepare holds output, input, filter while CalculateOpDataConv takes input,
        # filter, bias, output again.
        return outs[:1] + ins[:2] + ins[:3] + outs[:1]
    return ins + outs


# ---- the planner -------------------------------------------------------------------------

def tflm_greedy_plan(sizes: list[int], firsts: list[int], lasts: list[int]) -> tuple[list[int], int]:
    """TFLite-Micro's GreedyMemoryPlanner (greedy_memory_planner.cc), exactly.

    Buffers are given in the order AddBuffer was called; sizes must already be aligned.
    Returns (offsets, arena bytes). Order: the planner fills its sort arrays from the
    tail (reversed insertion order) and then runs a stable descending bubble sort, so
    equal sizes are placed latest-added first. Each buffer goes at the first gap (in
    offset order) between buffers whose lifetimes overlap its own that is large enough.
    """
    n = len(sizes)
    if n == 0:
        return [], 0
    order = sorted(range(n - 1, -1, -1), key=lambda i: -sizes[i])  # stable on reversed ids
    offsets = [0] * n
    placed: list[int] = []  # buffer ids sorted by offset (ties: earlier placed first)
    for k, b in enumerate(order):
        if k == 0:
            offsets[b] = 0
            placed.append(b)
            continue
        cand = 0
        f, l, s = firsts[b], lasts[b], sizes[b]
        for p in placed:
            if firsts[p] > l or f > lasts[p]:
                continue  # not simultaneously active
            if offsets[p] - cand >= s:
                break  # the gap before p fits
            cand = max(cand, offsets[p] + sizes[p])
        offsets[b] = cand
        # insert after all entries with offset <= cand (the planner's linked-list insertion)
        lo, hi = 0, len(placed)
        while lo < hi:
            mid = (lo + hi) // 2
            if offsets[placed[mid]] <= cand:
                lo = mid + 1
            else:
                hi = mid
        placed.insert(lo, b)
    arena = max(offsets[i] + sizes[i] for i in range(n))
    return offsets, arena


@dataclass
class _PlannedBuffer:
    id: int  # tensor id, or -(k+1) for the k-th scratch buffer
    size: int
    first: int
    last: int


def planned_buffers(g: Graph, b: TflmBuild = HOST) -> list[_PlannedBuffer]:
    """The buffers TFLite-Micro plans, in AddBuffer order, with its lifetimes.

    Lifetimes follow micro_allocation_info.cc MarkAllocationLifetimes: graph inputs are
    created at step 0, op *i* runs at step *i + 1* (creating its outputs and using its
    inputs), graph outputs live to the last step; a kernel's scratch buffers live during
    their op only. No tensor shares memory with another (RESHAPE copies).
    """
    n_t = len(g.tensors)
    first = [-1] * n_t
    last = [-1] * n_t
    for tid in g.inputs:
        first[tid] = last[tid] = 0
    for tid in g.outputs:
        first[tid] = last[tid] = 0
    scratch: list[_PlannedBuffer] = []
    for i, op in enumerate(g.ops):
        step = i + 1
        for tid in op.outputs:
            first[tid] = last[tid] = step
        for tid in op.inputs:
            last[tid] = step
        for tid in op.outputs:
            last[tid] = step
        for nbytes in b.scratch(g, op):
            scratch.append(_PlannedBuffer(-(len(scratch) + 1), _up(nbytes), step, step))
    end = len(g.ops)
    for tid in g.outputs:
        last[tid] = max(last[tid], end)
    bufs = []
    for t in g.tensors:
        nbytes = _tensor_bytes(t)
        if t.is_const or nbytes == 0:
            continue
        bufs.append(_PlannedBuffer(t.id, _up(nbytes), first[t.id], last[t.id]))
    return bufs + scratch


# ---- the estimate --------------------------------------------------------------------------

def predict_tflm_arena(graph: Graph, *, build: TflmBuild = HOST) -> TflmArenaEstimate:
    """Predict the minimum TFLite-Micro arena for a graph read from a .tflite (``build``: which
    TFLite-Micro build, see :class:`TflmBuild`)."""
    g, b = graph, build
    notes: list[str] = []
    if g.meta.get("subgraphs", 1) > 1:
        notes.append(f"{g.meta['subgraphs']} subgraphs: only the first is modelled")
    unknown = sorted(c for c in {_opcode(op) for op in g.ops} - set(OP_DATA) - NO_OP_DATA
                     if b.op_data is None or b.op_data(c) is None)
    if unknown:
        notes.append(f"no measured kernel data for {', '.join(unknown)}: assumed {OP_DATA_DEFAULT} B each")

    # -- head: the static plan
    bufs = planned_buffers(g, b)
    offsets, head = tflm_greedy_plan([b.size for b in bufs], [b.first for b in bufs], [b.last for b in bufs])
    act = [b for b in bufs if b.id >= 0]
    _, head_act_only = tflm_greedy_plan([b.size for b in act], [b.first for b in act], [b.last for b in act])
    n_scratch = len(bufs) - len(act)

    # -- tail, in allocation order
    tail = _Tail()
    parts = dict.fromkeys(["fixed_overhead", "eval_tensors", "node_structs", "builtin_data", "op_data",
                           "per_channel_quant", "scratch_handles", "io_tensors"], 0)
    parts["fixed_overhead"] += tail.alloc(b.fixed_tail, b.ptr_align)
    parts["eval_tensors"] += tail.alloc(b.eval_tensor * len(g.tensors), b.ptr_align)
    parts["node_structs"] += tail.alloc(b.node_and_registration * len(g.ops), b.ptr_align)
    for op in g.ops:
        size_align = BUILTIN_DATA.get(_opcode(op))
        if size_align:
            parts["builtin_data"] += tail.alloc(*size_align)
    for op in g.ops:
        code = _opcode(op)
        if code in NO_OP_DATA:
            continue
        parts["op_data"] += tail.alloc(b.opdata(code))

    # Prepare, op by op: persistent allocations and the temporary peak on the head side
    requests = 0
    phase_need = 0
    phase_name = "invoke"
    for i, op in enumerate(g.ops):
        for nbytes in b.persistent(g, op):
            parts["per_channel_quant"] += tail.alloc(nbytes)
        temp = _up(b.scratch_request * (requests + MAX_SCRATCH_PER_OP), b.ptr_align)
        for t in b.temps(g, op):
            for size, align in _temp_tensor_bytes(t, b):
                temp = _up(temp, align) + size
        need = _up(temp) + _up(tail.used)
        if need > phase_need:
            phase_need, phase_name = need, f"prepare {_opcode(op)}#{i}"
        requests += len(b.scratch(g, op))

    if requests:
        parts["scratch_handles"] += tail.alloc(b.scratch_handle * requests, b.ptr_align)
    # memory planning: scratch-request array, AllocationInfo array, planner working memory
    temp = _up(b.scratch_request * (requests + MAX_SCRATCH_PER_OP), b.ptr_align)
    temp = _up(temp + b.pointer * max(g.meta.get("subgraphs", 1), 1), b.ptr_align)
    temp = _up(temp + b.allocation_info * (len(g.tensors) + requests), b.ptr_align)
    need = _up(temp) + PLANNER_PER_BUFFER * len(bufs) + _up(tail.used)
    if need > phase_need:
        phase_need, phase_name = _up(need), "memory planning"

    # after planning: persistent TfLiteTensor structs for inputs and outputs
    for ids in (g.inputs, g.outputs):
        parts["io_tensors"] += tail.alloc(b.pointer * len(ids))
        for tid in ids:
            for size, align in _temp_tensor_bytes(g.tensors[tid], b):
                parts["io_tensors"] += tail.alloc(size, align)

    tail_bytes = tail.used
    invoke_need = _up(head) + _up(tail_bytes)
    total = max(invoke_need, phase_need)
    if total == invoke_need:
        phase_name = "invoke"
    breakdown = {"planned_activations": head_act_only, "scratch_buffers": head - head_act_only}
    breakdown.update(parts)
    breakdown["alignment"] = _up(head) - head + _up(tail_bytes) - tail_bytes
    breakdown["prepare_or_planning_temporaries"] = total - invoke_need
    assert sum(breakdown.values()) == total, breakdown
    if total > invoke_need:
        notes.append(f"the arena is bound by temporary memory during {phase_name}, "
                     f"{total - invoke_need:,d} B above the allocations that stay")
    if n_scratch:
        notes.append(f"{n_scratch} kernel scratch buffer(s) planned in the head")
    return TflmArenaEstimate(head_bytes=head, tail_bytes=tail_bytes, total_bytes=total, breakdown=breakdown,
                             binding_phase=phase_name, notes=notes,
                             offsets={b.id: off for b, off in zip(bufs, offsets)})
