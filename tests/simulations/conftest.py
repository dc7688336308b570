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


