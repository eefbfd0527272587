"""The one exception type for mistakes a user can make.

Every message names the file, key, row or column at fault; the command line
prints it on one line and exits with code 2 (see :mod:`sem_upgrade.cli`).
"""

__all__ = ["SemUpgradeError", "ModelNotIdentifiedError"]


class SemUpgradeError(Exception):
    """A problem with the user's input (files, questionnaire, options or data)."""


class ModelNotIdentifiedError(SemUpgradeError):
    """The model cannot be estimated whatever the data: more free parameters than moments, or an
    information matrix singular at generic points. The questionnaire's model is at fault, not
    the data file."""
