"""What every part of the command line shares: exit codes, the one-line-error parser, the error printer."""

from __future__ import annotations

import argparse
import sys

EXIT_FITS, EXIT_OVER_BUDGET, EXIT_USAGE = 0, 1, 2


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message):  # noqa: D401 - argparse API
        self.exit(EXIT_USAGE, f"edgekit: error: {message} (see {self.prog} --help)\n")


def fail(message: str) -> None:
    one_line = " ".join(message.split())
    print(f"edgekit: error: {one_line}", file=sys.stderr)
