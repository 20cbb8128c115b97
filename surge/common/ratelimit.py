"""Rate-limited logging: a flood of the same complaint costs one line per window, not one per event.

A hostile or broken peer can send thousands of bad frames a second; each one is refused, and
the operator must hear about it, but 20,000 identical lines hide everything else and cost the
coordinator more than the frames did. :class:`LogLimiter` prints the first event of each *key*
(say, "bad frame from 10.0.0.7"), then stays silent for that key for ``window_s`` and counts;
the next line for that key says how many were suppressed since. Keys are bounded too
(``max_keys``): past that, new keys share one "other" key, so a peer that changes its address
or identity on every frame cannot make the limiter grow.

Pure: the clock and the output are injected (tests drive both).
"""

from __future__ import annotations

import time
from collections.abc import Callable

OTHER = "(other)"


class LogLimiter:
    def __init__(
        self,
        emit: Callable[[str], None],
        *,
        window_s: float = 10.0,
        max_keys: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit = emit
        self._window_s = window_s
        self._max_keys = max_keys
        self._clock = clock
        self._last: dict[str, float] = {}  # key -> when its last line was printed
        self._suppressed: dict[str, int] = {}
        self.events = 0  # every event, printed or not
        self.lines = 0

    def __call__(self, key: str, text: str) -> bool:
        """Log ``text`` under ``key`` unless that key spoke within the window; True if printed."""
        self.events += 1
        if key not in self._last and len(self._last) >= self._max_keys:
            key = OTHER
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._window_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        more = self._suppressed.pop(key, 0)
        if more:
            text += f" ({more} more like this in the last {now - last:.0f}s)" if last is not None else ""
        self._last[key] = now
        self.lines += 1
        self._emit(text)
        return True

    def suppressed(self) -> int:
        """Events counted but not yet printed."""
        return sum(self._suppressed.values())

    def flush(self, what: str = "event") -> None:
        """Print one line per key with suppressed events (at the end of a run)."""
        for key, n in list(self._suppressed.items()):
            self._emit(f"{n} more {what}(s) from {key}, not shown one by one")
        self._suppressed.clear()
