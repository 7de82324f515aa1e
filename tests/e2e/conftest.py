"""Fixtures of the real-browser tests live in e2e_support.py (importable by the test modules)."""
from e2e_support import browser, screenshots  # noqa: F401
