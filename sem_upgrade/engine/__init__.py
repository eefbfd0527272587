"""The estimation engine, laid out by stage as lavaan's ``lav_*`` files.

========================  ===================================================================
``partable``              the parameter table (the one description of a model), MatrixId
``syntax``                semopy: parsing, starting values, a fallback start; its logs silenced
``implied``               Sigma and Phi, single and batched
``derivatives``           dSigma/dtheta, the chain rule to dF/dtheta, expected information
``mvnorm``                the complete-data ML discrepancy F_ML and its gradient
``mvnorm_missing``        FIML: the casewise likelihood, EM for the saturated model
``optimize``              the quasi-Newton optimiser (Fisher scoring, then BFGS), its drivers
``vcov``                  standard errors: the inverse information matrix
``identification``        identification and data checks
``standardize``           the standardized solution (std.all)
``fit``                   the Fit object, ``fit_model``, ``fit_ml``, ``fit_fiml``
========================  ===================================================================
"""

from .fit import Fit, fit_covariance, fit_fiml, fit_ml, fit_model
from .mvnorm_missing import em_saturated
from .partable import MatrixId, ModelStructure, build_structure

__all__ = ["Fit", "fit_model", "fit_ml", "fit_fiml", "fit_covariance", "em_saturated", "MatrixId",
           "ModelStructure", "build_structure"]
