"""Map .tflite tensor names back to PyTorch module paths (no torch needed).

litert-torch names every tensor after the module stack that produced it, one segment per
module, ``<qualified class>_<attribute name>``, joined by ``/``; fused ops join several such
locations with ``;``, and a trailing ``;N`` only makes names unique::

    torch.nn.modules.container.Sequential_features/edgekit.layers.conv_norm_act.ConvNormAct_0/torch.nn.modules.conv.Conv2d_conv;2
      -> features.0.conv  (torch.nn.modules.conv.Conv2d)
    __main__.Net/torch.nn.modules.activation.ReLU_act;;__main__.Net/torch.nn.modules.conv.Conv2d_conv;1
      -> act (ReLU) and conv (Conv2d): a conv with its ReLU fused
    __main__.Net;
      -> "" (code in the model's own forward, e.g. a torch function call)

A segment's class is its dotted prefix up to the first ``_`` after the last ``.``; the
attribute is the rest (attribute names may contain ``_``). The root segment (the model's class,
present or not depending on how the model was captured) has no attribute. With the module
table of the real model (``{path: qualified class}``) ambiguous splits are resolved exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgekit.graph.keras_names import CONV_CLASSES, LayerTable

_SEG = re.compile(r"^(?P<cls>(?:[A-Za-z_][\w]*\.)+)(?P<rest>[A-Za-z_][\w]*)$")
_NOT_MODULE = re.compile(r"^(arith\.constant\d*|serving_default_.*|tfl\..*|pseudo_qconst.*|\d*)$")


@dataclass(frozen=True)
class Location:
    path: str  # "features.3.conv"; "" is the model itself
    cls: str  # qualified class name of the innermost module ("torch.nn.modules.conv.Conv2d")

    @property
    def short_cls(self) -> str:
        return self.cls.rsplit(".", 1)[-1]


def _split_segment(seg: str, known_classes: set[str] | None = None) -> tuple[str, str | None] | None:
    """('torch.nn.modules.conv.Conv2d', 'conv') for 'torch.nn.modules.conv.Conv2d_conv';
    (class, None) for a root segment; None if it is not a module segment."""
    m = _SEG.match(seg)
    if not m:
        return None
    prefix, rest = m.group("cls"), m.group("rest")
    if known_classes:
        # try every split: the longest class name that the model really has wins
        splits = [(rest, None)] + [(rest[:j], rest[j + 1:]) for j in range(len(rest) - 1, 0, -1)
                                   if rest[j] == "_"]
        for cls_part, attr in splits:
            if prefix + cls_part in known_classes and (attr is None or attr):
                return prefix + cls_part, attr
    if "_" not in rest.lstrip("_"):
        return prefix + rest, None
    lead = len(rest) - len(rest.lstrip("_"))
    cls_part, attr = rest[lead:].split("_", 1)
    return prefix + rest[:lead] + cls_part, attr


def locations(name: str, known_classes: set[str] | None = None) -> list[Location]:
    """Every module location named in one tensor name, in order, without duplicates."""
    out: list[Location] = []
    for piece in name.split(";"):
        piece = piece.strip()
        if not piece or _NOT_MODULE.match(piece):
            continue
        segs = piece.split("/")
        attrs: list[str] = []
        cls = None
        ok = True
        for i, seg in enumerate(segs):
            sp = _split_segment(seg, known_classes)
            if sp is None:
                ok = False
                break
            c, attr = sp
            if attr is None:
                if i != 0:  # a class without attribute can only be the root
                    ok = False
                    break
                cls = c
                continue
            attrs.append(attr)
            cls = c
        if not ok or cls is None:
            continue
        loc = Location(".".join(attrs), cls)
        if loc not in out:
            out.append(loc)
    return out


_PREFER = {
    "conv2d": ("Conv2d", "Conv1d", "Conv3d", "ConvTranspose2d"),
    "depthwise_conv2d": ("Conv2d", "Conv1d"),
    "linear": ("Linear",),
    "conv_transpose": ("ConvTranspose2d", "ConvTranspose1d"),
}
for _kind, _classes in CONV_CLASSES.items():  # Keras layers (a model converted by TensorFlow)
    _PREFER[_kind] = _PREFER[_kind] + tuple(c for c in _classes if c not in _PREFER[_kind])


def primary(locs: list[Location], kind: str | None = None) -> Location | None:
    """The location an op is best reported under: the conv/linear for a conv/linear op (its
    fused BN/activation share the name), else the first non-root, else the root."""
    if not locs:
        return None
    for suffix in _PREFER.get(kind or "", ()):
        for loc in locs:
            if loc.short_cls == suffix:
                return loc
    for loc in locs:
        if loc.path:
            return loc
    return locs[0]


class ModuleTable:
    """Optional knowledge of the real model: {path: qualified class}. Validates paths.
    ``keras``: the layer table of a Keras model (its .tflite names are TensorFlow's, see
    ``edgekit.graph.keras_names``); locations are then Keras layer names and classes."""

    def __init__(self, modules: dict[str, str] | None = None, *, keras: LayerTable | None = None):
        self.modules = dict(modules or {})
        self.classes = set(self.modules.values()) or None
        self.keras = keras

    def locations(self, name: str) -> list[Location]:
        """Every module (or Keras layer) one tensor name names, resolved against the table."""
        if self.keras is not None:
            return [Location(n, self.keras.cls(n)) for n in self.keras.layers_in(name)]
        out: list[Location] = []
        for loc in locations(name, self.classes):
            loc = self.resolve(loc)
            if loc not in out:
                out.append(loc)
        return out

    @classmethod
    def from_module(cls, module) -> ModuleTable:
        table = {}
        for path, m in module.named_modules():
            t = type(m)
            table[path] = f"{t.__module__}.{t.__qualname__}"
        return cls(table)

    def resolve(self, loc: Location) -> Location:
        """Fix a heuristically split path against the real module table (drop a leading
        segment that was in fact the root, for instance)."""
        if not self.modules or loc.path in self.modules:
            return loc
        parts = loc.path.split(".")
        for i in range(1, len(parts)):
            cand = ".".join(parts[i:])
            if cand in self.modules:
                return Location(cand, self.modules[cand])
        # containers that are never called (ModuleList, ModuleDict) leave no segment: "0" is "branches.0"
        cands = [p for p, c in self.modules.items() if p.endswith("." + loc.path) and c == loc.cls]
        if len(cands) == 1:
            return Location(cands[0], loc.cls)
        return loc
