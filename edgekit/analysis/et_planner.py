"""edgekit's arena planner inside ExecuTorch's memory planning (``MemoryPlanningPass``).

Why ExecuTorch's default plan of a portable (non-delegated) model is large
---------------------------------------------------------------------------
Measured on torchvision MobileNetV2-0.35 at 1x3x96x96 fp32, portable kernels (see
``benchmarks/et_memory_plan.py``): the stock plan is 5,129,120 B, of which 5,120,000 B
is ONE tensor: ``aten::permute_copy.out`` of the classifier weight (1000x1280 fp32).
``to_edge`` decomposes ``linear`` into ``permute_copy(weight) + addmm``; nothing folds the
permute of the constant weight, so the transposed weight is computed at run time into
the planned activation arena and lives there next to the real activations. ExecuTorch's
greedy planner is not the culprit: on ExecuTorch's own tensor lifetimes its plan equals
the liveness lower bound of that graph (5.13 MB). Its naive plan (11.4 MB) is the sum of
every planned tensor. Folding the constant subgraph (``ExecutorchBackendConfig(
do_quant_fusion_and_const_prop=True)``, ExecuTorch's ``constant_prop_pass``) moves the
transposed weight into the constant segment (the .pte does not grow: the original
weight is dropped) and the plan falls to 884,736 B, exactly the liveness lower bound.
Alignment (16 B), mutable buffers (none) and out-variant lifetimes cost nothing
measurable here.

ExecuTorch's greedy (``executorch.exir.memory_planning.greedy``) places tensors in
"shared objects": largest first, a tensor reuses a whole object whose tensors are all
dead, or stacks on top of the live ones inside it, else opens a new object; the arena is
the sum of the object sizes. It cannot place a tensor across two objects' boundary, so on
graphs with many mid-sized tensors of interleaved lifetimes (concat-heavy nets) it can
leave gaps that an offset-level planner fills.

The edgekit algorithm (``EdgekitPlanner``)
------------------------------------------
For each memory id (arena) separately, on ExecuTorch's own ``TensorSpec`` lifetimes
(``[first, last]`` node indices, inclusive, after ExecuTorch merged in-place/alias specs
into their storage base) and aligned sizes (``spec.realign(alignment)``):

1. build one ``planners.Buffer`` per spec that owns storage (specs with a
   ``storage_base`` are placed inside their base afterwards, at ``storage_base_offset``);
2. run three offset-level planners and keep the smallest arena:
   ``greedy_by_size`` (TFLite-Micro's: largest first, lowest aligned offset that fits),
   ``best_fit_by_size`` (largest first, the tightest gap between the buffers that are
   live at the same time, else on top) and ``best_fit_by_time`` (the same in order of
   first use);
3. also run ExecuTorch's ``greedy`` on the same specs; if it is smaller (never seen so
   far) its placement is used, so the result is never worse than ExecuTorch's planner;
4. check the chosen plan with ``planners.verify_plan`` (no two buffers overlap in time
   and address, offsets aligned) and give every set of storage-overlapping specs one
   ``mem_obj_id`` (the union of overlapping address ranges), which ExecuTorch's
   ``Verifier.verify_storage_reuse`` requires; ``EdgekitMemoryPlanningPass`` runs that
   verifier after planning (ExecuTorch runs it only for its own ``greedy``).

``graph_module.input_mem_buffer_sizes`` (space reserved for control-flow submodules) is
kept below the plan, and ``extra_padding`` (64 B when an XNNPACK delegate is present) is
added to each arena, as ExecuTorch's greedy does.

Everything that needs torch/executorch is imported inside the functions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgekit.analysis.converter_facts import INPLACE_ELEMENTWISE
from edgekit.analysis.planners import Buffer, Plan, align_up, lower_bound, plan_greedy_by_size, verify_plan
from edgekit.graph.kinds import PTE_KINDS


def plan_best_fit(buffers: list[Buffer], *, alignment: int = 16, order: str = "size") -> Plan:
    """Best fit: visit buffers largest first (``order="size"``) or by first use
    (``order="time"``); put each in the smallest gap between already placed buffers whose
    lifetimes overlap its own (ties: lowest offset), or above the highest of them."""
    if order == "size":
        seq = sorted(buffers, key=lambda b: (-b.size, b.first, b.id))
    elif order == "time":
        seq = sorted(buffers, key=lambda b: (b.first, -b.size, b.id))
    else:
        raise ValueError(f"unknown order {order!r}: choose size or time")
    placed: list[tuple[int, Buffer]] = []
    offsets: dict[int, int] = {}
    for b in seq:
        live = sorted(((off, p) for off, p in placed if p.size and p.overlaps_in_time(b)), key=lambda t: t[0])
        best = None  # (gap size, offset)
        cursor = 0
        for off, p in live:
            if off - cursor >= b.size and (best is None or off - cursor < best[0]):
                best = (off - cursor, cursor)
            cursor = max(cursor, align_up(off + p.size, alignment))
        offsets[b.id] = best[1] if best is not None else cursor
        placed.append((offsets[b.id], b))
    arena = max((offsets[b.id] + b.size for b in buffers), default=0)
    return Plan(f"best_fit_by_{order}", offsets, arena, alignment, list(buffers))


CANDIDATES = {
    "greedy_by_size": lambda bs, a: plan_greedy_by_size(bs, alignment=a),
    "best_fit_by_size": lambda bs, a: plan_best_fit(bs, alignment=a, order="size"),
    "best_fit_by_time": lambda bs, a: plan_best_fit(bs, alignment=a, order="time"),
}


def best_plan(buffers: list[Buffer], *, alignment: int) -> tuple[Plan, dict[str, int]]:
    """The smallest verified plan among CANDIDATES, and every candidate's arena size."""
    sizes, best = {}, None
    for name, fn in CANDIDATES.items():
        plan = fn(buffers, alignment)
        verify_plan(plan)
        sizes[name] = plan.arena_bytes
        if best is None or plan.arena_bytes < best.arena_bytes:
            best = plan
    return best, sizes


def mem_obj_ids(intervals: list[tuple[int, int, int]]) -> dict[int, int]:
    """(key, offset, size) -> key: id of its connected component of overlapping ranges."""
    out: dict[int, int] = {}
    comp, end = -1, -1
    for key, off, size in sorted(intervals, key=lambda t: (t[1], -t[2])):
        if size <= 0:
            continue
        if off >= end:
            comp += 1
        end = max(end, off + size)
        out[key] = comp
    for key, _off, size in intervals:
        if size <= 0:
            comp += 1
            out[key] = comp
    return out


@dataclass
class PlanStats:
    """What the last planning call did, per memory id (arena)."""

    algorithm: dict[int, str] = field(default_factory=dict)
    arena_bytes: dict[int, int] = field(default_factory=dict)  # including reserved space and padding
    lower_bound_bytes: dict[int, int] = field(default_factory=dict)
    naive_bytes: dict[int, int] = field(default_factory=dict)
    executorch_greedy_bytes: dict[int, int] = field(default_factory=dict)
    candidates: dict[int, dict[str, int]] = field(default_factory=dict)
    specs: int = 0


class EdgekitPlanner:
    """A memory planning algorithm for ``MemoryPlanningAlgorithmSuite(algo_list=[...])``.

    Called as ``algo(alignment, specs, graph_module, graph_signature, extra_padding)``
    and returns ExecuTorch's ``MemoryAlgoResult``. ``stats`` describes the last call on
    the top-level graph (control-flow submodules are planned first, through the same object).
    """

    __name__ = "edgekit"

    def __init__(self, *, compare_with_greedy: bool = True):
        self.compare_with_greedy = compare_with_greedy
        self.stats = PlanStats()

    def __call__(self, alignment, specs, graph_module, graph_signature, extra_padding=0):
        from executorch.exir.memory_planning import MemoryAlgoResult, SpecAllocResult, greedy

        specs = list(specs)
        reserved = list(getattr(graph_module, "input_mem_buffer_sizes", None) or [])
        by_mem: dict[int, list] = {}
        max_node = max(len(graph_module.graph.nodes) - 1, 0)
        for spec in specs:
            spec.realign(alignment)
            if spec.storage_base is None:
                by_mem.setdefault(1 if spec.mem_id is None else spec.mem_id, []).append(spec)
        et_greedy = None
        if self.compare_with_greedy and specs:
            et_greedy = greedy(alignment, specs, graph_module, graph_signature, extra_padding)
        result = MemoryAlgoResult({}, [])
        stats = PlanStats(specs=len(specs))
        bufsizes = [0] * (max([1, *by_mem]) + 1)
        use_greedy_for: set[int] = set()
        for mem_id, mspecs in sorted(by_mem.items()):
            base = reserved[mem_id] if mem_id < len(reserved) else 0
            buffers = []
            for i, s in enumerate(mspecs):
                first, last = s.lifetime if s.lifetime and None not in s.lifetime else (0, max_node)
                buffers.append(Buffer(id=i, size=int(s.allocated_memory), first=int(first), last=int(last)))
            plan, cand = best_plan(buffers, alignment=alignment)
            total = base + plan.arena_bytes + extra_padding
            algo = plan.algorithm
            if et_greedy is not None and mem_id < len(et_greedy.bufsizes) and et_greedy.bufsizes[mem_id] < total:
                use_greedy_for.add(mem_id)
                total, algo = et_greedy.bufsizes[mem_id], "executorch_greedy"
            bufsizes[mem_id] = total
            stats.algorithm[mem_id], stats.arena_bytes[mem_id], stats.candidates[mem_id] = algo, total, cand
            stats.lower_bound_bytes[mem_id] = lower_bound(buffers)
            stats.naive_bytes[mem_id] = sum(b.size for b in buffers)
            if et_greedy is not None and mem_id < len(et_greedy.bufsizes):
                stats.executorch_greedy_bytes[mem_id] = et_greedy.bufsizes[mem_id]
            if mem_id in use_greedy_for:
                for s in mspecs:
                    result.spec_dict[s] = et_greedy.spec_dict[s]
                continue
            ids = mem_obj_ids([(i, plan.offsets[i], b.size) for i, b in enumerate(buffers)])
            for i, s in enumerate(mspecs):
                result.spec_dict[s] = SpecAllocResult(mem_id=mem_id, mem_obj_id=ids[i],
                                                      mem_offset=base + plan.offsets[i])
        # storage-backed specs (in-place results, aliases) live inside their base
        pending = [s for s in specs if s.storage_base is not None]
        while pending:
            rest = []
            for s in pending:
                b = s.storage_base
                if b not in result.spec_dict:
                    rest.append(s)
                    continue
                br = result.spec_dict[b]
                result.spec_dict[s] = SpecAllocResult(mem_id=br.mem_id, mem_obj_id=br.mem_obj_id,
                                                      mem_offset=br.mem_offset + int(s.storage_base_offset))
            if len(rest) == len(pending):
                raise AssertionError(f"{len(rest)} storage-backed specs have no planned base")
            pending = rest
        result.bufsizes = bufsizes
        self.stats = stats  # apply_algo plans control-flow submodules first: the last call is the top level
        return result


# Out-variant kernels whose output element i depends only on input element i (same shape):
# ExecuTorch's portable kernels read in[i] and then write out[i] (apply_unary_map_fn,
# the batch-norm loop, the element-wise binary maps), so out may alias that input. The kinds
# are converter_facts.INPLACE_ELEMENTWISE; these are their ExecuTorch operator names.
ELEMENTWISE_OPS = frozenset(f"aten::{name}" for name, kind in PTE_KINDS.items() if kind in INPLACE_ELEMENTWISE)


def alias_elementwise_outputs(graph_module, graph_signature=None) -> int:
    """Let an element-wise out-variant op write into an input that dies at that op.

    For each call of an ``ELEMENTWISE_OPS`` kernel, if an operand (``self``, or the other
    operand of a binary op) has the output's shape, dtype and size, is an intermediate
    (not a graph input, output, constant or buffer) and this op is its last use, the
    output's ``TensorSpec`` gets ``storage_base`` = that operand's spec: ExecuTorch's
    memory planning then keeps the two in one allocation (the same mechanism it uses for
    in-place ops) and its ``Verifier`` accepts the overlap. Returns how many outputs were
    aliased. Call it on the graph the memory planning pass receives (out variants).
    """
    import torch
    from executorch.exir.memory_planning import get_node_tensor_specs, update_all_tensors_lifetime
    from executorch.exir.tensor import TensorSpec

    update_all_tensors_lifetime(graph_module, graph_signature)
    protected = set()
    for node in graph_module.graph.nodes:
        if node.op in ("placeholder", "output"):
            protected.update(id(s) for s in get_node_tensor_specs(node))
    aliased = 0
    for idx, node in enumerate(graph_module.graph.nodes):
        target = node.target
        if node.op != "call_function" or not isinstance(target, torch._ops.OpOverload):
            continue
        if target._schema.name not in ELEMENTWISE_OPS or not target._schema.overload_name.endswith("out"):
            continue
        out_specs = get_node_tensor_specs(node)
        out = out_specs[0] if out_specs else None
        if not isinstance(out, TensorSpec) or out.storage_base is not None or id(out) in protected or out.const:
            continue
        out_shape = tuple(out.shape)
        for arg in node.args[:2] if target._schema.name in ("aten::add", "aten::sub", "aten::mul", "aten::div") \
                else node.args[:1]:
            if not isinstance(arg, torch.fx.Node) or arg.op == "placeholder":
                continue
            specs = get_node_tensor_specs(arg)
            if len(specs) != 1 or not isinstance(specs[0], TensorSpec):
                continue
            src = specs[0]
            val = arg.meta.get("val")
            shape = tuple(val.shape) if isinstance(val, torch.Tensor) else tuple(src.shape)
            if (src is out or id(src) in protected or src.const or shape != out_shape or src.dtype != out.dtype
                    or src.nbytes() != out.nbytes() or src.lifetime[1] != idx
                    or src.shape_dynamism != out.shape_dynamism or src.mem_id != out.mem_id):
                continue
            out.storage_base, out.storage_base_offset = src, 0
            aliased += 1
            break
    return aliased


def edgekit_memory_planning_pass(*, planner: EdgekitPlanner | None = None, inplace: bool = True, **kwargs):
    """A ``MemoryPlanningPass`` that plans with ``EdgekitPlanner`` and verifies the result
    with ExecuTorch's ``Verifier.verify_storage_reuse``. With ``inplace``, element-wise ops
    first write into a dying input (``alias_elementwise_outputs``). ``kwargs`` go to the
    pass (``alloc_graph_input``, ``alloc_graph_output``, ``alignment``, ...). After
    ``to_executorch`` the pass carries ``edgekit_planner.stats``, ``aliased`` and
    ``reuse_pairs`` (pairs of tensors sharing memory, from the verifier)."""
    from executorch.exir.memory_planning import MemoryPlanningAlgorithmSuite, Verifier
    from executorch.exir.passes.memory_planning_pass import MemoryPlanningPass

    algo = planner or EdgekitPlanner()

    class EdgekitMemoryPlanningPass(MemoryPlanningPass):
        def run(self, graph_module, graph_signature=None):
            self.aliased = alias_elementwise_outputs(graph_module, graph_signature) if inplace else 0
            res = super().run(graph_module, graph_signature)
            verifier = Verifier(graph_module, self.alloc_graph_input, self.alloc_graph_output,
                                self.alloc_mutable_buffers and not self.share_mutable_buffers, graph_signature)
            self.reuse_pairs = verifier.verify_storage_reuse(self.allow_lifetime_and_storage_overlap)
            return res

    p = EdgekitMemoryPlanningPass(memory_planning_algo=MemoryPlanningAlgorithmSuite(algo_list=[algo]), **kwargs)
    p.edgekit_planner = algo
    return p


def planned_lower_bound(graph_module) -> int:
    """Liveness lower bound of the tensors a finished memory plan placed, on ExecuTorch's
    lifetimes (``spec.lifetime``), summed over memory ids. A spec backed by another's storage
    (in-place, alias) is inside its base; views share their base's spec."""
    from executorch.exir.memory_planning import get_node_tensor_specs
    from executorch.exir.tensor import TensorSpec

    seen: set[int] = set()
    by_mem: dict[int, list[Buffer]] = {}
    for node in graph_module.graph.nodes:
        for s in get_node_tensor_specs(node):
            if not isinstance(s, TensorSpec) or id(s) in seen or s.const or s.mem_offset is None:
                continue
            seen.add(id(s))
            if s.storage_base is not None or s.lifetime is None or None in s.lifetime:
                continue
            bs = by_mem.setdefault(s.mem_id or 1, [])
            bs.append(Buffer(id=len(bs), size=int(s.allocated_memory), first=int(s.lifetime[0]),
                             last=int(s.lifetime[1])))
    return sum(lower_bound(bs) for bs in by_mem.values())
