"""The contracts declared once in the code and shown in the docs: the settings (cookiebridge/config.py,
docs/configuration.md, the CLI's options) and the API's error codes (cookiebridge/errors.py, docs/api.md). A
declaration changed without its table, or a code raised without a declaration, fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cookiebridge import errors
from cookiebridge.cli import serve
from cookiebridge.config import SETTINGS
from cookiebridge.errors import CODES
from scripts import docs_tables

ROOT = Path(__file__).resolve().parent.parent
# The demo's chat emulator answers in another API's dialect (its own error codes); it is not the bridge's API.
NOT_THE_BRIDGE_API = {"demo_chat.py", "demo_sites.py", "demo.py"}


@pytest.mark.parametrize("document", sorted(docs_tables.TABLES))
def test_generated_tables_are_current(document: str) -> None:
    name, render = docs_tables.TABLES[document]
    found = docs_tables.current((ROOT / document).read_text(encoding="utf-8"), name)
    assert found is not None, f"{document} lacks its {name} markers"
    assert found == render(), f"{document}: run python scripts/docs_tables.py"


def test_docs_configuration_lists_exactly_the_declared_settings() -> None:
    table = docs_tables.current((ROOT / "docs" / "configuration.md").read_text(encoding="utf-8"), "settings-table")
    assert re.findall(r"^\| `([a-z_]+)` \|", table or "", re.MULTILINE) == [declared.name for declared in SETTINGS]


def test_the_cli_has_one_typed_option_per_setting() -> None:
    options = {param.name: param for param in serve.params}
    given = serve.make_context("serve", []).params  # nothing on the command line
    assert set(options) == {declared.name for declared in SETTINGS} | {"config_file"}
    for declared in SETTINGS:
        option = options[declared.name]
        assert option.multiple == (declared.kind == "list"), declared.name
        assert given[declared.name] in (None, ()), declared.name  # no Click default: the file and environment rule
        assert (option.type.name == "integer") == (declared.kind == "int"), declared.name


def test_docs_api_lists_exactly_the_declared_codes_with_their_status() -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    table = docs_tables.current(text, "error-table") or ""
    rows = re.findall(r"^\| (\d{3}) \| `([a-z-]+)` \|", table, re.MULTILINE)
    assert sorted(code for _, code in rows) == sorted(CODES)
    assert all(CODES[code].status == int(status) for status, code in rows)
    # Codes named in the prose (`403 untrusted-origin`) are declared ones, with the declared status.
    for status, code in re.findall(r"`(\d{3}) ([a-z][a-z-]+)`", text):
        assert code in CODES and CODES[code].status == int(status), (status, code)


def product_modules() -> list[Path]:
    return [path for path in sorted((ROOT / "cookiebridge").glob("*.py")) if path.name not in NOT_THE_BRIDGE_API]


def test_raise_sites_use_the_declarations_not_string_codes() -> None:
    """BridgeError(FORGED, ...) rather than a code spelled at the raise site; and a body written by hand
    (limits.py answers some requests before the app) names a declared code."""
    for path in product_modules():
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("BridgeError", "IdentityError"):
                first = node.args[0] if node.args else None
                assert not isinstance(first, ast.Constant), f"{path.name}:{node.lineno}: use a declared ErrorCode"
        for code in re.findall(r"""["']error["']\s*:\s*["']([^"']+)["']""", source):
            assert code in CODES, f"{path.name}: error code {code!r} is not declared in cookiebridge/errors.py"


def test_every_code_is_raised_or_answered_somewhere() -> None:
    """No declaration without a use: each constant is referenced outside errors.py."""
    used = "\n".join(path.read_text(encoding="utf-8") for path in product_modules() if path.name != "errors.py")
    names = [name for name, value in vars(errors).items() if isinstance(value, errors.ErrorCode)]
    assert len(names) == len(CODES)
    unused = [name for name in names if not re.search(rf"\b{name}\b", used)]
    assert not unused, f"declared but never used: {unused}"
