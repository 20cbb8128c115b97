"""Helpers shared by scenarios: where the endpoint is, how to authenticate, what to send."""
