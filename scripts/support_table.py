"""Copy the compatibility matrix of the last browser run (e2e/results/matrix.md) into docs/support.md."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- support-table:start -->", "<!-- support-table:end -->"


def main() -> int:
    matrix = ROOT / "e2e" / "results" / "matrix.md"
    if not matrix.is_file():
        print("support_table: no e2e/results/matrix.md: run the browser tests first (bash scripts/test-all.sh)")
        return 2
    readme = ROOT / "docs" / "support.md"
    text = readme.read_text(encoding="utf-8")
    if START not in text or END not in text:
        print(f"support_table: docs/support.md lacks the {START} ... {END} markers")
        return 2
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{matrix.read_text(encoding='utf-8').strip()}\n{END}{tail}", encoding="utf-8")
    print("support_table: docs/support.md updated from e2e/results/matrix.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
