"""A plain, non-editable install of the wheel must carry the templates and scripts inside the package.

Self-sufficient: the wheel is built with pip's build isolation (pip fetches the build backend itself), and installed
without dependencies into a fresh venv that borrows this environment's packages through a .pth file, so the test
needs nothing installed by hand (a fresh machine has no hatchling in the system interpreter)."""

import site
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from cookiebridge.assets import SCRIPTS

REPO = Path(__file__).resolve().parent.parent


def test_wheel_install_finds_templates_and_scripts_in_site_packages(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels),
                            str(REPO)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    borrowed = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              capture_output=True, text=True, check=True).stdout.strip()
    ours = [path for path in {sysconfig.get_paths()["purelib"], *site.getsitepackages()} if Path(path).is_dir()]
    (Path(borrowed) / "borrowed-dependencies.pth").write_text("\n".join(ours) + "\n")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", *map(str, wheels.glob("cookiebridge-*.whl"))],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr
    probe = (
        "import cookiebridge.resources as r, cookiebridge.assets as a;"
        "print(r.resource_dir('static'));"
        "print(r.resource_dir('templates'));"
        "print(len(a.build_assets(['https://a.example'], ['c'], 60)));"
        "import cookiebridge.demo.sites as d;"
        "print(d.TEMPLATES / 'base.html' if (d.TEMPLATES / 'base.html').is_file() else 'missing');"
        "print(d.STATIC / 'widgets-double.js' if (d.STATIC / 'widgets-double.js').is_file() else 'missing')"
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    result = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd=outside, timeout=60)
    assert result.returncode == 0, result.stderr
    static, templates, count, demo_page, demo_widget = result.stdout.split()
    assert "site-packages/cookiebridge/static" in static
    assert "site-packages/cookiebridge/templates" in templates
    assert count == str(len(SCRIPTS) + 1)  # the scripts and iframe.html
    # The demo's pages and widget double travel inside its package (cookiebridge/demo/).
    assert "site-packages/cookiebridge/demo/templates/base.html" in demo_page
    assert "site-packages/cookiebridge/demo/static/widgets-double.js" in demo_widget
    check = subprocess.run([env_dir / "bin" / "cookiebridge", "check", "--trusted-origin", "https://a.example"],
                           capture_output=True, text=True, cwd=outside, timeout=60)
    assert check.returncode == 0 and 'trusted_origins = ["https://a.example"]' in check.stdout
