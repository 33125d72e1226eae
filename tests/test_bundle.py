"""The offline bundle (tools/bundle.py, `make bundle`): unpacking checks the Python, and the broker's
jars come from the bundle without Maven. Small archives built here; no network, no broker."""
from __future__ import annotations

import io
import json
import shutil
import sys
import tarfile
from pathlib import Path

import pytest

import helpers.broker as broker
from tools import bundle

ROOT = Path(__file__).resolve().parent.parent


def _archive(path: Path, **manifest_changes: str) -> Path:
    manifest = {**bundle._target(), "kafka": broker.kafka_version(), "wheels": ["x-1.0-py3-none-any.whl"],
                **manifest_changes}
    with tarfile.open(path, "w:gz") as tar:
        for name, data in [("manifest.json", json.dumps(manifest).encode()),
                           ("wheels/x-1.0-py3-none-any.whl", b"wheel"),
                           ("jars/kafka_2.13-0.jar", b"jar"),
                           ("jars/.complete", broker.kafka_version().encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_unpack_extracts_once_for_the_python_it_was_built_for(tmp_path):
    archive = _archive(tmp_path / "b.tar.gz")
    dest = bundle.unpack(archive, tmp_path / "unpacked")
    assert (dest / "wheels" / "x-1.0-py3-none-any.whl").read_bytes() == b"wheel"
    (dest / "wheels" / "marker").write_text("kept")
    bundle.unpack(archive, dest)  # same archive: not extracted again
    assert (dest / "wheels" / "marker").exists()


def test_unpack_refuses_a_bundle_for_another_python_and_says_what_to_do(tmp_path):
    archive = _archive(tmp_path / "b.tar.gz", python="2.7")
    with pytest.raises(SystemExit) as e:
        bundle.unpack(archive, tmp_path / "unpacked")
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert "is for Python 2.7" in str(e.value) and f"this is Python {here}" in str(e.value)
    assert "make PYTHON=python2.7" in str(e.value) and "network" in str(e.value)
    assert not (tmp_path / "unpacked").exists()


def test_fetch_jars_copies_the_bundles_jars_without_maven(tmp_path, monkeypatch):
    home = tmp_path / "course"
    shutil.copytree(ROOT / "broker", home / "broker")
    bundle.unpack(_archive(tmp_path / "b.tar.gz"), home / ".course" / "bundle")
    monkeypatch.setenv("COURSE_HOME", str(home))
    monkeypatch.setenv("PATH", str(tmp_path / "no-such-bin"))  # no mvn: reaching Maven would raise
    jars = broker.fetch_jars()
    assert jars == home / ".course" / "jars" / broker.kafka_version()
    assert (jars / "kafka_2.13-0.jar").read_bytes() == b"jar" and (jars / ".complete").exists()
