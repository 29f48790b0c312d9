"""phonopy's non-analytic correction (LO-TO splitting) from predicted Born charges and eps_inf.

Functions
---------
predict_nac(model, phonon_or_structure) -> NacResult
    Predicted, symmetrised NAC parameters of phonopy's primitive cell, with the size of the
    symmetrisation correction.
nac_params(model, phonon_or_structure) -> {"born", "dielectric", "factor"}
    The same as phonopy's ``nac_params`` dict.
attach_nac(phonon, model) -> NacResult
    Predict and set ``phonon.nac_params``.
write_born(path_or_stream, nac, primitive=None)
    A BORN file phonopy reads.
gamma_frequencies(phonon, nac_params, directions) -> {direction: frequencies (cm^-1)}
run_nac(phonopy_yaml, force_sets, model, reference_born, out_dir) -> summary dict
phonons(atoms, calculator=..., model=...) -> (Phonopy, PhononsResult)
    Force constants from any ASE calculator, predicted NAC, Gamma modes, IR intensities, eps_0.
write_phonons(phonon, result, out_dir)
    Its files (phonopy_params.yaml, plots, tables, summary), written atomically.

Inside this package ``import phonopy`` is the real phonopy (absolute imports only).
"""

from tensorprop.phonopy.bands import band_structure, gamma_frequencies, gamma_modes, plot_bands
from tensorprop.phonopy.born_file import nac_yaml_block, write_born
from tensorprop.phonopy.nac import NacError, NacResult, attach_nac, default_nac_factor, nac_params, predict_nac
from tensorprop.phonopy.gamma_table import GammaAnalysis, gamma_analysis
from tensorprop.phonopy.phonons import PhononsResult, SupercellBudgetError, phonons, relax_structure
from tensorprop.phonopy.phonons_output import write_phonons
from tensorprop.phonopy.workflow import format_gamma_table, run_nac

__all__ = [
    "nac_params",
    "predict_nac",
    "attach_nac",
    "NacResult",
    "NacError",
    "default_nac_factor",
    "write_born",
    "nac_yaml_block",
    "gamma_frequencies",
    "gamma_modes",
    "band_structure",
    "plot_bands",
    "run_nac",
    "format_gamma_table",
    "phonons",
    "PhononsResult",
    "SupercellBudgetError",
    "relax_structure",
    "write_phonons",
    "gamma_analysis",
    "GammaAnalysis",
]
