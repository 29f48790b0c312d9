"""Parity plots of predicted against reference tensors (matplotlib, PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .data.records import Crystal
from .outputs import BORN_CHARGES, CHARGES, DIPOLE, EPSILON, SITES
from .physics.electrostatics import EANG_DEBYE, HARTREE_KCALMOL, esp

__all__ = ["parity_plots", "charge_parity_plots"]


def _panel(ax, ref, pred, title, unit):
    lo, hi = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
    ax.plot([lo, hi], [lo, hi], color="0.6", lw=1)
    ax.scatter(ref, pred, s=4, alpha=0.5, lw=0)
    mae = np.abs(pred - ref).mean()
    ax.set_title(f"{title}\nMAE {mae:.3f}{unit}, n={ref.size}", fontsize=9)
    ax.set_xlabel("reference")
    ax.set_ylabel("predicted")
    ax.set_aspect("equal", adjustable="datalim")


def _parity_figure(ref, pred, name: str, unit: str, path: Path, *, log_diagonal: bool = False) -> Path:
    """Two panels, diagonal and off-diagonal components of (n, 3, 3) tensors, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    diag = np.eye(3, dtype=bool)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5))
    _panel(axes[0], ref[:, diag].ravel(), pred[:, diag].ravel(), f"{name} diagonal", unit)
    if log_diagonal:
        from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

        axes[0].set_xscale("log")
        axes[0].set_yscale("log")
        for axis in (axes[0].xaxis, axes[0].yaxis):
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(ScalarFormatter())
            axis.set_minor_formatter(NullFormatter())
    _panel(axes[1], ref[:, ~diag].ravel(), pred[:, ~diag].ravel(), f"{name} off-diagonal", unit)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def parity_plots(crystals: Sequence[Crystal], predictions: Sequence[dict], out_dir: str | Path,
                 title: str = "") -> list[Path]:
    """Write ``parity_born.png`` (diagonal / off-diagonal Z* components) and ``parity_epsilon.png``
    (eps_inf diagonal on log axes / off-diagonal). Returns the written paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for key, name, unit, log in ((BORN_CHARGES, f"Z* {title}".strip(), " e", False),
                                 (EPSILON, f"eps_inf {title}".strip(), "", True)):
        pairs = [(getattr(c, key), p[key]) for c, p in zip(crystals, predictions)
                 if getattr(c, key) is not None and key in p]
        if pairs:
            ref = np.concatenate([np.reshape(a, (-1, 3, 3)) for a, _ in pairs])
            pred = np.concatenate([np.reshape(b, (-1, 3, 3)) for _, b in pairs])
            stem = "born" if key == BORN_CHARGES else "epsilon"
            written.append(_parity_figure(ref, pred, name, unit, out_dir / f"parity_{stem}.png", log_diagonal=log))
    return written


def charge_parity_plots(molecules: Sequence, predictions: Sequence[dict], out_dir: str | Path,
                        title: str = "") -> Path:
    """``parity_charges.png``: dipole components (Debye) and ESP values (kcal/mol/e), predicted
    against reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with_dip = [(m.dipole, p[DIPOLE]) for m, p in zip(molecules, predictions) if m.dipole is not None]
    with_esp = [(m.esp, np.asarray(esp(p[SITES].reshape(-1, 3), p[CHARGES].reshape(-1), m.esp_points)))
                for m, p in zip(molecules, predictions) if m.esp is not None]
    panels = [x for x in (("dipole", with_dip, EANG_DEBYE, " D"), ("ESP", with_esp, HARTREE_KCALMOL, " kcal/mol/e"))
              if x[1]]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(4.5 * max(len(panels), 1), 4.5), squeeze=False)
    for ax, (name, pairs, factor, unit) in zip(axes[0], panels):
        ref = np.concatenate([np.ravel(a) for a, _ in pairs]) * factor
        pred = np.concatenate([np.ravel(b) for _, b in pairs]) * factor
        _panel(ax, ref, pred, f"{name} {title}".strip(), unit)
    fig.tight_layout()
    path = out_dir / "parity_charges.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
