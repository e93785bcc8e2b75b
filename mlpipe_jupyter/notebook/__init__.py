"""Notebook integration: magics, monitor widget, designer canvas."""
