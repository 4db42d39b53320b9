"""What every benchmark script does with its numbers: write them as JSON for the record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json(path: Path | None, report: Any) -> None:
    """Write ``report`` to ``path`` (folders made as needed); nothing when no path was given."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
