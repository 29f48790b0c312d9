"""tensorprop: E(3)-equivariant networks for Born effective charges and dielectric tensors.

Public API
----------
load_dataset(name_or_path) -> CrystalDataset
build_model(config=None, seed=0) -> TensorModel
load_model(path=None) -> TensorModel
TensorModel.predict(structure) -> {"born_charges": (n, 3, 3), "epsilon": (3, 3)}
ensemble([model_or_run, ...]) -> EnsembleModel (the members' mean; predicts like a TensorModel)
tensorprop.charges.ChargeModel.predict(molecule) -> {"charges", "sites", "dipole"}
"""

__version__ = "0.1.0"

from .api import TensorModel, build_model, load_model
from .config import BatchConfig, ModelConfig
from .data.molecules import Molecule
from .data.records import Crystal
from .data.registry import CrystalDataset, list_datasets, load_dataset
from .ensemble import EnsembleModel, ensemble
from .errors import BatchBudgetError, CheckpointError, ConfigError, DataError, TensorpropError
from . import foundation  # Nequix foundation potential: calculator(), features()

__all__ = [
    "__version__",
    "TensorModel",
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
