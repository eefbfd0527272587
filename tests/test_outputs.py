"""The output folder: one complete run, inputs never overwritten, write errors and Ctrl-C as one line,
and the path diagram of a large model readable."""

import re
from pathlib import Path

import numpy as np
import pytest

from sem_upgrade import pipeline
from sem_upgrade.cli import main
from sem_upgrade.errors import SemUpgradeError
from sem_upgrade.results import Results


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """One fitted run (no bootstrap) whose results are written again by the tests."""
    return pipeline.run(bootstrap=0, progress=False)


def _shown(folder: Path):
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_an_input_under_an_output_name_is_refused(tmp_path):
    data, q = pipeline.bundled_paths()
    out = tmp_path / "out"
    out.mkdir()
    inside = out / "rejected_rows.csv"
    inside.write_bytes(data.read_bytes())
    before = inside.read_bytes()
    with pytest.raises(SemUpgradeError, match=r"rejected_rows.csv: this input is in the output folder under the name "
                                              r"of an output \(rejected_rows.csv\)"):
        pipeline.run(inside, q, out, bootstrap=0)
    qin = out / "tables" / "q.yaml"
    qin.parent.mkdir()
    qin.write_bytes(q.read_bytes())
    assert main(["run", str(data), "-q", str(qin), "-o", str(out), "--bootstrap", "0"]) == 2
    assert inside.read_bytes() == before and qin.exists()


def test_the_folder_holds_one_complete_run(small, tmp_path):
    from sem_upgrade.report import write_run

    out = tmp_path / "out"
    out.mkdir()
    (out / "my_notes.txt").write_text("mine")
    write_run(small, out, ("html", "md", "xlsx"))
    assert _shown(out) == ["my_notes.txt", "path_diagram.pdf", "path_diagram.png", "rejected_rows.csv",
                           "report.html", "report.md", "results.json", "tables", "tables.xlsx", "timing.json"]
    write_run(small, out, ("md",))  # a second run with fewer formats: no stale reports beside it
    assert _shown(out) == ["my_notes.txt", "rejected_rows.csv", "report.md", "results.json", "timing.json"]
    assert not [p for p in out.iterdir() if p.name.startswith(".sem_upgrade-")]  # no temporary folder left


def test_a_failed_write_leaves_the_previous_run(small, tmp_path, monkeypatch):
    from sem_upgrade.report import write_run, writer

    out = tmp_path / "out"
    write_run(small, out, ("md", "html"))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer, "write_docx", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_run(small, out, ("md", "docx"))
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert not [p for p in out.iterdir() if p.name.startswith(".sem_upgrade-")]


def test_ctrl_c_is_one_line(monkeypatch, capsys):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "run", interrupted)
    assert main(["run"]) == 130
    err = capsys.readouterr().err
    assert err == "sem-upgrade: interrupted\n"


def test_a_file_in_the_way_is_one_message(small, tmp_path, capsys):
    from sem_upgrade.report import write_run

    out = tmp_path / "out"
    out.mkdir()
    (out / "tables").write_text("not a folder")
    with pytest.raises(SemUpgradeError, match=r"tables: a file is in the way of the output folder 'tables'"):
        write_run(small, out, ("xlsx",))
    data, q = pipeline.bundled_paths()
    assert main(["run", "-o", str(out), "--bootstrap", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a file is in the way" in err
    (tmp_path / "file").write_text("x")
    with pytest.raises(SemUpgradeError, match="the output folder is a file"):
        write_run(small, tmp_path / "file", ("md",))


def test_an_unwritable_folder_is_one_message(small, tmp_path, monkeypatch):
    # the tests may run as root, for whom chmod does not forbid writing: the OS error is simulated
    import tempfile

    from sem_upgrade.report import write_run

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "ro"))

    monkeypatch.setattr(tempfile, "mkdtemp", denied)
    with pytest.raises(SemUpgradeError, match=r"ro: cannot write the outputs: Permission denied \(the folder is "
                                              r"not writable\)"):
        write_run(small, tmp_path / "ro", ("md",))


# ---------------------------------------------------------------- a large model's path diagram
def _large_results(k=8):
    """Eight constructs in four causal layers; every path hypothesised except two (one of them not significant)."""
    names = [f"C{i}" for i in range(k)]
    edges = [("C0", "C3"), ("C1", "C3"), ("C2", "C4"), ("C1", "C4"), ("C3", "C5"), ("C4", "C5"), ("C3", "C6"),
             ("C5", "C7"), ("C6", "C7"), ("C0", "C7"), ("C2", "C6")]
    p = [0.001, 0.02, 0.0004, 0.3, 0.001, 0.01, 0.04, 0.002, 0.03, 0.6, 0.002]
    paths = [{"lhs": b, "rhs": a, "estimate": 0.3, "se": 0.1, "z": 3.0, "pvalue": pv, "std_estimate": 0.3 - 0.07 * i}
             for i, ((a, b), pv) in enumerate(zip(edges, p))]
    hyps = [{"id": f"H{i + 1}", "kind": "path", "effect": f"{a} -> {b}", "supported": pv < 0.05}
            for i, ((a, b), pv) in enumerate(zip(edges, p)) if (a, b) not in (("C0", "C7"), ("C2", "C6"))]
    data = {"questionnaire": {"constructs": {c: {"label": f"Construct number {c} with a long label",
                                                 "labels": {"zh": f"第{c}个构念"}} for c in names}},
            "paths": paths, "hypotheses": hyps, "r2": {c: 0.4 for c in names[3:]},
            "provenance": {"options": {"alpha": 0.05}}}
    return Results.from_dict(data)


def test_large_path_diagram_is_readable():
    from sem_upgrade.report.diagram import _RX, _RY, layout, path_diagram_svg

    res = _large_results()
    lay = layout(res, "en")
    xy = np.array([n["xy"] for n in lay["nodes"].values()])
    assert len(set(xy[:, 0])) == 4 and len(set(xy[:, 1])) >= 3  # columns by causal order, rows within them
    depth = {c: x for c, (x, _) in zip(lay["nodes"], xy)}
    for e in lay["edges"]:
        assert depth[e["from"]] < depth[e["to"]]  # every arrow runs forward
    ellipses = [(x - _RX, y - _RY, x + _RX, y + _RY) for x, y in xy]
    boxes = []
    for e in lay["edges"]:
        x, y = e["label_xy"]
        w = 8.0 * len(e["label"]) + 6
        boxes.append((x - w / 2, y - 14, x + w / 2, y + 4))

    def overlap(a, b):
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
    for i, a in enumerate(boxes):
        assert not any(overlap(a, b) for b in boxes[:i]), "coefficient labels overlap"
        assert not any(overlap(a, el) for el in ellipses), "a coefficient label covers a construct"
    style = {(e["from"], e["to"]): e["style"] for e in lay["edges"]}
    assert style[("C0", "C7")] == "grey"  # neither hypothesised nor significant
    assert style[("C2", "C6")] == "solid"  # not hypothesised but significant
    assert style[("C1", "C4")] == "dashed"  # hypothesised, not supported
    svg = path_diagram_svg(res, "zh")
    assert svg.count("<ellipse") == 8 and svg.count('data-style="grey"') == 1
    assert re.search(r'stroke="#aaa" stroke-width="0.8"[^>]*data-style="grey"', svg)
    assert "第C3个构念" in svg


def test_reports_are_identical_bytes_across_writes(small, tmp_path):
    # same results -> same bytes in every report (no wall-clock time in the zip entries of xlsx/docx,
    # in their core properties, or in the PNG/PDF metadata)
    import time

    from sem_upgrade.report import write_reports

    (tmp_path / "a").mkdir()
    write_reports(small, tmp_path / "a", ("html", "md", "xlsx", "docx"))
    time.sleep(2.1)  # the zip format stores times to 2 s: a later write must still give the same bytes
    (tmp_path / "b").mkdir()
    write_reports(small, tmp_path / "b", ("html", "md", "xlsx", "docx"))
    names = _shown(tmp_path / "a")
    assert names == ["path_diagram.pdf", "path_diagram.png", "report.docx", "report.html", "report.md", "tables",
                     "tables.xlsx"]
    for n in names:
        if n != "tables":
            assert (tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes(), n
