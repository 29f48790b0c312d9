"""The bundled model's test figures before and after duplicates were moved out of the test split.

    python benchmarks/split_cleaning.py [MODEL]      # MODEL: run folder, .npz, or 'default' (bundled)

Predicts the test part of the seeded split as first committed (152 structures) once and scores it
whole and without the crystals that ``SPLIT_PARAMETERS["phonon-becs"]["moved_to_train"]`` moved
into train (the committed test part, 148 structures). A model trained on the old split never saw
the moved crystals, so for it they simply leave the test figure. Prints one JSON document.
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
import time
import warnings

import tensorprop
from tensorprop.data.splits import SPLIT_PARAMETERS, load_split, make_split
from tensorprop.train.evaluate import tensor_metrics

_KEYS = ("n_structures", "born_n_atoms", "born_mae", "born_rmse", "epsilon_mae", "epsilon_rmse")


def main(model_path: str = "default") -> dict:
    model = tensorprop.load_model(model_path)
    data = tensorprop.load_dataset("phonon-becs")
    p = SPLIT_PARAMETERS["phonon-becs"]
    old = make_split(p["n"], p["fractions"], p["seed"])["test"]
    new = set(load_split("phonon-becs")["test"])
    test = data.subset(old)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = model.predict_many(test, unseen_elements="warn")
    elapsed = time.perf_counter() - t0
    keep = [k for k, i in enumerate(old) if i in new]
    moved = [k for k, i in enumerate(old) if i not in new]
    figures = {
        name: {k: v for k, v in tensor_metrics([test[k] for k in idx], [pred[k] for k in idx]).items() if k in _KEYS}
        for name, idx in (("old test (seeded split)", range(len(old))), ("cleaned test (committed split)", keep),
                          ("moved to train", moved))
    }
    return {"model": model_path, "moved": [old[k] for k in moved], **figures,
            "predict_wall_s_including_compile": round(elapsed, 2),
            "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
            "date": datetime.date.today().isoformat()}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:2]), indent=2))
