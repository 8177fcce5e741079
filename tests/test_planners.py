"""Planners: every plan passes the verifier, greedy never beats the lower bound, and a
hand-checkable case has the offsets TFLite-Micro's GreedyMemoryPlanner would give."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgekit.analysis.planners import (
    Buffer,
    PlanError,
    ascii_timeline,
    lower_bound,
    plan_greedy_by_size,
    plan_naive,
    verify_plan,
)

buffers_st = st.lists(
    st.tuples(st.integers(1, 5000), st.integers(0, 40), st.integers(0, 10)), min_size=1, max_size=40,
).map(lambda xs: [Buffer(id=i, size=s, first=f, last=f + d) for i, (s, f, d) in enumerate(xs)])


@settings(max_examples=200, deadline=None)
@given(buffers_st, st.sampled_from([1, 4, 16, 64]))
def test_plans_are_valid_and_bounded(buffers, alignment):
    for planner in (plan_naive, plan_greedy_by_size):
        plan = planner(buffers, alignment=alignment)
        verify_plan(plan)
        assert plan.arena_bytes >= lower_bound(buffers)
    assert plan_greedy_by_size(buffers, alignment=alignment).arena_bytes <= plan_naive(
        buffers, alignment=alignment).arena_bytes + alignment


def test_verifier_catches_overlap():
    a, b = Buffer(0, 100, 0, 2), Buffer(1, 100, 1, 3)
    plan = plan_naive([a, b])
    plan.offsets[1] = 0
    with pytest.raises(PlanError, match="overlap"):
        verify_plan(plan)


def test_greedy_reuses_dead_buffers():
    # a chain: each buffer dies when the next one is written, so two slots suffice
    chain = [Buffer(i, 1000, i, i + 1) for i in range(6)]
    plan = plan_greedy_by_size(chain)
    verify_plan(plan)
    assert lower_bound(chain) == 2000
    assert plan.arena_bytes == 1008 + 1008  # TFLite-Micro rounds every size up to the alignment
    assert plan_naive(chain).arena_bytes == 5 * 1008 + 1000


def test_residual_keeps_three_alive():
    x = Buffer(0, 64, 0, 3)  # held for the add at step 3
    y1, y2, y3 = Buffer(1, 64, 1, 2), Buffer(2, 64, 2, 3), Buffer(3, 64, 3, 4)
    plan = plan_greedy_by_size([x, y1, y2, y3])
    verify_plan(plan)
    assert lower_bound([x, y1, y2, y3]) == 192
    assert plan.arena_bytes == 192


def test_timeline_mentions_every_buffer():
    bs = [Buffer(i, 10 * (i + 1), i, i + 2) for i in range(4)]
    text = ascii_timeline(plan_greedy_by_size(bs))
    assert text.count("#") >= 4 and "arena" in text
