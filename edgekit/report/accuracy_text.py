"""Accuracy in words: the lines `build`, `check` and the Markdown print for an evaluation
(``edgekit.evaluation.EvalReport.to_dict()``)."""

from __future__ import annotations


def accuracy_lines(evaluation: dict | None) -> list[str]:
    """'accuracy on DATA (N samples, K classes)' then one line per runtime: top-1 with its 95 %
    interval, top-5, and against the PyTorch reference the delta, cosine and L2 relative error."""
    if not evaluation or not evaluation.get("results"):
        return []
    d = evaluation["data"]
    lines = [f"accuracy on {d['source']} ({d['samples']:,} samples, {d['classes']} classes):"]
    for r in evaluation["results"]:
        t1 = r["top1"]
        text = (f"{r['name']}: top-1 {100 * t1['accuracy']:.2f} % "
                f"[{100 * t1['ci_low']:.2f}-{100 * t1['ci_high']:.2f}]")
        if r.get("top5"):
            text += f", top-5 {100 * r['top5']['accuracy']:.2f} %"
        ref = r.get("vs_reference")
        if ref:
            text += (f"; {ref['accuracy_delta_pp']:+.2f} pp vs {ref['reference']}, cosine {ref['cosine']:.5f}, "
                     f"L2 rel. error {ref['l2_relative_error']:.3g}, {ref['lost']} lost / {ref['gained']} gained")
        lines.append(text)
    return lines
