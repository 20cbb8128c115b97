"""The rate-limited log: one line per key and window, with what it held back; keys bounded."""

from __future__ import annotations

from surge.common.ratelimit import OTHER, LogLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_first_event_of_a_key_is_printed_then_counted_until_the_window_passes() -> None:
    lines: list[str] = []
    clock = Clock()
    log = LogLimiter(lines.append, window_s=10.0, clock=clock)
    assert log("peer a", "bad frame from a")
    for _ in range(500):
        assert not log("peer a", "bad frame from a")
    assert log("peer b", "bad frame from b")  # another key is told apart
    clock.now = 10.0
    assert log("peer a", "bad frame from a")
    assert lines == ["bad frame from a", "bad frame from b", "bad frame from a (500 more like this in the last 10s)"]
    assert log.events == 503 and log.lines == 3 and log.suppressed() == 0


def test_flush_says_what_is_still_held_back() -> None:
    lines: list[str] = []
    log = LogLimiter(lines.append, clock=Clock())
    for _ in range(3):
        log("127.0.0.1", "refused a frame")
    log.flush("refused frame")
    assert lines == ["refused a frame", "2 more refused frame(s) from 127.0.0.1, not shown one by one"]
    assert log.suppressed() == 0


def test_keys_are_bounded_so_a_peer_that_changes_identity_cannot_grow_it() -> None:
    lines: list[str] = []
    log = LogLimiter(lines.append, max_keys=4, clock=Clock())
    for i in range(10_000):
        log(f"identity {i}", f"bad frame {i}")
    assert len(lines) == 5  # four keys, then everything else shares one
    assert log.suppressed() == 10_000 - 5
    log.flush()
    assert lines[-1].startswith(f"{10_000 - 5} more event(s) from {OTHER}")
