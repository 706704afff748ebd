"""A recipe that is not YAML text (an image or a checkpoint given by mistake) is one line from
every command that reads recipes, not a UnicodeDecodeError traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from facespot.cli import main

PHOTO = Path(__file__).resolve().parents[1] / "fixtures" / "photos" / "astronaut.jpg"


@pytest.mark.parametrize("command", [["train"], ["data", "pack"]])
def test_a_binary_recipe_is_one_line(tmp_path, capsys, command):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_bytes(PHOTO.read_bytes())  # starts with 0xFF: not UTF-8
    argv = [*command, str(recipe)] + ([str(tmp_path / "pack")] if command == ["data", "pack"] else [])
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"facespot: error: {recipe}: not a UTF-8 text file (a training recipe is YAML text)\n"
    assert not (tmp_path / "pack").exists()
