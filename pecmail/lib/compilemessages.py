"""Compile every ``.po`` catalogue to ``.mo`` with polib (no GNU gettext needed).

Only catalogues whose ``.mo`` is missing or older than the ``.po`` are rebuilt.
"""

from __future__ import annotations

from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    built = 0
    for po_path in ROOT.glob("**/locale/*/LC_MESSAGES/*.po"):
        if ".venv" in po_path.parts or "node_modules" in po_path.parts:
            continue
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        polib.pofile(str(po_path)).save_as_mofile(str(mo_path))
        built += 1
    if built:
        print(f"compiled {built} message catalogue(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
