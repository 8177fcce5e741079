"""Turn what the user typed as MODEL into something to analyse, build or profile.

MODEL forms:
  (nothing)                       the embedded default microcontroller model
  mobilenet_v2:width=0.35,resolution=96   a registered edgekit model with options
  torchvision:NAME[:k=v,...]      a torchvision classification model (weights=None)
  path/to/file.py:factory         imports and RUNS that file, then calls factory()
  package.module:factory          imports the module and calls factory()
  model.pt2                       a saved torch.export ExportedProgram
  model.tflite / model.pte        a built artifact (analysed without torch for .tflite)
  model.keras / model.h5 / DIR    a Keras model or a TensorFlow SavedModel folder (kind "keras"; TensorFlow
                                  runs only in child processes, see edgekit.keras)
  MODEL@weights.pt                any of the PyTorch forms above with trained weights: a state
                                  dict (or a checkpoint holding one under "state_dict"/"model"),
                                  loaded with torch.load(weights_only=True), which refuses
                                  pickled code, and applied with load_state_dict(strict=True)

Only the file.py:factory and package.module:factory forms execute user code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.errors import EdgekitError, UsageError
from edgekit.keras.spec import keras_kind, not_a_saved_model

ARTIFACT_SUFFIXES = {".tflite": "tflite", ".pte": "pte", ".pt2": "pt2"}


@dataclass
class ModelSpec:
    text: str
    kind: str  # "registered" | "torchvision" | "python" | "pt2" | "tflite" | "pte" | "keras"
    name: str
    kwargs: dict = field(default_factory=dict)
    path: Path | None = None
    weights: Path | None = None  # MODEL@weights.pt

    @property
    def is_artifact(self) -> bool:
        return self.kind in ("tflite", "pte")


def parse_options(text: str, spec: str) -> dict:
    """``k=v,k2=v2`` -> {"k": v, ...} for torchvision and other free-form options (values become
    bool, int, float or str). A registered model's options go through
    ``edgekit.models.parse_model_spec``, which also checks the names. Repeated keys and empty
    parts (a trailing comma) are refused, as there."""
    out = {}
    if not text:
        return out
    for part in text.split(","):
        if "=" not in part or not part.strip():
            raise UsageError(f"bad model option {part!r} in {spec!r}: expected key=value, e.g. width=0.35")
        k, v = (s.strip() for s in part.split("=", 1))
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
            raise UsageError(f"bad model option name {k!r} in {spec!r}")
        if k in out:
            raise UsageError(f"model option {k!r} given twice in {spec!r}")
        out[k] = _value(v)
    return out


def _value(v: str):
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(v)
    except ValueError:
        pass
    try:
        return float(v)
    except ValueError:
        return v


def _exists(path) -> bool:
    """Path.exists() that says False for a name the OS refuses (too long, an embedded NUL)."""
    try:
        return Path(path).exists()
    except (OSError, ValueError):
        return False


WEIGHTS_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def parse_spec(text: str | None) -> ModelSpec:
    """Classify a MODEL string (no imports of torch or user code here)."""
    if text is None or not str(text).strip():
        from edgekit.models.catalog import DEFAULT_MODEL

        return ModelSpec(text=DEFAULT_MODEL, kind="registered", name=DEFAULT_MODEL)
    text = str(text).strip()
    model_text, at, weights = text.rpartition("@")
    if at and Path(weights).suffix.lower() in WEIGHTS_SUFFIXES:
        w = Path(weights)
        if not _exists(w):
            raise UsageError(f"no such file: {weights} (the weights after @ in {text!r})")
        if w.is_dir():
            raise UsageError(f"{weights} is a directory, expected a weights file (state dict)")
        spec = parse_spec(model_text) if model_text.strip() else None
        if spec is None or spec.is_artifact or spec.kind in ("pt2", "keras"):
            raise UsageError(f"{text!r}: weights apply to a PyTorch model (MODEL@weights.pt), not to an artifact "
                             "or an empty model name")
        spec.text, spec.weights = text, w
        return spec
    keras = keras_kind(text)  # .keras / .h5 / a SavedModel folder (checked here, without TensorFlow)
    if keras is not None:
        p = Path(text)
        return ModelSpec(text=text, kind="keras", name=p.stem or p.resolve().name, path=p, kwargs={"format": keras})
    suffix = Path(text.split(":")[0] if not _exists(text) else text).suffix.lower()
    if Path(text).suffix.lower() in ARTIFACT_SUFFIXES:
        p = Path(text)
        if not _exists(p):
            raise UsageError(f"no such file: {text}")
        if p.is_dir():
            raise UsageError(f"{text} is a directory, expected a model file")
        return ModelSpec(text=text, kind=ARTIFACT_SUFFIXES[p.suffix.lower()], name=p.stem, path=p)
    if text.startswith("torchvision:"):
        rest = text[len("torchvision:"):]
        name, _, opts = rest.partition(":")
        if not re.fullmatch(r"[a-z0-9_]+", name):
            raise UsageError(f"bad torchvision model name {name!r}; e.g. torchvision:mobilenet_v2")
        return ModelSpec(text=text, kind="torchvision", name=name, kwargs=parse_options(opts, text))
    if ":" in text and (suffix == ".py" or text.split(":")[0].endswith(".py")):
        file, _, factory = text.rpartition(":")
        if not factory.isidentifier():
            raise UsageError(f"bad factory name {factory!r} in {text!r}: expected file.py:function")
        p = Path(file)
        if not _exists(p):
            raise UsageError(f"no such file: {file}")
        return ModelSpec(text=text, kind="python", name=factory, path=p)
    name, _, opts = text.partition(":")
    from edgekit.models.registry import model_names

    if name in model_names():
        from edgekit.models.registry import parse_model_spec

        _, kwargs = parse_model_spec(text)
        return ModelSpec(text=text, kind="registered", name=name, kwargs=kwargs)
    if re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+", name) and opts and opts.isidentifier():
        return ModelSpec(text=text, kind="python", name=opts, kwargs={"module": name})
    if _exists(text) and Path(text).is_dir():
        raise not_a_saved_model(text)
    import difflib

    close = difflib.get_close_matches(name, model_names(), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise UsageError(
        f"unknown model {text!r}{hint}; use a registered name (edgekit models), torchvision:NAME, "
        "file.py:factory, package.module:factory, a .pt2/.tflite/.pte file, or a .keras/.h5 file or SavedModel folder"
    )


@dataclass
class LoadedModel:
    spec: ModelSpec
    module: object | None  # nn.Module (eval) or None for artifacts
    input_shape: tuple[int, ...] | None
    exported: object | None = None  # ExportedProgram for .pt2
    calibration: object | None = None  # a shipped calibration tensor, if the model has one
    evaluation: Path | None = None  # a shipped labelled evaluation set (.npz), if the model has one
    weights: Path | None = None  # the trained weights loaded (the user's, or the shipped default's)


def from_module(module, input_shape=None, *, what: str = "this") -> LoadedModel:
    """A LoadedModel for an nn.Module the caller already has (``input_shape`` or the module's
    ``default_input_shape``)."""
    shape = tuple(input_shape) if input_shape else getattr(module, "default_input_shape", None)
    if shape is None:
        raise UsageError(f"{what} needs input_shape=..., e.g. (1, 3, 96, 96)")
    name = type(module).__name__
    return LoadedModel(ModelSpec(text=name, kind="module", name=name), module, tuple(shape))


def load_model(spec: ModelSpec | str | None, *, input_shape=None) -> LoadedModel:
    """Build or load the model; torch is imported only for torch-based specs."""
    if not isinstance(spec, ModelSpec):
        spec = parse_spec(spec)
    if spec.kind == "keras":
        raise UsageError(f"{spec.text} is a Keras/TensorFlow model; this takes a PyTorch model (check, build, "
                         "profile, fold and lint --model take Keras models)")
    if spec.is_artifact:
        return LoadedModel(spec, None, tuple(input_shape) if input_shape else None)
    if spec.kind == "pt2":
        from edgekit.graph.capture import load_pt2
        from edgekit.passes.eval_mode import to_eval

        ep = load_pt2(spec.path)
        x = [n for n in ep.graph.nodes if n.op == "placeholder" and n.name in ep.graph_signature.user_inputs]
        try:
            shape = tuple(int(d) for d in x[0].meta["val"].shape) if x else None
        except (KeyError, TypeError, ValueError, AttributeError):  # no example value, or a dynamic dimension
            shape = None
        if input_shape and shape and tuple(input_shape) != shape:
            raise UsageError(f"{spec.text} was exported for input shape {shape}; --input-shape "
                             f"{','.join(map(str, input_shape))} does not apply (export it again at that shape, "
                             "or omit --input-shape)")
        # ep.module() starts in training mode, although an exported program's ops are inference ops
        return LoadedModel(spec, to_eval(ep.module()), tuple(input_shape) if input_shape else shape, exported=ep)
    module = _build_module(spec)
    if not _is_module(module):
        raise UsageError(f"{spec.text} did not produce a torch.nn.Module (got {type(module).__name__})")
    shape = tuple(input_shape) if input_shape else getattr(module, "default_input_shape", None)
    if shape is None:
        shape = (1, 3, 224, 224)
    weights = spec.weights
    if weights is None and spec.kind == "registered":
        from edgekit.models.digits import WEIGHTS, is_trained

        if is_trained(spec.name, spec.kwargs):  # the default model with its default options ships trained
            weights = WEIGHTS
    if weights is not None:
        _load_weights(module, spec, weights)
    module.eval()
    calibration = evaluation = None
    if spec.kind == "registered":
        from edgekit.models.catalog import DEFAULT_MODEL

        default_shape = getattr(module, "default_input_shape", None)
        if spec.name == DEFAULT_MODEL and default_shape is not None and tuple(shape) == tuple(default_shape):
            if weights is not None and spec.weights is None:
                # trained on scikit-learn's digits: calibrate on its training split, evaluate on its held-out split
                from edgekit.images import pixel_samples
                from edgekit.models.digits import HELDOUT, calibration_pictures

                calibration, evaluation = pixel_samples(calibration_pictures(), shape), HELDOUT
            else:
                calibration = _synthetic_calibration(spec, module, shape, trained=weights is not None)
    return LoadedModel(spec, module, shape, calibration=calibration, evaluation=evaluation, weights=weights)


def _synthetic_calibration(spec: ModelSpec, module, shape, *, trained: bool):
    """The default architecture's synthetic calibration images. An untrained architecture
    (another width, class count) gets BN statistics estimated on that set, so activations have
    the ranges of a trained network and int8 scales are meaningful; trained weights keep their own."""
    from edgekit.models.calibration import calibration_data

    cal = calibration_data(spec.name, resolution=int(shape[-1]))
    if not trained:
        from edgekit.passes.bn_stats import reestimate_bn_stats

        reestimate_bn_stats(module, [cal[i:i + 8] for i in range(0, len(cal), 8)], inplace=True)
    return cal[:, None].numpy()


def _load_weights(module, spec: ModelSpec, path: Path) -> None:
    """torch.load(weights_only=True) + load_state_dict(strict=True), with one-line errors."""
    import pickle
    import re
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing or loading
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        m = re.search(r"WeightsUnpickler error:\s*([^\n]+)", str(exc))
        why = (m.group(1) if m else str(exc).strip().splitlines()[0] if str(exc).strip() else "")[:160]
        raise UsageError(f"{path} is not a plain state dict: torch.load(weights_only=True) refused it "
                         f"({why}); save weights with torch.save(model.state_dict(), path)") from None
    except (OSError, RuntimeError, EOFError, ValueError, KeyError, AttributeError, TypeError) as exc:
        raise UsageError(f"cannot read weights {path}: {type(exc).__name__}: {str(exc)[:160]}") from None
    for key in ("state_dict", "model_state_dict", "model"):  # common checkpoint wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UsageError(f"{path} does not hold a state dict of tensors; save weights with "
                         "torch.save(model.state_dict(), path)")
    own = module.state_dict()
    if state and not (set(state) & set(own)) and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}  # saved from DataParallel/DDP
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = [f"{len(missing)} missing (e.g. {missing[0]})" if missing else "",
                 f"{len(unexpected)} unexpected (e.g. {unexpected[0]})" if unexpected else "",
                 f"{len(wrong)} of another shape (e.g. {wrong[0]}: {tuple(state[wrong[0]].shape)} vs "
                 f"{tuple(own[wrong[0]].shape)})" if wrong else ""]
        named = spec.text.rpartition("@")[0] if spec.weights else spec.text
        raise UsageError(f"the weights in {path} do not match {named}: "
                         + ", ".join(p for p in parts if p) + "; check the model name and its options")
    module.load_state_dict(state, strict=True)


def _is_module(obj) -> bool:
    import torch

    return isinstance(obj, torch.nn.Module)


def _build_module(spec: ModelSpec):
    if spec.kind == "registered":
        import torch

        from edgekit.models import create_model

        # untrained weights, but the same ones every time: reports and builds are reproducible
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            return create_model(spec.name, **spec.kwargs)
    if spec.kind == "torchvision":
        import torchvision

        fn = getattr(torchvision.models, spec.name, None)
        if fn is None or not callable(fn) or spec.name.startswith("_"):
            raise UsageError(f"unknown torchvision model {spec.name!r}; see torchvision.models.list_models()")
        kwargs = dict(spec.kwargs)
        kwargs["weights"] = None
        try:
            return fn(**kwargs)
        except TypeError as exc:
            raise UsageError(f"torchvision:{spec.name} rejected the options {spec.kwargs}: {exc}") from None
    if spec.kind == "python":
        import importlib
        import importlib.util

        if spec.path is not None:
            mod_spec = importlib.util.spec_from_file_location(f"edgekit_user_{spec.path.stem}", spec.path)
            if mod_spec is None or mod_spec.loader is None:
                raise UsageError(f"cannot import {spec.path} as Python")
            mod = importlib.util.module_from_spec(mod_spec)
            try:
                mod_spec.loader.exec_module(mod)
            except Exception as exc:
                raise EdgekitError(f"importing {spec.path} failed: {type(exc).__name__}: {exc}"[:300]) from exc
        else:
            try:
                mod = importlib.import_module(spec.kwargs["module"])
            except ImportError as exc:
                raise UsageError(f"cannot import module {spec.kwargs['module']!r}: {exc}") from None
        fn = getattr(mod, spec.name, None)
        if fn is None or not callable(fn):
            raise UsageError(f"{spec.text}: no callable {spec.name!r} in {spec.path or spec.kwargs['module']}")
        try:
            return fn()
        except Exception as exc:
            raise EdgekitError(f"{spec.text}: {spec.name}() raised {type(exc).__name__}: {exc}"[:300]) from exc
    raise UsageError(f"cannot build a module from {spec.text!r}")  # pragma: no cover


def probe_input(module, input_shape) -> None:
    """Run the model once on a random input of ``input_shape``; a model that rejects it is a
    UsageError naming the shape (before any tracing, which would print its own tracebacks)."""
    import torch

    try:
        with torch.no_grad():
            module(torch.randn(*input_shape))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise UsageError(f"the model rejects input shape {tuple(input_shape)}: {type(exc).__name__}: {first} "
                         "(use --input-shape N,C,H,W)") from None
