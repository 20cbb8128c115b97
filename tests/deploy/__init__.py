"""Checks of what deploys surge (the Dockerfile, deploy/kubernetes/), made offline."""
