"""The graph rules of `edgekit lint` for .tflite artifacts (no torch, no runtime): the registry.

Each rule reads the artifact (ops, tensors, small constants, quantization, tensor names)
and returns findings. Runtime facts (which ops TFLite-Micro has kernels for, which ops
XNNPACK takes) come from the real interpreters in ``edgekit.lint.runtimes``.

The rules live in one module per idea, each with the facts it relies on (sources in the comments
where they are used); this module gathers them in ``GRAPH_RULES`` and re-exports them:

- ``rules_tflite_ctx``: the rule context ``Ctx`` (cost of ops, building a finding), the op tables
  (``ACT_OPS``, ``FUSABLE_PRODUCERS``, ``COMPUTE_OPS``) and what skips patch-based inference's ops;
- ``rules_tflite_fusion``: normalizations not folded, activations not fused, h-swish/h-sigmoid
  spelled out;
- ``rules_tflite_layout``: TRANSPOSEs and tensors of rank > 4;
- ``rules_tflite_structure``: grouped convolutions lowered as split/convs/concat, patch stages;
- ``rules_tflite_quant``: requantizes, weight dequantizes, float islands and concat scales in int8
  graphs.

``rule_transposes`` is not in ``GRAPH_RULES``: it takes the XNNPACK delegation as well
(``edgekit.lint.lint_tflite`` calls it).
"""

from __future__ import annotations

from edgekit.lint.rules_tflite_ctx import ACT_OPS, COMPUTE_OPS, FUSABLE_PRODUCERS, Ctx
from edgekit.lint.rules_tflite_fusion import rule_activations, rule_hard_activations, rule_norms
from edgekit.lint.rules_tflite_layout import rule_rank, rule_transposes
from edgekit.lint.rules_tflite_quant import rule_quant
from edgekit.lint.rules_tflite_structure import rule_grouped_conv, rule_patches

__all__ = ["ACT_OPS", "COMPUTE_OPS", "FUSABLE_PRODUCERS", "GRAPH_RULES", "Ctx", "rule_activations",
           "rule_grouped_conv", "rule_hard_activations", "rule_norms", "rule_patches", "rule_quant", "rule_rank",
           "rule_transposes"]

GRAPH_RULES = (rule_norms, rule_activations, rule_hard_activations, rule_rank, rule_grouped_conv, rule_quant,
               rule_patches)
