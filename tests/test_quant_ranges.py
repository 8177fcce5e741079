"""Shared concat scales (edgekit.export.quant_ranges) on synthetic calibration ranges, and the
XNNPACK payload reader's refusal of bytes that are not an XNNPACK graph."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgekit.errors import ArtifactError
from edgekit.export.quant_ranges import share_ranges
from edgekit.graph.xnnpack_blob import moves_data, read_xnnpack_payload


def _calib(**ranges):
    return {k: {"min": np.full((1, 1, 1, 1), lo, np.float32), "max": np.full((1, 1, 1, 1), hi, np.float32)}
            for k, (lo, hi) in ranges.items()}


@pytest.mark.export
def test_a_concat_chain_gets_one_range_within_the_loss_budget():
    # cat1 -> slice -> cat2 <- conv; cat2 -> slice -> cat3 (ShuffleNet's pass-through branch)
    calib = _calib(cat1=(0, 4.0), s1=(0, 3.9), conv=(0, 3.0), cat2=(0, 4.4), s2=(0, 4.3), cat3=(0, 4.2),
                   w=(-1, 1))  # w: not in any edge
    edges = [("cat1", "s1", "same"), ("cat2", "s1", "concat"), ("cat2", "conv", "concat"), ("cat2", "s2", "same"),
             ("cat3", "s2", "concat")]
    out, rep = share_ranges(calib, edges, max_loss_bits=0.5)
    assert len(rep.groups) == 1 and set(rep.groups[0]) == {"cat1", "s1", "conv", "cat2", "s2", "cat3"}
    for name in rep.groups[0]:
        assert float(out[name]["min"].ravel()[0]) == 0.0 and float(out[name]["max"].ravel()[0]) == pytest.approx(4.4)
        assert out[name]["max"].shape == (1, 1, 1, 1)
    assert out["w"] is calib["w"]
    # conv and s1 take cat2's scale anyway (the quantizer's concat rule): sharing costs cat1 log2(4.4 / 4)
    assert rep.worst_loss_bits == pytest.approx(math.log2(4.4 / 4.0), abs=1e-4) and not rep.refused


def test_a_member_that_would_lose_too_much_keeps_its_own_range():
    # slice of a quiet concat feeding a loud one: sharing would cost the quiet concat 3 bits
    calib = _calib(cat=(0, 8.0), quiet_cat=(0, 1.0), s=(0, 1.0), conv=(0, 7.5))
    edges = [("quiet_cat", "s", "same"), ("cat", "s", "concat"), ("cat", "conv", "concat")]
    out, rep = share_ranges(calib, edges, max_loss_bits=0.5)
    assert sorted(rep.groups) == [["cat", "conv"], ["quiet_cat", "s"]]
    assert rep.refused == [("s", pytest.approx(3.0))]  # log2(8 / 1)
    assert float(out["quiet_cat"]["max"].ravel()[0]) == 1.0 and float(out["s"]["max"].ravel()[0]) == 1.0


def test_negative_ranges_count_from_zero():
    """int8 ranges always contain 0: [-2, 2] against [0, 2] is 1 bit, not more."""
    calib = _calib(a=(-2.0, 2.0), b=(0.0, 2.0))
    _, rep = share_ranges(calib, [("a", "b", "same")], max_loss_bits=1.0)
    assert rep.worst_loss_bits == pytest.approx(1.0)


def test_xnnpack_payload_reader_refuses_other_bytes():
    with pytest.raises(ArtifactError, match="XH00"):
        read_xnnpack_payload(b"\0" * 64)
    bad = bytearray(64)
    bad[4:8] = b"XH00"
    bad[10:14] = (32).to_bytes(4, "little")
    bad[14:18] = (1000).to_bytes(4, "little")
    with pytest.raises(ArtifactError, match="outside"):
        read_xnnpack_payload(bytes(bad))


@pytest.mark.parametrize("perm,dims,moves", [
    ([0, 2, 3, 1], (1, 8, 8, 3), True),  # NCHW -> NHWC of a feature map
    ([0, 3, 1, 2], (1, 1280, 1, 1), False),  # NHWC -> NCHW of a pooled 1x1 map: only size-1 dims move
    ([0, 1, 3, 2], (1, 5, 1, 7), False),
    ([0, 1, 3, 2], (1, 5, 2, 7), True),
])
def test_which_transposes_move_data(perm, dims, moves):
    assert moves_data(perm, dims) is moves
