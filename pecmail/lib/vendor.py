"""Copy the browser files of the pinned npm packages into ``static/vendor/``.

``make frontend`` runs ``npm ci`` and then this module. Only the distributed files a page
loads are copied (never whole packages), so ``static/vendor/`` stays small; git ignores it.
Pages test for the vendored file and degrade without it (compose falls back to a textarea).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"
VENDOR = ROOT / "static" / "vendor"

# package → (source paths inside node_modules/<package>, destination folder under static/vendor)
FILES: dict[str, tuple[list[str], str]] = {
    "quill": (["dist/quill.js", "dist/quill.snow.css", "LICENSE"], "quill"),
}


def vendor(node_modules: Path = NODE_MODULES, destination: Path = VENDOR) -> list[Path]:
    """Copy every listed file; return the paths written. Raises FileNotFoundError if one is missing."""
    written: list[Path] = []
    for package, (sources, folder) in FILES.items():
        target_dir = destination / folder
        target_dir.mkdir(parents=True, exist_ok=True)
        for source in sources:
            src = node_modules / package / source
            if not src.is_file():
                raise FileNotFoundError(f"{src} is missing: run `npm ci` first")
            target = target_dir / Path(source).name
            shutil.copyfile(src, target)
            written.append(target)
    return written


def main() -> int:
    try:
        written = vendor()
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"vendored {len(written)} front-end file(s) into {VENDOR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
