"""Subcommands ``born`` and ``nac`` of the ``tensorprop`` command line.

    tensorprop born STRUCTURE_OR_PHONOPY_YAML [--model M] [--format F] [--all-atoms] [--symprec S]
    tensorprop nac PHONOPY_YAML --force-sets FORCE_SETS [--model M] [--reference BORN] [--out DIR]
    tensorprop phonons STRUCTURE [--potential P] [--model M] [--supercell N N N | --min-length L] [--relax] [--out DIR]

``born`` prints a BORN file of the predicted NAC parameters (or, with ``--all-atoms``,
the phonopy-yaml ``nac:`` block listing every atom of the primitive cell) to stdout;
what primitive cell was used goes to stderr. ``nac`` runs
:func:`tensorprop.phonopy.workflow.run_nac` and prints the Gamma-point table. ``phonons`` runs
:func:`tensorprop.phonopy.phonons.phonons` (forces from a foundation potential) and writes its
folder with :func:`tensorprop.phonopy.phonons_output.write_phonons`.

:func:`add_subcommands` registers both on an ``argparse`` sub-parser collection; each
handler returns an exit code. Errors of tensorprop (:class:`~tensorprop.errors.TensorpropError`)
propagate to the main command line, which prints them. ``python -m tensorprop.phonopy.cli``
runs the two subcommands on their own.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from tensorprop.cli_common import run
from tensorprop.data.readers import FORMATS, read_structure
from tensorprop.phonopy import workflow  # workflow.resolve_model is looked up per call (tests replace it)
from tensorprop.phonopy.born_file import nac_yaml_block, write_born
from tensorprop.phonopy.nac import predict_nac, spread_text
from tensorprop.phonopy.phonons import DEFAULT_MAX_ATOMS, DEFAULT_MIN_LENGTH, phonons
from tensorprop.phonopy.phonons_output import format_summary, write_phonons

__all__ = ["add_subcommands", "cmd_born", "cmd_nac", "cmd_phonons", "main"]

#: the foundation potential of ``tensorprop phonons`` (tensorprop.foundation.calculator)
DEFAULT_POTENTIAL = "nequix-mp-1-pft"

_YAML_SUFFIXES = (".yaml", ".yml")



def cmd_born(args) -> int:
    """Handler of ``born``: print the BORN file (or yaml ``nac:`` block) predicted for a structure."""

    path = Path(args.structure)
    if path.suffix.lower() in _YAML_SUFFIXES:
        from phonopy.structure.cells import PrimitiveMatrixAutoDefaultWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PrimitiveMatrixAutoDefaultWarning)
            target = workflow.load_phonopy(path, produce_fc=False)
    else:
        target = read_structure(path, format=args.format) if args.format else path
    model = workflow.resolve_model(args.model)
    result = predict_nac(model, target, symprec=args.symprec)
    print(f"# {result.primitive_source}; {len(result.primitive)} atoms: {' '.join(result.symbols)}",
          file=sys.stderr)
    print(f"# symmetrisation changed Born charges by up to {result.born_correction_max:.2e} e, "
          f"eps_inf by up to {result.dielectric_correction_max:.2e}", file=sys.stderr)
    if result.born_spread is not None:
        print("# " + spread_text(result.born_spread, result.dielectric_spread, result.symbols), file=sys.stderr)
    if args.all_atoms:
        sys.stdout.write(nac_yaml_block(result))
    else:
        write_born(sys.stdout, result, symprec=result.symprec)
    return 0


def cmd_nac(args) -> int:
    """Handler of ``nac``: predicted vs reference NAC on a phonopy calculation, table and plot."""

    summary = workflow.run_nac(args.phonopy_yaml, force_sets=args.force_sets, model=args.model,
                      reference_born=args.reference, out_dir=args.out, npoints=args.npoints,
                      plot=not args.no_plot)
    print(workflow.format_gamma_table(summary))
    print(f"wrote {', '.join(summary['files'].values())}")
    return 0


def cmd_phonons(args) -> int:
    """Handler of ``phonons``: phonons, LO-TO splitting, IR spectrum and eps_0 of a structure, into a folder."""

    phonon, result = phonons(args.structure, calculator=args.potential, model=args.model, supercell=args.supercell,
                             min_length=args.min_length, relax=args.relax or args.relax_cell,
                             relax_cell=args.relax_cell, distance=args.distance, max_atoms=args.max_atoms,
                             progress=not args.no_progress)
    summary = write_phonons(phonon, result, args.out, ir_width=args.ir_width,
                            extra={"structure": str(args.structure), "model": str(args.model)})
    print(format_summary(result))
    print(f"wrote {Path(args.out)}/: {', '.join(Path(f).name for f in summary['files'].values())}, "
          f"phonons_summary.json")
    return 0


def add_subcommands(subparsers) -> None:
    """Register ``born``, ``nac`` and ``phonons`` on ``subparsers`` (from ``ArgumentParser.add_subparsers``)."""

    p = subparsers.add_parser("born", help="predicted phonopy BORN file (NAC parameters) of a structure",
                              description="Print a phonopy BORN file with predicted Born charges and eps_inf "
                                          "of the primitive cell of a structure or phonopy yaml.")
    p.add_argument("structure", metavar="STRUCTURE_OR_PHONOPY_YAML",
                   help="POSCAR/CIF/ext-xyz file, or phonopy(_disp).yaml (its primitive cell is used)")
    p.add_argument("--model", default="default", help="model file or run folder (default: the bundled model)")
    p.add_argument("--format", choices=FORMATS, help="format of a structure file (default: from its name, "
                                                     "else its content)")
    p.add_argument("--all-atoms", action="store_true",
                   help="print the phonopy-yaml 'nac:' block with every atom instead of a BORN file")
    p.add_argument("--symprec", type=float, default=None,
                   help="symmetry tolerance (default: the yaml's, or 1e-5)")
    p.set_defaults(func=cmd_born)

    p = subparsers.add_parser("nac", help="LO-TO splitting with predicted NAC on a phonopy calculation",
                              description="Predict NAC parameters for a phonopy calculation, compare the Gamma "
                                          "frequencies and bands with no NAC and with a reference BORN file.")
    p.add_argument("phonopy_yaml", metavar="PHONOPY_YAML", help="phonopy_disp.yaml or phonopy.yaml")
    p.add_argument("--force-sets", required=True, metavar="FORCE_SETS", help="phonopy FORCE_SETS file")
    p.add_argument("--model", default="default", help="model file or run folder (default: the bundled model)")
    p.add_argument("--reference", metavar="BORN", help="DFT BORN file to compare with")
    p.add_argument("--out", default="nac", help="output folder (default ./nac)")
    p.add_argument("--npoints", type=int, default=51, help="q-points on the longest band segment")
    p.add_argument("--no-plot", action="store_true", help="skip the band structure and its plot")
    p.set_defaults(func=cmd_nac)

    p = subparsers.add_parser("phonons", help="LO-TO bands, IR spectrum and eps_0 of a structure (foundation potential)",
                              description="Phonons of a crystal from its structure alone: forces from a foundation "
                                          "potential, Born charges and eps_inf (NAC) from a tensorprop model.")
    p.add_argument("structure", metavar="STRUCTURE", help="POSCAR/CIF/ext-xyz file of the unit cell")
    p.add_argument("--potential", default=DEFAULT_POTENTIAL,
                   help=f"foundation potential name or .nqx file (default {DEFAULT_POTENTIAL})")
    p.add_argument("--model", default="default", help="Z*/eps_inf model file or run folder (default: bundled)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--supercell", type=int, nargs=3, metavar="N", help="supercell of the unit cell, e.g. 2 2 2")
    size.add_argument("--min-length", type=float, metavar="L",
                      help=f"smallest supercell plane spacing, Angstrom (default {DEFAULT_MIN_LENGTH:g})")
    p.add_argument("--relax", action="store_true", help="relax positions first, keeping the space group")
    p.add_argument("--relax-cell", action="store_true", help="relax positions and cell first (implies --relax)")
    p.add_argument("--out", default="phonons", help="output folder, written atomically (default ./phonons)")
    p.add_argument("--ir-width", type=float, default=10.0, help="Lorentzian FWHM of the IR spectrum, cm^-1")
    p.add_argument("--distance", type=float, default=0.01, help="displacement amplitude, Angstrom")
    p.add_argument("--max-atoms", type=int, default=DEFAULT_MAX_ATOMS,
                   help=f"largest supercell allowed, atoms (default {DEFAULT_MAX_ATOMS})")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_phonons)


def main(argv: list[str] | None = None) -> int:
    """Run ``born``, ``nac`` or ``phonons`` on their own (``python -m tensorprop.phonopy.cli nac ...``)."""
    parser = argparse.ArgumentParser(prog="tensorprop", description="tensorprop phonopy NAC tools")
    add_subcommands(parser.add_subparsers(dest="command", required=True))
    return run(parser, argv)


if __name__ == "__main__":
    sys.exit(main())
