"""Files a test makes misbehave: read-only databases and directories."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest


@contextlib.contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make files and directories unwritable, even for root.

    Permission bits (chmod) for a normal user. Root ignores them, so as root the immutable attribute (chattr +i),
    which binds root too and needs no mount; skipped where the filesystem or the container refuses it.
    """
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in paths}
        for path in paths:
            path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
                # SQLite creates -wal/-shm with the database file's mode, so they were made read-only too.
                for sidecar in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                    if path.is_file() and sidecar.exists():
                        sidecar.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root without chattr (e2fsprogs): cannot make the database read-only")
    made = subprocess.run([chattr, "+i", *map(str, paths)], capture_output=True, text=True)
    try:
        if made.returncode != 0:
            pytest.skip(f"running as root and chattr +i is refused here: {made.stderr.strip()}")
        yield
    finally:
        subprocess.run([chattr, "-i", *map(str, paths)], capture_output=True)
