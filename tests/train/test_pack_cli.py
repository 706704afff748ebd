"""`facespot data pack` checks its options and OUT before reading any source, and a failed
write (disk full, read-only) is one line that leaves OUT as it was."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from facespot.cli import main

FIX = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "train"
RECIPE = FIX / "tiny.yaml"


@pytest.fixture
def no_loading(monkeypatch):
    """Fail the test if the recipe's sources are read: the checks must come first."""
    import facespot.train.sources as sources

    def loaded(*a, **k):
        raise AssertionError("sources were loaded before the options and OUT were checked")

    monkeypatch.setattr(sources, "load_weighted_sources", loaded)
    monkeypatch.chdir(FIX.parents[2])


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("facespot: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_max_side_is_checked_before_sources_load(no_loading, tmp_path, capsys):
    assert main(["data", "pack", str(RECIPE), str(tmp_path / "p"), "--max-side", "8"]) == 2
    assert "--max-side must be at least 16, got 8" in _one_line_error(capsys)
    assert not (tmp_path / "p").exists()


def test_unwritable_or_input_out_is_refused_before_sources_load(no_loading, tmp_path, capsys):
    assert main(["data", "pack", str(RECIPE), "/proc/facespot-test/pack"]) == 2
    assert "OUT /proc/facespot-test/pack: cannot create it" in _one_line_error(capsys)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    assert main(["data", "pack", str(RECIPE), str(a_file)]) == 2
    assert "is a file; give a folder" in _one_line_error(capsys)
    assert main(["data", "pack", str(RECIPE), str(FIX)]) == 2  # the recipe's own data folder
    assert "this is the input" in _one_line_error(capsys)


def test_disk_full_while_writing_keeps_the_old_pack(tmp_path, capsys, monkeypatch):
    import facespot.train.pack as pack

    monkeypatch.chdir(FIX.parents[2])
    out = tmp_path / "p"
    out.mkdir()
    (out / pack.DATA).write_bytes(b"old data")
    (out / pack.INDEX).write_text("old index")

    def full_disk(records, folder, *args):
        (Path(folder) / pack.DATA).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pack, "write_pack", full_disk)
    assert main(["data", "pack", str(RECIPE), str(out)]) == 2
    assert f"OUT {out}: cannot write the pack (No space left on device)" in _one_line_error(capsys)
    assert (out / pack.DATA).read_bytes() == b"old data" and (out / pack.INDEX).read_text() == "old index"
    assert sorted(p.name for p in out.iterdir()) == [pack.DATA, pack.INDEX]  # no temporary folder left
    fresh = tmp_path / "new"
    assert main(["data", "pack", str(RECIPE), str(fresh)]) == 2
    _one_line_error(capsys)
    assert not fresh.exists()  # a folder this run created is removed again
