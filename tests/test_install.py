"""A plain, non-editable `pip install .` must carry the templates and scripts inside the package."""

import subprocess
import venv
from pathlib import Path

from cookiebridge.assets import SCRIPTS

REPO = Path(__file__).resolve().parent.parent


def test_wheel_install_finds_templates_and_scripts_in_site_packages(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr
    probe = (
        "import cookiebridge.resources as r, cookiebridge.assets as a;"
        "print(r.resource_dir('static'));"
        "print(r.resource_dir('templates'));"
        "print(len(a.build_assets(['https://a.example'], ['c'], 60)))"
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd=outside, timeout=60)
    assert result.returncode == 0, result.stderr
    static, templates, count = result.stdout.split()
    assert "site-packages/cookiebridge/static" in static
    assert "site-packages/cookiebridge/templates" in templates
    assert count == str(len(SCRIPTS) + 1)  # the scripts and iframe.html
    check = subprocess.run([env_dir / "bin" / "cookiebridge", "check", "--trusted-origin", "https://a.example"],
                           capture_output=True, text=True, cwd=outside, timeout=60)
    assert check.returncode == 0 and 'trusted_origins = ["https://a.example"]' in check.stdout
