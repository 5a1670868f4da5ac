"""The `monitor` command. A thin shell: parse options, call the library, turn domain
errors into messages and exit codes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from monitor.audit import Action
from monitor import __version__
from monitor import settings
from monitor.errors import MonitorError, RuleError
from monitor.labels import SPEAKER_LABELS
from monitor.times import clock
from monitor.models import CATEGORIES
from monitor.detection.rules import load_rules
from monitor.detection.examples import load_engine, run_examples


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
    from monitor.runs.scan import scan_lines

    try:
        engine = load_engine(rules_dir)
    except RuleError as error:
        _fail_rules(error)
    zone = ZoneInfo(settings.get("timezone"))
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


def _asr_options(asr_engine, model, compute_type, collector_channel):
    from monitor.runs.pipeline import AsrOptions

    return AsrOptions(engine=asr_engine, model=model, compute_type=compute_type, collector_channel=collector_channel)


def asr_option_flags(func):
    """The speech-recognition options shared by analyze, batch and serve."""
    for decorator in reversed((
        click.option("--engine", "asr_engine", type=click.Choice(["faster-whisper", "openai-whisper"]), default="faster-whisper", show_default=True),
        click.option("--model", help="Whisper model name or path (default: the packaged offline base model)."),
        click.option("--compute-type", help="faster-whisper compute type (default int8; float32, int8_float32 …)."),
        click.option("--collector-channel", type=click.Choice(["left", "right"]), default="left", show_default=True,
                     help="Which stereo channel is the collector."),
    )):
        func = decorator(func)
    return func




def _print_result(result) -> None:
    call = result.call
    click.echo(f"{call.source}  {call.duration:.1f} s  sha256 {call.sha256[:16]}…  "
               f"categories: {', '.join(result.categories) or 'none'}")
    for note in call.notes:
        click.echo(click.style(f"  note: {note}", fg="yellow"))
    by_turn: dict = {}
    for finding in result.findings:
        by_turn.setdefault(finding.turn, []).append(finding)
    for finding in by_turn.get(None, []):
        click.echo(click.style(f"  ! {finding.rule} ({finding.category}): {finding.evidence}", fg="red"))
    for index, turn in enumerate(call.turns):
        flagged = index in by_turn
        line = f"{'!' if flagged else ' '} [{clock(turn.start, '--:--.-')}–{clock(turn.end, '--:--.-')}] {SPEAKER_LABELS[turn.speaker]}: {turn.text}"
        click.echo(click.style(line, fg="red") if flagged else line)
        for finding in by_turn.get(index, []):
            verified = "" if finding.speaker_verified else "，说话人未确认"
            click.echo(f"      ↳ {finding.rule} [{finding.category}, {finding.severity}{verified}] 「{finding.matched}」")
            click.echo(f"        {finding.legal_basis[0]}")
    click.echo("")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file instead of a readable transcript.")
@asr_option_flags
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False), help="Rules folder (default: the bundled rules/).")
def analyze(files, as_json, asr_engine, model, compute_type, collector_channel, rules_dir) -> None:
    """Transcribe recordings and run the rules over them.

    A file that cannot be analysed (not audio, empty, truncated) is reported with its
    reason and the others are still analysed; the exit status is then 1.
    """
    from monitor.runs.executor import InlineExecutor
    from monitor.runs.pipeline import analyse_files
    from monitor.runs.roles import call_signals, turn_signals
    from monitor.runs.scan import result_line

    try:
        engine = load_engine(rules_dir)
    except RuleError as error:
        _fail_rules(error)
    options = _asr_options(asr_engine, model, compute_type, collector_channel)
    failed = 0
    for outcome in analyse_files(files, engine, InlineExecutor(options)):
        if outcome.error is not None:
            failed += 1
            click.echo(f"error: {outcome.error}", err=True)
            if as_json:
                click.echo(json.dumps({"file": outcome.path, "error": str(outcome.error)}, ensure_ascii=False))
            continue
        result = outcome.result
        if as_json:
            record = result_line(result) | {
                "file": outcome.path,
                "sha256": result.call.sha256,
                "duration": round(result.call.duration, 3),
                "turns": [
                    {"speaker": t.speaker, "text": t.text, "start": t.start, "end": t.end, "confidence": t.confidence,
                     **turn_signals(t)}
                    for t in result.call.turns
                ],
                **call_signals(result.call),
            }
            click.echo(json.dumps(record, ensure_ascii=False))
        else:
            _print_result(result)
    if failed:
        click.echo(f"{failed} of {len(files)} file(s) could not be analysed", err=True)
    sys.exit(1 if failed else 0)


def _progress(outcomes, total):
    """A progress bar with ETA on a terminal; plain log lines otherwise."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        yield from tqdm(outcomes, total=total, unit="call", file=sys.stderr)
        return
    for done, outcome in enumerate(outcomes, start=1):
        state = "failed" if outcome.error else "ok"
        click.echo(f"[{done}/{total}] {state}: {outcome.path}", err=True)
        yield outcome


def _open_store(db):
    from monitor.store import open_store

    return open_store(db)


@main.command()
@click.argument("source", type=click.Path(exists=True))
@click.option("--db", envvar="MONITOR_DB", help="SQLite database file (default: MONITOR_DB or ./monitor.db).")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Local worker processes.")
@click.option("--scheduler", help="Dask scheduler address (tcp://HOST:PORT): run on that cluster instead.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Only recordings that started on or after this date.")
@click.option("--retry-failed", is_flag=True, help="Try again the recordings an earlier run stored as failed.")
@asr_option_flags
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False), help="Rules folder (default: the bundled rules/).")
def batch(source, db, workers, scheduler, since, retry_failed, asr_engine, model, compute_type, collector_channel, rules_dir):
    """Analyse every recording of SOURCE (a folder tree, or a .csv/.jsonl manifest) into
    the database. Safe to run again: stored recordings are skipped; a run that was killed
    resumes. Exit status 1 when a recording failed."""
    from monitor.runs.batch import run_batch
    from monitor.runs.executor import make_executor

    try:
        engine = load_engine(rules_dir)
    except RuleError as error:
        _fail_rules(error)
    store = _open_store(db)
    executor = make_executor(workers, scheduler, _asr_options(asr_engine, model, compute_type, collector_channel))
    report = run_batch(
        Path(source), store, engine, executor, ZoneInfo(settings.get("timezone")),
        since=since.date() if since else None, filename_pattern=settings.get("filename_pattern") or None,
        retry_failed=retry_failed, progress=_progress, log=lambda line: click.echo(line, err=True),
    )
    click.echo(report.summary())
    sys.exit(1 if report.failed else 0)


@main.command()
@click.option("--db", envvar="MONITOR_DB", help="SQLite database file (default: MONITOR_DB or ./monitor.db).")
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False), help="Rules folder (default: the bundled rules/).")
def rescan(db, rules_dir):
    """Run the current rules over every stored transcript again, without transcribing."""
    from monitor.runs.batch import rescan as run_rescan

    try:
        engine = load_engine(rules_dir)
    except RuleError as error:
        _fail_rules(error)
    calls, counts = run_rescan(_open_store(db), engine)
    click.echo(f"rescanned {calls} call(s) with rule set {engine.pack.version}; findings: "
               + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))


@main.command()
@click.option("--db", envvar="MONITOR_DB", help="SQLite database file (default: MONITOR_DB or ./monitor.db).")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="File to write (default: standard output).")
@click.option("--since", help="Calls that started on or after this date (YYYY-MM-DD, local).")
@click.option("--until", help="Calls that started on or before this date (YYYY-MM-DD, local).")
@click.option("--category", type=click.Choice(list(CATEGORIES)))
@click.option("--collector", help="Only this collector id.")
@click.option("--review-status", type=click.Choice(["unreviewed", "confirmed", "dismissed"]))
def export(db, fmt, output, since, until, category, collector, review_status):
    """Export findings with their call metadata as CSV or JSON Lines."""
    import csv as csv_module

    rows = _open_store(db).export_rows(since=since, until=until, category=category, collector=collector, review_status=review_status)
    sink = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout  # noqa: SIM115
    count = 0
    try:
        writer = None
        for row in rows:
            count += 1
            if fmt == "jsonl":
                row["legal_basis"] = json.loads(row["legal_basis"] or "[]")
                sink.write(json.dumps(row, ensure_ascii=False) + "\n")
                continue
            if writer is None:
                writer = csv_module.DictWriter(sink, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
    finally:
        if sink is not sys.stdout:
            sink.close()
    click.echo(f"exported {count} finding(s)", err=True)


@main.command()
@click.argument("call_id")
@click.option("--db", envvar="MONITOR_DB", help="SQLite database file (default: MONITOR_DB or ./monitor.db).")
@click.option("--kind", type=click.Choice(["complaint", "incident"]), default="incident", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["docx", "pdf", "html"]), default="pdf", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True))
@click.option("--complainant", type=click.Path(exists=True, dir_okay=False),
              help="JSON file with the debtor's details (name, id_number, phone, address …) for a complaint.")
@click.option("--lender", type=click.Path(exists=True, dir_okay=False),
              help="JSON file with the lender's details (name, type, card_number, agency …) for a complaint.")
def report(call_id, db, kind, fmt, output, complainant, lender):
    """Write the debtor's complaint letter (投诉书) or the compliance incident report for a
    stored call. An incident report needs at least one confirmed finding."""
    from monitor.documents.reports import complaint_context, incident_context, render

    store = _open_store(db)
    if kind == "complaint":
        context = complaint_context(store, call_id, _read_json(complainant), _read_json(lender))
    else:
        context = incident_context(store, call_id)
    Path(output).write_bytes(render(context, kind, fmt))
    store.audit("cli", Action.INCIDENT_REPORT if kind == "incident" else Action.COMPLAINT_LETTER, call_id, {"format": fmt})
    click.echo(f"wrote {output}")


@main.command()
@click.argument("call_id")
@click.option("--db", envvar="MONITOR_DB", help="SQLite database file (default: MONITOR_DB or ./monitor.db).")
@click.option("--kind", type=click.Choice(["complaint", "incident"]), default="incident", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True))
def evidence(call_id, db, kind, output):
    """Write an evidence package (zip): the original recording, a clip per finding, the
    transcript, the report and a manifest of SHA-256 hashes."""
    from monitor.documents.evidence import build_evidence_package, verify_package

    path = build_evidence_package(_open_store(db), call_id, output, kind=kind, actor="cli")
    problems = verify_package(path)
    if problems:
        raise click.ClickException("; ".join(problems))
    click.echo(f"wrote {path} (manifest verified)")


def _read_json(path: str | None) -> dict | None:
    if not path:
        return None
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{path}: not valid JSON ({error})") from None


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@click.option("--db", envvar="MONITOR_DB", help="SQLite database file (default: MONITOR_DB or ./monitor.db).")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Local transcription workers for uploads.")
@click.option("--scheduler", help="Dask scheduler address: transcribe uploads on that cluster.")
@asr_option_flags
@click.option("--rules", "rules_dir", type=click.Path(file_okay=False), help="Rules folder (default: the bundled rules/).")
def serve(host, port, db, workers, scheduler, asr_engine, model, compute_type, collector_channel, rules_dir):
    """Serve the review app and the debtor portal with waitress."""
    from .web import serve as run_server

    try:
        load_engine(rules_dir)  # a broken rule stops start-up here, with its location
    except RuleError as error:
        _fail_rules(error)
    run_server(host, port, db, rules_dir=rules_dir, workers=workers, scheduler=scheduler,
               options=_asr_options(asr_engine, model, compute_type, collector_channel))


@main.group()
def users() -> None:
    """Staff accounts of the web app."""


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "reviewer"]), default="reviewer", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@click.option("--db", envvar="MONITOR_DB", help="SQLite database file (default: MONITOR_DB or ./monitor.db).")
def users_add(username, role, password_stdin, db):
    """Create a staff account (the password is asked for twice, hidden, and stored hashed)."""
    from .web.accounts import add_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    add_user(_open_store(db), username, password, role)
    click.echo(f"added {role} {username}")


@users.command("list")
@click.option("--db", envvar="MONITOR_DB", help="SQLite database file (default: MONITOR_DB or ./monitor.db).")
def users_list(db):
    """List staff accounts."""
    for user in _open_store(db).users():
        click.echo(f"{user['username']:20} {user['role']}")


@main.command("token")
@click.argument("username")
@click.option("--label", default="", help="What the token is for.")
@click.option("--db", envvar="MONITOR_DB", help="SQLite database file (default: MONITOR_DB or ./monitor.db).")
def token(username, label, db):
    """Create an API token for a staff account; it is shown once and stored hashed."""
    from .web.accounts import create_api_token

    click.echo(create_api_token(_open_store(db), username, label))


@main.group()
def rules() -> None:
    """Check, test and list the rule pack."""


@rules.command("check")
@click.argument("directory", required=False, type=click.Path(file_okay=False))
def rules_check(directory: str | None) -> None:
    """Validate every rule and run its examples; print each problem as file:line: message."""
    try:
        engine = load_engine(directory or settings.get("rules_dir") or None)
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
    from monitor.detection.engine import Engine

    try:
        pack = load_rules(directory or settings.get("rules_dir") or None)
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
        pack = load_rules(directory or settings.get("rules_dir") or None)
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
    from monitor.runs.evaluation import evaluate as run_evaluation
    from monitor.runs.evaluation import read_jsonl

    try:
        engine = load_engine(rules_dir)
    except RuleError as error:
        _fail_rules(error)
    result = run_evaluation(engine, read_jsonl(Path(p) for p in labelled), ZoneInfo(settings.get("timezone")))
    click.echo(result.table())
    if show_errors:
        for error in result.errors:
            click.echo(json.dumps(error, ensure_ascii=False))


@main.command("settings")
def show_settings() -> None:
    """Print every setting, its environment variable, default and current value."""
    for setting in settings.SETTINGS:
        click.echo(f"{setting.env:24} {settings.get(setting.name)!r:30} {setting.help}")


def run() -> None:
    """Console-script entry point: domain errors become one clear line, exit 2."""
    try:
        main(standalone_mode=True)
    except MonitorError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)


