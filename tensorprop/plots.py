"""Parity plots of predicted against reference tensors (matplotlib, PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .data.records import Crystal

__all__ = ["parity_plots"]


def _panel(ax, ref, pred, title, unit):
    lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], color="0.6", lw=1)
    ax.scatter(ref, pred, s=4, alpha=0.5, lw=0)
    mae = np.abs(pred - ref).mean()
    ax.set_title(f"{title}\nMAE {mae:.3f}{unit}, n={ref.size}", fontsize=9)
    ax.set_xlabel("reference")
    ax.set_ylabel("predicted")
    ax.set_aspect("equal", adjustable="datalim")


def parity_plots(crystals: Sequence[Crystal], predictions: Sequence[dict], out_dir: str | Path,
                 title: str = "") -> list[Path]:
    """Write ``parity_born.png`` (diagonal / off-diagonal Z* components) and ``parity_epsilon.png``
    (eps_inf diagonal on log axes / off-diagonal). Returns the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    diag = np.eye(3, dtype=bool)
    written = []
    pairs = [(c.born_charges, p["born_charges"]) for c, p in zip(crystals, predictions)
             if c.born_charges is not None and "born_charges" in p]
    if pairs:
        ref = np.concatenate([a for a, _ in pairs])
        pred = np.concatenate([b for _, b in pairs])
        fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
        _panel(axes[0], ref[:, diag].ravel(), pred[:, diag].ravel(), "Z* diagonal", " e")
        _panel(axes[1], ref[:, ~diag].ravel(), pred[:, ~diag].ravel(), "Z* off-diagonal", " e")
        fig.suptitle(f"Born effective charges {title}".strip())
        fig.tight_layout()
        written.append(out_dir / "parity_born.png")
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)
    pairs = [(c.epsilon, p["epsilon"]) for c, p in zip(crystals, predictions)
             if c.epsilon is not None and "epsilon" in p]
    if pairs:
        ref = np.stack([a for a, _ in pairs])
        pred = np.stack([b for _, b in pairs])
        fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
        _panel(axes[0], ref[:, diag].ravel(), pred[:, diag].ravel(), "eps_inf diagonal", "")
        axes[0].set_xscale("log")
        axes[0].set_yscale("log")
        _panel(axes[1], ref[:, ~diag].ravel(), pred[:, ~diag].ravel(), "eps_inf off-diagonal", "")
        fig.suptitle(f"Electronic dielectric tensor {title}".strip())
        fig.tight_layout()
        written.append(out_dir / "parity_epsilon.png")
        fig.savefig(written[-1], dpi=120)
        plt.close(fig)
    return written
