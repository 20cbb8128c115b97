"""Threshold profiles shared by scenarios."""
