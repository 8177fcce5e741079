"""edgekit: take a CNN from PyTorch to a phone, a Raspberry Pi or a microcontroller.

The top-level names are imported lazily so that `import edgekit` stays fast and
does not import torch until a function that needs it is called.
"""

__version__ = "0.1.0"

_LAZY = {
    "analyze": ("edgekit.analysis.api", "analyze"),
    "fold_bn": ("edgekit.passes.fold_bn", "fold_bn"),
    "create_model": ("edgekit.models", "create_model"),
    "list_models": ("edgekit.models", "list_models"),
    "load_target": ("edgekit.targets", "load_target"),
    "build": ("edgekit.build", "build"),
    "profile": ("edgekit.profile.api", "profile"),
    "resolve": ("edgekit.plan", "resolve"),
    "assert_fits": ("edgekit.testing", "assert_fits"),
    "EdgekitError": ("edgekit.errors", "EdgekitError"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'edgekit' has no attribute {name!r}")


__all__ = sorted(_LAZY)
