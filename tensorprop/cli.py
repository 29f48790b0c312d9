"""The ``tensorprop`` command line.

    tensorprop fit becs|eps|becs-eps [--config C.yaml] [--data D] [--out RUN] [--max-steps N] [--seed S]
                                     [--resume RUN] [--exclude-formula F ...] [--SECTION.KEY VALUE ...]
    tensorprop evaluate RUN [--split test] [--data D] [--json] [--out DIR]
    tensorprop predict RUN_OR_MODEL STRUCTURE... [--format F] [--out FILE.json|FILE.xyz|FILE.jsonl]
                                                   [--shard I/N] [--resume]
    (predict and evaluate also take the model as --model M, as born and nac do)
    tensorprop ensemble RUN_OR_MODEL RUN_OR_MODEL... --out FILE.npz     # one model averaging several
    tensorprop ensemble --born-charges A B --epsilon A C --out FILE.npz # members chosen per target
    tensorprop fit charges [--head equivariant|cartesian] [--n-dcm K] [--data ESP.npz|water-dipoles] ...
    tensorprop data esp --molecule water [--molecule methanol] --n-conformers N --method HF --basis def2-svp --out F.npz
    tensorprop data field --molecule water --n-conformers N --max-field 0.5 --n-born 2 --out F.xyz
    tensorprop fit field --data F.xyz                  # E(R, F) on energies, forces, dipoles (and Z*) in fields
    tensorprop datasets [list | fetch NAME | verify NAME]
    tensorprop born STRUCTURE_OR_PHONOPY_YAML [--model M] [--all-atoms] [--symprec S]
    tensorprop nac PHONOPY_YAML --force-sets FORCE_SETS [--model M] [--reference BORN] [--out DIR]

Every field of the YAML config is also a flag, e.g. ``--train.learning_rate 0.002`` or
``--model.hidden_irreps "16x0e+8x1o+8x1e+4x2e"`` (values are parsed as YAML).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing
from pathlib import Path

import numpy as np
import yaml

from ._version import __version__
from .cli_common import remember_parsers, run
from .config import FitConfig, allowed_text, config_from_dict, config_to_dict, field_docs, load_yaml_config
from .data.molecules import molecules_from_crystals, write_esp_dataset
from .data.readers import FORMATS, detect_format, read_structures
from .data.registry import REGISTRY, resolve_dataset_file, verify_dataset
from .data.writers import write_extxyz
from .ensemble import ensemble
from .errors import CheckpointError, TensorpropError
from .loading import load_model
from .outputs import BORN_CHARGES, BORN_CHARGES_SPREAD, CHARGES, DIPOLE, EPSILON, EPSILON_SPREAD, SITES
from .phonopy.cli import add_subcommands as add_phonopy_subcommands
from .physics.electrostatics import EANG_DEBYE
from .qm.esp import generate_esp_dataset
from .qm.field import generate_field_dataset
from .screening import parse_shard, screen
from .train.loop import fit
from .train.model_evaluation import EvaluationRequest, evaluate_model

__all__ = ["main"]

TARGETS = {"becs": [BORN_CHARGES], "eps": [EPSILON], "becs-eps": [BORN_CHARGES, EPSILON],
           "charges": [CHARGES], "field": ["field"]}
FIELD_MODEL = {"hidden_irreps": "32x0e + 8x0o + 16x1o + 8x1e + 8x2e + 4x2o", "head_irreps": "16x0e + 8x1o + 8x2e",
               "cutoff": 4.0, "head": "field"}
CHARGE_MODEL = {"hidden_irreps": "32x0e + 16x1o + 8x1e + 8x2e", "head_irreps": "16x0e + 8x1o", "cutoff": 4.0}


def _flag_help(section: str, f: dataclasses.Field, doc: str | None) -> str:
    """Help of one --section.key flag: the field's doc, its built-in default and its allowed values."""
    default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    if isinstance(default, tuple):
        default = list(default)
    allowed = allowed_text(section, f.name)
    parts = [doc or "", f"default {yaml.safe_dump(default, default_flow_style=True).strip().removesuffix('...').strip()}"]
    text = ". ".join(p for p in parts if p) + (f"; {allowed}" if allowed else "")
    return text.replace("``", "").replace("%", "%%")


def _add_config_flags(parser: argparse.ArgumentParser):
    """--section.field for every field of FitConfig's sections (strings parsed as YAML later), with help text
    generated from the config dataclasses: docstring, default, allowed values."""
    hints = typing.get_type_hints(FitConfig)
    for section in dataclasses.fields(FitConfig):
        cls = hints[section.name]
        docs = field_docs(cls)
        group = parser.add_argument_group(f"{section.name} options (override the config file; values are YAML)")
        for f in dataclasses.fields(cls):
            group.add_argument(f"--{section.name}.{f.name}", dest=f"set:{section.name}.{f.name}", metavar="V",
                               default=None, help=_flag_help(section.name, f, docs.get(f.name)))


def _fit_config(args) -> FitConfig:
    base = config_to_dict(load_yaml_config(args.config, FitConfig) if args.config else FitConfig())
    base["model"]["targets"] = TARGETS[args.target]
    base["model"]["task"] = ""  # the task follows from the targets (and head, foundation) the command line sets
    if args.target == "charges" and not args.config:  # molecule-sized defaults
        base["model"].update(CHARGE_MODEL)
        base["data"]["dataset"] = "water-dipoles"
    if args.target == "field":
        if not args.config:
            base["model"].update(FIELD_MODEL)
        base["model"]["head"] = "field"
        if not args.data and not args.config:
            raise TensorpropError("fit field needs --data FILE (make one with: tensorprop data field ...)")
    overrides = {k[4:]: v for k, v in vars(args).items() if k.startswith("set:") and v is not None}
    for key, text in overrides.items():
        section, field = key.split(".", 1)
        base[section][field] = yaml.safe_load(text)
    shortcuts = {"data.dataset": args.data, "train.max_steps": args.max_steps, "train.seed": args.seed,
                 "data.max_train": args.max_train, "charges.head": args.head, "charges.n_dcm": args.n_dcm}
    for key, value in shortcuts.items():
        if value is not None:
            section, field = key.split(".")
            base[section][field] = value
    if args.exclude_formula:
        base["data"]["exclude_formulas"] = list(args.exclude_formula)
    return config_from_dict(FitConfig, base)


def cmd_fit(args) -> int:
    if args.resume:
        fit(None, args.resume, resume=True, max_steps=args.max_steps, progress=not args.no_progress)
        return 0
    cfg = _fit_config(args)
    out = args.out or f"runs/{args.target}"
    fit(cfg, out, progress=not args.no_progress)
    return 0


def _model_argument(args, command: str) -> str:
    """The model named positionally or with --model (not both, differently)."""
    if args.model and args.run and args.model != args.run:
        raise TensorpropError(f"{command}: the model is given twice ({args.run} and --model {args.model})")
    name = args.model or args.run
    if not name:
        raise TensorpropError(f"{command} needs a model: tensorprop {command} MODEL or --model MODEL (a run folder, "
                              "a model .npz, or 'default' for the bundled model)")
    return name


def _eval_dir(args, run: Path) -> Path:
    """Where evaluate writes metrics.json and plots: --out, else RUN/eval_SPLIT for a run folder, else
    ./eval_MODELNAME_SPLIT (``eval_default_test`` for the bundled model)."""
    if args.plots:
        return Path(args.plots)
    return run / f"eval_{args.split}" if run.is_dir() else Path(f"eval_{run.stem}_{args.split}")


def cmd_evaluate(args) -> int:
    args.run = _model_argument(args, "evaluate")
    run = Path(args.run)
    model = load_model(args.run)
    evaluation = evaluate_model(model, EvaluationRequest(run, args.split, args.data, _eval_dir(args, run),
                                                         progress=not args.json))
    print(json.dumps(evaluation.metrics, indent=2) if args.json else "\n".join(evaluation.lines))
    return 0


def _format_prediction(crystal, pred, epsilon_note: str = "") -> str:
    from ase.data import chemical_symbols

    lines = [f"# {crystal.label or 'structure'} ({crystal.formula}, {crystal.n_atoms} atoms)"]
    if EPSILON in pred:
        spread = f" (ensemble spread {float(pred['epsilon_spread']):.4f})" if EPSILON_SPREAD in pred else epsilon_note
        lines.append(f"eps_inf{spread}:")
        lines += ["  " + " ".join(f"{x:9.4f}" for x in row) for row in pred[EPSILON]]
    if BORN_CHARGES in pred:
        spread = pred.get(BORN_CHARGES_SPREAD)
        lines.append("Born effective charges Z*[a, b] = dP_a/du_b (e)"
                     + (", each atom's ensemble spread after the first row:" if spread is not None else ":"))
        for i, (z, t) in enumerate(zip(crystal.numbers, pred[BORN_CHARGES])):
            rows = [" ".join(f"{x:8.4f}" for x in row) for row in t]
            note = f"  spread {spread[i]:.4f}" if spread is not None else ""
            lines.append(f"  {i:4d} {chemical_symbols[z]:<3s} [{rows[0]}]{note}")
            lines += [f"           [{r}]" for r in rows[1:]]
    return "\n".join(lines)


def _predict_charges(args, model, crystals, structures) -> int:
    from ase.data import chemical_symbols

    molecules = molecules_from_crystals([c.replace(info={}) for c in crystals], ", ".join(structures))
    predictions = model.predict_many(molecules)
    if args.out:
        Path(args.out).write_text(json.dumps([{"label": m.label, "numbers": m.numbers.tolist(),
                                               **{k: np.asarray(v).tolist() for k, v in p.items()}}
                                              for m, p in zip(molecules, predictions)], indent=1))
        print(f"wrote {len(molecules)} predictions to {args.out}")
        return 0
    for m, p in zip(molecules, predictions):
        d = p[DIPOLE]
        print(f"# {m.label or 'molecule'} ({m.formula}): dipole [{d[0]:.4f} {d[1]:.4f} {d[2]:.4f}] e*A "
              f"= {np.linalg.norm(d) * EANG_DEBYE:.4f} D")
        for i, z in enumerate(m.numbers):
            sites = "  ".join(f"{q:+.4f}@({s[0]:.3f},{s[1]:.3f},{s[2]:.3f})" for q, s in zip(p[CHARGES][i], p[SITES][i]))
            print(f"  {i:4d} {chemical_symbols[z]:<3s} sum {p['charges'][i].sum():+.4f} e  {sites}")
    return 0


def cmd_ensemble(args) -> int:
    runs = list(dict.fromkeys([*args.models, *(args.born_charges or []), *(args.epsilon or [])]))
    per_target = {BORN_CHARGES: set(args.born_charges or []), EPSILON: set(args.epsilon or [])}
    # a run named without a target option serves all its targets; one named under options only, those targets
    targets = [None if run in args.models else [t for t, named in per_target.items() if run in named] for run in runs]
    model = ensemble(runs, embed_foundation=args.embed_foundation, targets=targets)
    path = model.save(args.out)
    print(f"{path}: {model!r} (members: {', '.join(runs)})")
    return 0


def _load_predict_model(name: str):
    """load_model, with a plain word when the 'model' is a structure file (swapped arguments)."""

    try:
        return load_model(name)
    except CheckpointError:
        if Path(name).is_file():
            try:
                fmt = detect_format(name)
            except TensorpropError:
                raise TensorpropError(f"{name}: not a model file (a tensorprop .npz); usage: tensorprop predict "
                                      "MODEL STRUCTURE... or --model MODEL STRUCTURE...") from None
            raise TensorpropError(f"{name}: a structure file ({fmt}), not a model; the model comes first: "
                                  "tensorprop predict MODEL STRUCTURE... (or --model MODEL STRUCTURE...)") from None
        raise


def _epsilon_note(model) -> str:
    """Why an ensemble's eps_inf has no spread: only one member predicts it (the bundled model's case)."""
    served = getattr(model, "member_targets", None)
    if served is not None and sum(EPSILON in uses for uses in served) == 1:
        return " (no ensemble spread: one member predicts eps_inf)"
    return ""


def _predict_stream(args, model, structures) -> int:
    """predict --out FILE.jsonl [--shard I/N] [--resume]: tensorprop.screening.screen."""

    if not (args.out or "").endswith(".jsonl") or model.task.molecules:
        raise TensorpropError("--shard and --resume stream crystal predictions to --out FILE.jsonl (JSON lines)")
    shard = parse_shard(args.shard or "0/1")
    counts = screen(model, structures, args.out, shard=shard, resume=args.resume, format=args.format,
                    unseen_elements="warn" if args.allow_unseen_elements else "error", max_edges=args.max_edges)
    print(f"wrote {counts['written']} predictions to {args.out} (shard {shard[0]}/{shard[1]}: {counts['frames']} "
          f"frames, {counts['kept']} already there)")
    return 0


def cmd_predict(args) -> int:
    if args.model:
        name, structures = args.model, args.inputs
    elif len(args.inputs) >= 2:
        name, structures = args.inputs[0], args.inputs[1:]
    else:
        raise TensorpropError("predict needs a model and at least one structure: tensorprop predict MODEL "
                              "STRUCTURE... (or --model MODEL STRUCTURE...); MODEL may be 'default'")
    model = _load_predict_model(name)
    if (args.out or "").endswith(".jsonl") or args.shard or args.resume:
        return _predict_stream(args, model, structures)
    crystals = read_structures(structures, format=args.format, allow_left_handed=True)
    if model.task.molecules:  # molecules: the structures' atoms, no cell
        return _predict_charges(args, model, crystals, structures)
    predictions = model.predict_many(crystals, unseen_elements="warn" if args.allow_unseen_elements else "error",
                                     max_edges=args.max_edges)
    if args.out:
        out = Path(args.out)
        if out.suffix == ".json":
            out.write_text(json.dumps([
                {"label": c.label, "formula": c.formula, "numbers": c.numbers.tolist(),
                 **{k: np.asarray(v).tolist() for k, v in p.items()}} for c, p in zip(crystals, predictions)],
                indent=1))
        else:
            spreads = [{k: p[k] if np.ndim(p[k]) else float(p[k])
                        for k in (BORN_CHARGES_SPREAD, EPSILON_SPREAD) if k in p} for p in predictions]
            write_extxyz(out, [c.replace(born_charges=p.get(BORN_CHARGES), epsilon=p.get(EPSILON),
                                         info={**c.info, **sp})
                               for c, p, sp in zip(crystals, predictions, spreads)])
        print(f"wrote {len(crystals)} predictions to {out}")
    else:
        note = _epsilon_note(model)
        print("\n\n".join(_format_prediction(c, p, note) for c, p in zip(crystals, predictions)))
    return 0


def cmd_datasets(args) -> int:
    if args.action == "list":
        for name, spec in REGISTRY.items():
            print(f"{name:<22} {spec.filename:<30} {spec.description}")
    elif not args.name:
        raise TensorpropError(f"datasets {args.action} needs a data set name; registered: {', '.join(REGISTRY)}")
    elif args.action == "fetch":
        print(resolve_dataset_file(args.name))
    else:
        print(f"{verify_dataset(args.name)}: sha256 OK")
    return 0


def _out_with_suffix(out: str, suffix: str) -> Path:
    """``out``, with ``suffix`` added (and said) when it has none: readers tell formats by it."""
    path = Path(out)
    if path.suffix.lower() != suffix:
        path = path.with_name(path.name + suffix)
        print(f"writing {path} (added {suffix}, which tensorprop's readers recognise)", file=sys.stderr)
    return path


def cmd_data_esp(args) -> int:
    try:
        import pyscf  # noqa: F401
    except ImportError:
        raise TensorpropError("tensorprop data esp needs PySCF: pip install 'tensorprop[qm]'") from None
    names = args.molecule or ["water"]
    molecules = generate_esp_dataset(names, args.n_conformers, method=args.method, basis=args.basis, sigma=args.sigma,
                                     seed=args.seed, density=args.density, progress=not args.no_progress)
    meta = {"method": args.method, "basis": args.basis, "molecules": names, "n_conformers": args.n_conformers,
            "sigma_angstrom": args.sigma, "seed": args.seed, "points_per_angstrom2": args.density,
            "shells_vdw_scale": [1.4, 1.6, 1.8, 2.0]}
    path = write_esp_dataset(_out_with_suffix(args.out, ".npz"), molecules, meta)
    n_points = sum(m.n_points for m in molecules)
    print(f"wrote {len(molecules)} conformers ({n_points} ESP points, {args.method}/{args.basis}) to {path}")
    return 0


def cmd_data_field(args) -> int:
    try:
        import pyscf  # noqa: F401
    except ImportError:
        raise TensorpropError("tensorprop data field needs PySCF: pip install 'tensorprop[qm]'") from None
    structures = generate_field_dataset(args.molecule or ["water"], args.n_conformers, max_field=args.max_field,
                                        method=args.method, basis=args.basis, sigma=args.sigma, seed=args.seed,
                                        n_born=args.n_born, born_on_test_split=args.born_on_test_split,
                                        progress=not args.no_progress)
    out = write_extxyz(args.out if args.out.lower().endswith((".xyz", ".extxyz")) else
                       _out_with_suffix(args.out, ".xyz"), structures)
    n_born = sum(s.born_charges is not None for s in structures)
    print(f"wrote {len(structures)} conformers in fields up to {args.max_field} V/A ({n_born} with reference Born "
          f"charges, {args.method}/{args.basis}) to {out}")
    return 0


def _add_conformer_args(q: argparse.ArgumentParser, out_help: str):
    """Options shared by the PySCF data generators: molecules, conformers, level of theory, output."""
    q.add_argument("--molecule", action="append", help="water, hf, co2, ammonia, formaldehyde, methane, methanol, "
                                                       "ethanol (repeatable; default water)")
    q.add_argument("--n-conformers", type=int, default=8)
    q.add_argument("--method", default="HF", help="HF or a DFT functional PySCF knows (e.g. B3LYP)")
    q.add_argument("--basis", default="def2-svp")
    q.add_argument("--sigma", type=float, default=0.05, help="Gaussian displacement of each coordinate, Angstrom")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--out", required=True, help=out_help)
    q.add_argument("--no-progress", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tensorprop", description="Equivariant Born charges and dielectric tensors")
    parser.add_argument("--version", action="version", version=f"tensorprop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("fit", help="train a model on a data set's train split")
    p.add_argument("target", choices=sorted(TARGETS), help="what to learn")
    p.add_argument("--config", help="YAML file with model/batch/train/data sections")
    p.add_argument("--data", help="registered data set name or ext-xyz path")
    p.add_argument("--out", help="run folder (default runs/TARGET)")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--max-train", type=int, help="use a seeded subset of this many training structures")
    p.add_argument("--exclude-formula", action="append", help="leave this reduced formula out of train/valid")
    p.add_argument("--head", choices=["equivariant", "cartesian"], help="charges: which charge head")
    p.add_argument("--n-dcm", type=int, help="charges: distributed charges per atom")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder from its last checkpoint")
    p.add_argument("--no-progress", action="store_true")
    _add_config_flags(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("evaluate", help="errors and parity plots of a trained run or model file")
    p.add_argument("run", nargs="?", metavar="MODEL", help="run folder, model .npz, or 'default' for the bundled model")
    p.add_argument("--model", help="the model, as the positional MODEL")
    p.add_argument("--split", default="test", choices=["train", "valid", "test", "all"])
    p.add_argument("--data", help="data set to evaluate on instead of the run's (with --split all: every structure)")
    p.add_argument("--json", action="store_true", help="print metrics as JSON")
    p.add_argument("--out", "--plots", dest="plots", metavar="DIR",
                   help="folder for metrics.json and the parity plots (default RUN/eval_SPLIT for a run folder, "
                        "./eval_MODELNAME_SPLIT for a model file, e.g. ./eval_default_test)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="Born charges and eps_inf of structures (POSCAR, CIF, ext-xyz)")
    p.add_argument("inputs", nargs="+", metavar="[MODEL] STRUCTURE",
                   help="the model (run folder, model .npz, or 'default' for the bundled model) unless --model "
                        "names it, then structure files (POSCAR/CONTCAR, CIF, ext-xyz; the format from the name, "
                        "else the content)")
    p.add_argument("--model", help="the model, instead of the first positional argument")
    p.add_argument("--format", choices=FORMATS, help="format of every structure file (default: from its name, "
                                                     "else its content)")
    p.add_argument("--out", help="write predictions to FILE.json or FILE.xyz (ext-xyz), or stream them to "
                                 "FILE.jsonl (JSON lines, as they come; for large files)")
    p.add_argument("--shard", metavar="I/N", help="with --out FILE.jsonl: predict frames k with k %% N == I only "
                                                   "(N processes or array-job tasks, one each)")
    p.add_argument("--resume", action="store_true", help="with --out FILE.jsonl: keep the frames already written "
                                                         "(checked against the input) and add the rest")
    p.add_argument("--allow-unseen-elements", action="store_true",
                   help="predict (with a warning) structures with elements absent from the training set")
    p.add_argument("--max-edges", type=int, default=500_000,
                   help="refuse structures with more edges within the cutoff (memory guard; default 500000)")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("ensemble", help="join trained runs (other seeds, Z*-only and eps-only runs, ...) into one "
                                        "model that predicts their mean")
    p.add_argument("models", nargs="*", help="run folders or model .npz files (each serves all its targets)")
    p.add_argument("--born-charges", nargs="+", metavar="RUN", help="runs whose Z* joins the mean (and not their "
                   "eps_inf unless also named under --epsilon or as a positional argument)")
    p.add_argument("--epsilon", nargs="+", metavar="RUN", help="runs whose eps_inf joins the mean (likewise)")
    p.add_argument("--out", required=True, help="model file to write (.npz)")
    p.add_argument("--embed-foundation", action="store_true",
                   help="write the frozen foundation checkpoint of members on foundation features into the file "
                        "(a few MB; the file then predicts without the checkpoint on disk; MIT notice: "
                        "tensorprop/foundation/LICENSE-nequix)")
    p.set_defaults(func=cmd_ensemble)

    p = sub.add_parser("data", help="generate reference data with PySCF (needs tensorprop[qm])")
    data_sub = p.add_subparsers(dest="kind", required=True)
    q = data_sub.add_parser("esp", help="ESP on van der Waals shells, dipoles and energies of distorted conformers")
    _add_conformer_args(q, "output .npz")
    q.add_argument("--density", type=float, default=0.5, help="ESP points per Angstrom^2 on each shell")
    q.set_defaults(func=cmd_data_esp)

    q = data_sub.add_parser("field", help="energies, forces and dipoles in random uniform fields; reference Z*")
    _add_conformer_args(q, "output ext-xyz")
    q.add_argument("--max-field", type=float, default=0.5, help="largest field, V/A (0.5 V/A ~ 0.0097 a.u.)")
    q.add_argument("--n-born", type=int, default=2, help="conformers per molecule with finite-difference Z*")
    q.add_argument("--born-on-test-split", action="store_true",
                   help="give finite-difference Z* to the conformers of the seeded test split that fit holds out "
                        "instead (ignores --n-born)")
    q.set_defaults(func=cmd_data_field)

    p = sub.add_parser("datasets", help="list, fetch or verify the registered data sets")
    p.add_argument("action", nargs="?", default="list", choices=["list", "fetch", "verify"])
    p.add_argument("name", nargs="?")
    p.set_defaults(func=cmd_datasets)

    add_phonopy_subcommands(sub)
    remember_parsers(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
