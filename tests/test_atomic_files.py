"""cluster/atomic_files.py: a file is replaced whole or not at all, and a failed write leaves nothing behind."""

from __future__ import annotations

import stat

import numpy as np
import pytest
import soundfile as sf

from cluster.atomic_files import atomic_path, atomic_write_text, probe_new_file


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "out.rttm"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half of the new")
            raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.rttm"]


def test_a_whole_write_replaces_the_file_private_to_its_owner(tmp_path):
    target = tmp_path / "sub" / "voices.json"
    atomic_write_text(target, "{}\n")
    assert target.read_text() == "{}\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    atomic_write_text(target, '{"a": 1}\n')
    assert target.read_text() == '{"a": 1}\n'
    assert sorted(p.name for p in target.parent.iterdir()) == ["voices.json"]


def test_writers_that_read_the_format_from_the_name_see_the_suffix(tmp_path):
    target = tmp_path / "voice.flac"
    with atomic_path(target, suffix=".flac") as temporary:
        assert temporary.suffix == ".flac" and temporary.parent == tmp_path
        sf.write(temporary, np.zeros(1600, dtype=np.float32), 16000)
    assert sf.info(target).format == "FLAC"


def test_a_place_that_takes_no_new_file_is_an_os_error_and_the_probe_leaves_nothing(tmp_path):
    probe_new_file(tmp_path)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(OSError):
        probe_new_file(tmp_path / "a_file")
    with pytest.raises(OSError):
        probe_new_file(tmp_path / "missing")
