"""Fixtures of the batch tests."""

from __future__ import annotations

import pytest
from .batch_helpers import copy_images


@pytest.fixture
def images(tmp_path):
    return copy_images(tmp_path / "images", 3)
