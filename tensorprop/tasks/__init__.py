"""The model families, one :class:`~tensorprop.tasks.base.Task` each; importing this package registers them all.

==============  ============================================  =================  ============  ============
``model.task``  predicts                                      network inputs     labels        model file
==============  ============================================  =================  ============  ============
tensors         Z* (per atom), eps_inf (per structure)        GraphBatch         TensorLabels  tensors
foundation      the same, heads on foundation features        FeatureBatch       TensorLabels  foundation
field           E(R, F); Z* = -d2E/dF dR at zero field        FieldInputs        FieldLabels   tensors
charges         distributed charges, sites, dipole            ChargeInputs       ChargeLabels  charges
==============  ============================================  =================  ============  ============

A training or validation batch is ``Batch(inputs, labels)`` (:mod:`tensorprop.data.batching`): the task's
``apply`` gets the inputs only, its ``loss`` the whole batch. Prediction batches are inputs alone.

See docs/architecture.md for how to add one.
"""

from .base import (TASKS, Task, compiled_apply, init_params, known_param_shapes, model_config, param_shapes, register,
                   task_named, task_of)
from .charges import CHARGES_TASK, ChargesTask
from .field import FIELD, FieldTask
from .foundation import FOUNDATION, FoundationTask
from .tensors import TENSORS, TensorsTask

__all__ = ["TASKS", "Task", "task_of", "task_named", "register", "model_config", "param_shapes", "known_param_shapes",
           "init_params", "compiled_apply", "TENSORS", "FOUNDATION", "FIELD", "CHARGES_TASK", "TensorsTask",
           "FoundationTask", "FieldTask", "ChargesTask"]
