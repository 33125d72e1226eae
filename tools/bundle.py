"""The offline bundle (``make bundle``): the broker's jars and every pinned wheel in one archive.

    .venv/bin/python tools/bundle.py build [--out dist/kafka-offsets-course-bundle.tar.gz]
    python3 tools/bundle.py unpack [ARCHIVE]      # what `make setup` runs when the archive is there

The archive holds ``jars/`` (what ``helpers.broker.fetch_jars`` puts in ``.course/jars/``),
``wheels/`` (``pip download`` of everything in constraints.txt, plus the build backend that
``pip install -e .`` needs) and ``manifest.json`` (the Python and platform the wheels are for).
``unpack`` checks that the running Python matches, then extracts into ``.course/bundle/``;
set-up then installs with ``pip --no-index --find-links .course/bundle/wheels`` and the jars are
copied instead of fetched with Maven: no network.

``unpack`` runs before the course's venv exists, so this file uses the standard library only.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHIVE = ROOT / "dist" / "kafka-offsets-course-bundle.tar.gz"
UNPACKED = ROOT / ".course" / "bundle"
# The build backend `pip install -e .` fetches into its isolated build environment
# (pyproject.toml: setuptools>=68); pinned here so the bundle is reproducible.
BUILD_BACKEND = "setuptools==84.2.1"


def _target() -> dict[str, str]:
    """The Python and platform wheels are chosen for (the running interpreter's)."""
    return {"python": f"{sys.version_info[0]}.{sys.version_info[1]}",
            "implementation": sys.implementation.name, "platform": sysconfig.get_platform(),
            "machine": platform.machine()}


def build(out: Path) -> Path:
    """Fetch the jars (Maven, once) and download the wheels, then write the archive."""
    from helpers.broker import fetch_jars, kafka_version

    t0 = time.perf_counter()
    jars = fetch_jars(quiet=False)
    with tempfile.TemporaryDirectory(prefix="bundle-") as tmp:
        stage = Path(tmp)
        shutil.copytree(jars, stage / "jars")
        cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
               "--dest", str(stage / "wheels"), "-r", str(ROOT / "constraints.txt"), BUILD_BACKEND]
        print("downloading the pinned wheels:", " ".join(cmd[3:]), file=sys.stderr)
        subprocess.run(cmd, check=True)
        wheels = sorted(p.name for p in (stage / "wheels").iterdir())
        sdists = [w for w in wheels if not w.endswith(".whl")]
        manifest = {**_target(), "kafka": kafka_version(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                    time.gmtime()), "wheels": wheels, "not_wheels": sdists,
                    "jars": sorted(p.name for p in (stage / "jars").iterdir())}
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=1))
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            for name in ("manifest.json", "jars", "wheels"):
                tar.add(stage / name, arcname=name)
        partial.replace(out)
    print(f"{out}: {out.stat().st_size / 1e6:.0f} MB, {len(wheels)} packages "
          f"({len(sdists)} not as wheels: {sdists}), {len(manifest['jars'])} jars, "
          f"for Python {manifest['python']} on {manifest['platform']}; {time.perf_counter() - t0:.0f} s")
    return out


def unpack(archive: Path, dest: Path = UNPACKED) -> Path:
    """Extract ``archive`` into ``dest`` (once per archive), after checking it suits this Python."""
    stamp = dest / ".unpacked"
    key = f"{archive.resolve()} {archive.stat().st_size} {archive.stat().st_mtime_ns}"
    if stamp.exists() and stamp.read_text() == key:
        return dest
    with tarfile.open(archive) as tar:
        member = tar.extractfile("manifest.json")
        if member is None:
            raise SystemExit(f"error: {archive} has no manifest.json; rebuild it with `make bundle`")
        manifest = json.load(member)
        here = _target()
        wrong = [k for k in ("python", "implementation", "platform") if manifest.get(k) != here[k]]
        if wrong:
            raise SystemExit(
                f"error: the offline bundle {archive} is for Python {manifest.get('python')} "
                f"({manifest.get('implementation')}, {manifest.get('platform')}); this is Python "
                f"{here['python']} ({here['implementation']}, {here['platform']}). Use that Python "
                f"(make PYTHON=python{manifest.get('python')} ...), or move the archive away to install "
                "from the network.")
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4+
            tar.extractall(dest, filter="data")
        else:  # an older 3.11: the archive is the course's own
            tar.extractall(dest)
    stamp.write_text(key)
    print(f"offline bundle unpacked into {dest} (Python {manifest['python']}, {manifest['platform']}, "
          f"Kafka {manifest['kafka']})", file=sys.stderr)
    return dest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="write the archive (needs the network, once)")
    b.add_argument("--out", type=Path, default=ARCHIVE)
    u = sub.add_parser("unpack", help="check and extract the archive into .course/bundle/")
    u.add_argument("archive", type=Path, nargs="?", default=ARCHIVE)
    args = p.parse_args(argv)
    if args.cmd == "build":
        build(args.out)
    else:
        if not args.archive.exists():
            raise SystemExit(f"error: no bundle at {args.archive} (make bundle builds one)")
        unpack(args.archive)
    return 0


if __name__ == "__main__":
    sys.exit(main())
