"""Tables and plots of MCR results (matplotlib with the Agg backend, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["TABLE_COLUMNS", "markdown_table", "plot_success_curves"]

TABLE_COLUMNS = ("dataset", "policy", "no_rule", "rejection_use", "SR@5", "SR@10", "SR@15", "AT", "hDCG",
                 "episodes_per_sec", "train_seconds", "episodes", "seed")


def _cell(value: Any, key: str) -> str:
    if isinstance(value, float):
        if key in ("episodes_per_sec", "train_seconds"):
            return f"{value:,.0f}" if key == "episodes_per_sec" else f"{value:.1f}"
        return f"{value:.2f}" if key == "AT" else f"{value:.3f}"
    return str(value)


def markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] = TABLE_COLUMNS) -> str:
    """One markdown row per result, in the given column order."""
    head = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_cell(row.get(c, ""), c) for c in columns) + " |" for row in rows]
    return "\n".join([head, rule, *body]) + "\n"


def plot_success_curves(rows: Sequence[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Success rate by turn, one line per result (its ``success_curve``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for row in rows:
        curve = row["success_curve"]
        label = f"{row['policy']} ({row['rejection_use']})"
        ax.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3, label=label)
    ax.set_xlabel("turn")
    ax.set_ylabel("success rate (SR@turn)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    if rows:
        first = rows[0]
        ax.set_title(title or f"{first['dataset']}: no_rule={first['no_rule']}, {first['episodes']} episodes, "
                     f"top-{first['topk']}, seed {first['seed']}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
