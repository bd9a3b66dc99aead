"""Run the official BraTS evaluator (brats-evaluation / panoptica) on pairs of files; print JSON.

Runs inside the optional peer environment (benchmarks/peers/setup.sh), not glioseg's:
    .venv-peers/bin/python benchmarks/peers/brats_eval_runner.py PAIRS.json
PAIRS.json: [{"id": ..., "prediction": path, "reference": path}, ...] with BraTS 2023 labels (1 NETC, 2 SNFH, 3 ET).
Prints {"id": {"wt": {"dsc", "hd95", "nsd" (global), "pq_dsc", "sq_dsc", "sq_hd95", "sq_nsd", "rq", "tp", "fp",
"fn" (instances)}, ...}, "_seconds": total evaluation time}.
"""

import json
import math
import sys
import time

from brats_evaluation import config_path
from panoptica import Panoptica_Evaluator


def clean(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def main() -> None:
    pairs = json.loads(open(sys.argv[1]).read())
    evaluator = Panoptica_Evaluator.load_from_config(str(config_path("gli")))
    out, start = {}, time.perf_counter()
    for pair in pairs:
        results = evaluator.evaluate(pair["prediction"], pair["reference"])
        out[pair["id"]] = {}
        for group, result in results.items():
            values = result.to_dict()
            out[pair["id"]][group] = {
                "dsc": clean(values.get("global_bin_dsc")),
                "hd95": clean(values.get("global_bin_hd95")),
                "nsd": clean(values.get("global_bin_nsd")),
                **{
                    key: clean(values.get(key))
                    for key in ("pq_dsc", "sq_dsc", "sq_hd95", "sq_nsd", "rq", "tp", "fp", "fn")
                },
            }
    out["_seconds"] = time.perf_counter() - start
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
