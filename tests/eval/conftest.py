"""Fixtures for the evaluation tests."""

from __future__ import annotations

import pytest

from .helpers import REAL_GT


@pytest.fixture(scope="session")
def real_gt():
    if not (REAL_GT / "wider_face_val.mat").is_file():
        pytest.skip("real WIDER FACE eval ground truth not present")
    from facespot.data.wider_mat import read_wider_mat

    return read_wider_mat(REAL_GT)
