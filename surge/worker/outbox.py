"""Reports on their way to the coordinator: numbered, offered, sent when granted, kept until acknowledged, split.

Nothing measured is lost: each delta becomes a numbered report that stays in the *outbox*
until the coordinator acknowledges it. A report is encoded once, then *offered* (a small
``Offer`` with its size) and put on the wire only when the coordinator *grants* it: the
coordinator keeps the bytes of the whole fleet's reports in flight within one budget
(:mod:`surge.common.grants`), and what waits beyond it waits here. What is not acknowledged
is offered again, with a backoff that doubles from ``resend_after_s`` up to
:data:`RESEND_MAX_S` (a lost grant or a lost report is asked for again; a lost Ack is answered
by the coordinator's thread at once). The outbox is bounded
(``max_outbox``): while it is full, new deltas are merged into one held delta that takes the
next number once there is room, so memory stays flat and still nothing is dropped. A delta
wider than a frame may be goes as several consecutive reports (:func:`split_report`).

Both senders of reports use these rules: the agent (one process's recorder) and a machine's
relay (:mod:`surge.worker.machine`, the merged deltas of its processes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from surge.common.metrics import merge_into
from surge.common.protocol import Offer, Report, encode
from surge.common.wire import MAX_FRAME_TO_COORDINATOR

RESEND_AFTER_S = 3.0
RESEND_MAX_S = 30.0
MAX_OUTBOX = 64
MAX_REPORT_BYTES = MAX_FRAME_TO_COORDINATOR - 2**20  # a wider delta goes as several reports
_MAX_SINK_BYTES = 32 * 1024  # what one encoded sink can take, at most (checks and samples on top)


@dataclass
class _Pending:
    frame: bytes  # the report, encoded once: its size is offered, and it is what a grant sends
    final: bool
    offered_at: float
    attempts: int = 0


class Outbox:
    """One run's reports from :meth:`put` to their acknowledgement (:meth:`settle`).

    ``send`` puts a frame on the wire (an Offer, or a granted Report; either may be lost:
    :meth:`resend_due` offers again); ``clock`` is the loop's time. :attr:`drained` is true once a final report was numbered and
    every report up to it has been settled.
    """

    def __init__(
        self,
        send: Callable[[bytes], None],
        clock: Callable[[], float],
        *,
        resend_after_s: float = RESEND_AFTER_S,
        max_outbox: int = MAX_OUTBOX,
        max_report_bytes: int = MAX_REPORT_BYTES,
    ) -> None:
        self._send = send
        self._clock = clock
        self._resend_after_s = resend_after_s
        self._max_outbox = max_outbox
        self._max_report_bytes = max_report_bytes
        self._pending: dict[int, _Pending] = {}
        self._held: Report | None = None  # deltas merged while the outbox is full
        self.seq = 0
        self._final_seq: int | None = None
        self._run_id = ""  # of the reports pending (one run at a time)

    def reset(self) -> None:
        """A new run: numbers from 1 again, nothing pending."""
        self._pending.clear()
        self._held = None
        self.seq = 0
        self._final_seq = None

    def __contains__(self, seq: int) -> bool:
        return seq in self._pending

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def drained(self) -> bool:
        return self._final_seq is not None and not self._pending and self._held is None

    def put(self, report: Report) -> None:
        """Number and offer ``report`` (its ``seq`` is ignored), or hold it while the outbox is full.

        An empty delta that is neither final nor aborting (and nothing held) is not sent at all.
        """
        if self._held is not None:
            report = merged(self._held, report)
            self._held = None
        elif not report.series and not report.checks and not report.final and not report.aborted and not report.vus_samples:
            return
        if len(self._pending) >= self._max_outbox and not report.final:
            self._held = report  # numbered and sent once the coordinator catches up
            return
        self._number_and_send(report)

    def settle(self, seq: int) -> bool:
        """``seq`` was acknowledged (or rejected): forget it. False if it was not pending."""
        if self._pending.pop(seq, None) is None:
            return False
        if self._held is not None and len(self._pending) < self._max_outbox:
            held, self._held = self._held, None
            self._number_and_send(held)
        return True

    def grant(self, seq: int) -> bool:
        """The coordinator granted ``seq``: send it. False if it is not pending (settled already).

        Its backoff starts again from the send: an Ack takes a round trip from here, not from
        the offer, which may have waited long for its grant."""
        pending = self._pending.get(seq)
        if pending is None:
            return False
        pending.offered_at = self._clock()
        self._send(pending.frame)
        return True

    def resend_due(self) -> None:
        """Offer again every report whose backoff has passed (call it a few times a second)."""
        now = self._clock()
        for seq, pending in list(self._pending.items()):
            if now - pending.offered_at >= resend_delay_s(pending.attempts, self._resend_after_s):
                pending.offered_at = now
                pending.attempts += 1
                self._offer(seq, pending)

    def _number_and_send(self, report: Report) -> None:
        for part in split_report(report, self._max_report_bytes):
            self.seq += 1
            numbered = replace(part, seq=self.seq)
            # Into the outbox first: the delta now lives there until the coordinator acknowledges it.
            pending = self._pending[self.seq] = _Pending(encode(numbered), numbered.final, self._clock())
            if numbered.final:
                self._final_seq = self.seq
            self._run_id = numbered.run_id
            self._offer(self.seq, pending)

    def _offer(self, seq: int, pending: _Pending) -> None:
        self._send(encode(Offer(self._run_id, seq, len(pending.frame))))


def resend_delay_s(attempts: int, base_s: float, cap_s: float = RESEND_MAX_S) -> float:
    """How long an unacknowledged report waits before its next resend: doubling, capped.

    A coordinator that is slow, or that holds a report back because it is too far ahead of
    a gap, is not flooded: 3 s, 6 s, 12 s, 24 s, then every 30 s.
    """
    return min(base_s * float(2 ** min(attempts, 32)), cap_s)


def split_report(report: Report, max_bytes: int) -> list[Report]:
    """``report`` as consecutive reports that each encode to at most ``max_bytes``.

    The coordinator's frame limit (``MAXMSGSIZE``) drops a frame beyond it unread, and the
    peer with it; a delta that wide (thousands of series) is cut in halves by series until
    each half fits. The checks, the vus samples, the abort reason and ``final`` go with the
    last part, so the run ends only once every part is in. A single series never needs it.
    """
    if len(report.series) < 2:
        return [report]
    # Most reports are far below the limit: skip encoding them twice when even the widest
    # sink they could hold (a t-digest of MAX_CENTROIDS, ~18 kB) could not add up to it.
    bound = (
        (len(report.series) + 1) * _MAX_SINK_BYTES
        + 4 * sum(map(len, report.series))  # UTF-8: at most 4 bytes a character
        + sum(4 * len(name) + 24 for name in report.checks)
        + 24 * len(report.vus_samples)
    )
    if bound <= max_bytes or len(encode(report)) <= max_bytes:
        return [report]
    keys = list(report.series)
    half = len(keys) // 2
    first = replace(report, series={k: report.series[k] for k in keys[:half]}, checks={}, final=False,
                    aborted="", vus_samples=[])
    rest = replace(report, series={k: report.series[k] for k in keys[half:]})
    return [*split_report(first, max_bytes), *split_report(rest, max_bytes)]


def merged(held: Report, new: Report) -> Report:
    """``held`` and ``new`` as one delta (new's time, flags and reason win; data adds up)."""
    series = dict(held.series)
    for key, sink in new.series.items():
        mine = series.get(key)
        if mine is None:
            series[key] = sink
        else:
            merge_into(mine, sink)
    checks = dict(held.checks)
    for name, (p, f) in new.checks.items():
        p0, f0 = checks.get(name, (0, 0))
        checks[name] = (p0 + p, f0 + f)
    return replace(
        new, series=series, checks=checks, aborted=new.aborted or held.aborted,
        vus_samples=[*held.vus_samples, *new.vus_samples],
    )
