"""Put a module in inference mode, including GraphModules from ``ExportedProgram.module()``,
which refuse ``.eval()`` ("Calling eval() is not supported yet") although their ops are
already inference ops."""


def to_eval(module):
    try:
        module.eval()
    except NotImplementedError:
        for m in module.modules():
            m.__dict__["training"] = False
    return module
