"""Files of a ``tensorprop phonons`` run, written atomically into one folder.

:func:`write_phonons` writes everything into a temporary sibling folder and renames it to
``out_dir`` only when every file is complete, so ``out_dir`` is either the whole result or
absent (a previous result there is replaced; a folder holding anything else is refused).

Files: ``phonopy_params.yaml`` (``phonopy.load`` reads it with force constants and the
predicted NAC), ``BORN`` (the predicted NAC parameters), ``bands.png`` (no NAC vs predicted
NAC), ``dos.png``, ``gamma_modes.csv`` / ``gamma_modes.txt``, ``ir_spectrum.csv`` /
``ir_spectrum.png`` and ``phonons_summary.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from tensorprop.errors import TensorpropError
from tensorprop.phonopy.bands import plot_bands
from tensorprop.phonopy.born_file import write_born
from tensorprop.physics.infrared import lorentzian_spectrum

__all__ = ["write_phonons", "ir_spectrum", "plot_ir_spectrum", "plot_dos", "SUMMARY_NAME", "format_summary"]

SUMMARY_NAME = "phonons_summary.json"


def ir_spectrum(gamma, width: float = 10.0, npoints: int = 2000):
    """Powder IR spectrum: Lorentzians (FWHM ``width`` cm^-1) of area I_m at the TO frequencies.

    Returns
    -------
    grid : (npoints,) ndarray, cm^-1
    spectrum : (npoints,) ndarray, e^2/amu per cm^-1
    """

    top = max(float(gamma.frequencies_cm.max()), 1.0)
    grid = np.linspace(0.0, 1.25 * top + 5.0 * width, npoints)
    keep = gamma.ir_active
    return grid, lorentzian_spectrum(grid, gamma.frequencies_cm[keep], gamma.ir_intensity[keep], width)


def _figure(size=(6.0, 4.0)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def plot_ir_spectrum(gamma, path, width: float = 10.0, title: str | None = None) -> Path:
    """IR spectrum (:func:`ir_spectrum`) with the modes as sticks, PNG."""
    grid, spectrum = ir_spectrum(gamma, width)
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(grid, spectrum, color="tab:red", lw=1.3, label=f"Lorentzian, FWHM {width:g} cm$^{{-1}}$")
    keep = gamma.ir_active
    if keep.any():
        scale = spectrum.max() / max(gamma.ir_intensity[keep].max(), 1e-30)
        ax.vlines(gamma.frequencies_cm[keep], 0.0, gamma.ir_intensity[keep] * scale, color="0.4", lw=1.0,
                  label="TO modes (scaled |Z$_m$|$^2$)")
    ax.set_xlabel("frequency (cm$^{-1}$)")
    ax.set_ylabel("IR absorption (e$^2$/amu per cm$^{-1}$)")
    ax.set_xlim(grid[0], grid[-1])
    ax.set_ylim(bottom=0.0)
    ax.legend(fontsize=8, frameon=False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    return Path(path)


def plot_dos(dos: dict, path, title: str | None = None) -> Path:
    """Total phonon DOS (with NAC), PNG."""
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(dos["frequency_cm"], dos["dos"], color="tab:blue", lw=1.2)
    ax.set_xlabel("frequency (cm$^{-1}$)")
    ax.set_ylabel("DOS (states per cm$^{-1}$ per primitive cell)")
    ax.set_ylim(bottom=0.0)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    return Path(path)


def format_summary(result) -> str:
    """A few lines for the terminal: the Gamma table, eps_inf, eps_0, warnings."""
    g = result.gamma
    lines = [f"{result.formula}: {len(g.frequencies_cm) // 3}-atom primitive cell, supercell "
             f"{np.asarray(result.supercell_matrix).tolist()} ({result.n_supercell} atoms), "
             f"{result.n_displacements} displacements, potential {result.potential}", g.to_text(),
             "eps_inf (predicted): " + np.array2string(np.diag(g.eps_inf), precision=3),
             "eps_0 = eps_inf + ionic: " + np.array2string(np.diag(g.eps_0), precision=3)
             + f" (diagonal; isotropic {np.trace(g.eps_0) / 3:.3f})"]
    if result.relax:
        r = result.relax
        lines.append(f"relaxed ({'positions and cell' if r['relax_cell'] else 'positions'}): {r['spacegroup_before']} "
                     f"-> {r['spacegroup_after']}, max displacement {r['max_displacement_A']:.4f} A, volume "
                     f"{r['volume_change_percent']:+.2f}%, energy {r['energy_change_eV']:+.4f} eV, {r['steps']} steps")
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines)


def _prepare_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise TensorpropError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / SUMMARY_NAME).is_file():
        raise TensorpropError(f"{out}: folder is not empty and holds no previous phonons result "
                              f"({SUMMARY_NAME}); choose another --out")


def write_phonons(phonon, result, out_dir, ir_width: float = 10.0, extra: dict | None = None) -> dict:
    """Write every file of a :func:`tensorprop.phonopy.phonons.phonons` run into ``out_dir``, atomically.

    Parameters
    ----------
    phonon : phonopy.Phonopy
        With force constants and ``nac_params``.
    result : PhononsResult
    out_dir : path
        Created, or replaced when it holds a previous result; refused when it holds other files.
    ir_width : float
        FWHM of the IR Lorentzians, cm^-1.
    extra : dict, optional
        More JSON-able entries for the summary (e.g. the command line).

    Returns
    -------
    dict
        The summary written to ``phonons_summary.json`` (``files`` maps names to final paths).
    """

    out = Path(out_dir).resolve()
    _prepare_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        names = {}
        phonon.save(tmp / "phonopy_params.yaml", settings={"force_constants": True})
        names["phonopy_params"] = "phonopy_params.yaml"
        write_born(tmp / "BORN", result.nac)
        names["born"] = "BORN"
        plot_bands(result.bands, tmp / "bands.png", title=f"{result.formula} ({result.potential})")
        names["bands_png"] = "bands.png"
        plot_dos(result.dos, tmp / "dos.png", title=result.formula)
        names["dos_png"] = "dos.png"
        (tmp / "gamma_modes.csv").write_text(result.gamma.to_csv())
        (tmp / "gamma_modes.txt").write_text(format_summary(result) + "\n")
        names["gamma_csv"], names["gamma_txt"] = "gamma_modes.csv", "gamma_modes.txt"
        grid, spectrum = ir_spectrum(result.gamma, ir_width)
        np.savetxt(tmp / "ir_spectrum.csv", np.column_stack([grid, spectrum]), delimiter=",", fmt="%.6g",
                   header="frequency_cm,absorption_e2_per_amu_per_cm", comments="")
        plot_ir_spectrum(result.gamma, tmp / "ir_spectrum.png", ir_width, title=result.formula)
        names["ir_csv"], names["ir_png"] = "ir_spectrum.csv", "ir_spectrum.png"
        summary = result.to_dict()
        summary["ir_width_cm"] = float(ir_width)
        summary.update(extra or {})
        summary["files"] = {k: str(out / v) for k, v in names.items()}
        (tmp / SUMMARY_NAME).write_text(json.dumps(summary, indent=1))
        old = None
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / "previous")
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary
