"""edgekit's command line: parses, calls the library with keywords, renders. Nothing imports cli.

Heavy modules (torch, executorch, litert_torch, TensorFlow) are imported inside the command functions,
so `edgekit --help` and `edgekit check model.tflite` start fast. ``parser.py`` builds the parser (one
function per command), ``commands.py`` holds the commands, ``sweep.py`` the sweep and its progress bars.
"""

from __future__ import annotations

from edgekit.cli.base import EXIT_FITS, EXIT_OVER_BUDGET, EXIT_USAGE, fail
from edgekit.cli.parser import build_parser
from edgekit.errors import EdgekitError

__all__ = ["main", "build_parser", "EXIT_FITS", "EXIT_OVER_BUDGET", "EXIT_USAGE"]


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except EdgekitError as exc:
        if args.debug:
            raise
        fail(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        fail("interrupted; nothing half-written was left behind")
        return 130
    except BrokenPipeError:  # e.g. `edgekit check | head`
        return 0
    except Exception as exc:  # a bug or an unexpected library failure: still one line
        if args.debug:
            raise
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        fail(f"unexpected {type(exc).__name__}: {msg[:300]} (run again with --debug for the traceback)")
        return EXIT_USAGE
