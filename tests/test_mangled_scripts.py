"""The bridge serves static/mangled/<name>.js for the scripts whose locals tools/terser renames. Those copies are
committed, so that installing or running cookiebridge needs no Node; this test keeps them in step with the readable
sources in static/."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cookiebridge.assets import MANGLED

ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / "tools" / "terser"


def test_the_mangled_copies_are_generated_from_the_current_sources() -> None:
    node = shutil.which("node")
    if node is None or not (TOOL / "node_modules" / "terser").is_dir():
        reason = "needs Node and `npm ci --prefix tools/terser` (scripts/test-all.sh runs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    result = subprocess.run([node, str(TOOL / "mangle.mjs"), "--check"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr.strip()


def test_every_mangled_script_has_its_readable_source_beside_it() -> None:
    for name in MANGLED:
        assert (ROOT / "static" / f"{name}.js").is_file()
        assert (ROOT / "static" / "mangled" / f"{name}.js").read_text().startswith(f"/*! cookiebridge {name} | MIT */")
