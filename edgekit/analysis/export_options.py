"""What each memory-aware export option saves in TFLite-Micro arena bytes, predicted on the
PyTorch graph before export (the same lowering + arena model as the pre-export prediction).

- ``channels_last_io``: NHWC input drops the converter's leading TRANSPOSE, whose NCHW copy of
  the input is otherwise alive at the same time as its NHWC copy;
- ``explicit_pad``: stride-2 convs with PyTorch's symmetric padding on even sizes (and padded
  pools) get a PAD op whose output is a padded copy of the activation. TFLite's SAME padding
  needs no copy but pads asymmetrically (0 before, 1 after): a model change, so it is reported
  as a design what-if, not applied.
"""

from __future__ import annotations

from edgekit.graph.ir import Graph


def _tflm_arena(g: Graph, **lowering) -> tuple[int, int]:
    from edgekit.analysis.lowering import lower_for_tflite
    from edgekit.analysis.tflm_arena import predict_tflm_arena

    tg = lower_for_tflite(g, **lowering)
    pads = sum(1 for op in tg.ops if op.attrs.get("opcode") in ("PAD", "PADV2"))
    return predict_tflm_arena(tg).total_bytes, pads


def memory_options(g: Graph, *, channels_last_io: bool = False, arena_bytes: int | None = None) -> dict:
    """Predicted TFLite-Micro arena with and without each option, for a captured torch graph.
    ``arena_bytes``: the arena already predicted for the layout in use (else predicted here)."""
    if g.source_format != "torch":
        raise ValueError("memory_options takes a captured PyTorch graph")
    other, pads = _tflm_arena(g, channels_last_io=not channels_last_io)  # PADs do not depend on the layout
    current = arena_bytes if arena_bytes is not None else _tflm_arena(g, channels_last_io=channels_last_io)[0]
    nchw, nhwc = (other, current) if channels_last_io else (current, other)
    same, _ = _tflm_arena(g, channels_last_io=channels_last_io, same_padding=True)
    has_4d_input = any(len(g.tensors[t].shape) == 4 for t in g.inputs)
    return {
        "channels_last_io": {
            "used": channels_last_io, "applies": has_4d_input,
            "arena_bytes_nchw_input": nchw, "arena_bytes_nhwc_input": nhwc, "saves_bytes": nchw - nhwc,
            "how": "edgekit build --channels-last-io (the model then takes N,H,W,C input)",
        },
        "explicit_pad": {
            "pad_ops": pads, "arena_bytes": current, "arena_bytes_with_same_padding": same,
            "would_save_bytes": current - same,
            "how": "TFLite SAME padding instead of PyTorch's symmetric padding on stride-2 layers "
                   "(pads 0 before, 1 after: changes the model, retrain or fine-tune)",
        },
    }
