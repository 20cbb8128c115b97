"""surge's benchmark: generator CPU per request against k6, Locust and wrk; memory per VU; coordinator scaling.

Run it from the repository root with ``python -m bench`` (see bench/README.md). It is a
measurement, not a test: it is not collected by pytest and is not run by CI.
"""
