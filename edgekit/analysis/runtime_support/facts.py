"""The vocabulary of the runtime tables: which tensor types a kernel accepts, and its other checks.

A :class:`Kernel` names the tensors its checks read (*roles*: ``input=i0 weights=i1 bias=i2
output=o0``), lists the type combinations it accepts (*signatures*) and adds checks on options
and shapes. An op is runnable when its roles' types match one signature and no check objects.
Roles a signature does not name are free: the kernel does not look at them, so neither do we
(a table that refused what the kernel runs would be as wrong as one that ran what it refuses).

Locators: ``i3`` the fourth input, ``o0`` the first output, ``c0`` the first constant input
(for ops whose optional inputs shift positions), ``i*`` every input (all must share one type).
In a signature ``input,output=int8|int16`` lets each named role take any of the types; ``-``
stands for an absent optional tensor. ``each("input,output", "float32|int8")`` makes one
signature per type, for kernels whose Prepare requires the roles to have the *same* type.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edgekit.graph.ir import Graph, Op

ABSENT = "-"
ANY_INPUTS = "i*"
# every tensor type of the TFLite schema, as edgekit.graph.tflite_reader names them
ALL_TYPES = frozenset({
    "float32", "float16", "int32", "uint8", "int64", "string", "bool", "int16", "complex64", "int8", "float64",
    "complex128", "uint64", "resource", "variant", "uint32", "uint16", "int4", "bfloat16", "int2", "uint4",
    "float8_e4m3fn", "float8_e5m2"})


@dataclass(frozen=True)
class Check:
    """A refusal that is not about types: ``why(op, graph)`` returns the reason or None.
    ``silent``: the kernel does not refuse the op, it computes wrong results (reported all the
    same: the model cannot run correctly; the reason says so)."""

    why: Callable[[Op, Graph], str | None]
    source: str
    silent: bool = False


@dataclass(frozen=True)
class Kernel:
    opcode: str
    source: str  # the kernel file(s) and function(s) the type facts come from
    roles: tuple[tuple[str, str], ...] = ()
    sigs: tuple[dict, ...] | None = None  # None: the kernel reads no tensor type (any type runs)
    checks: tuple[Check, ...] = ()
    note: str = ""  # what the table knows but does not check (shown by the matrix test)


def parse_roles(text: str) -> tuple[tuple[str, str], ...]:
    """``"input=i0 weights=i1"`` -> (("input", "i0"), ("weights", "i1"))."""
    out = []
    for item in text.split():
        name, loc = item.split("=")
        out.append((name, loc))
    return tuple(out)


def sig(text: str) -> dict:
    """``"input,output=int8 weights=int8|int4 bias=int32|-"`` -> {role: frozenset(types)}."""
    out: dict[str, frozenset] = {}
    for item in text.split():
        roles, types = item.split("=")
        for r in roles.split(","):
            out[r] = frozenset(types.split("|"))
    return out


def sig_not(*excluded: str, roles: str = "input") -> dict:
    """Any type but ``excluded`` for each role in ``roles``."""
    allowed = ALL_TYPES - set(excluded)
    return {r: allowed for r in roles.split(",")}


def each(roles: str, types: str, extra: str = "") -> list[dict]:
    """One signature per type, every role in ``roles`` taking that same type."""
    return [sig(f"{roles}={t} {extra}".strip()) for t in types.split("|")]


def K(opcode: str, source: str, roles: str = "", sigs=None, checks=(), note: str = "") -> Kernel:
    flat = None
    if sigs is not None:
        flat = []
        for s in sigs:
            if isinstance(s, list):
                flat.extend(s)
            else:
                flat.append(sig(s) if isinstance(s, str) else s)
    return Kernel(opcode=opcode, source=source, roles=parse_roles(roles), sigs=None if flat is None else tuple(flat),
                  checks=tuple(checks), note=note)


# ---- evaluation ---------------------------------------------------------------------------

def input_slots(op: Op) -> list[int | None]:
    """The op's inputs at their flatbuffer positions: None where an optional input is absent
    (the .tflite reader drops those from ``op.inputs`` and keeps the positions in
    ``attrs["input_slots"]``, -1 for an absent one)."""
    slots = op.attrs.get("input_slots")
    if not slots:
        return list(op.inputs)
    return [None if t < 0 else t for t in slots]


def role_types(k: Kernel, op: Op, g: Graph) -> dict[str, str] | None:
    """The type of each role's tensor; None when ``i*`` inputs disagree (reported separately)."""
    out: dict[str, str] = {}
    slots = None
    for name, loc in k.roles:
        if loc == ANY_INPUTS:
            types = {g.tensors[t].dtype for t in op.inputs}
            if len(types) > 1:
                return None
            out[name] = types.pop() if types else ABSENT
            continue
        kind, i = loc[0], int(loc[1:])
        if kind == "c":
            consts = [t for t in op.inputs if g.tensors[t].is_const]
            out[name] = g.tensors[consts[i]].dtype if i < len(consts) else ABSENT
            continue
        if kind == "o":
            out[name] = g.tensors[op.outputs[i]].dtype if i < len(op.outputs) else ABSENT
            continue
        slots = slots if slots is not None else input_slots(op)
        tid = slots[i] if i < len(slots) else None
        out[name] = ABSENT if tid is None else g.tensors[tid].dtype
    return out


def _matches(s: dict, types: dict[str, str]) -> bool:
    return all(types.get(r, ABSENT) in allowed for r, allowed in s.items())


def type_problem(k: Kernel, op: Op, g: Graph) -> str | None:
    """None when the types match a signature, else "with float16 input" / "with float32 input
    and int8 weights": the first role whose type no signature accepts, or the roles in which
    the nearest signature differs (nearest: fewest differing roles, ties to the earlier one)."""
    if k.sigs is None:
        return None
    types = role_types(k, op, g)
    if types is None:
        seen = ", ".join(dict.fromkeys(g.tensors[t].dtype for t in op.inputs))
        return f"with inputs of different types ({seen})"
    if any(_matches(s, types) for s in k.sigs):
        return None
    for name, _ in k.roles:
        allowed = [s[name] for s in k.sigs if name in s]
        if allowed and not any(types[name] in a for a in allowed):
            return _phrase([name], types)
    best = min(k.sigs, key=lambda s: sum(types.get(r, ABSENT) not in a for r, a in s.items()))
    wrong = [r for r, a in best.items() if types.get(r, ABSENT) not in a]
    first = k.roles[0][0]
    names = wrong if first in wrong else [first] + wrong
    return _phrase(names, types)


def _phrase(names: list[str], types: dict[str, str]) -> str:
    """"with float32 input and int8 weights", "with int16 input without bias"."""
    have = [f"{types[n]} {n}" for n in names if types[n] != ABSENT]
    missing = [n for n in names if types[n] == ABSENT]
    text = "with " + " and ".join(have) if have else ""
    if missing:
        text = (text + " " if text else "") + "without " + " and ".join(missing)
    return text


def tensor_codes(g: Graph) -> list[int]:
    """One small int per tensor standing for its (dtype, is_const): the cheap half of a key."""
    ids: dict[tuple, int] = {}
    return [ids.setdefault((t.dtype, t.is_const), len(ids)) for t in g.tensors]


def type_key(op: Op, codes: list[int]) -> tuple:
    """Everything ``type_problem`` reads (input types and constness, output types, absent
    optional inputs): ops with equal keys get equal answers."""
    get = codes.__getitem__
    return op.attrs.get("opcode"), tuple(map(get, op.inputs)), tuple(map(get, op.outputs)), \
        op.attrs.get("input_slots")


def problems(k: Kernel, op: Op, g: Graph, cache: dict | None = None) -> list[tuple[str, str, bool]]:
    """Every (why, source, silent) that stops the kernel running ``op`` correctly: types first,
    then the checks (``silent``: it runs without error and computes nonsense). ``cache`` (a
    dict kept for one graph) shares the type answer between ops of equal :func:`type_key`."""
    out = []
    if cache is None:
        t = type_problem(k, op, g)
    else:
        codes = cache.get("codes")
        if codes is None:
            codes = cache["codes"] = tensor_codes(g)
        key = (id(k), type_key(op, codes))
        t = cache[key] if key in cache else cache.setdefault(key, type_problem(k, op, g))
    if t:
        out.append((t, k.source, False))
    for c in k.checks:
        why = c.why(op, g)
        if why:
            out.append((why, c.source, c.silent))
    return out
