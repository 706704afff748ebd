"""facespot.files.check_outputs: the one check every command runs on what it writes (issue 11,
items 1 and 5): never over an input, one clear line when a path cannot be written."""

from __future__ import annotations

import os

import pytest

from facespot.errors import FacespotError
from facespot.files import Output, check_outputs, write_atomically


def test_output_that_is_an_input_is_refused(tmp_path):
    photo = tmp_path / "x.jpg"
    photo.write_bytes(b"photo")
    with pytest.raises(FacespotError, match=r"--json .*x\.jpg: this is the input"):
        check_outputs([Output("--json", photo)], [photo])
    # the same file by another name: a relative path, a symlink, a hard link
    link = tmp_path / "link.jpg"
    link.symlink_to(photo)
    hard = tmp_path / "hard.jpg"
    os.link(photo, hard)
    for other in (link, hard, tmp_path / "sub" / ".." / "x.jpg"):
        with pytest.raises(FacespotError, match="this is the input"):
            check_outputs([Output("--json", other)], [photo])
    assert photo.read_bytes() == b"photo"


def test_input_folders_protect_their_files_and_themselves(tmp_path):
    data = tmp_path / "data"
    (data / "ann").mkdir(parents=True)
    (data / "ann" / "a.xml").write_text("<annotation/>")
    with pytest.raises(FacespotError, match="inside the input folder"):
        check_outputs([Output("--plot", data / "ann" / "a.xml")], [data])
    with pytest.raises(FacespotError, match="this is the input"):
        check_outputs([Output("--out", data, "dir")], [data])
    check_outputs([Output("--json", data / "new.json")], [data])  # a new file beside the data is fine
    check_outputs([Output("--json", tmp_path / "r.json"), Output("--out", tmp_path / "runs", "dir")], [data, None, ""])


def test_unwritable_outputs_are_one_line_errors(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    folder = tmp_path / "folder"
    folder.mkdir()
    cases = [
        (Output("--json", folder), "is a folder; give a file name"),
        (Output("--wider-out", a_file, "dir"), "is a file; give a folder"),
        (Output("--json", a_file / "x.jsonl"), "is a file, not a folder"),
        (Output("--onnx", a_file / "deep" / "x.onnx"), "is a file, not a folder"),
        (Output("--plot", "/proc/facespot-test/pr.png"), "cannot create it"),
    ]
    for out, message in cases:
        with pytest.raises(FacespotError, match=message):
            check_outputs([out])
    assert not list(folder.iterdir()) and a_file.read_text() == "x"  # nothing created, nothing changed


def test_two_outputs_on_one_file_are_refused(tmp_path):
    out = tmp_path / "out.jpg"
    with pytest.raises(FacespotError, match=r"--save .*out\.jpg: the same file as --json .*out\.jpg"):
        check_outputs([Output("--json", out), Output("--save", out)])
    out.write_bytes(b"old")
    hard = tmp_path / "hard.jpg"
    os.link(out, hard)
    for other in (hard, tmp_path / "sub" / ".." / "out.jpg"):  # a hard link, another spelling
        with pytest.raises(FacespotError, match="two outputs would overwrite each other"):
            check_outputs([Output("--plot", out), Output("--json", other)])
    check_outputs([Output("--json", tmp_path / "a.json"), Output("--plot", tmp_path / "a.png"), Output("--out", tmp_path, "dir")])
    assert out.read_bytes() == b"old"


def test_read_only_folder(read_only_folder, permissions_bind):
    target = read_only_folder / "x.jsonl"
    code = (
        "from facespot.errors import FacespotError\nfrom facespot.files import Output, check_outputs\n"
        f"try:\n    check_outputs([Output('--json', {str(target)!r})])\n"
        "except FacespotError as exc:\n    print('REFUSED', exc)"
    )
    proc = permissions_bind("-c", code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"REFUSED --json {target}: cannot create it in {read_only_folder}"), proc.stdout
    assert "Permission denied" in proc.stdout
    assert not list(read_only_folder.iterdir())


def test_write_atomically_errors_are_facespot_errors(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(FacespotError, match="cannot write"):
        write_atomically(a_file / "w.safetensors", lambda tmp: None)
    (tmp_path / "d").mkdir()
    with pytest.raises(FacespotError, match="cannot write"):
        write_atomically(tmp_path / "d", lambda tmp: open(tmp, "w").write("x"))


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_write_atomically_keeps_the_umask_and_never_changes_it(tmp_path, monkeypatch):
    """The umask is one per process: setting it, even for an instant, gives the files another
    thread creates meanwhile the wrong permissions (issue 20, item 12)."""
    real_umask = os.umask
    before = real_umask(0o027)
    calls = []
    monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or real_umask(mask))
    try:
        out = write_atomically(tmp_path / "w.bin", lambda tmp: open(tmp, "wb").write(b"x"))
    finally:
        real_umask(before)
    assert calls == []
    assert out.read_bytes() == b"x" and (out.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["w.bin"]
