"""sem_upgrade: structural equation modeling of questionnaire surveys, with lavaan-equal numbers.

>>> import sem_upgrade
>>> res = sem_upgrade.run()                 # the bundled Liaoning study (218 simulated firms)
>>> res.table("hypotheses")[["id", "supported"]].head(2)
   id  supported
0  H1       True
1  H2       True
"""

from .errors import SemUpgradeError
from .ingest import read_survey
from .pipeline import bundled_paths, run, validate
from .power import power
from .questionnaire import load_questionnaire
from .results import Results

__all__ = ["run", "validate", "power", "load_questionnaire", "read_survey", "bundled_paths", "Results", "SemUpgradeError"]
__version__ = "0.1.0"
