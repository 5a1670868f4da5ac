"""The `monitor` command. A thin shell: parse options, call the library, turn domain
errors into messages and exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from . import __version__, config
from .errors import MonitorError, RuleError
from .rules import load_rules
from .ruletest import load_engine, run_examples


def _fail_rules(error: RuleError) -> None:
    for problem in error.problems:
        click.echo(str(problem), err=True)
    click.echo(f"{len(error.problems)} problem(s) in the rules; nothing was scanned.", err=True)
    sys.exit(2)


@click.group()
@click.version_option(__version__, prog_name="monitor")
def main() -> None:
    """Compliance monitor for debt-collection phone calls."""


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(allow_dash=True, dir_okay=False))
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False), help="Rules folder (default: the bundled rules/).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Write JSON Lines here instead of standard output.")
def scan(input_path: str, rules_dir: str | None, output: str | None) -> None:
    """Run the rules over transcripts in JSON Lines (utterances or whole calls).

    One output line per input line, in order. Exit status 1 when a line could not be
    processed (its output line carries "error").
    """
    from .scan import scan_lines

    try:
        engine = load_engine(rules_dir)
    except RuleError as error:
        _fail_rules(error)
    zone = ZoneInfo(config.get("timezone"))
    source = sys.stdin if input_path == "-" else open(input_path, encoding="utf-8")  # noqa: SIM115
    sink = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
    errors = lines = 0
    try:
        for record in scan_lines(engine, source, zone):
            lines += 1
            if "error" in record:
                errors += 1
                click.echo(f"error: {record['error']}", err=True)
            sink.write(json.dumps(record, ensure_ascii=False) + "\n")
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{input_path}: not UTF-8 text ({exc.reason})") from exc
    finally:
        if source is not sys.stdin:
            source.close()
        if sink is not sys.stdout:
            sink.close()
    click.echo(f"scanned {lines} line(s), {errors} error(s)", err=True)
    sys.exit(1 if errors else 0)


@main.group()
def rules() -> None:
    """Check, test and list the rule pack."""


@rules.command("check")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
def rules_check(directory: str | None) -> None:
    """Validate every rule and run its examples; print each problem as file:line: message."""
    try:
        engine = load_engine(directory or config.get("rules_dir") or None)
    except RuleError as error:
        for problem in error.problems:
            click.echo(str(problem))
        click.echo(f"{len(error.problems)} problem(s)", err=True)
        sys.exit(1)
    pack = engine.pack
    examples = sum(len(r.examples) for r in pack.rules)
    click.echo(f"ok: {len(pack.rules)} rules, {examples} examples, rule set version {pack.version}")


@rules.command("test")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
def rules_test(directory: str | None) -> None:
    """Run every rule's examples and print each failure."""
    from .engine import Engine

    try:
        pack = load_rules(directory or config.get("rules_dir") or None)
    except RuleError as error:
        _fail_rules(error)
    outcomes = run_examples(Engine(pack))
    failed = [o for o in outcomes if not o.passed]
    for outcome in failed:
        click.echo(f"FAIL {outcome.problem}")
    click.echo(f"{len(outcomes) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


@rules.command("list")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
def rules_list(directory: str | None) -> None:
    """List the rules: id, category, severity, title."""
    try:
        pack = load_rules(directory or config.get("rules_dir") or None)
    except RuleError as error:
        _fail_rules(error)
    for rule in sorted(pack.rules, key=lambda r: (r.category, r.id)):
        click.echo(f"{rule.id:40} {rule.category:18} {rule.severity:8} {rule.title}")


@main.command()
@click.argument("labelled", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False), help="Rules folder (default: the bundled rules/).")
@click.option("--show-errors", is_flag=True, help="Also list every line whose categories differ.")
def evaluate(labelled: tuple[str, ...], rules_dir: str | None, show_errors: bool) -> None:
    """Precision and recall per category on labelled JSON Lines (scan input plus
    "categories"), such as the dev set's utterances.jsonl and calls.jsonl."""
    from .evaluation import evaluate as run_evaluation
    from .evaluation import read_jsonl

    try:
        engine = load_engine(rules_dir)
    except RuleError as error:
        _fail_rules(error)
    result = run_evaluation(engine, read_jsonl(Path(p) for p in labelled), ZoneInfo(config.get("timezone")))
    click.echo(result.table())
    if show_errors:
        for error in result.errors:
            click.echo(json.dumps(error, ensure_ascii=False))


@main.command()
def settings() -> None:
    """Print every setting, its environment variable, default and current value."""
    for setting in config.SETTINGS:
        click.echo(f"{setting.env:24} {config.get(setting.name)!r:30} {setting.help}")


def run() -> None:
    """Console-script entry point: domain errors become one clear line, exit 2."""
    try:
        main(standalone_mode=True)
    except MonitorError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


