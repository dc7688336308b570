"""Shared by every test: `wattwise.cli.main()` run in-process points the root logger at the
stderr pytest captures for that test; the next test must not log into that closed stream."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def restore_root_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
