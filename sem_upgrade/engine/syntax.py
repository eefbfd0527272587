"""The bridge to semopy: syntax parsing, its starting values, and its optimiser as a fallback start.

semopy logs through the root logger (``logging.warning`` at module level). ``quiet_semopy``
drops those records, and only those, while semopy works, then restores the root logger:
no process-wide switch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings

import numpy as np
import pandas as pd

from ..errors import SemUpgradeError

__all__ = ["quiet_semopy", "parse_model", "semopy_estimates"]


class _FromSemopy(logging.Filter):
    """Drops the records that semopy's own files log."""

    def __init__(self):
        super().__init__()
        import semopy

        self.prefix = os.path.dirname(semopy.__file__) + os.sep

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.startswith(self.prefix)


@contextlib.contextmanager
def quiet_semopy():
    """Silence semopy's log records and warnings inside the block, and nothing else.

    While no handler is installed on the root logger, a NullHandler stands in, so that
    semopy's ``logging.warning`` does not install a stderr handler process-wide
    (``logging.basicConfig``); it is removed afterwards.
    """
    root = logging.getLogger()
    flt = _FromSemopy()
    stand_in = logging.NullHandler() if not root.handlers else None
    if stand_in is not None:
        root.addHandler(stand_in)
    root.addFilter(flt)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.removeFilter(flt)
        if stand_in is not None:
            root.removeHandler(stand_in)


def parse_model(syntax: str, data: pd.DataFrame):
    """semopy's parsed model, loaded with ``data`` (NaN filled by column means) for its starts.

    Raises SemUpgradeError for a syntax error, variables missing from the data, or a sample
    covariance matrix semopy cannot work with.
    """
    import semopy

    from .identification import not_pd_message

    try:
        model = semopy.Model(syntax)
    except Exception as exc:  # semopy raises bare Exceptions for syntax errors
        raise SemUpgradeError(f"model syntax: {exc}") from None
    obs = list(model.vars["observed"])
    missing = [v for v in obs if v not in data.columns]
    if missing:
        raise SemUpgradeError(f"model syntax: variables not in the data: {', '.join(missing)}")
    start_data = data[obs].fillna(data[obs].mean())
    with quiet_semopy():
        try:
            model.load(data=start_data)
        except np.linalg.LinAlgError:
            raise SemUpgradeError(not_pd_message(np.cov(start_data.to_numpy(), rowvar=False), obs)) from None
    return model


def semopy_estimates(st, S: np.ndarray, n: int | None):
    """Fallback start: semopy's own optimiser on the covariance matrix ``S`` (``n`` rows), as a
    parameter vector of ``st``; None when semopy fails."""
    import semopy

    try:
        model = semopy.Model(st.syntax)
        with quiet_semopy():
            model.fit(cov=pd.DataFrame(S, index=st.observed, columns=st.observed), n_samples=n, obj="MLW")
            est = model.inspect()
    except Exception:  # semopy failing here means: no better start available
        return None
    theta = st.start.copy()
    for _, row in st.table[st.table["free"]].iterrows():
        hit = est[(est["lval"].astype(str) == str(row["lhs"] if row["op"] != "=~" else row["rhs"]))
                  & (est["rval"].astype(str) == str(row["rhs"] if row["op"] != "=~" else row["lhs"]))]
        if len(hit):
            theta[row["index"]] = float(hit["Estimate"].iloc[0])
    return theta

