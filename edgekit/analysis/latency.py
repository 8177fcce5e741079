"""The latency cost model: an estimate from a graph's ops and a target's ``[latency]``
(`edgekit profile --emulate`, the reports' latency, the sweep; ``edgekit.profile.emulate`` loads the models).

Always an estimate (``estimate=True`` wherever it is shown). No device, no runtime: the IR ops
(kind, MACs, bytes) of the model as captured by ``torch.export`` or read from a .tflite.

**Which ops cost anything.** The runtimes fuse what a graph captured in PyTorch still shows
separately: BatchNorm after a convolution is folded into it, and a ReLU/ReLU6/ReLU1 after a
convolution, fully-connected layer, add/sub/mul/div, pooling or BatchNorm is a fused activation
(``analysis.converter_facts``, measured). Those cost nothing here. Views (reshape, flatten,
dropout in eval) cost nothing but, on a .tflite, a RESHAPE is still an op the interpreter
dispatches (overhead only). Every other op is one dispatched operator.

**mcu-cycles** (TFLite-Micro + CMSIS-NN on a Cortex-M)::

    cycles(op) = macs * cycles_per_mac[kind]                    (conv2d, depthwise_conv2d, linear)
               | output elements * cycles_per_mac.elementwise   (add, mul, hard-swish, pad, concat, ...)
               | input elements * cycles_per_mac.pool           (max/avg pool, mean)
               + op_overhead_cycles
    ms = sum(cycles) / clock

**roofline** (phones, Raspberry Pis, this host; LiteRT/ExecuTorch with XNNPACK)::

    t(op) = max(macs / (peak_gmacs(dtype) * efficiency[kind] * thread_scale),
                bytes moved / mem_bandwidth) + op_overhead_us
    bytes moved = input activations + output + weights of the op, in the model's dtype
    thread_scale = min(threads, cores) / threads the peaks were measured with

``efficiency`` is one small table for every roofline target (``ROOFLINE_EFFICIENCY``):
the targets' peaks are sustained *dense* rates, and depthwise convolutions reach far less of
them (few MACs per byte, no register blocking over input channels). Its values were fitted on
the ``calibration`` rows of all roofline targets together and checked on the ``validation``
rows (docs/latency.md); the per-target peaks, bandwidths and overheads are the ones in
``targets/*.toml``, unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from edgekit.analysis.converter_facts import BN_FOLDS_INTO, FUSED_ACTIVATIONS, FUSES_ACT_INTO
from edgekit.errors import UsageError
from edgekit.graph.ir import MODEL_DTYPES, model_dtype_bytes

DENSE_KINDS = {"conv1d": "conv2d", "conv2d": "conv2d", "conv3d": "conv2d", "conv_transpose": "conv2d",
               "depthwise_conv2d": "depthwise_conv2d", "linear": "linear"}
POOL_KINDS = {"max_pool", "avg_pool", "mean", "sum"}
FUSABLE_ACTS = frozenset(FUSED_ACTIVATIONS)
# a ReLU after a BatchNorm is fused too: into the conv the BN folds into, or into the BN's ADD
FUSING_PRODUCERS = FUSES_ACT_INTO | {"batch_norm"}
FREE_KINDS = {"view"}
DISPATCH_ONLY = {"reshape"}  # a .tflite RESHAPE/SQUEEZE: no data moved, but an operator is dispatched

# Fitted on the calibration rows of all roofline targets (see docs/latency.md); dense = 1 by definition
# of the targets' peaks.
ROOFLINE_EFFICIENCY = {"conv2d": 1.0, "linear": 1.0, "depthwise_conv2d": 0.3, "elementwise": 1.0, "pool": 1.0}

@dataclass
class LayerEstimate:
    name: str
    op: str  # the IR kind
    cost_kind: str  # conv2d | depthwise_conv2d | linear | elementwise | pool | fused | free | dispatch
    macs: int
    bytes: int
    ms: float
    compute_ms: float = 0.0
    memory_ms: float = 0.0
    overhead_ms: float = 0.0
    bound: str = ""  # compute | memory | overhead | fused | free


@dataclass
class Estimate:
    target: str
    model: str
    dtype: str
    threads: int | None
    cost_model: str  # mcu-cycles | roofline
    total_ms: float
    layers: list[LayerEstimate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ops_counted(self) -> int:
        return sum(1 for layer in self.layers if layer.cost_kind not in ("fused", "free"))

    def by_kind(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for layer in self.layers:
            out[layer.cost_kind] = out.get(layer.cost_kind, 0.0) + layer.ms
        return out

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ops_counted"] = self.ops_counted
        return d


def _elements(graph, tids) -> int:
    return sum(graph.tensors[t].numel for t in tids if not graph.tensors[t].is_const)


def _act_bytes(graph, tids) -> int:
    """Activation bytes (the capture already gives activations the model's dtype)."""
    return sum(graph.tensors[t].nbytes for t in tids if not graph.tensors[t].is_const)


def _weight_bytes(graph, tids, elem_bytes: int | None) -> int:
    """Constant bytes; for a captured PyTorch graph, weights are counted in the model's dtype."""
    total = 0
    for t in tids:
        ten = graph.tensors[t]
        if ten.is_const:
            total += ten.numel * elem_bytes if elem_bytes is not None else ten.nbytes
    return total


def classify(graph, *, xnnpack: bool = False) -> list[str]:
    """The cost kind of every op: conv2d/depthwise_conv2d/linear/elementwise/pool, or fused/free/dispatch.
    ``xnnpack``: the target runs XNNPACK (the roofline targets), which folds a constant PAD into the
    convolution that reads it (XNNPACK subgraph optimisation: static padding fused into the conv's
    own padding), so such a PAD costs nothing."""
    kinds = []
    for op in graph.ops:
        k = op.kind
        if xnnpack and k == "pad" and _feeds_only_convs(graph, op):
            kinds.append("fused")
            continue
        if k in FREE_KINDS:
            kinds.append("free")
            continue
        if k in DISPATCH_ONLY:
            kinds.append("dispatch")
            continue
        if k in DENSE_KINDS:
            kinds.append("conv2d" if k == "depthwise_conv2d" and _one_input_channel(graph, op) else DENSE_KINDS[k])
            continue
        if k in POOL_KINDS:
            kinds.append("pool")
            continue
        producer = _producer_kind(graph, op)
        if k == "batch_norm" and producer in BN_FOLDS_INTO:
            kinds.append("fused")
            continue
        if k in FUSABLE_ACTS and producer in FUSING_PRODUCERS:
            kinds.append("fused")
            continue
        kinds.append("elementwise")
    return kinds


def _feeds_only_convs(graph, op) -> bool:
    readers = [graph.ops[c] for t in op.outputs for c in graph.tensors[t].consumers]
    return bool(readers) and all(r.kind in ("conv2d", "depthwise_conv2d") for r in readers)


def _one_input_channel(graph, op) -> bool:
    """A depthwise conv over a single input channel (the converter's spelling of a dense conv with one
    input channel, e.g. the DS-CNN keyword spotter's first layer: DEPTHWISE_CONV_2D, multiplier 64).
    Every output channel reads the same input window, as in a dense conv, and it is charged as one: the
    published DS-CNN latency on nucleo-l4r5zi (181.9 ms) is 214 ms with that layer at the conv rate and
    340 ms at the depthwise rate (docs/latency.md)."""
    acts = [t for t in op.inputs if not graph.tensors[t].is_const]
    if not acts:
        return False
    shape = graph.tensors[acts[0]].shape
    if len(shape) != 4:
        return False
    channels = shape[1] if graph.source_format == "torch" and not graph.meta.get("lowered_from") else shape[-1]
    return channels == 1


def runtime_view(g, target):
    """The graph the target's runtime runs, for the estimate: a captured PyTorch graph lowered as the TFLite
    converter lowers it when the target runs a .tflite (TFLite-Micro or LiteRT), so a network gets the same
    estimate whether it comes in as PyTorch or as the built file (its PADs, TRANSPOSEs and fused
    activations); a graph the lowering cannot model exactly is estimated as captured."""
    from edgekit.errors import NotModelledError

    if g.source_format != "torch" or target is None or target.runtime.default not in ("tflite-micro", "litert"):
        return g
    from edgekit.analysis.lowering import lower_for_tflite

    try:
        return lower_for_tflite(g)
    except NotModelledError:
        return g


def _producer_kind(graph, op):
    acts = [t for t in op.inputs if not graph.tensors[t].is_const]
    if not acts:
        return None
    p = graph.tensors[acts[0]].producer
    seen = 0
    # look through views (flatten/reshape between a conv and its activation change nothing)
    while p is not None and graph.ops[p].kind in FREE_KINDS and seen < 8:
        ins = [t for t in graph.ops[p].inputs if not graph.tensors[t].is_const]
        p = graph.tensors[ins[0]].producer if ins else None
        seen += 1
    return graph.ops[p].kind if p is not None else None


def estimate_graph(graph, target, *, dtype: str, threads: int | None = None, model: str | None = None,
                   efficiency: dict | None = None) -> Estimate:
    """Estimate latency of ``graph`` (edgekit IR) on ``target`` (a Target) for ``dtype``."""
    from edgekit.targets import Target

    if not isinstance(target, Target):
        from edgekit.targets import load_target

        target = load_target(target)
    if dtype not in MODEL_DTYPES:
        raise UsageError(f"unknown dtype {dtype!r} for the latency estimate: choose fp32, fp16 or int8")
    lat = target.latency
    kinds = classify(graph, xnnpack=target.latency.model == "roofline")
    elem = model_dtype_bytes(dtype) if graph.source_format == "torch" else None
    layers: list[LayerEstimate] = []
    notes: list[str] = []
    if lat.model == "mcu-cycles":
        cpm = lat.cycles_per_mac
        clock = target.clock_hz
        for op, ck in zip(graph.ops, kinds):
            nbytes = _act_bytes(graph, op.inputs) + _act_bytes(graph, op.outputs)
            if ck in ("fused", "free"):
                layers.append(LayerEstimate(op.source or op.name, op.kind, ck, op.macs, nbytes, 0.0, bound=ck))
                continue
            if ck in ("conv2d", "depthwise_conv2d", "linear"):
                cycles = op.macs * cpm[ck]
            elif ck == "pool":
                cycles = _elements(graph, op.inputs) * cpm.pool
            elif ck == "elementwise":
                cycles = _elements(graph, op.outputs) * cpm.elementwise
            else:  # dispatch
                cycles = 0.0
            over = lat.op_overhead_cycles or 0.0
            ms = (cycles + over) / clock * 1e3
            layers.append(LayerEstimate(op.source or op.name, op.kind, ck, op.macs, nbytes, ms,
                                        compute_ms=cycles / clock * 1e3, overhead_ms=over / clock * 1e3,
                                        bound="compute" if cycles >= over else "overhead"))
        used_threads = 1
        if dtype != "int8":
            notes.append(f"the {target.id} cycle counts are for int8 CMSIS-NN kernels; a {dtype} model would be "
                         f"much slower on this MCU")
    elif lat.model == "roofline":
        eff = dict(ROOFLINE_EFFICIENCY)
        eff.update(efficiency or {})
        base_threads = lat.threads or target.cpu.num_cores
        used_threads = threads or base_threads
        scale = min(used_threads, target.cpu.num_cores) / base_threads
        peak = lat.peak_gmacs(dtype) * 1e9 * scale
        bw = lat.mem_bandwidth_gbps * 1e9
        over_ms = (lat.op_overhead_us or 0.0) / 1e3
        for op, ck in zip(graph.ops, kinds):
            nbytes = (_act_bytes(graph, op.inputs) + _act_bytes(graph, op.outputs)
                      + _weight_bytes(graph, op.inputs, elem))
            if ck in ("fused", "free"):
                layers.append(LayerEstimate(op.source or op.name, op.kind, ck, op.macs, nbytes, 0.0, bound=ck))
                continue
            if ck == "dispatch":
                layers.append(LayerEstimate(op.source or op.name, op.kind, ck, 0, 0, over_ms, overhead_ms=over_ms,
                                            bound="overhead"))
                continue
            work = op.macs if ck in ("conv2d", "depthwise_conv2d", "linear") else _elements(
                graph, op.inputs if ck == "pool" else op.outputs)
            compute_ms = work / (peak * eff.get(ck, 1.0)) * 1e3
            memory_ms = nbytes / bw * 1e3
            ms = max(compute_ms, memory_ms) + over_ms
            bound = "compute" if compute_ms >= memory_ms else "memory"
            if over_ms > max(compute_ms, memory_ms):
                bound = "overhead"
            layers.append(LayerEstimate(op.source or op.name, op.kind, ck, op.macs, nbytes, ms, compute_ms=compute_ms,
                                        memory_ms=memory_ms, overhead_ms=over_ms, bound=bound))
        if used_threads > target.cpu.num_cores:
            notes.append(f"{used_threads} threads on {target.cpu.num_cores} cores: counted as {target.cpu.num_cores}")
    else:  # pragma: no cover - targets.py validates the model name
        raise UsageError(f"{target.id}: unknown latency model {lat.model!r}")
    total = sum(layer.ms for layer in layers)
    return Estimate(target=target.id, model=model or graph.name, dtype=dtype, threads=used_threads,
                    cost_model=lat.model, total_ms=total, layers=layers, notes=notes)
