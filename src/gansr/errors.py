"""The one error type that crosses gansr's edges.

Library code raises :class:`GansrError` with a message a user can act on; the
CLI and the DVC stage entry points print it as one line and exit non-zero
(:func:`exit_on_error`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


class GansrError(Exception):
    """A failure caused by input, configuration or environment, not a bug."""


class ConfigError(GansrError):
    """A value in params.yaml (or on the command line) is invalid."""


class DataError(GansrError):
    """An input image, archive or manifest is unusable."""


class TrackingError(GansrError):
    """The MLflow tracking server or model registry cannot be used."""


@contextmanager
def exit_on_error(prog: str) -> Iterator[None]:
    """Turn a :class:`GansrError` into one line on stderr and exit 1 (130 on Ctrl-C).

    A reader that stops reading (``gansr summary | head``) ends the command
    quietly, as it ends ``cat``: exit 1, no traceback.
    """
    try:
        yield
    except GansrError as exc:
        print(f"{_fresh_line()}{prog}: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        # Python flushes stdout again at exit, which would fail the same way: point it at /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)


def _fresh_line() -> str:
    """A newline if stderr is not a terminal and a tqdm progress bar may have drawn on it.

    tqdm ends a cleared bar with a carriage return, which a terminal obeys but
    a log file keeps, so the message would continue the bar's line there.
    """
    return "\n" if "tqdm" in sys.modules and not sys.stderr.isatty() else ""
