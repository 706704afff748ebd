"""The shipped default (and the first generation packaged beside it) on the held-out face-free
photos (issue 10): no face at the default threshold on any of them. The 78 photos
(``configs/splits/negatives_holdout.txt``, 20% of ``../shared/data/negatives-pets`` less one that
shows a boy's face: ``negatives_with_faces.txt``) were never trained on nor used to calibrate
the threshold; the test skips when the shared data is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

import facespot

ROOT = Path(__file__).resolve().parents[2]
PETS = ROOT.parent / "shared" / "data" / "negatives-pets"
NAMES = [ln.strip() for ln in (ROOT / "configs/splits/negatives_holdout.txt").read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def _path(name: str) -> Path:
    hits = sorted(PETS.rglob(f"{name}.*"))
    if not hits:
        pytest.fail(f"{name} listed in negatives_holdout.txt but not under {PETS}")
    return hits[0]


@pytest.mark.skipif(not PETS.is_dir(), reason="../shared/data/negatives-pets not present")
@pytest.mark.parametrize("model", ["default", "spotnet-s"])
def test_no_faces_on_held_out_face_free_photos(model):
    assert len(NAMES) == 78
    det = facespot.load(model)
    found = {name: [round(f.score, 3) for f in det(_path(name))] for name in NAMES}
    assert not any(found.values()), {k: v for k, v in found.items() if v}
