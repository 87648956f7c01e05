"""Sereno, the watchman: a rules-based alerting and monitoring tool."""

__version__ = "0.1.0"
