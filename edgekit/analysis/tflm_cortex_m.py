"""TFLite-Micro's arena on a Cortex-M with CMSIS-NN kernels: the 32-bit build's struct sizes
(:data:`CORTEX_M_32`, a ``tflm_arena.TflmStructs``) and the CMSIS-NN kernels' OpData and scratch
buffers (:func:`cmsis_nn_kernels`, a ``tflm_kernels`` table).

``predict_tflm_arena(graph, structs=CORTEX_M_32, kernels=cmsis_nn_kernels())`` (or
:func:`predict_cortex_m_arena`) predicts the ``arena_size`` a board running
TFLite-Micro with ``OPTIMIZED_KERNEL_DIR=cmsis_nn`` (and the plain ``MicroAllocator``) needs; the
measured counterpart is ``edgekit.emulator.emulated_min_arena``. Sources: TFLite-Micro @ 90b983c2
and CMSIS-NN @ 4ab83cc3 (the pins of ``edgekit/emulator/tflm_sources.txt``); struct sizes for
``arm-none-eabi`` (ILP32: 4-byte pointers, ``size_t`` and ``int``; 8-byte ``double``/``int64``
aligned to 8), confirmed by the emulator's ``sizes`` mode (``emulated_struct_sizes``).

What differs from the host model (``tflite_micro``, 64-bit, reference kernels, compression on):

1. **Tail, 32-bit structs** (``harness`` sizes, micro_allocator.h / common.h):
   ``TfLiteEvalTensor`` 12 (host 24), ``NodeAndRegistration`` 32 (``TfLiteNode`` 28 + registration
   pointer; host 64), ``TfLiteTensor`` 32 (host 64), ``TfLiteAffineQuantization`` 12 (host 24),
   ``ScratchBufferRequest`` 12 (host 16), ``ScratchBufferHandle`` 4 (host 8), ``AllocationInfo``
   24 (host 32), pointers 4 and ``alignof`` 4 for all of them; ``GreedyMemoryPlanner::per_buffer_size``
   is 40 on both (ints only).
2. **Fixed tail** of the plain ``MicroAllocator`` (micro_allocator.cc ``Create`` and
   ``StartModelAllocation``, ``GetDefaultTailUsage``): ``SingleArenaBufferAllocator`` 36 +
   ``GreedyMemoryPlanner`` 44 + ``MicroAllocator`` 36 + ``MicroBuiltinDataAllocator`` 8 (vtable
   pointer + allocator pointer) + ``SubgraphAllocations`` 8 per subgraph (no compression pointer)
   = 132 B. The host's 488 B is the ``RecordingMicroAllocator`` the Python package always uses.
3. **Kernel OpData** (``Init``'s ``AllocatePersistentBuffer``, 32-bit, no ``USE_TFLM_COMPRESSION``),
   :data:`OP_DATA_32`; kernels without pointers keep the host's size (``tflm_kernels.KERNELS``).
4. **CMSIS-NN scratch buffers** (``Prepare``'s ``RequestScratchBufferInArena``; Armv7E-M with the
   DSP extension, i.e. ``ARM_MATH_DSP`` without ``ARM_MATH_MVEI``), :func:`cmsis_nn_scratch`:

   * CONV_2D int8 (kernels/cmsis_nn/conv.cc -> ``arm_convolve_wrapper_s8_get_buffer_size_dsp``,
     Source/ConvolutionFunctions/arm_convolve_get_buffer_sizes_s8.c): a 1x1 convolution without
     padding and dilation (``arm_nn_is_convolve_1x1``) needs nothing with GCC (Arm Compiler 6:
     ``4 * C_in`` when the stride is 1); otherwise (1xN or im2col) ``arm_convolve_s8_get_buffer_size``
     = ``2 * align4(K_h * K_w * C_in) * sizeof(int16)``;
   * DEPTHWISE_CONV_2D int8 (kernels/cmsis_nn/depthwise_conv.cc ->
     ``arm_depthwise_conv_wrapper_s8_get_buffer_size_dsp``, arm_depthwise_conv_get_buffer_sizes_s8.c):
     with channel multiplier 1, batch 1 and no dilation, 3x3 with padding <= 1 needs nothing,
     any other kernel ``C_in * K_h * K_w * sizeof(int16)``; other multipliers nothing;
   * AVERAGE_POOL_2D int8 (kernels/cmsis_nn/pooling.cc ``AveragePrepare`` ->
     ``arm_avgpool_s8_get_buffer_size_dsp``): ``C * sizeof(int32)``;
   * FULLY_CONNECTED int8 (kernels/cmsis_nn/fully_connected.cc): ``arm_fully_connected_s8_get_buffer_size_dsp``
     is 0; only the conv-1x1 path (output rank > 2 and accumulation depth % 4 == 0) asks, with
     per-tensor quantization, for ``2 * sizeof(int32) * output_depth`` of fake per-channel data;
   * MEAN and the other ops without a CMSIS-NN kernel keep the reference kernels' requests.

Limits: TRANSPOSE_CONV, SVDF, UNIDIRECTIONAL_SEQUENCE_LSTM and BATCH_MATMUL keep the host
model's (reference-kernel) figures, and so do the OpData of reference kernels not listed in
:data:`OP_DATA_32` (a few pointer bytes too many where they hold pointers); int16 and int4
CMSIS-NN paths are not modelled. The struct alignment of the replay stays the host's 8 (32-bit:
4), which can add a few bytes.
"""

from __future__ import annotations

from dataclasses import replace

from edgekit.analysis import tflm_kernels as K
from edgekit.analysis.tflm_arena import TflmStructs, predict_tflm_arena
from edgekit.graph.ir import Graph

# ---- 1. and 2. struct sizes, arm-none-eabi (ILP32), and the plain MicroAllocator's fixed tail -----
EVAL_TENSOR_32 = 12  # TfLiteEvalTensor {TfLitePtrUnion data; TfLiteIntArray* dims; TfLiteType type} (common.h)
NODE_AND_REGISTRATION_32 = 32  # NodeAndRegistration: TfLiteNode (7 x 4 B) + const TFLMRegistration* (micro_allocator.h)
TFLITE_TENSOR_32 = 32  # TfLiteTensor under TF_LITE_STATIC_MEMORY (common.h)
AFFINE_QUANT_32 = 12  # TfLiteAffineQuantization {TfLiteFloatArray*; TfLiteIntArray*; int32_t} (common.h)
SCRATCH_REQUEST_32 = 12  # internal::ScratchBufferRequest {size_t bytes; int node_idx; int subgraph_idx}
SCRATCH_HANDLE_32 = 4  # ScratchBufferHandle {uint8_t* data} (micro_allocator.h)
# AllocationInfo {size_t; void**; int first, last; int32_t offline; bool} (micro_allocation_info.h)
ALLOCATION_INFO_32 = 24
POINTER_32 = 4
ALIGN_32 = 4  # alignof(void*), alignof of every struct above
ALLOCATOR_OBJECTS_32 = (36  # SingleArenaBufferAllocator (single_arena_buffer_allocator.h)
                        + 44  # GreedyMemoryPlanner (greedy_memory_planner.h)
                        + 36)  # MicroAllocator (micro_allocator.h)
# MicroBuiltinDataAllocator: vtable pointer + IPersistentBufferAllocator* (micro_allocator.cc)
BUILTIN_DATA_ALLOCATOR_32 = 8
SUBGRAPH_ALLOCATIONS_32 = 8  # SubgraphAllocations {NodeAndRegistration*; TfLiteEvalTensor*} (no compression)
FIXED_TAIL_32 = ALLOCATOR_OBJECTS_32 + BUILTIN_DATA_ALLOCATOR_32 + SUBGRAPH_ALLOCATIONS_32  # 132 B, one subgraph

CORTEX_M_32 = TflmStructs(
    name="32-bit Cortex-M build (arm-none-eabi, plain MicroAllocator, no compression)",
    allocator_objects=ALLOCATOR_OBJECTS_32, builtin_data_allocator=BUILTIN_DATA_ALLOCATOR_32,
    subgraph_allocations=SUBGRAPH_ALLOCATIONS_32, eval_tensor=EVAL_TENSOR_32,
    node_and_registration=NODE_AND_REGISTRATION_32, tflite_tensor=TFLITE_TENSOR_32, affine_quant=AFFINE_QUANT_32,
    scratch_request=SCRATCH_REQUEST_32, max_scratch_per_op=12, scratch_handle=SCRATCH_HANDLE_32,
    allocation_info=ALLOCATION_INFO_32, planner_per_buffer=40, pointer=POINTER_32,
    resource_variables=12,  # MicroResourceVariables {MicroResourceVariable*; int max; int count}
    resource_variable=20)  # MicroResourceVariable {2 char*; void*; size_t; int8_t} (micro_resource_variable.h)

# ---- 3. kernel OpData, 32-bit, CMSIS-NN where it has a kernel ---------------------------------
OP_DATA_32 = {
    # kernels/cmsis_nn/conv.cc, depthwise_conv.cc: OpData {OpDataConv (conv.h: padding 16, 3 zero points,
    # multiplier, shift, 2 pointers, activation min/max, filter_buffer_index = 56); int buffer_idx}
    "CONV_2D": 60, "DEPTHWISE_CONV_2D": 60,
    # kernels/cmsis_nn/fully_connected.cc: OpData {OpDataFullyConnected (fully_connected.h: 9 ints,
    # 2 pointers, bool -> 48); 2 ints; int32_t* kernel_sums; 3 int32}
    "FULLY_CONNECTED": 72,
    # kernels/cmsis_nn/add.cc OpData: bool, 12 x 4 B fields, 2 floats
    "ADD": 60,
    # kernels/cmsis_nn/pooling.cc: OpData {OpDataPooling (pooling.h, 32); int buffer_idx}
    "AVERAGE_POOL_2D": 36, "MAX_POOL_2D": 36,
    # kernels/cmsis_nn/softmax.cc CMSISNNSoftmaxParams {SoftmaxParams (types.h: double, 7 x 4 B,
    # 5 pointers -> 56); int32 num_rows, row_size}
    "SOFTMAX": 64,
    # concatenation.cc OpData {ConcatenationParams (types.h: int32, 2 pointers, int32, int32, float)};
    # the host's 80 includes USE_TFLM_COMPRESSION's scratch_indices[10]
    "CONCATENATION": 24,
}

# ---- 4. CMSIS-NN scratch buffers ----------------------------------------------------------------


def _align4(n: int) -> int:
    return (n + 3) // 4 * 4


def _same_pad(in_size: int, out_size: int, k: int, stride: int, dilation: int = 1) -> int:
    """TFLite-Micro's ComputePaddingHeightWidth for SAME: half the total padding, rounded down."""
    total = max((out_size - 1) * stride + (k - 1) * dilation + 1 - in_size, 0)
    return total // 2


def _conv_geometry(g: Graph, op):
    x, w, y = (g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.outputs[0]])
    if len(x.shape) != 4 or len(w.shape) != 4 or len(y.shape) != 4:
        return None
    kh, kw = w.shape[1], w.shape[2]
    sh, sw = op.attrs.get("stride", (1, 1))
    dh, dw = op.attrs.get("dilation", (1, 1))
    if op.attrs.get("padding") == "same":
        ph = _same_pad(x.shape[1], y.shape[1], kh, sh, dh)
        pw = _same_pad(x.shape[2], y.shape[2], kw, sw, dw)
    else:
        ph = pw = 0
    return x, w, y, (kh, kw), (sh, sw), (dh, dw), (ph, pw)


def cmsis_nn_scratch(g: Graph, op, *, compiler: str = "gcc") -> list[int] | None:
    """Bytes of each scratch buffer the CMSIS-NN kernel of ``op`` requests (int8, DSP); None: an op
    CMSIS-NN has no kernel for (the reference kernel's requests apply)."""
    code = op.attrs.get("opcode") or op.kind.upper()
    if code not in ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "FULLY_CONNECTED"):
        return None
    x = g.tensors[op.inputs[0]]
    if x.dtype != "int8":
        return None
    if code in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        geo = _conv_geometry(g, op)
        if geo is None or g.tensors[op.inputs[1]].dtype != "int8":
            return None
        x, w, y, (kh, kw), (sh, sw), (dh, dw), (ph, pw) = geo
        cin = x.shape[3]
        if code == "CONV_2D":
            if (kh, kw, ph, pw, dh, dw) == (1, 1, 0, 0, 1, 1) and cin == w.shape[3]:  # arm_nn_is_convolve_1x1
                n = 4 * cin if compiler == "armclang" and (sh, sw) == (1, 1) else 0
            else:  # 1xN and im2col both use arm_convolve_s8_get_buffer_size
                n = 2 * _align4(kh * kw * cin) * 2
        else:
            if cin == y.shape[3] and x.shape[0] == 1 and (dh, dw) == (1, 1):
                n = 0 if (kh, kw) == (3, 3) and ph <= 1 and pw <= 1 else cin * kh * kw * 2
            else:
                n = 0
        return [n] if n > 0 else []
    if code == "AVERAGE_POOL_2D":
        return [4 * x.shape[-1]] if len(x.shape) == 4 else []
    if code == "MAX_POOL_2D":
        return []
    y = g.tensors[op.outputs[0]]  # FULLY_CONNECTED
    w = g.tensors[op.inputs[1]]
    per_channel = w.quant is not None and w.quant.num_scales > 1
    if len(y.shape) > 2 and w.shape and w.shape[-1] % 4 == 0 and not per_channel:
        return [2 * 4 * y.shape[-1]]
    return []


_CMSIS_CONV = "i0 i1 o0 P i0 i1 i2 o0"
"""cmsis_nn/conv.cc and depthwise_conv.cc Prepare: input, filter and output temporaries (the bias one is
requested as an *output* tensor, kConvBiasTensor, and is null for a one-output op), the per-channel
arrays, then CalculateOpDataConv / CalculateOpDataDepthwiseConv (conv_common.cc,
depthwise_conv_common.cc) take input, filter, bias and output again."""


def _scratch_fn(compiler: str):
    """CMSIS-NN's requests, or (an op or type CMSIS-NN leaves to the reference code) the reference kernel's."""
    def scratch(g: Graph, op) -> list[int]:
        got = cmsis_nn_scratch(g, op, compiler=compiler)
        if got is not None:
            return got
        ref = K.KERNELS.get(op.attrs.get("opcode") or op.kind.upper())
        return ref.scratch(g, op) if ref is not None and ref.scratch is not None else []
    return scratch


def cmsis_nn_kernels(*, compiler: str = "gcc") -> dict:
    """``tflm_kernels.KERNELS`` as a 32-bit Cortex-M build with CMSIS-NN kernels allocates: the CMSIS-NN
    kernels' OpData, Prepare order and scratch buffers, and 32-bit OpData for the reference kernels of
    :data:`OP_DATA_32`."""
    table = dict(K.KERNELS)
    for code, size in OP_DATA_32.items():
        if code in table:
            table[code] = replace(table[code], op_data=size)
    scratch = _scratch_fn(compiler)
    src = "kernels/cmsis_nn/"
    table["CONV_2D"] = replace(table["CONV_2D"], prepare=_CMSIS_CONV, scratch=scratch, source=src + "conv.cc")
    table["DEPTHWISE_CONV_2D"] = replace(table["DEPTHWISE_CONV_2D"], prepare=_CMSIS_CONV, scratch=scratch,
                                         source=src + "depthwise_conv.cc")
    table["FULLY_CONNECTED"] = replace(table["FULLY_CONNECTED"], scratch=scratch, source=src + "fully_connected.cc")
    # pooling.cc AveragePrepare: PoolingPrepare's input and output, then its own
    table["AVERAGE_POOL_2D"] = replace(table["AVERAGE_POOL_2D"], prepare="i0 o0 i0 o0", scratch=scratch,
                                       source=src + "pooling.cc")
    table["MAX_POOL_2D"] = replace(table["MAX_POOL_2D"], source=src + "pooling.cc")
    table["SOFTMAX"] = replace(table["SOFTMAX"], source=src + "softmax.cc")
    table["ADD"] = replace(table["ADD"], source=src + "add.cc")
    return table


def reference_kernels_32() -> dict:
    """The reference kernels as a 32-bit build without compression allocates them (OpData only)."""
    table = dict(K.KERNELS)
    for code, size in REFERENCE_OP_DATA_32.items():
        if code in table:
            table[code] = replace(table[code], op_data=size)
    return table


# the reference kernels' OpData on 32-bit without compression (conv.h OpDataConv 56, fully_connected.h
# OpDataFullyConnected 48, pooling.h OpDataPooling 32, SoftmaxParams 56, ConcatenationParams 24)
REFERENCE_OP_DATA_32 = {"CONV_2D": 56, "DEPTHWISE_CONV_2D": 56, "FULLY_CONNECTED": 48, "AVERAGE_POOL_2D": 32,
                        "MAX_POOL_2D": 32, "SOFTMAX": 56, "CONCATENATION": 24}


def predict_cortex_m_arena(graph: Graph, kernels: str = "cmsis-nn", *, compiler: str = "gcc", **kw):
    """``predict_tflm_arena`` for a Cortex-M board (``kernels``: "cmsis-nn" or "reference"); other
    keywords (``offline_offsets``) pass through."""
    if kernels not in ("cmsis-nn", "reference"):
        raise ValueError(f"unknown kernels {kernels!r}: cmsis-nn or reference")
    table = cmsis_nn_kernels(compiler=compiler) if kernels == "cmsis-nn" else reference_kernels_32()
    return predict_tflm_arena(graph, structs=CORTEX_M_32, kernels=table, **kw)
