"""Questionnaire files: the instrument (constructs and items) and the theory (paths, hypotheses).

The file is YAML. Booleans are read the YAML 1.2 way (only ``true``/``false``), so
construct names such as ``N``, ``Y``, ``ON`` or ``NO`` stay names. Every check runs
before any data is read and reports ``<file>: <key>: <what is wrong>``.

Shape (all keys but ``constructs`` optional)::

    name: cluster-study
    title: free text
    id: firm_id
    scale: [1, 7]
    missing_codes: [-99, 99]
    constructs:
      NSC: {label: Network scale, items: [nsc1, nsc2, nsc3]}
      NHE: {label: Network heterogeneity, items: [nhe1, nhe2, nhe3], reverse: [nhe3]}
    paths:
      - KAC ~ NSC + NHE
    covariances:          # optional residual covariances, lavaan ``~~`` syntax
      - nsc1 ~~ nsc2
    hypotheses:
      H1: {path: NSC -> KAC, sign: +}
      H5: {indirect: NSC -> KAC -> UPG, sign: +}
    population: {...}     # optional, for ``sem-upgrade simulate`` (see simulate.py)

A construct's ``label`` is text or ``{en: ..., zh: ...}``; it may carry
``wording: {item: {en: ..., zh: ...}}`` and a ``source`` note.
``scale`` may be omitted for continuous measures (no range check then).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import SemUpgradeError

__all__ = ["Construct", "Hypothesis", "Questionnaire", "load_questionnaire", "parse_questionnaire"]

def _suggest(name: str) -> str:
    """A usable spelling of a column name: other characters become '_', a leading digit gets 'q'."""
    fixed = re.sub(r"\W", "_", name)
    return fixed if re.match(r"^[^\W\d]", fixed) else "q" + fixed


# A name the lavaan-style model syntax can carry: a letter (any script, Chinese included) or
# "_" first, then letters, digits, "_" or ".".
_NAME = re.compile(r"[^\W\d]\w*(?:\.\w+)*\Z")  # \Z: a trailing newline is not a name
# +1 / -1: a directional hypothesis; 0 ("any"): non-directional, judged by the two-sided test alone
_SIGNS = {"+": 1, "positive": 1, "pos": 1, "-": -1, "negative": -1, "neg": -1, "any": 0, "two-sided": 0}


# Limits against hostile YAML: a questionnaire is a few kilobytes; a "billion laughs" file of 780
# bytes expands through nested aliases into billions of values, and deep nesting exhausts the stack.
MAX_YAML_BYTES = 1_000_000
MAX_YAML_ALIASES = 100
MAX_YAML_DEPTH = 50
MAX_YAML_VALUES = 100_000


def _expanded_size(doc) -> int:
    """How many values ``doc`` holds once its aliases are expanded, counted without expanding them."""
    memo: dict[int, int] = {}

    def size(x) -> int:
        if not isinstance(x, (dict, list)):
            return 1
        if id(x) not in memo:
            memo[id(x)] = 0  # a cycle counts once
            memo[id(x)] = 1 + sum(size(v) for v in (x.values() if isinstance(x, dict) else x))
        return memo[id(x)]

    return size(doc)


class _Yaml12Loader(yaml.SafeLoader):
    """SafeLoader whose booleans are only true/false (YAML 1.2), so ``NO:`` is a name; it refuses
    more than ``MAX_YAML_ALIASES`` aliases and nesting deeper than ``MAX_YAML_DEPTH``."""

    def __init__(self, stream):
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} aliases (*name): refused as a possible "
                                     "'billion laughs' expansion")
        self._depth += 1
        if self._depth > MAX_YAML_DEPTH:
            raise yaml.YAMLError(f"nested more than {MAX_YAML_DEPTH} levels deep")
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _MappingWithDuplicates(dict):
    """A mapping that remembers keys given more than once (PyYAML keeps the last silently)."""

    duplicates: list


def _construct_mapping(loader, node):
    loader.flatten_mapping(node)
    out = _MappingWithDuplicates()
    out.duplicates = []
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            out.duplicates.append(key)
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_Yaml12Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


@dataclass(frozen=True)
class Construct:
    """One latent construct measured by Likert items."""

    name: str
    label: str
    items: tuple[str, ...]
    reverse: tuple[str, ...] = ()
    wording: dict = field(default_factory=dict, hash=False, compare=False)
    source: str = ""
    scale: tuple[float, float] | None = None  # the construct's own [min, max], overriding the questionnaire's
    labels: dict = field(default_factory=dict, hash=False, compare=False)  # language code -> label

    def label_for(self, lang: str = "en") -> str:
        """The construct's label in ``lang``, else its English or plain label."""
        return _pick(self.labels, lang) or self.label

    def item_text(self, item: str, lang: str = "en") -> str:
        """An item's wording in ``lang`` (a plain string serves every language); '' when none."""
        w = self.wording.get(item)
        return w if isinstance(w, str) else _pick(w or {}, lang)


def _pick(texts: dict, lang: str) -> str:
    """``texts[lang]``, else English, else the first text given; '' for none."""
    return str(texts.get(lang) or texts.get("en") or next(iter(texts.values()), "") or "")


@dataclass(frozen=True)
class Hypothesis:
    """A directional claim: a path (two names) or an indirect effect (a chain of three or more)."""

    id: str
    kind: str  # "path" or "indirect"
    chain: tuple[str, ...]
    sign: int  # +1, -1, or 0 for a non-directional (two-sided) hypothesis
    label: str = ""
    sign_given: bool = True  # False: the file gives no sign and "+" is assumed (validate says so)

    @property
    def expected(self) -> str:
        """The expected sign as tables write it: '+', '-' or 'any'."""
        return {1: "+", -1: "-", 0: "any"}[self.sign]

    @property
    def effect(self) -> str:
        return " -> ".join(self.chain)


@dataclass(frozen=True)
class Questionnaire:
    """A parsed, checked questionnaire. Build it with :func:`load_questionnaire`."""

    name: str
    title: str
    source: str
    constructs: dict[str, Construct]
    paths: tuple[tuple[str, str], ...] = ()  # (outcome, predictor)
    covariances: tuple[tuple[str, str], ...] = ()
    hypotheses: tuple[Hypothesis, ...] = ()
    id_column: str | None = None
    scale: tuple[float, float] | None = None
    missing_codes: tuple[float, ...] = ()
    population: dict | None = None

    @property
    def items(self) -> list[str]:
        """All items in questionnaire order."""
        return [i for c in self.constructs.values() for i in c.items]

    @property
    def reverse_items(self) -> list[str]:
        return [i for c in self.constructs.values() for i in c.reverse]

    @property
    def has_structure(self) -> bool:
        return bool(self.paths)

    def scale_of(self, item: str) -> tuple[float, float] | None:
        """The [min, max] an item is answered on: its construct's own scale, else the questionnaire's."""
        for c in self.constructs.values():
            if item in c.items and c.scale is not None:
                return c.scale
        return self.scale

    def construct_of(self, item: str) -> str:
        for c in self.constructs.values():
            if item in c.items:
                return c.name
        raise KeyError(item)

    def measurement_syntax(self) -> str:
        """lavaan/semopy syntax of the measurement model (constructs freely correlated)."""
        from .measurement import cfa_syntax

        return cfa_syntax({c.name: list(c.items) for c in self.constructs.values()},
                          "\n".join(f"{a} ~~ {b}" for a, b in self.covariances if a in self.items))

    def structural_syntax(self) -> str:
        """lavaan/semopy syntax of the full model: measurement part plus the structural paths."""
        lines = [self.measurement_syntax()]
        outcomes: dict[str, list[str]] = {}
        for lhs, rhs in self.paths:
            outcomes.setdefault(lhs, []).append(rhs)
        lines += [f"{lhs} ~ {' + '.join(rhs)}" for lhs, rhs in outcomes.items()]
        declared = [(a, b) for a, b in self.covariances if a in self.constructs]
        lines += [f"{a} ~~ {b}" for a, b in declared]
        # lavaan's sem() default (auto.cov.y): the residuals of constructs that are only outcomes
        # (predicting nothing) covary freely. semopy does not add them; written out here.
        predictors = {rhs for _, rhs in self.paths}
        final = [c for c in self.constructs if c in outcomes and c not in predictors]
        lines += [f"{a} ~~ {b}" for i, a in enumerate(final) for b in final[:i]
                  if (a, b) not in declared and (b, a) not in declared]
        return "\n".join(lines)


def load_questionnaire(path: str | Path) -> Questionnaire:
    """Read and check a questionnaire YAML file.

    Raises
    ------
    SemUpgradeError
        One message naming the file, the key and what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise SemUpgradeError(f"{path}: no such questionnaire file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SemUpgradeError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return parse_questionnaire(text, source=str(path))


def parse_questionnaire(text: str, source: str = "<questionnaire>") -> Questionnaire:
    """Parse questionnaire YAML text; ``source`` names it in messages."""
    if len(text.encode("utf-8")) > MAX_YAML_BYTES:
        raise SemUpgradeError(f"{source}: the file is larger than {MAX_YAML_BYTES // 1000} kB; a questionnaire is a "
                              "few kilobytes")
    try:
        doc = yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise SemUpgradeError(f"{source}: nested too deeply to be a questionnaire") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        hint = " (write a sign as '+' or '-' in quotes, or in braces: {sign: -})" if "sequence entries" in str(exc) else ""
        problem = getattr(exc, "problem", None) or exc
        raise SemUpgradeError(f"{source}: YAML syntax error at {where}{problem}{hint}") from None
    if _expanded_size(doc) > MAX_YAML_VALUES:
        raise SemUpgradeError(f"{source}: its aliases expand to more than {MAX_YAML_VALUES:,} values: refused as a "
                              "possible 'billion laughs' file")
    return _Parser(source).parse(doc)


class _Parser:
    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, msg: str):
        raise SemUpgradeError(f"{self.source}: {key}: {msg}")

    def parse(self, doc) -> Questionnaire:
        if not isinstance(doc, dict):
            raise SemUpgradeError(f"{self.source}: the file must be a mapping with a 'constructs' key")
        self._no_duplicates(doc, "")
        known = {"name", "title", "id", "scale", "missing_codes", "constructs", "paths",
                 "covariances", "hypotheses", "population", "description", "source", "notes",
                 "allow_missing_codes_in_scale"}
        for key in doc:
            if str(key) not in known:
                self.fail(str(key), f"unknown key (known keys: {', '.join(sorted(known))})")
        constructs = self._constructs(doc.get("constructs"))
        items = [i for c in constructs.values() for i in c.items]
        paths = self._paths(doc.get("paths") or [], constructs)
        covs = self._covariances(doc.get("covariances") or [], constructs, items)
        hyps = self._hypotheses(doc.get("hypotheses") or {}, constructs, paths)
        scale = self._scale(doc.get("scale"))
        if scale is None and any(c.reverse and c.scale is None for c in constructs.values()):
            self.fail("scale", "reverse-keyed items need a scale [min, max] to be recoded as min + max - x")
        codes = doc.get("missing_codes") or []
        if not isinstance(codes, list) or not all(_is_number(v) for v in codes):
            self.fail("missing_codes", f"must be a list of numbers, got {codes!r}")
        # A code inside a scale turns real answers into missing ones (4 on a 1-7 scale: a third of the
        # answers); it is refused unless the file says that this is meant.
        if doc.get("allow_missing_codes_in_scale") is not True:
            ranges = [("scale", scale)] + [(f"constructs.{c.name}.scale", c.scale) for c in constructs.values()]
            for code in codes:
                inside = next((k for k, r in ranges if r is not None and r[0] <= code <= r[1]), None)
                if inside:
                    self.fail("missing_codes", f"{code:g} lies inside {inside} {list(dict(ranges)[inside])}: it would "
                                               "turn real answers into missing ones; use a code outside the scale, or "
                                               "set allow_missing_codes_in_scale: true if it really marks non-answers")
        id_col = doc.get("id")
        if id_col is not None:
            id_col = str(id_col)
            if id_col in items:
                self.fail("id", f"'{id_col}' is also an item")
        population = doc.get("population")
        if population is not None and not isinstance(population, dict):
            self.fail("population", "must be a mapping")
        return Questionnaire(
            name=str(doc.get("name") or Path(self.source).stem),
            title=str(doc.get("title") or ""),
            source=self.source,
            constructs=constructs,
            paths=tuple(paths),
            covariances=tuple(covs),
            hypotheses=tuple(hyps),
            id_column=id_col,
            scale=scale,
            missing_codes=tuple(float(v) for v in codes),
            population=population,
        )

    def _no_duplicates(self, node, key):
        """Report a key given twice; constructs and hypotheses get their own wording."""
        dups = getattr(node, "duplicates", [])
        if dups:
            what = {"constructs": "duplicate construct", "hypotheses": "duplicate hypothesis id"}.get(key, "duplicate key")
            self.fail(f"{key}.{dups[0]}" if key else str(dups[0]), what)
        if isinstance(node, dict):
            for k, v in node.items():
                self._no_duplicates(v, f"{key}.{k}" if key else str(k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                self._no_duplicates(v, f"{key}[{i}]")

    def _scale(self, scale, key: str = "scale"):
        if scale is None:
            return None
        if not (isinstance(scale, list) and len(scale) == 2 and all(_is_number(v) for v in scale)):
            self.fail(key, f"must be [min, max] with two numbers, got {scale!r}")
        lo, hi = float(scale[0]), float(scale[1])
        if not (math.isfinite(lo) and math.isfinite(hi)):
            self.fail(key, f"the end points must be finite numbers, got {scale!r}")
        if lo >= hi:
            self.fail(key, f"min ({scale[0]}) must be below max ({scale[1]})")
        return lo, hi

    def _constructs(self, raw) -> dict[str, Construct]:
        if not isinstance(raw, dict) or not raw:
            self.fail("constructs", "must be a non-empty mapping of construct name -> {label, items}")
        out: dict[str, Construct] = {}
        owner: dict[str, str] = {}
        for name, spec in raw.items():
            name = str(name)
            key = f"constructs.{name}"
            if not _NAME.match(name) or name.startswith("_"):
                self.fail(key, "a construct name must start with a letter and hold only letters, digits, '_' or '.' "
                               "(names starting with '_' are reserved for the tool's own variables)")
            if name in out:
                self.fail(key, "duplicate construct")
            if not isinstance(spec, dict):
                self.fail(key, "must be a mapping with 'items' (and optionally 'label', 'reverse')")
            unknown = set(map(str, spec)) - {"label", "items", "reverse", "wording", "source", "label_zh", "scale"}
            if unknown:
                self.fail(f"{key}.{sorted(unknown)[0]}",
                          "unknown key (known: label, items, reverse, wording, source, scale)")
            items = spec.get("items")
            if not isinstance(items, list) or not items:
                self.fail(f"{key}.items", "must be a non-empty list of column names")
            items = [str(i) for i in items]
            for item in items:
                if not _NAME.match(item) or item.startswith("_"):
                    self.fail(f"{key}.items", f"'{item}' is not a usable column name: it must start with a letter and hold only letters, digits, '_' or '.' (rename the column, e.g. '{_suggest(item)}')")
                if item in owner:
                    where = "twice in this construct" if owner[item] == name else f"also in construct {owner[item]}"
                    self.fail(f"{key}.items", f"item '{item}' is {where}; an item belongs to one construct")
                if item in raw and item != name:
                    self.fail(f"{key}.items", f"item '{item}' has the name of a construct")
                owner[item] = name
            reverse = [str(i) for i in (spec.get("reverse") or [])]
            for item in reverse:
                if item not in items:
                    self.fail(f"{key}.reverse", f"'{item}' is not among the items of {name} ({', '.join(items)})")
            wording = spec.get("wording") or {}
            if not isinstance(wording, dict):
                self.fail(f"{key}.wording", "must map item -> text or {en: ..., zh: ...}")
            for item in wording:
                if str(item) not in items:
                    self.fail(f"{key}.wording", f"'{item}' is not among the items of {name}")
            labels = self._labels(key, spec.get("label"), spec.get("label_zh"))
            out[name] = Construct(name=name, label=_pick(labels, "en") or name, items=tuple(items),
                                  reverse=tuple(reverse), wording={str(k): v for k, v in wording.items()},
                                  source=str(spec.get("source") or ""), labels=labels,
                                  scale=self._scale(spec.get("scale"), f"{key}.scale"))
        return out

    def _labels(self, key: str, label, label_zh) -> dict[str, str]:
        """``label: text`` (every language) or ``label: {en: ..., zh: ...}``; ``label_zh`` adds Chinese."""
        if label is None:
            labels = {}
        elif isinstance(label, dict):
            labels = {str(k): v for k, v in label.items()}
            bad = next((k for k, v in labels.items() if not isinstance(v, (str, int, float)) or not str(v).strip()), None)
            if bad is not None or not labels:
                self.fail(f"{key}.label", "must be text or a mapping of language code -> text, e.g. {en: Trust, zh: 信任}")
            labels = {k: str(v).strip() for k, v in labels.items()}
        else:
            labels = {"en": str(label)}
        if label_zh is not None:
            labels["zh"] = str(label_zh)
        return labels

    def _paths(self, raw, constructs) -> list[tuple[str, str]]:
        if not isinstance(raw, list):
            self.fail("paths", "must be a list of lavaan regressions such as 'Y ~ X1 + X2'")
        out: list[tuple[str, str]] = []
        for k, line in enumerate(raw):
            key = f"paths[{k}]"
            line = str(line)
            if "~~" in line or "=~" in line or line.count("~") != 1:
                self.fail(key, f"'{line}' is not a regression 'Y ~ X1 + X2'")
            lhs, rhs = (s.strip() for s in line.split("~"))
            if "*" in rhs:  # lavaan's modifiers: never dropped in silence
                self.fail(key, f"'{line}': fixed values and labels ('0*X', 'a*X') are not taken in paths; "
                               "sem_upgrade labels the paths itself. To fix a path at 0, leave it out of the model")
            preds = [t.strip() for t in rhs.split("+")]
            for name in [lhs, *preds]:
                if name not in constructs:
                    self.fail(key, f"unknown construct '{name}' in '{line}' (constructs: {', '.join(constructs)})")
            for p in preds:
                if p == lhs:
                    self.fail(key, f"'{lhs}' cannot predict itself")
                if (lhs, p) in out:
                    self.fail(key, f"path {p} -> {lhs} is given twice")
                out.append((lhs, p))
        _check_acyclic(out, self)
        return out

    def _covariances(self, raw, constructs, items) -> list[tuple[str, str]]:
        if not isinstance(raw, list):
            self.fail("covariances", "must be a list such as 'item1 ~~ item2'")
        out = []
        for k, line in enumerate(raw):
            key = f"covariances[{k}]"
            parts = [s.strip() for s in str(line).split("~~")]
            if len(parts) != 2:
                self.fail(key, f"'{line}' is not a covariance 'a ~~ b'")
            if "*" in str(line):
                self.fail(key, f"'{line}': fixed values and labels are not taken in covariances; write 'a ~~ b'")
            a, b = parts
            both_items = a in items and b in items
            both_constructs = a in constructs and b in constructs
            if not (both_items or both_constructs) or a == b:
                self.fail(key, f"'{line}' must join two different items or two different constructs")
            out.append((a, b))
        return out

    def _hypotheses(self, raw, constructs, paths) -> list[Hypothesis]:
        if not isinstance(raw, dict):
            self.fail("hypotheses", "must be a mapping of id -> {path: A -> B, sign: +}")
        out = []
        for hid, spec in raw.items():
            hid = str(hid)
            key = f"hypotheses.{hid}"
            if any(h.id == hid for h in out):
                self.fail(key, "duplicate hypothesis id")
            if not isinstance(spec, dict):
                self.fail(key, "must be a mapping {path: A -> B, sign: +} or {indirect: A -> M -> B, sign: +}")
            kinds = [k for k in ("path", "indirect") if k in spec]
            if len(kinds) != 1:
                self.fail(key, "needs exactly one of 'path' or 'indirect'")
            kind = kinds[0]
            chain = tuple(s.strip() for s in str(spec[kind]).split("->"))
            for name in chain:
                if name not in constructs:
                    self.fail(f"{key}.{kind}", f"unknown construct '{name}' (constructs: {', '.join(constructs)})")
            if kind == "path" and len(chain) != 2:
                self.fail(f"{key}.path", "a path joins two constructs: 'A -> B' (use 'indirect' for a chain)")
            if kind == "indirect" and len(chain) < 3:
                self.fail(f"{key}.indirect", "an indirect effect needs a chain of three or more: 'A -> M -> B'")
            for a, b in zip(chain, chain[1:]):
                if (b, a) not in paths:
                    what = "is not a path of the model" if kind == "path" else f"has the link {a} -> {b}, which is not a path of the model"
                    self.fail(f"{key}.{kind}", f"'{' -> '.join(chain)}' {what} (add '{b} ~ {a}' to paths)")
            sign_raw = str(spec.get("sign", "+")).strip().lower()
            if sign_raw not in _SIGNS:
                self.fail(f"{key}.sign", f"'{spec.get('sign')}' is not a sign: use +, -, positive, negative "
                                         "or any (non-directional)")
            unknown = set(map(str, spec)) - {"path", "indirect", "sign", "label", "source"}
            if unknown:
                self.fail(f"{key}.{sorted(unknown)[0]}", "unknown key (known: path, indirect, sign, label, source)")
            out.append(Hypothesis(id=hid, kind=kind, chain=chain, sign=_SIGNS[sign_raw],
                                  label=str(spec.get("label") or ""), sign_given="sign" in spec))
        return out


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_acyclic(paths, parser: _Parser):
    graph: dict[str, set[str]] = {}
    for lhs, rhs in paths:
        graph.setdefault(rhs, set()).add(lhs)
    state: dict[str, int] = {}

    def visit(node, trail):
        if state.get(node) == 1:
            cycle = trail[trail.index(node):] + [node]
            parser.fail("paths", f"the paths form a loop {' -> '.join(cycle)}; only recursive models are supported")
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, trail + [node])
        state[node] = 2

    for node in sorted(graph):
        visit(node, [])
