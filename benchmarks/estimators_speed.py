"""Time one robust (MLR / MLM) fit of the bundled Liaoning structural model against lavaan's.

Run by hand:  python benchmarks/estimators_speed.py [repeats]
lavaan's time is the median stored by tests/reference/r/estimators.R (sem(..., estimator = "MLR")
on the same data, same machine class); rerun that script to refresh it.
"""

import json
import statistics
import sys
import time
from pathlib import Path

from sem_upgrade.engine.fit import fit_model
from sem_upgrade.ingest import read_survey
from sem_upgrade.pipeline import bundled_paths
from sem_upgrade.questionnaire import load_questionnaire

REF = Path(__file__).resolve().parents[1] / "tests" / "reference" / "estimators.json"


def main(repeats: int = 20) -> None:
    data, qpath = bundled_paths()
    q = load_questionnaire(qpath)
    x = read_survey(data, q).analysis_frame()
    syntax = q.structural_syntax()
    fit_model(syntax, x, estimator="mlr")  # warm-up (imports, semopy parser)
    lavaan = json.loads(REF.read_text())["liaoning_mlr"]["lavaan_seconds_per_fit"]
    for est in ("ml", "mlm", "mlr"):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fit_model(syntax, x, estimator=est)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        print(f"{est}: median {med:.3f} s per fit over {repeats}" +
              (f"; lavaan MLR {lavaan:.3f} s, {lavaan / med:.1f}x faster" if est == "mlr" else ""))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
