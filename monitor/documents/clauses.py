"""Which clauses a document cites for a finding: the rule's ``legal_basis`` as the rule
file states it today, adjusted by ``rules/citations/clauses.yaml`` for the call's date (the text of
a law then in force), the lender's type (instruments that bind only some lenders lead
or drop out) and the words matched (a fake lawyer is not a fake police officer)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from monitor import settings
from monitor.detection.yamlfile import YamlSyntaxError, line_of, load
from monitor.errors import MonitorError

# Not rules/*.yaml: every YAML file at the top of the rules folder is read as a rule.
CLAUSES_FILE = "citations/clauses.yaml"


class ClauseTableError(MonitorError):
    """rules/citations/clauses.yaml cannot be read or an entry is malformed."""


@dataclass(frozen=True)
class RuleText:
    title: str
    legal_basis: tuple[str, ...]


def rules_folder(directory: str | None = None) -> Path:
    from monitor.detection.rules import DEFAULT_RULES_DIR

    return Path(directory or settings.get("rules_dir") or DEFAULT_RULES_DIR)


@lru_cache(maxsize=4)
def rule_texts(directory: str | None = None) -> dict[str, RuleText]:
    """Rule id → title and legal_basis, read straight from the rule files: documents
    need the words as they stand now, not a compiled rule pack (and not the citations
    stored with an old finding, which may predate a correction)."""
    from monitor.detection.rules import rule_files

    folder = rules_folder(directory)
    texts = {}
    for path in rule_files(folder) if folder.is_dir() else []:
        try:
            document = load(path)
        except (OSError, YamlSyntaxError):
            continue  # a broken rule file is `monitor rules check`'s business, not ours
        if isinstance(document, dict) and document.get("id") and document.get("title"):
            basis = tuple(str(line) for line in document.get("legal_basis") or ())
            texts[str(document["id"])] = RuleText(str(document["title"]), basis)
    return texts


def rule_titles(directory: str | None = None) -> dict[str, str]:
    return {rule: text.title for rule, text in rule_texts(directory).items()}


@lru_cache(maxsize=4)
def clause_table(directory: str | None = None) -> dict:
    """rules/citations/clauses.yaml, checked; an empty table when the rules folder has none."""
    path = rules_folder(directory) / CLAUSES_FILE
    if not path.is_file():
        return {"by_call_date": [], "by_lender": [], "by_words": []}
    try:
        table = load(path) or {}
    except OSError as error:
        raise ClauseTableError(f"{path}: cannot be read ({error})") from error
    except YamlSyntaxError as error:
        raise ClauseTableError(f"{path}:{error.line or 1}: {error}") from error
    if not isinstance(table, dict):
        raise ClauseTableError(f"{path}:1: expected a mapping of by_call_date, by_lender, by_words")
    required = {"by_call_date": ("line", "since", "earlier"), "by_lender": ("line", "lenders"), "by_words": ("line",)}
    for section, keys in required.items():
        entries = table.setdefault(section, [])
        if not isinstance(entries, list):
            raise ClauseTableError(f"{path}: {section} must be a list")
        for number, entry in enumerate(entries, start=1):
            where = f"{path}:{line_of(table, [section, number - 1]) or 1}"
            missing = [k for k in keys if not isinstance(entry, dict) or entry.get(k) in (None, "", [])]
            if missing:
                raise ClauseTableError(f"{where}: {section} entry {number} lacks {', '.join(missing)}")
            if section == "by_call_date" and not isinstance(entry["since"], date):
                raise ClauseTableError(f"{where}: {section} entry {number}: since must be a date (YYYY-MM-DD)")
    return table


def cited_clauses(legal_basis: tuple[str, ...] | list[str], *, call_date: date | None = None,
                  lender_type: str | None = None, matched: str | None = None,
                  directory: str | None = None) -> list[str]:
    """The clauses to cite, in order. ``call_date`` None (unknown) keeps the current
    text; ``lender_type`` None or "unknown" keeps every instrument in its place."""
    table = clause_table(directory)
    words = matched or ""
    lines = []
    for line in legal_basis:
        rule = next((e for e in table["by_words"] if line.startswith(e["line"])), None)
        if rule and rule.get("when_matched") and not any(w in words for w in rule["when_matched"]):
            continue
        if rule and rule.get("unless_matched") and any(w in words for w in rule["unless_matched"]):
            continue
        dated = next((e for e in table["by_call_date"] if line.startswith(e["line"])), None)
        if dated and call_date is not None and call_date < dated["since"]:
            line = str(dated["earlier"])
        lines.append(line)
    if not lender_type or lender_type == "unknown":
        return lines
    leading, rest = [], []
    for line in lines:
        bound = next((e for e in table["by_lender"] if line.startswith(e["line"])), None)
        if bound is None:
            rest.append(line)
        elif lender_type in bound["lenders"]:
            leading.append(line)
        # an instrument that binds other lender types only is not this lender's law
    return leading + rest
