"""Arena planners on abstract buffers (no torch): naive, greedy-by-size, and a verifier.

A buffer lives from the op that writes it (``first``) to the last op that reads it
(``last``), inclusive. Two buffers may share addresses only if their lifetimes do not
overlap. Every plan passes ``verify_plan``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Buffer:
    id: int
    size: int
    first: int
    last: int
    name: str = ""

    def overlaps_in_time(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


@dataclass
class Plan:
    algorithm: str
    offsets: dict[int, int]  # buffer id -> byte offset
    arena_bytes: int
    alignment: int
    buffers: list[Buffer] = field(default_factory=list)


class PlanError(AssertionError):
    """A plan violates an invariant (internal bug, never user input)."""


def align_up(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


def plan_naive(buffers: list[Buffer], *, alignment: int = 16) -> Plan:
    """Every buffer gets its own address range, one after the other (no reuse)."""
    offsets, top = {}, 0
    for b in buffers:
        offsets[b.id] = top
        top = align_up(top + b.size, alignment)
    arena = max((offsets[b.id] + b.size for b in buffers), default=0)
    return Plan("naive", offsets, arena, alignment, list(buffers))


def plan_greedy_by_size(buffers: list[Buffer], *, alignment: int = 16) -> Plan:
    """TFLite-Micro's GreedyMemoryPlanner: place buffers largest first (sizes rounded up to the
    alignment; ties: the buffer added later — higher id — first, as TFLite-Micro's sort does,
    so ids must be in insertion order: tensor index order, then scratch buffers); each goes at the
    lowest aligned offset where it does not collide with any already placed buffer whose lifetime
    overlaps its own (first-fit over the gaps between those buffers, sorted by offset)."""
    order = sorted(buffers, key=lambda b: (-align_up(b.size, alignment), -b.id))
    offsets: dict[int, int] = {}
    # placed buffers indexed by every op step they are alive at, so finding the ones that
    # overlap a new buffer in time costs its lifetime, not the whole graph (5,000-op graphs)
    alive_at: dict[int, list[Buffer]] = {}
    for b in order:
        seen: dict[int, Buffer] = {}
        for t in range(b.first, b.last + 1):
            for p in alive_at.get(t, ()):
                seen[p.id] = p
        live = sorted(seen.values(), key=lambda p: offsets[p.id])
        candidate = 0
        size = align_up(b.size, alignment)
        for p in live:
            off = offsets[p.id]
            if off >= candidate + size:
                break  # fits in the gap before p
            candidate = max(candidate, off + align_up(p.size, alignment))
        offsets[b.id] = candidate
        for t in range(b.first, b.last + 1):
            alive_at.setdefault(t, []).append(b)
    arena = max((offsets[b.id] + align_up(b.size, alignment) for b in buffers), default=0)
    return Plan("greedy_by_size", offsets, arena, alignment, list(buffers))


def verify_plan(plan: Plan) -> None:
    """Raise PlanError if two buffers overlap in both time and address, or are misaligned."""
    bs = sorted(plan.buffers, key=lambda b: plan.offsets[b.id])
    for b in bs:
        off = plan.offsets[b.id]
        if off % plan.alignment:
            raise PlanError(f"buffer {b.id} at offset {off} is not {plan.alignment}-aligned")
        if off + b.size > plan.arena_bytes:
            raise PlanError(f"buffer {b.id} ends at {off + b.size} beyond the arena {plan.arena_bytes}")
    # sweep: for each pair overlapping in address, check time
    for i, a in enumerate(bs):
        a_off = plan.offsets[a.id]
        for c in bs[i + 1:]:
            c_off = plan.offsets[c.id]
            if c_off >= a_off + a.size:
                break
            if a.size and c.size and a.overlaps_in_time(c):
                raise PlanError(f"buffers {a.id} and {c.id} overlap in time [{a.first},{a.last}]/"
                                f"[{c.first},{c.last}] and address {a_off}+{a.size}/{c_off}+{c.size}")


def lower_bound(buffers: list[Buffer]) -> int:
    """Peak of the sum of live buffer sizes over time: no plan can be smaller."""
    if not buffers:
        return 0
    events: dict[int, int] = {}
    for b in buffers:
        events[b.first] = events.get(b.first, 0) + b.size
        events[b.last + 1] = events.get(b.last + 1, 0) - b.size
    live = peak = 0
    for t in sorted(events):
        live += events[t]
        peak = max(peak, live)
    return peak


def ascii_timeline(plan: Plan, *, width: int = 60, max_rows: int = 40) -> str:
    """One row per buffer: its lifetime as '#' over the op axis, with offset and size."""
    if not plan.buffers:
        return "(no buffers)"
    t_max = max(b.last for b in plan.buffers) + 1
    scale = max(1, -(-t_max // width))
    rows = [f"{'id':>4} {'offset':>9} {'size':>9}  ops 0..{t_max - 1} (1 char = {scale} op{'s' if scale > 1 else ''})"]
    for b in sorted(plan.buffers, key=lambda b: (b.first, b.id))[:max_rows]:
        line = "".join("#" if b.first // scale <= c <= b.last // scale else "." for c in range(-(-t_max // scale)))
        rows.append(f"{b.id:>4} {plan.offsets[b.id]:>9} {b.size:>9}  {line}")
    if len(plan.buffers) > max_rows:
        rows.append(f"... {len(plan.buffers) - max_rows} more buffers")
    rows.append(f"arena {plan.arena_bytes} bytes ({plan.algorithm}, alignment {plan.alignment})")
    return "\n".join(rows)
