"""The compatibility matrix: every browser test's outcome per engine, policy and scenario, written after the run
as Markdown, HTML and JSON under e2e/results/ (scripts/support_table.py copies the table into the README)."""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any

import pytest

from e2e import drivers

_rows: dict[tuple[str, str, str], dict[str, Any]] = {}
_started = 0.0


def start() -> None:
    """Forget any rows of an earlier run in this process and note when this one started."""
    global _started
    _started = time.time()
    _rows.clear()


def observe(item: pytest.Item, text: str) -> None:
    """What the test saw, shown in the cell (e.g. 'restored via handoff')."""
    item.user_properties.append(("observed", text))


def annotate(item: pytest.Item, report: pytest.TestReport) -> None:
    """Put the test's matrix cell (scenario, engine, policy) on its report, where `record` reads it. Done where the
    test ran (an xdist worker), since only the report travels to the process that writes the matrix."""
    marker = item.get_closest_marker("scenario")
    params = getattr(item, "callspec", None)
    if marker is None or params is None or "combo" not in params.params:
        return
    engine, policy = params.params["combo"]
    report.matrix_cell = [marker.args[0], engine, policy]  # type: ignore[attr-defined]


def record(report: pytest.TestReport) -> None:
    cell = getattr(report, "matrix_cell", None)
    if cell is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        scenario, engine, policy = cell
        seen = [value for key, value in report.user_properties if key == "observed"]
        outcome = "passed" if report.passed else "skipped" if report.skipped else "failed"
        _rows[(scenario, engine, policy)] = {
            "scenario": scenario, "engine": engine, "policy": policy, "outcome": outcome,
            "observed": "; ".join(seen), "seconds": round(report.duration, 1),
        }


def _versions() -> dict[str, str]:
    versions = {}
    for engine in drivers.ENGINES:
        try:
            versions[engine] = drivers.engine_version(engine)
        except Exception as error:  # noqa: BLE001 - the table says the engine is missing
            versions[engine] = f"unavailable ({error})"
    return versions


def _cell(row: dict[str, Any] | None) -> str:
    if row is None:
        return "not run"
    mark = {"passed": "✅", "failed": "❌", "skipped": "⏭"}[row["outcome"]]
    return f"{mark} {row['observed']}".strip()


def write(results: Path) -> None:
    if not _rows:
        return
    results.mkdir(parents=True, exist_ok=True)
    combos = [combo for combo in drivers.matrix() if any(key[1:] == combo for key in _rows)]
    scenarios = list(dict.fromkeys(key[0] for key in _rows))
    versions = _versions()
    header = [f"{engine} {versions[engine]} ({policy})" for engine, policy in combos]
    lines = ["| scenario | " + " | ".join(header) + " |", "|---|" + "---|" * len(combos)]
    for scenario in scenarios:
        cells = [_cell(_rows.get((scenario, *combo))) for combo in combos]
        lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(_started))
    markdown = "\n".join(lines) + "\n"
    (results / "matrix.md").write_text(f"Compatibility matrix, run of {stamp}.\n\n{markdown}")
    (results / "matrix.json").write_text(json.dumps({"run": stamp, "versions": versions, "rows": list(_rows.values())},
                                                    indent=2, ensure_ascii=False))
    table = "".join(
        f"<tr><th>{html.escape(scenario)}</th>"
        + "".join(f"<td>{html.escape(_cell(_rows.get((scenario, *combo))))}</td>" for combo in combos) + "</tr>"
        for scenario in scenarios
    )
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    (results / "matrix.html").write_text(
        "<!doctype html><meta charset=utf-8><title>cookiebridge compatibility matrix</title>"
        "<style>body{font:14px system-ui;margin:2em}td,th{border:1px solid #ccc;padding:.4em;vertical-align:top}"
        "table{border-collapse:collapse}</style>"
        f"<h1>cookiebridge compatibility matrix</h1><p>Run of {stamp}.</p><table><tr><th>scenario</th>{head}</tr>"
        f"{table}</table>"
    )
