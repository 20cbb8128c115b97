"""Run-level failures and the exit codes they map to.

Requests fail as data (a response with ``status == 0`` and an ``error_code``); runs fail as
exceptions. Every exception that can end a run is a :class:`SurgeError` carrying the exit
code of its kind, attached where the kind is known, so the CLI only has to read it. The codes
are k6's, so CI set-ups written for k6 carry over unchanged:

====  =========================  ==================================================
code  name                       meaning
====  =========================  ==================================================
0     PASSED                     every threshold held
99    THRESHOLDS_FAILED          at least one threshold was crossed
100   SETUP_TIMEOUT              ``setup()`` ran past ``setupTimeout``
101   TEARDOWN_TIMEOUT           ``teardown()`` ran past ``teardownTimeout``
104   INVALID_CONFIG             bad options or thresholds, found before any load
105   EXTERNAL_ABORT             interrupted by a signal (Ctrl-C, SIGTERM)
107   SCRIPT_ERROR               the scenario file does not load: syntax error,
                                 exception at import, no ``default``
108   SCRIPT_ABORTED             the scenario called ``surge.abort_test()`` (k6's
                                 ``exec.test.abort()``)
120   WORKER_LOST                surge's own: a worker went silent mid-run, so the
                                 load that ran is not the load that was planned
====  =========================  ==================================================

107 also ends a run whose ``setup()`` raised or returned what cannot travel to the workers.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    PASSED = 0
    THRESHOLDS_FAILED = 99
    SETUP_TIMEOUT = 100
    TEARDOWN_TIMEOUT = 101
    INVALID_CONFIG = 104
    EXTERNAL_ABORT = 105
    SCRIPT_ERROR = 107
    SCRIPT_ABORTED = 108
    WORKER_LOST = 120


class SurgeError(Exception):
    """A failure that ends a run. ``exit_code`` says which kind; ``hint`` says what to do."""

    exit_code: ExitCode = ExitCode.SCRIPT_ERROR

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ConfigError(SurgeError):
    """Invalid options or thresholds. Lists every problem found, not only the first."""

    exit_code = ExitCode.INVALID_CONFIG

    def __init__(self, problems: list[str], *, source: str = "", hint: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        head = f"{source}: " if source else ""
        if len(self.problems) == 1:
            text = f"{head}invalid options: {self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            text = f"{head}{len(self.problems)} problems in options:\n{lines}"
        super().__init__(text, hint=hint)


class ScriptError(SurgeError):
    """The scenario file cannot be loaded or lacks what a run needs."""

    exit_code = ExitCode.SCRIPT_ERROR


class ScriptAborted(SurgeError):
    """The scenario asked to end the test (``surge.abort_test``)."""

    exit_code = ExitCode.SCRIPT_ABORTED


class Interrupted(SurgeError):
    """The run was stopped by a signal; what was measured is still summarised."""

    exit_code = ExitCode.EXTERNAL_ABORT


class WorkerLost(SurgeError):
    """A worker stopped answering mid-run."""

    exit_code = ExitCode.WORKER_LOST


class ProtocolError(Exception):
    """A message on the wire that surge refuses: unknown type, bad field, other version.

    Not a :class:`SurgeError`: one bad message is logged and dropped, it does not end a run.
    """
