"""Read an ExecuTorch program (.pte) into the Graph IR without importing torch.

A .pte is a FlatBuffer (schema ``executorch/exir/_serialize/program.fbs``, file
identifier ``ET12`` at bytes 4..8) followed by an optional ``eh00`` extended header at
byte 8 and by data segments (constant weights, delegate blobs) after the FlatBuffer.

Why a hand-written reader: ExecuTorch's own Python deserializer
(``executorch.exir._serialize._program.deserialize_pte_binary``) and its generated
FlatBuffer classes live under ``executorch.exir``, whose package ``__init__`` imports
torch (~5 s cold, and analysis of an artifact must not need torch). The schema is small,
so this module decodes the tables it needs with ``struct`` directly. Every offset, vector
length and index is checked against the file before it is used, so a truncated, empty or
corrupt file becomes one ``ArtifactError`` line instead of a crash or a hang; the amount
of work is bounded by the file size (no recursion, every loop walks a checked vector).

What is extracted from execution plan 0 ("forward"):

- tensors: every Tensor EValue (sizes, scalar type). A tensor with ``allocation_info``
  is memory-planned (``graph.meta["allocation"][tensor_id] = (memory_id, offset)``); a
  tensor with ``data_buffer_idx > 0`` (or stored outside the program) is constant.
- ops: the instructions of every chain in order. A ``KernelCall`` becomes an op named
  after its operator (``aten::convolution.out``); a ``DelegateCall`` an op of kind
  ``delegate`` named after the backend (``XnnpackBackend``). Which tensor arguments are
  outputs follows ExecuTorch's out-variant calling convention: a tensor is written by the
  first instruction that mentions it unless it is a graph input or a constant. A planned
  tensor that is read before any instruction wrote it is a view the emitter elided
  (``remove_view_copy``): it shares its base's planned memory and gets a synthetic
  ``view`` op so liveness sees the alias. Empty extra outputs (batch norm's
  ``save_mean``/``save_invstd`` at inference) are kept in ``op.attrs["empty_outputs"]``.
- ``graph.meta["planned_bytes"]`` = ``sum(non_const_buffer_sizes[1:])``: ExecuTorch
  reserves index 0 of ``non_const_buffer_sizes`` for constants (always 0 in the file,
  see ``executorch.exir.memory_planning.apply_algo``); indices >= 1 are the planned
  memory arenas (mem_id 1 is the default activation arena).
- constant bytes (inline ``constant_buffer`` plus the constant segment), delegate count,
  backends and blob bytes, operator names, instruction counts.
- MACs and params of kernel calls: convolution (weight sizes), addmm/mm/bmm/linear.
  Work inside a delegate (XNNPACK) is opaque here: ``meta["macs_complete"]`` says so.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

from edgekit.errors import ArtifactError, UsageError, checked_path
from edgekit.graph.ir import DTYPE_BYTES, Graph, Op, Tensor
from edgekit.graph.kinds import pte_kind

FILE_IDENTIFIER = b"ET12"
EXTENDED_HEADER_MAGIC = b"eh00"

# executorch_flatbuffer.ScalarType -> (IR dtype, bytes per element)
_SCALAR_TYPES = {
    0: ("uint8", 1), 1: ("int8", 1), 2: ("int16", 2), 3: ("int32", 4), 4: ("int64", 8),
    5: ("float16", 2), 6: ("float32", 4), 7: ("float64", 8), 11: ("bool", 1),
    12: ("int8", 1), 13: ("uint8", 1), 14: ("int32", 4), 15: ("bfloat16", 2),
    16: ("quint4x2", 1), 17: ("quint2x4", 1), 22: ("int16", 2), 23: ("float8_e5m2", 1),
    24: ("float8_e4m3fn", 1), 25: ("float8_e5m2fnuz", 1), 26: ("float8_e4m3fnuz", 1),
    27: ("uint16", 2), 28: ("uint32", 4), 29: ("uint64", 8),
}

# union KernelTypes
_KT_NULL, _KT_INT, _KT_BOOL, _KT_DOUBLE, _KT_TENSOR, _KT_STRING = 1, 2, 3, 4, 5, 6
_KT_INTLIST, _KT_DOUBLELIST, _KT_BOOLLIST, _KT_TENSORLIST, _KT_OPTTENSORLIST = 7, 8, 9, 10, 11
# union InstructionArguments
_IA_KERNEL, _IA_DELEGATE, _IA_MOVE, _IA_JUMP_FALSE, _IA_FREE = 1, 2, 3, 4, 5



class _Reader:
    """Bounds-checked little-endian reads of FlatBuffer tables, vectors and strings."""

    def __init__(self, data: bytes, path, limit: int):
        self.d = data
        self.n = limit  # the FlatBuffer region (the program, before the segments)
        self.path = path

    def bad(self, what: str) -> ArtifactError:
        return ArtifactError(f"{self.path} is corrupt: {what}")

    def _get(self, fmt: str, pos: int, size: int):
        if pos < 0 or pos + size > self.n:
            raise self.bad(f"read of {size} bytes at offset {pos} is outside the {self.n}-byte program")
        return struct.unpack_from(fmt, self.d, pos)[0]

    def u8(self, pos):
        return self._get("<B", pos, 1)

    def i8(self, pos):
        return self._get("<b", pos, 1)

    def u16(self, pos):
        return self._get("<H", pos, 2)

    def i16(self, pos):
        return self._get("<h", pos, 2)

    def i32(self, pos):
        return self._get("<i", pos, 4)

    def u32(self, pos):
        return self._get("<I", pos, 4)

    def i64(self, pos):
        return self._get("<q", pos, 8)

    def u64(self, pos):
        return self._get("<Q", pos, 8)

    def f64(self, pos):
        return self._get("<d", pos, 8)

    def table(self, pos: int, what: str) -> _Table:
        return _Table(self, pos, what)


class _Table:
    __slots__ = ("r", "pos", "vt", "vt_len", "what")

    def __init__(self, r: _Reader, pos: int, what: str):
        self.r, self.pos, self.what = r, pos, what
        vt = pos - r.i32(pos)
        vt_len = r.u16(vt)
        if vt_len < 4 or vt_len % 2 or vt + vt_len > r.n:
            raise r.bad(f"{what} has a bad vtable (length {vt_len} at offset {vt})")
        self.vt, self.vt_len = vt, vt_len

    def _off(self, field: int) -> int:
        o = 4 + 2 * field
        return self.r.u16(self.vt + o) if o + 2 <= self.vt_len else 0

    def scalar(self, field: int, kind: str, default=0):
        o = self._off(field)
        return default if o == 0 else getattr(self.r, kind)(self.pos + o)

    def _ref(self, field: int) -> int | None:
        o = self._off(field)
        if o == 0:
            return None
        p = self.pos + o
        return p + self.r.u32(p)

    def table(self, field: int, what: str) -> _Table | None:
        p = self._ref(field)
        return None if p is None else _Table(self.r, p, what)

    def _vector(self, field: int, elem: int, what: str) -> tuple[int, int]:
        p = self._ref(field)
        if p is None:
            return 0, 0
        n = self.r.u32(p)
        if p + 4 + n * elem > self.r.n:
            raise self.r.bad(f"{what} claims {n} entries, past the end of the program")
        return p + 4, n

    def string(self, field: int, what: str) -> str | None:
        start, n = self._vector(field, 1, what)
        if start == 0:
            return None
        return self.r.d[start:start + n].decode("utf-8", errors="replace")

    def scalars(self, field: int, kind: str, size: int, what: str) -> list:
        start, n = self._vector(field, size, what)
        get = getattr(self.r, kind)
        return [get(start + i * size) for i in range(n)]

    def tables(self, field: int, what: str) -> list[_Table]:
        start, n = self._vector(field, 4, what)
        out = []
        for i in range(n):
            p = start + 4 * i
            out.append(_Table(self.r, p + self.r.u32(p), f"{what}[{i}]"))
        return out

    def vector_len(self, field: int, elem: int, what: str) -> int:
        return self._vector(field, elem, what)[1]


def read_pte_bytes(path) -> bytes:
    p = checked_path(path, "file name")
    if not p.exists():
        raise UsageError(f"no such file: {path}")
    if p.is_dir():
        raise UsageError(f"{path} is a directory, expected a .pte file")
    data = p.read_bytes()
    if len(data) < 16:
        raise ArtifactError(f"{path} is empty or truncated ({len(data)} bytes): not an ExecuTorch program (.pte)")
    ident = data[4:8]
    if ident != FILE_IDENTIFIER:
        if ident[:2] == b"ET" and ident[2:].isdigit():
            raise ArtifactError(f"{path} is an ExecuTorch program with schema {ident.decode()}, this reader knows "
                                f"{FILE_IDENTIFIER.decode()}; re-export it with executorch 1.x")
        raise ArtifactError(f"{path} is not an ExecuTorch program (.pte): no {FILE_IDENTIFIER.decode()} identifier "
                            "at bytes 4..8; rebuild it or check the file")
    return data


def check_pte_file(path) -> None:
    """The cheap checks, no parsing: the identifier and the extents the extended header records
    (a truncated file), so a runtime is not started on a file that cannot be a program."""
    _extended_header(read_pte_bytes(path), path)


def read_pte(path, *, name: str | None = None) -> Graph:
    """Parse ``path`` into a Graph (``source_format="pte"``); ArtifactError if it is not a sound .pte."""
    data = read_pte_bytes(path)
    try:
        return _parse(data, path, name or Path(path).stem)
    except ArtifactError:
        raise
    except (struct.error, IndexError, ValueError, OverflowError, KeyError, UnicodeError, MemoryError) as exc:
        raise ArtifactError(f"{path} is corrupt or not a .pte ({type(exc).__name__}: {exc}"[:300] + ")") from None


def _extended_header(data: bytes, path) -> dict:
    """The ``eh00`` header after the FlatBuffer identifier: program and segment extents."""
    if data[8:12] != EXTENDED_HEADER_MAGIC or len(data) < 32:
        return {"program_size": len(data), "segment_base_offset": 0, "segment_data_size": 0}
    length = struct.unpack_from("<I", data, 12)[0]
    program_size, seg_base = struct.unpack_from("<QQ", data, 16)
    seg_size = struct.unpack_from("<Q", data, 32)[0] if length > 24 and len(data) >= 40 else 0
    n = len(data)
    if length < 24 or program_size < 16 or program_size > n:
        raise ArtifactError(f"{path} is truncated or corrupt: the header says the program is {program_size} bytes, "
                            f"the file has {n}")
    if seg_base and (seg_base < program_size or seg_base + seg_size > n):
        raise ArtifactError(f"{path} is truncated: its data segments end at byte {seg_base + seg_size}, "
                            f"the file has {n} bytes")
    return {"program_size": program_size, "segment_base_offset": seg_base, "segment_data_size": seg_size}


def delegate_data(r, plan, inline: list, segments: list) -> list[tuple]:
    """(delegate id, its entry of ``inline`` or ``segments``) for every delegate of ``plan`` that has
    data: the delegate's data reference says which list (0: inline in the program, else a segment)
    and the index in it. The lists hold what the caller needs (sizes, or the bytes themselves)."""
    out = []
    for d in plan.tables(7, "delegates"):
        ref = d.table(1, "delegate data reference")
        if ref is None:
            continue
        loc, idx = ref.scalar(0, "u8"), ref.scalar(1, "u32")
        pool = inline if loc == 0 else segments
        if idx >= len(pool):
            raise r.bad(f"delegate data index {idx} out of range 0..{len(pool) - 1}")
        out.append((d.string(0, "delegate id") or "?", pool[idx]))
    return out


def _parse(data: bytes, path, name: str) -> Graph:
    hdr = _extended_header(data, path)
    r = _Reader(data, path, hdr["program_size"])
    root = r.table(r.u32(0), "Program")
    version = root.scalar(0, "u32")
    plans = root.tables(1, "execution_plan")
    if not plans:
        raise ArtifactError(f"{path} has no execution plan")
    plan = plans[0]
    plan_name = plan.string(0, "plan name") or "forward"

    # segments (constant data and delegate blobs live after the FlatBuffer)
    segments = []
    for i, s in enumerate(root.tables(4, "segments")):
        off, size = s.scalar(0, "u64"), s.scalar(1, "u64")
        if hdr["segment_base_offset"] + off + size > len(data):
            raise ArtifactError(f"{path} is truncated: segment {i} ends at byte "
                                f"{hdr['segment_base_offset'] + off + size}, the file has {len(data)} bytes")
        segments.append(size)
    const_inline = sum(b.vector_len(0, 1, "constant buffer") for b in root.tables(2, "constant_buffer"))
    cseg = root.table(5, "constant_segment")
    const_segment_bytes = 0
    if cseg is not None and cseg.vector_len(1, 8, "constant offsets") > 0:
        idx = cseg.scalar(0, "u32")
        if idx >= len(segments):
            raise r.bad(f"constant segment index {idx} out of range 0..{len(segments) - 1}")
        const_segment_bytes = segments[idx]
    inline_delegate = [b.vector_len(0, 1, "delegate data") for b in root.tables(3, "backend_delegate_data")]

    # values: tensors become IR tensors, the rest are scalar/list arguments
    values = plan.tables(2, "values")
    n_values = len(values)
    ev_tensor: dict[int, int] = {}  # evalue index -> IR tensor id
    ev_list: dict[int, list[int]] = {}  # TensorList / OptionalTensorList evalue -> evalue indices
    ev_int: dict[int, int] = {}
    tensors: list[Tensor] = []
    allocation: dict[int, tuple[int, int]] = {}
    seen_buffers: set[int] = set()
    for vi, v in enumerate(values):
        vtype = v.scalar(0, "u8")
        if vtype == _KT_TENSOR:
            t = v.table(1, f"tensor value {vi}")
            if t is None:
                raise r.bad(f"value {vi} is a tensor without a body")
            st = t.scalar(0, "i8")
            dtype, esize = _SCALAR_TYPES.get(st, (f"scalar_type_{st}", 1))
            sizes = tuple(int(d) for d in t.scalars(2, "i32", 4, f"sizes of value {vi}"))
            if any(d < 0 for d in sizes):
                raise r.bad(f"value {vi} has a negative dimension {sizes}")
            data_idx = t.scalar(5, "u32")
            alloc = t.table(6, f"allocation of value {vi}")
            extra = t.table(9, f"extra info of value {vi}")
            external = extra is not None and extra.scalar(2, "i8") == 1  # TensorDataLocation.EXTERNAL
            tid = len(tensors)
            numel = math.prod(sizes) if sizes else 1
            is_const = (data_idx > 0 or external) and alloc is None
            stored = None if dtype in DTYPE_BYTES else numel * esize
            if is_const and data_idx > 0:
                if data_idx in seen_buffers:  # the emitter shares one buffer between equal constants
                    stored = 0
                seen_buffers.add(data_idx)
            tensors.append(Tensor(id=tid, name=f"v{vi}", shape=sizes, dtype=dtype, is_const=is_const,
                                  buffer_bytes=stored))
            if alloc is not None:
                offset = alloc.scalar(1, "u32") | (alloc.scalar(2, "u32") << 32)
                allocation[tid] = (alloc.scalar(0, "u32"), offset)
            ev_tensor[vi] = tid
        elif vtype in (_KT_TENSORLIST, _KT_OPTTENSORLIST):
            lst = v.table(1, f"tensor list value {vi}")
            ev_list[vi] = [] if lst is None else [i for i in lst.scalars(0, "i32", 4, "tensor list") if i >= 0]
        elif vtype in (_KT_INT, _KT_BOOL):
            iv = v.table(1, f"scalar value {vi}")
            ev_int[vi] = 0 if iv is None else iv.scalar(0, "i64" if vtype == _KT_INT else "u8")
        elif vtype > _KT_OPTTENSORLIST:
            raise r.bad(f"value {vi} has unknown type tag {vtype}")

    def check_value(i: int, what: str) -> int:
        if not 0 <= i < n_values:
            raise r.bad(f"{what} refers to value {i}, out of range 0..{n_values - 1}")
        return i

    g_inputs = [ev_tensor[check_value(i, "plan input")] for i in plan.scalars(3, "i32", 4, "plan inputs")
                if i in ev_tensor]
    g_outputs = [ev_tensor[check_value(i, "plan output")] for i in plan.scalars(4, "i32", 4, "plan outputs")
                 if i in ev_tensor]
    operators = []
    for o in plan.tables(6, "operators"):
        nm, ov = o.string(0, "operator name") or "?", o.string(1, "operator overload") or ""
        operators.append(f"{nm}.{ov}" if ov else nm)
    delegates = [d.string(0, "delegate id") or "?" for d in plan.tables(7, "delegates")]
    delegate_bytes = sum(size for _, size in delegate_data(r, plan, inline_delegate, segments))
    buffer_sizes = [int(x) for x in plan.scalars(8, "i64", 8, "non_const_buffer_sizes")]
    if any(x < 0 for x in buffer_sizes):
        raise r.bad(f"negative planned buffer size in {buffer_sizes}")

    # instructions -> ops
    ops: list[Op] = []
    written: set[int] = set(g_inputs) | {t.id for t in tensors if t.is_const}
    last_writer_at: dict[tuple[int, int], int] = {}  # (mem_id, offset) -> tensor id last written there
    counts = {"kernel_calls": 0, "delegate_calls": 0, "other_instructions": 0}
    for ci, chain in enumerate(plan.tables(5, "chains")):
        for ii, ins in enumerate(chain.tables(2, f"chain {ci} instructions")):
            itype = ins.scalar(0, "u8")
            body = ins.table(1, f"instruction {ii}")
            if itype not in (_IA_KERNEL, _IA_DELEGATE) or body is None:
                if itype > _IA_FREE:
                    raise r.bad(f"instruction {ii} has unknown type tag {itype}")
                counts["other_instructions"] += 1
                continue
            target = body.scalar(0, "i32")
            args = [check_value(a, f"instruction {ii}") for a in body.scalars(1, "i32", 4, f"instruction {ii} args")]
            if itype == _IA_KERNEL:
                counts["kernel_calls"] += 1
                if not 0 <= target < len(operators):
                    raise r.bad(f"instruction {ii} calls operator {target}, out of range 0..{len(operators) - 1}")
                opname = operators[target]
            else:
                counts["delegate_calls"] += 1
                if not 0 <= target < len(delegates):
                    raise r.bad(f"instruction {ii} calls delegate {target}, out of range 0..{len(delegates) - 1}")
                opname = delegates[target]
            def expand(a: int) -> list[int]:
                if a in ev_tensor:
                    return [ev_tensor[a]]
                return [ev_tensor[check_value(x, "tensor list")] for x in ev_list.get(a, ()) if x in ev_tensor]

            # out-variant kernels: the last argument is the return value (a tensor or a tensor list
            # of the out= tensors); delegates take inputs then outputs: the first write decides
            ret = expand(args[-1]) if itype == _IA_KERNEL and args else []
            ins_ids, out_ids = [], list(dict.fromkeys(ret))
            for a in (args[:-1] if ret else args):
                for tid in expand(a):
                    if tid in out_ids or tid in ins_ids:
                        continue
                    if tid not in written and tid in allocation and _is_elided_view(
                            tid, tensors, allocation, last_writer_at, written):
                        ops.append(_view_op(len(ops), last_writer_at[allocation[tid]], tid, tensors))
                        written.add(tid)
                    if tid in written or ret:
                        ins_ids.append(tid)
                    else:
                        out_ids.append(tid)
            for tid in out_ids:
                written.add(tid)
                if tid in allocation:
                    last_writer_at[allocation[tid]] = tid
            base_name = opname.split("::")[-1].split(".")[0]
            kind = "delegate" if itype == _IA_DELEGATE else pte_kind(base_name)
            # empty outputs (batch norm's save_mean/save_invstd at inference) hold no data
            empty = [t for t in out_ids if tensors[t].numel == 0 and len(out_ids) > 1]
            op = Op(index=len(ops), kind=kind, name=opname, inputs=ins_ids,
                    outputs=[t for t in out_ids if t not in empty], attrs={"operator": opname})
            if empty:
                op.attrs["empty_outputs"] = empty
            if itype == _IA_KERNEL:
                _annotate(op, base_name, args, ev_tensor, ev_int, tensors)
            ops.append(op)
    g = Graph(tensors=tensors, ops=ops, inputs=g_inputs, outputs=g_outputs, source_format="pte", name=name,
              meta={
                  "file_bytes": len(data), "program_bytes": hdr["program_size"], "schema_version": version,
                  "plan_name": plan_name, "execution_plans": len(plans),
                  "non_const_buffer_sizes": buffer_sizes, "planned_bytes": sum(buffer_sizes[1:]),
                  "allocation": allocation, "planned_tensors": len(allocation),
                  "constant_bytes": const_inline + const_segment_bytes, "delegates": len(delegates),
                  "delegate_backends": sorted(set(delegates)), "delegate_bytes": delegate_bytes,
                  "operators": sorted(set(operators)), **counts,
                  "macs_complete": counts["delegate_calls"] == 0,
              })
    return g.link()


def _view_op(index: int, base: int, tid: int, tensors: list[Tensor]) -> Op:
    return Op(index=index, kind="view", name=f"view(elided):{tensors[tid].name}", inputs=[base], outputs=[tid],
              attrs={"elided": True})


def _is_elided_view(tid, tensors, allocation, last_writer_at, written) -> bool:
    """A planned tensor read before any instruction wrote it, sitting where a live tensor was
    written: the emitter removed a static view_copy and let the view share the base's memory."""
    base = last_writer_at.get(allocation[tid])
    return base is not None and base in written and tensors[base].nbytes >= tensors[tid].nbytes


def _annotate(op: Op, base_name: str, args: list[int], ev_tensor: dict, ev_int: dict, tensors: list[Tensor]) -> None:
    """MACs and params of a kernel call, from the weight tensor's sizes."""
    op.params = sum(tensors[t].numel for t in op.inputs if tensors[t].is_const)
    if not op.outputs:
        return
    out = tensors[op.outputs[0]]
    targs = [ev_tensor.get(a) for a in args]
    if base_name == "convolution" and len(targs) >= 2 and targs[0] is not None and targs[1] is not None:
        x, w = tensors[targs[0]], tensors[targs[1]]
        if len(w.shape) >= 3 and w.shape[0] > 0:
            # convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding, groups)
            groups = max(int(ev_int.get(args[8], 1)), 1) if len(args) > 8 else 1
            transposed = bool(ev_int.get(args[6], 0)) if len(args) > 6 else False
            op.attrs.update(kernel=tuple(w.shape[2:]), groups=groups)
            if transposed:  # weight (in, out/groups, k...): each input element feeds out/groups * k outputs
                op.kind = "conv_transpose"
                op.macs = x.numel * (w.numel // w.shape[0])
                op.attrs["out_channels"] = int(w.shape[1] * groups)
                return
            op.macs = out.numel * (w.numel // w.shape[0])
            op.attrs["out_channels"] = int(w.shape[0])
            if len(w.shape) == 4 and w.shape[1] == 1 and groups > 1 and len(x.shape) == 4 and groups == x.shape[1]:
                op.kind = "depthwise_conv2d"
            elif len(w.shape) == 3:
                op.kind = "conv1d"
            elif len(w.shape) == 5:
                op.kind = "conv3d"
    elif base_name == "addmm" and len(targs) >= 3 and targs[1] is not None:
        op.macs = out.numel * (tensors[targs[1]].shape[-1] if tensors[targs[1]].shape else 1)
        op.attrs["out_channels"] = int(out.shape[-1]) if out.shape else 1
    elif base_name in ("mm", "bmm", "linear") and targs and targs[0] is not None:
        a = tensors[targs[0]]
        op.macs = out.numel * (a.shape[-1] if a.shape else 1)
