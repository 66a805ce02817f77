from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def hourly_csv() -> Path:
    """Synthetic two-day hourly intensities (see fixtures/README.md): hour h's mean is day 1's value + 10."""
    return FIXTURES / "hourly_two_days.csv"


@pytest.fixture
def roots() -> Path:
    return FIXTURES / "roots"
