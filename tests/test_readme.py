"""The README's set-up commands and its hypothesis table stay true."""

import re
from pathlib import Path

from sem_upgrade import pipeline, report

README = Path(__file__).parents[1] / "README.md"


def test_readme_hypothesis_table_is_what_the_code_produces():
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- hypothesis-table:start -->\n(.*?)\n<!-- hypothesis-table:end -->", text, re.S).group(1)
    assert block == report.hypothesis_markdown(pipeline.run(progress=False))


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    lines = README.read_text(encoding="utf-8").splitlines()
    commands = [line.split("#")[0].strip() for line in lines[3:5]]
    assert commands == ['pip install . && sem-upgrade run', 'pip install ".[test]" && python -m pytest -q tests']
    ci = (Path(__file__).parents[1] / ".ci" / "run").read_text()
    assert "python -m pytest -q tests" in ci and 'pip install ".[test]"' in ci
