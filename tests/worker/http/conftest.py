"""Fixtures of the HTTP layer's tests."""

from __future__ import annotations

import pytest

from surge.worker.http.transports import TRANSPORTS


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    """Each real-server test runs once per transport: both must meet the same contract."""
    name: str = request.param
    return name
