"""TFLite-Micro arena model: the ``arena_size`` a user must give ``MicroInterpreter``.

Pure arithmetic on the Graph IR of a .tflite (no torch, no tflite_micro). It replays what
TFLite-Micro's ``MicroAllocator`` does in ``AllocateTensors()`` for every subgraph and
returns the smallest arena with which every phase fits:

1. **Tail** (persistent, allocated downward from the arena end, each allocation aligned
   down): allocator/planner objects (a fixed block), the resource-variable table when the
   model has VAR_HANDLE ops, one ``TfLiteEvalTensor`` per tensor and one
   ``NodeAndRegistration`` per op of each subgraph, each op's parsed builtin options, each
   kernel's ``Init`` user data, what its ``Prepare`` allocates (per-channel multipliers,
   LUTs, copied dims, resource-variable buffers), scratch-buffer handles, the **variable
   tensors** (micro_allocator.cc AllocateVariables, during planning: the state of LSTM, SVDF
   and stateful models lives here, not in the plan) and persistent ``TfLiteTensor`` structs
   (+ quantization) for the graph inputs and outputs.
2. **Head** (``GreedyMemoryPlanner``): every non-constant, non-variable tensor of every
   subgraph and every kernel scratch buffer, sizes aligned to 16, lifetimes as in
   ``AllocationInfoBuilder`` (``tflm_plan.planned_buffers``), placed by the planner replica.
3. **Temporaries** the recorded "Arena allocation total" does not show but the arena must
   hold: during each kernel's ``Prepare`` the scratch-request array (16 B × (requests + 12))
   and the temporary ``TfLiteTensor`` structs with their quantization arrays it allocates
   (``tflm_kernels``: a weight tensor with C channels costs 4·C + 92 B while its kernel
   prepares); during planning the ``AllocationInfo`` array (32 B per tensor and scratch
   buffer) plus 40 B per planned buffer of planner working memory.

``total_bytes = max(head + tail, max over phases of (temporary head + tail at that time))``.

What each kernel allocates is in ``edgekit.analysis.tflm_kernels`` (one entry per kernel the
``tflite-micro`` package registers, each citing its source). An op without an entry, a
variant an entry rejects, or a tensor type TFLite-Micro cannot size is **not guessed**: the
estimate lists it in ``unmodelled`` (its total then leaves that op's kernel memory out) and
``require_modelled(est)`` raises ``UnmodelledError`` naming it.

Struct sizes (``TflmStructs``) are for the 64-bit host build of TFLite-Micro (the
``tflite-micro`` Python package: reference kernels, compression support compiled in,
``RecordingMicroAllocator``), ``HOST_64``; each names the TFLite-Micro source it comes from
and was confirmed against the RecordingMicroAllocator report on single-op and whole models
(``tests/test_tflm_arena.py``, ``tests/test_tflm_stateful.py``). A 32-bit MCU build has smaller
pointer-bearing structs (pass another ``TflmStructs``); optimized kernel libraries (CMSIS-NN,
ESP-NN, Xtensa) request scratch buffers the reference kernels do not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgekit.analysis import tflm_kernels as K
from edgekit.analysis.tflm_plan import PlannedBuffer, ScratchRequest, called_subgraphs, tflm_greedy_plan
from edgekit.analysis.tflm_plan import planned_buffers as _planned_buffers
from edgekit.errors import UnmodelledError
from edgekit.graph.ir import Graph, Op, Tensor

ALIGN = 16  # MicroArenaBufferAlignment()

__all__ = ["HOST_64", "TflmArenaEstimate", "TflmStructs", "planned_buffers", "predict_tflm_arena",
           "require_modelled", "tflm_greedy_plan", "unmodelled_ops"]


@dataclass(frozen=True)
class TflmStructs:
    """Sizes of TFLite-Micro's own structs on one build (bytes)."""

    name: str = "64-bit host (tflite-micro Python package)"
    # RecordingSingleArenaBufferAllocator + GreedyMemoryPlanner + RecordingMicroAllocator
    # (recording_micro_allocator.cc Create); with the two below, 488 B measured with one-op
    # models (TRANSPOSE/PAD/RELU/...: nothing else in the remainder)
    allocator_objects: int = 448
    builtin_data_allocator: int = 16  # MicroBuiltinDataAllocator {vtable*; allocator*} (StartModelAllocation)
    subgraph_allocations: int = 24  # SubgraphAllocations {NodeAndRegistration*; TfLiteEvalTensor*; compressed}
    eval_tensor: int = 24  # TfLiteEvalTensor {void* data; TfLiteIntArray* dims; TfLiteType type}
    node_and_registration: int = 64  # TfLiteNode (7 pointer-size fields) + const TFLMRegistration*
    tflite_tensor: int = 64  # TfLiteTensor as compiled for TFLM (TF_LITE_STATIC_MEMORY)
    affine_quant: int = 24  # TfLiteAffineQuantization {TfLiteFloatArray*; TfLiteIntArray*; int32}
    scratch_request: int = 16  # internal::ScratchBufferRequest {size_t bytes; int node_idx; int subgraph_idx}
    max_scratch_per_op: int = 12  # kMaxScratchBuffersPerOp (micro_allocator.cc)
    scratch_handle: int = 8  # ScratchBufferHandle {uint8_t* data}
    allocation_info: int = 32  # AllocationInfo {size_t bytes; void** output_ptr; int first, last, offline; bool}
    planner_per_buffer: int = 40  # GreedyMemoryPlanner::per_buffer_size(): BufferRequirements 16 + 3 int + ListEntry 12
    pointer: int = 8
    resource_variables: int = 16  # MicroResourceVariables {MicroResourceVariable*; int max; int count}
    resource_variable: int = 40  # MicroResourceVariable {container*, shared_name*, buffer*, size_t bytes, int8}


HOST_64 = TflmStructs()


@dataclass
class TflmArenaEstimate:
    """Predicted TFLite-Micro arena (bytes). ``breakdown`` sums to ``total_bytes``.

    ``unmodelled`` names what the model could not account for (``"SVDF"``-style op names,
    ``"tensor type string"``); when it is not empty ``total_bytes`` is a lower bound, not a
    prediction, and ``require_modelled`` raises.
    """

    head_bytes: int  # GreedyMemoryPlanner plan: activations + kernel scratch buffers
    tail_bytes: int  # persistent allocations after AllocateTensors()
    total_bytes: int  # minimum arena_size (multiple of 16)
    breakdown: dict[str, int] = field(default_factory=dict)
    binding_phase: str = "invoke"  # "invoke", "prepare <OP>#<i>" or "memory planning"
    notes: list[str] = field(default_factory=list)
    offsets: dict = field(default_factory=dict)  # planned buffer id -> head offset ((k, id) in subgraph k > 0)
    unmodelled: list[str] = field(default_factory=list)
    # the largest need of a temporary phase (a kernel's Prepare, memory planning), tail included: the
    # arena for another head of the same graph is max(align(head) + align(tail), phase_bytes)
    phase_bytes: int = 0
    unmodelled_reasons: dict[str, str] = field(default_factory=dict)
    structs: str = HOST_64.name

    @property
    def exact(self) -> bool:
        return not self.unmodelled


def require_modelled(est: TflmArenaEstimate) -> TflmArenaEstimate:
    """``est`` if every op was modelled, else UnmodelledError naming what was not."""
    if est.unmodelled:
        why = "; ".join(f"{name}: {est.unmodelled_reasons.get(name, 'not modelled')}" for name in est.unmodelled)
        raise UnmodelledError(f"cannot predict the TFLite-Micro arena: {why}")
    return est


# ---- what is not modelled ---------------------------------------------------------------------

def unmodelled_ops(graph: Graph, kernels: dict | None = None) -> dict[str, str]:
    """{name: reason} for every op kind and tensor type of ``graph`` (all subgraphs) the
    arena model cannot account for exactly (``kernels``: a kernel table other than
    ``tflm_kernels.KERNELS``, e.g. an optimized kernel library's)."""
    kernels = K.KERNELS if kernels is None else kernels
    out: dict[str, str] = {}
    for name in graph.meta.get("metadata", []):
        if name in K.METADATA_NOT_MODELLED:
            out[f"metadata {name}"] = K.METADATA_NOT_MODELLED[name]
    for g in _subgraphs(graph):
        for t in g.tensors:
            if t.dtype not in K.TYPE_BYTES:
                out.setdefault(f"tensor type {t.dtype}", "TFLite-Micro cannot size it (memory_helpers.cc "
                               f"TfLiteTypeSizeOf): AllocateTensors fails on tensor {t.name!r}")
        for op in g.ops:
            code = _opcode(op)
            kern = kernels.get(code)
            if code in K.NOT_MODELLED and kern is None:
                out.setdefault(code, K.NOT_MODELLED[code])
            elif kern is None:
                out.setdefault(code, "its kernel's memory is not modelled" if code in K.REGISTERED
                               else "TFLite-Micro (tflite-micro Python package) has no kernel for it")
            elif kern.check is not None:
                reason = kern.check(g, op)
                if reason:
                    out.setdefault(code, reason)
    return out


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


def _subgraphs(g: Graph) -> list[Graph]:
    return [g, *getattr(g, "subgraphs", [])]


def _opcode(op: Op) -> str:
    return op.attrs.get("opcode") or op.kind.upper()


def _channels(t: Tensor) -> int:
    q = t.quant
    if q is None or q.num_scales <= 0 or getattr(q, "num_zero_points", 1) <= 0:
        return 0  # micro_allocator.cc: quantization is read only with scales and zero points
    return q.num_scales


def _tensor_structs(t: Tensor, s: TflmStructs) -> list[tuple[int, int]]:
    """(size, align) of a TfLiteTensor for ``t`` with its quantization
    (micro_allocator.cc InitializeTfLiteTensorFromFlatbuffer)."""
    allocs = [(s.tflite_tensor, 8)]
    c = _channels(t)
    if c > 0:
        allocs += [(s.affine_quant, 8), (4 + 4 * c, 4)]
    return allocs


def _kernel(op: Op, kernels: dict) -> K.Kernel:
    return kernels.get(_opcode(op)) or _NOTHING


_NOTHING = K.Kernel(prepare="")  # an unmodelled op: only what every node costs


def _prepare_program(g: Graph, op: Op, kern: K.Kernel) -> list:
    """The kernel's Prepare as a list of Tensor (a temporary TfLiteTensor) and "P"/"p" (its
    persistent allocations; see tflm_kernels.Kernel.prepare)."""
    prog = kern.prepare(g, op) if callable(kern.prepare) else kern.prepare
    slots = K.slots(op)
    events: list = []
    for tok in prog.split():
        if tok in ("P", "p"):
            events.append(tok)
        elif tok[0] == "i" and tok.endswith("*"):  # i*: every input, i1*: from input 1 on
            events += [g.tensors[t] for t in slots[int(tok[1:-1] or 0):] if t >= 0]
        elif tok == "o*":
            events += [g.tensors[t] for t in op.outputs]
        elif tok[0] == "i":
            k = int(tok[1:])
            if k < len(slots) and slots[k] >= 0:
                events.append(g.tensors[slots[k]])
        elif tok[0] == "o":
            k = int(tok[1:])
            if k < len(op.outputs):
                events.append(g.tensors[op.outputs[k]])
    if "P" not in events and "p" not in events:
        events.append("P")
    return events


def _scratch(g: Graph, op: Op, kern: K.Kernel) -> list[int]:
    return kern.scratch(g, op) if kern.scratch is not None else []


def _persistent(g: Graph, op: Op, kern: K.Kernel) -> list[int]:
    return kern.persistent(g, op) if kern.persistent is not None else []


def _tensor_bytes(t: Tensor) -> int:
    return K.nbytes(t)


def _scratch_requests(graphs: list[Graph], kernels: dict) -> list[ScratchRequest]:
    return [ScratchRequest(n, k, i) for k, g in enumerate(graphs) for i, op in enumerate(g.ops)
            for n in _scratch(g, op, _kernel(op, kernels))]


def _var_handles(graphs: list[Graph]) -> tuple[dict, set]:
    """VAR_HANDLE outputs -> resource name, and the (subgraph, tensor) pairs they point at
    their own OpData (var_handle.cc Prepare: never planned)."""
    names: dict = {}
    for k, g in enumerate(graphs):
        for op in g.ops:
            if _opcode(op) == "VAR_HANDLE" and op.outputs:
                o = op.attrs.get("options") or {}
                names[(k, op.outputs[0])] = (o.get("container") or "", o.get("sharedName") or "")
    return names, set(names)


def planned_buffers(g: Graph, kernels: dict | None = None) -> list[PlannedBuffer]:
    """The buffers TFLite-Micro plans for ``g`` (all its subgraphs), in AddBuffer order."""
    graphs = _subgraphs(g)
    _, unplanned = _var_handles(graphs)
    reqs = _scratch_requests(graphs, K.KERNELS if kernels is None else kernels)
    return _planned_buffers(graphs, reqs, _tensor_bytes, unplanned)


# ---- the replay ------------------------------------------------------------------------------

_PARTS = ["fixed_overhead", "resource_variables", "eval_tensors", "node_structs", "builtin_data", "op_data",
          "prepare_persistent", "scratch_handles", "variable_tensors", "io_tensors"]


class _Replay:
    """The allocator state while AllocateTensors() runs: the tail and the worst phase."""

    def __init__(self, s: TflmStructs, kernels: dict):
        self.s = s
        self.kernels = kernels
        self.tail = _Tail()
        self.parts = dict.fromkeys(_PARTS, 0)
        self.need, self.phase = 0, "invoke"

    def alloc(self, part: str, size: int, align: int = ALIGN) -> None:
        self.parts[part] += self.tail.alloc(size, align)

    def peak(self, temp_end: int, phase: str) -> None:
        """A temporary allocation ends at ``temp_end`` (bytes from the arena start)."""
        need = _up(temp_end + self.tail.used)
        if need > self.need:
            self.need, self.phase = need, phase


def _model_start(r: _Replay, graphs: list[Graph], n_resources: int) -> None:
    """From the allocator's creation to the end of Init (micro_interpreter.cc AllocateTensors:
    StartModelAllocation, PrepareNodeAndRegistrationDataFromFlatbuffer, InitSubgraphs)."""
    s = r.s
    r.alloc("fixed_overhead", s.allocator_objects, 8)
    if n_resources:  # interpreter_wrapper.cc: MicroResourceVariables::Create(allocator, n)
        r.alloc("resource_variables", s.resource_variables)
        r.alloc("resource_variables", s.resource_variable * n_resources)
    r.alloc("fixed_overhead", s.builtin_data_allocator, 8)
    r.alloc("fixed_overhead", s.subgraph_allocations * len(graphs), 8)
    for g in graphs:
        r.alloc("eval_tensors", s.eval_tensor * len(g.tensors), 8)
    for g in graphs:
        r.alloc("node_structs", s.node_and_registration * len(g.ops), 8)
    for g in graphs:
        for op in g.ops:
            if _kernel(op, r.kernels).builtin_data:
                r.alloc("builtin_data", *_kernel(op, r.kernels).builtin_data)
    for g in graphs:
        for op in g.ops:
            init = _kernel(op, r.kernels).op_data
            for n in (init(g, op) if callable(init) else [init] if init else []):
                r.alloc("op_data", n)


def _prepare_all(r: _Replay, graphs: list[Graph], resources: dict) -> int:
    """Every kernel's Prepare, subgraph by subgraph (micro_interpreter_graph.cc
    PrepareSubgraphs): persistent allocations and the temporary peak. Returns the number of
    scratch-buffer requests."""
    s = r.s
    requests = 0
    allocated: set = set()  # resource variables given a buffer (micro_resource_variable.cc Allocate)
    for k, g in enumerate(graphs):
        for i, op in enumerate(g.ops):
            kern = _kernel(op, r.kernels)
            head = _up(s.scratch_request * (requests + s.max_scratch_per_op), 8)
            temp = head
            persistent = _persistent(g, op, kern) + _resource_buffer(g, k, op, resources, allocated)
            where = f"prepare {_opcode(op)}#{i}" + (f" (subgraph {k})" if k else "")
            for ev in _prepare_program(g, op, kern):
                if ev in ("P", "p"):
                    # AllocatePersistentBuffer checks the tail against the head only, not
                    # against the temporaries: "p" (allocated after the temporaries' last use)
                    # may overlap them; "P" (written while they are read: FULLY_CONNECTED's
                    # per-channel multipliers segfault 16 B short of clearing them) may not.
                    for n in persistent:
                        r.alloc("prepare_persistent", n)
                        if ev == "P":
                            r.peak(temp, where)
                    continue
                for size, align in _tensor_structs(ev, s):
                    temp = _up(temp, align) + size
                    r.peak(temp, where)
            requests += len(_scratch(g, op, kern))
    return requests


def _resource_buffer(g: Graph, k: int, op: Op, resources: dict, allocated: set) -> list[int]:
    """assign_variable.cc Prepare: the first ASSIGN_VARIABLE of a resource whose VAR_HANDLE
    ran earlier in the same subgraph allocates the variable's buffer (tensor bytes)."""
    if _opcode(op) != "ASSIGN_VARIABLE" or len(op.inputs) < 2:
        return []
    handle = resources.get((k, op.inputs[0]))
    producer = g.tensors[op.inputs[0]].producer
    if handle is None or producer is None or producer >= op.index or handle in allocated:
        return []
    allocated.add(handle)
    return [_tensor_bytes(g.tensors[op.inputs[1]])]


def _plan(r: _Replay, graphs: list[Graph], requests: int, bufs: list[PlannedBuffer]) -> None:
    """FinishModelAllocation: scratch handles, then CommitStaticMemoryPlan's temporaries,
    the variable tensors (AllocateVariables) and the planner's working memory."""
    s = r.s
    if requests:
        r.alloc("scratch_handles", s.scratch_handle * requests, 8)
    temp = _up(s.scratch_request * (requests + s.max_scratch_per_op), 8)
    temp = _up(temp + 8 * len(graphs), 8)  # AllocationInfoBuilder: subgraph offsets (size_t each)
    temp = _up(temp + s.allocation_info * (sum(len(g.tensors) for g in graphs) + requests), 8)
    for g in graphs:
        for t in g.tensors:
            if t.is_variable:
                r.alloc("variable_tensors", _tensor_bytes(t))
    r.peak(_up(temp) + s.planner_per_buffer * len(bufs) + (_up(r.tail.used) - r.tail.used), "memory planning")


def _io_tensors(r: _Replay, g: Graph) -> None:
    """micro_interpreter.cc AllocateTensors, after planning: the input and output TfLiteTensor
    pointer arrays and a persistent TfLiteTensor (+ quantization) for each."""
    for ids in (g.inputs, g.outputs):
        r.alloc("io_tensors", r.s.pointer * len(ids))
        for tid in ids:
            for size, align in _tensor_structs(g.tensors[tid], r.s):
                r.alloc("io_tensors", size, align)


def predict_tflm_arena(graph: Graph, *, structs: TflmStructs = HOST_64, kernels: dict | None = None,
                       offline_offsets: dict[int, int] | None = None) -> TflmArenaEstimate:
    """Predict the minimum TFLite-Micro arena for a graph read from a .tflite.

    ``offline_offsets`` ({tensor id of the main subgraph: head offset}): an offline memory plan (an
    ``OfflineMemoryAllocation`` entry); those tensors sit where it says, the rest and the kernel scratch
    buffers are placed around them, as GreedyMemoryPlanner does. The tail is unchanged.

    ``structs``: TFLite-Micro's struct sizes on the build (``HOST_64``: the Python package);
    ``kernels``: the kernel table (default ``tflm_kernels.KERNELS``, the reference kernels);
    a target with an optimized kernel library passes its own (e.g. CMSIS-NN's scratch buffers).
    """
    kernels = K.KERNELS if kernels is None else kernels
    graphs = _subgraphs(graph)
    reasons = unmodelled_ops(graph, kernels)
    if offline_offsets is not None:  # the caller placed the offline-planned tensors (the entry is modelled)
        reasons.pop("metadata OfflineMemoryAllocation", None)
    resources, unplanned = _var_handles(graphs)
    r = _Replay(structs, kernels)
    _model_start(r, graphs, len(set(resources.values())))
    requests = _prepare_all(r, graphs, resources)
    reqs = _scratch_requests(graphs, kernels)
    bufs = _planned_buffers(graphs, reqs, _tensor_bytes, unplanned)
    _plan(r, graphs, requests, bufs)
    fixed = [offline_offsets.get(b.id) if offline_offsets and b.id >= 0 and b.subgraph == 0 else None
             for b in bufs]
    offsets, head = tflm_greedy_plan([b.size for b in bufs], [b.first for b in bufs], [b.last for b in bufs], fixed)
    act = [b for b in bufs if b.id >= 0]
    _, head_act_only = tflm_greedy_plan([b.size for b in act], [b.first for b in act], [b.last for b in act],
                                        [f for f, b in zip(fixed, bufs) if b.id >= 0])
    _io_tensors(r, graph)

    tail_bytes = r.tail.used
    invoke_need = _up(head) + _up(tail_bytes)
    total = max(invoke_need, r.need)
    phase = "invoke" if total == invoke_need else r.phase
    breakdown = {"planned_activations": head_act_only, "scratch_buffers": head - head_act_only, **r.parts}
    breakdown["alignment"] = _up(head) - head + _up(tail_bytes) - tail_bytes
    breakdown["prepare_or_planning_temporaries"] = total - invoke_need
    assert sum(breakdown.values()) == total, breakdown
    notes = _notes(graphs, total, invoke_need, phase, len(bufs) - len(act), reasons)
    return TflmArenaEstimate(
        head_bytes=head, tail_bytes=tail_bytes, total_bytes=total, breakdown=breakdown, binding_phase=phase,
        notes=notes, offsets={(b.id if b.subgraph == 0 or b.id < 0 else (b.subgraph, b.id)): off
                              for b, off in zip(bufs, offsets)},
        unmodelled=sorted(reasons), unmodelled_reasons=reasons, structs=structs.name, phase_bytes=r.need)


def _notes(graphs, total, invoke_need, phase, n_scratch, reasons) -> list[str]:
    notes = []
    if reasons:
        notes.append("not modelled (the total leaves their kernel memory out): "
                     + "; ".join(f"{k}: {v}" for k, v in sorted(reasons.items())))
    if len(graphs) > 1:
        called = sorted({s for g in graphs for op in g.ops for s in called_subgraphs(op)})
        notes.append(f"{len(graphs)} subgraphs, all planned together (called by control flow: {called or 'none'})")
    if total > invoke_need:
        notes.append(f"the arena is bound by temporary memory during {phase}, "
                     f"{total - invoke_need:,d} B above the allocations that stay")
    if n_scratch:
        notes.append(f"{n_scratch} kernel scratch buffer(s) planned in the head")
    n_var = sum(1 for g in graphs for t in g.tensors if t.is_variable)
    if n_var:
        notes.append(f"{n_var} variable (state) tensor(s) kept in the tail")
    return notes
