"""tensorprop: E(3)-equivariant networks for Born effective charges and dielectric tensors.

Public API
----------
load_dataset(name_or_path) -> CrystalDataset
build_model(config=None, seed=0) -> TensorModel (a Model of crystal tensors)
load_model(path=None) -> the Model (TensorModel, ChargeModel, FoundationTensorModel) or EnsembleModel a file holds
TensorModel.predict(structure) -> {"born_charges": (n, 3, 3), "epsilon": (3, 3)}
ensemble([model_or_run, ...]) -> EnsembleModel (the members' mean; predicts like a TensorModel)
tensorprop.charges.ChargeModel.predict(molecule) -> {"charges", "sites", "dipole"}
"""

from ._version import __version__
from .api import Model, TensorModel, build_model
from .charges import ChargeModel
from .config import BatchConfig, ModelConfig
from .data.molecules import Molecule
from .data.records import Crystal
from .data.registry import CrystalDataset, list_datasets, load_dataset
from .ensemble import EnsembleModel, ensemble
from .errors import BatchBudgetError, CheckpointError, ConfigError, DataError, TensorpropError
from .foundation_model import FoundationTensorModel
from .loading import load_model
from . import foundation  # Nequix foundation potential: calculator(), features()

__all__ = [
    "__version__",
    "Model",
    "TensorModel",
    "ChargeModel",
    "FoundationTensorModel",
    "build_model",
    "load_model",
    "ensemble",
    "EnsembleModel",
    "ModelConfig",
    "BatchConfig",
    "Crystal",
    "Molecule",
    "CrystalDataset",
    "load_dataset",
    "list_datasets",
    "TensorpropError",
    "DataError",
    "ConfigError",
    "CheckpointError",
    "BatchBudgetError",
    "foundation",
]
