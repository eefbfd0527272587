"""Reports: the paper's tables, a written results section, HTML, Markdown, Excel, CSV, Word, the path diagram.

Reports only read a run's results (:class:`~sem_upgrade.results.Results`); they compute
no statistic and decide no threshold or verdict. Modules: ``tables`` (the tables a paper
prints, with human names), ``narrative`` (APA sentences), ``i18n`` (English and Chinese
terms), ``fmt`` (APA numbers), ``html``, ``markdown``, ``excel`` (xlsx and CSV), ``word``
(docx), ``diagram`` (SVG, PNG, PDF), ``plots``, ``writer`` (one complete run per folder).
"""

from .diagram import path_diagram_svg, write_diagram
from .excel import write_csv, write_excel
from .fmt import fmt_number, fmt_p
from .html import html_report
from .i18n import LANGS, check_lang
from .markdown import hypothesis_markdown, markdown_report
from .narrative import narrative
from .tables import build_tables
from .word import write_docx
from .writer import FORMATS, check_formats, check_outdir, write_reports, write_run

__all__ = ["FORMATS", "LANGS", "build_tables", "check_formats", "check_lang", "check_outdir", "fmt_number", "fmt_p",
           "html_report", "hypothesis_markdown", "markdown_report", "narrative", "path_diagram_svg", "write_csv", "write_diagram",
           "write_docx", "write_excel", "write_reports", "write_run"]
