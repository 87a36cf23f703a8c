"""The metrics file of a training run (``metrics.jsonl``) and its plot (``loss.png``)."""

from __future__ import annotations

import json
from pathlib import Path

from morobot.fileio import atomic_write_bytes


def plot_curves(metrics_path: Path, out_path: Path) -> None:
    """Plots train/validation loss per epoch from ``metrics.jsonl`` into a PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    trained = [r for r in rows if "train" in r]
    validated = [r for r in rows if "val" in r]
    if not trained:
        return
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].plot([r["epoch"] for r in trained], [r["train"]["loss"] for r in trained], label="train")
    if validated:
        axes[0].plot([r["epoch"] for r in validated], [r["val"]["loss"] for r in validated], label="val")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("total loss")
    axes[0].set_yscale("log")
    axes[0].legend()
    for term in ("collision", "position", "heading", "stop", "ranking"):
        if term not in trained[-1]["train"]:  # ranking: only with --rank-weight
            continue
        values = [max(r["train"].get(term, 1e-8), 1e-8) for r in trained]
        axes[1].plot([r["epoch"] for r in trained], values, label=f"train {term}")
    axes[1].set_xlabel("epoch")
    axes[1].set_yscale("log")
    axes[1].legend(fontsize="small")
    fig.tight_layout()
    atomic_write_bytes(out_path, lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)


def truncate_metrics(path: Path, last_epoch: int) -> None:
    """Drops metric lines of epochs after the resumed checkpoint (written before a crash)."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["epoch"] <= last_epoch]
    text = "".join(line + "\n" for line in keep)
    atomic_write_bytes(path, lambda fh: fh.write(text.encode("utf-8")))
