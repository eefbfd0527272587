"""Same input, same bits: the parameter table and the fit do not depend on Python's hash seed.

semopy gathers parameters through hash-ordered sets; without a canonical order the optimiser's
arithmetic differs in the last bits from one process to another (seen before the fix: results.json
of the bundled run differed in about 1,000 numbers between PYTHONHASHSEED=1 and 2).
"""

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
from sem_upgrade.engine.fit import fit_model
from sem_upgrade.ingest import read_survey
from sem_upgrade.pipeline import bundled_paths
from sem_upgrade.questionnaire import load_questionnaire
data, qpath = bundled_paths()
q = load_questionnaire(qpath)
fit = fit_model(q.structural_syntax(), read_survey(data, q).analysis_frame())
t = fit.table()
print(t[["lhs", "op", "rhs"]].to_csv(index=False))
print(fit.theta.tobytes().hex(), fit.chisq.hex(), t["std_estimate"].to_numpy().tobytes().hex())
"""


def test_fit_is_identical_under_every_hash_seed():
    root = Path(__file__).resolve().parents[1]
    outs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=root, env=env, capture_output=True, text=True,
                             check=True).stdout
        outs.add(out)
    assert len(outs) == 1
