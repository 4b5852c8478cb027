"""Copy the compatibility matrix of the last browser run (e2e/results/matrix.md) into docs/support.md.

    python scripts/support_table.py [MATRIX.md ...]

With more than one file (e.g. a full run, then an opt-in run of the real Genesys Widgets), a row of a later file
replaces the row of the same scenario in an earlier one; rows only a later file has are added.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- support-table:start -->", "<!-- support-table:end -->"


def _scenario(line: str) -> str | None:
    cells = line.split(" | ")
    return cells[0].lstrip("| ").strip() if line.startswith("| ") and not line.startswith("| scenario |") else None


def merged(paths: list[Path]) -> str:
    """The first matrix, with the scenario rows of the later ones laid over it."""
    lines = paths[0].read_text(encoding="utf-8").strip().splitlines()
    for path in paths[1:]:
        for line in path.read_text(encoding="utf-8").splitlines():
            scenario = _scenario(line)
            if scenario is None or line.startswith("|---"):
                continue
            at = next((i for i, old in enumerate(lines) if _scenario(old) == scenario), None)
            if at is None:
                lines.append(line)
            else:
                lines[at] = line
    return "\n".join(lines)


def main(arguments: list[str]) -> int:
    paths = [Path(argument) for argument in arguments] or [ROOT / "e2e" / "results" / "matrix.md"]
    missing = [str(path) for path in paths if not path.is_file()]
    if missing:
        print(f"support_table: no {', '.join(missing)}: run the browser tests first (bash scripts/test-all.sh)")
        return 2
    target = ROOT / "docs" / "support.md"
    text = target.read_text(encoding="utf-8")
    if START not in text or END not in text:
        print(f"support_table: docs/support.md lacks the {START} ... {END} markers")
        return 2
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    target.write_text(f"{head}{START}\n{merged(paths)}\n{END}{tail}", encoding="utf-8")
    print(f"support_table: docs/support.md updated from {', '.join(map(str, paths))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
