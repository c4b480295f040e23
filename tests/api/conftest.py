"""Fixtures for the API tests (tests/fixtures/api.py)."""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # makes `tests.fixtures` importable however pytest was started
    sys.path.insert(0, _ROOT)

from tests.fixtures.api import *  # noqa: E402,F403
