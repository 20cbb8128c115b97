"""Where the live progress goes: a redrawn rich frame on a terminal, plain lines in a CI log.

Progress goes to stderr, as k6's does, so stdout stays the end-of-test summary.

**On a terminal** (:class:`TerminalProgress`) each update draws the frame of
:func:`surge.results.progress.renderable` in place: the cursor goes back up over the previous
frame, the screen below is cleared and the new frame is written, in one write, ending on a
fresh line. Between updates the terminal is in its ordinary state (cursor visible, below the
frame), which is why this is not rich's ``Live``: the coordinator prints the summary *before*
it closes the views, and a ``Live`` still running at that point would redraw over the summary
when stopped. Here the last frame simply stays above the summary, and ``close`` has nothing to
undo on the screen. Anything else written to ``sys.stderr`` meanwhile (the coordinator's
"surge: ..." lines) goes through a proxy that leaves the current frame where it is, so the next
frame is drawn below that text instead of over it. (Worker processes write to the terminal
directly; a line from one mid-run can leave a stale frame line behind: no proxy can see it.)

**Elsewhere** (:class:`PlainProgress`) one :func:`~surge.results.progress.plain_line` every
:data:`PLAIN_EVERY_S` seconds of run time, no colour, no cursor movement.

``-q`` constructs neither. A view never raises into the run on its own account: an update that
fails restores stderr before the error reaches the coordinator, which switches the view off.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from rich.console import Console

from surge.results.live import LiveSnapshot, LiveView
from surge.results.progress import plain_line, progress_of, renderable

PLAIN_EVERY_S = 5.0


class PlainProgress:
    """One plain progress line every :data:`PLAIN_EVERY_S` seconds of the run."""

    def __init__(self, stream: TextIO, every_s: float = PLAIN_EVERY_S) -> None:
        self._stream = stream
        self._every_s = every_s
        self._last_s = 0.0

    def update(self, snapshot: LiveSnapshot) -> None:
        if snapshot.elapsed_s - self._last_s < self._every_s:
            return
        self._last_s = snapshot.elapsed_s
        self._stream.write(f"surge: {plain_line(progress_of(snapshot))}\n")
        self._stream.flush()

    def close(self, summary: Mapping[str, Any] | None) -> None:
        pass


class _Proxy:
    """Stands in for ``sys.stderr`` while frames are drawn: other text ends the frame in place."""

    def __init__(self, real: TextIO, view: TerminalProgress) -> None:
        self._real = real
        self._view = view

    def write(self, text: str) -> int:
        self._view.keep_frame()
        return self._real.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class TerminalProgress:
    """The rich frame, redrawn in place on every update (see the module docstring)."""

    def __init__(self, stream: TextIO, *, size: tuple[int, int] | None = None) -> None:
        self._stream = stream
        self._console = Console(file=stream, force_terminal=True, highlight=False)
        self._fixed_size = size  # (columns, rows) fixed (tests); else the terminal's, read at every frame
        self._height = 0  # lines of the frame just above the cursor (0: nothing to draw over)
        self._saved: TextIO | None = None

    def _size(self) -> tuple[int, int]:
        """The terminal's size now (not ``$COLUMNS``, which rich reads once and a shell may leave stale)."""
        if self._fixed_size is not None:
            return self._fixed_size
        try:
            size = os.get_terminal_size(self._stream.fileno())
            return size.columns, size.lines
        except (AttributeError, OSError, ValueError):
            return 80, 24

    def keep_frame(self) -> None:
        """Leave the frame on the screen as it is: the next one is drawn below what follows."""
        self._height = 0

    def update(self, snapshot: LiveSnapshot) -> None:
        try:
            if self._saved is None:
                self._saved = sys.stderr
                sys.stderr = _Proxy(self._saved, self)
            columns, rows = self._size()
            # One column spare: a line as wide as the terminal would wrap on some terminals.
            self._console.width = max(columns - 1, 20)
            with self._console.capture() as capture:
                self._console.print(renderable(progress_of(snapshot)))
            lines = capture.get().splitlines(keepends=True)
            if len(lines) > rows - 1:  # the cursor cannot go back above the screen's top: keep it on screen
                lines = [*lines[: max(rows - 2, 1)], f"… {len(lines) - max(rows - 2, 1)} more lines\n"]
            frame = "".join(lines)
            up = f"\r\x1b[{self._height}A\x1b[J" if self._height else ""
            self._stream.write(up + frame)
            self._stream.flush()
            self._height = frame.count("\n")
        except BaseException:
            self._restore()
            raise

    def _restore(self) -> None:
        if self._saved is not None:
            if isinstance(sys.stderr, _Proxy):
                sys.stderr = self._saved
            self._saved = None
        self._height = 0

    def close(self, summary: Mapping[str, Any] | None) -> None:
        # The last frame stays: the summary was printed below it. Nothing to erase.
        self._restore()


def is_terminal(stream: TextIO) -> bool:
    """Whether frames can be drawn on ``stream``: a tty, and not ``TERM=dumb``."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        return False
    return tty and os.environ.get("TERM", "") != "dumb"


def progress_view(stream: TextIO | None = None) -> LiveView:
    """The live progress for ``stream`` (default stderr): frames on a terminal, plain lines elsewhere."""
    out = stream if stream is not None else sys.stderr
    return TerminalProgress(out) if is_terminal(out) else PlainProgress(out)
