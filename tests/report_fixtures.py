"""One run of the bundled study written as every report in English and Chinese, shared by the report tests."""

import json

import pytest

from sem_upgrade import pipeline
from sem_upgrade.report import write_reports

ALL = ("html", "md", "xlsx", "docx")


@pytest.fixture(scope="session")
def bundled_reports(tmp_path_factory):
    """(results, English folder, Chinese folder, results.json as read back)."""
    tmp = tmp_path_factory.mktemp("bundled")
    res = pipeline.run(outdir=tmp / "en", bootstrap=200, progress=False, formats=ALL)
    (tmp / "zh").mkdir()
    write_reports(res, tmp / "zh", ALL, lang="zh")
    return res, tmp / "en", tmp / "zh", json.loads((tmp / "en" / "results.json").read_text(encoding="utf-8"))
