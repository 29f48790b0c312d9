"""Square vs interaction readout on frozen Nequix features: wall time per step and valid errors after a short run.

    python benchmarks/foundation_readouts.py [STEPS] [OUT]     # default 150 steps, runs under /tmp/foundation-readouts

Both runs use configs/foundation-frozen.yaml (cached features; the first run extracts them if the cache is empty,
which its wall time then includes) and differ only in model.foundation.readout. Prints one JSON document.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import sys
from pathlib import Path

from tensorprop.config import FitConfig, load_yaml_config
from tensorprop.train.loop import fit

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "foundation-frozen.yaml"


def main(steps: int = 150, out: str = "/tmp/foundation-readouts") -> dict:
    base = load_yaml_config(CONFIG, FitConfig)
    rows = {}
    for readout in ("square", "interaction"):
        fc = dataclasses.replace(base.model.foundation, readout=readout)
        cfg = dataclasses.replace(base, model=dataclasses.replace(base.model, foundation=fc),
                                  train=dataclasses.replace(base.train, max_steps=steps, eval_every=steps,
                                                            checkpoint_every=steps, warmup_steps=min(50, steps)))
        run = Path(out) / readout
        summary = fit(cfg, run, progress=False, log=lambda s: None)
        last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
        rows[readout] = {"steps": summary["steps"], "wall_s": summary["wall_s"], "n_parameters": summary["n_parameters"],
                         "s_per_step": round(summary["wall_s"] / summary["steps"], 3),
                         **{k: round(v, 4) for k, v in last.items() if k.startswith("valid_")}}
    return {"readouts": rows, "date": datetime.date.today().isoformat()}


if __name__ == "__main__":
    print(json.dumps(main(*(int(a) if i == 0 else a for i, a in enumerate(sys.argv[1:3]))), indent=2))
