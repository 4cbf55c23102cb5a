"""Fault injection over HTTP (Jepsen-style bank test): ``python -m tests.chaos --help``."""
