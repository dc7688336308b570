import logging
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENARIO = REPO / "scenarios" / "metro-retail.yaml"
SHARED = REPO / ".." / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"real traces not present at {SHARED} (CI has them)")
    return SHARED


@pytest.fixture(autouse=True)
def restore_logging():
    """`main()` in-process points the root logger at this test's captured stderr; put it back so
    a later test's background threads do not log to a closed stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
