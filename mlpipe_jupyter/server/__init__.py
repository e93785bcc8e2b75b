"""Jupyter Server extension and REST API."""
