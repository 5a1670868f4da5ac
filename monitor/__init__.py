"""Compliance monitor for debt-collection phone calls."""

__version__ = "0.1.0"
