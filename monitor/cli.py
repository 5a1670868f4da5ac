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


# Options every command that reads the store or the rules shares, defined once.
db_option = click.option("--db", envvar="MONITOR_DB", help="SQLite database file (default: MONITOR_DB or ./monitor.db).")
rules_option = click.option("--rules", "rules_dir", type=click.Path(file_okay=False),
                            help="Rules folder (default: MONITOR_RULES or the bundled rules/).")


def _fail_rules(error: RuleError) -> None:
    for problem in error.problems:
        click.echo(str(problem), err=True)
    click.echo(f"{len(error.problems)} problem(s) in the rules; nothing was scanned.", err=True)
    sys.exit(2)


def _risk_model():
    """The risk model in use; a missing, corrupt or mismatched file stops the command
    here with a message naming the file (never "no scoring")."""
    from monitor.learning.model import ModelError, current_model

    try:
        return current_model()
    except ModelError as error:
        raise click.ClickException(str(error)) from None


@click.group()
@click.version_option(__version__, prog_name="monitor")
def main() -> None:
    """Compliance monitor for debt-collection phone calls."""


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(allow_dash=True, dir_okay=False))
@rules_option
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
    model = _risk_model()
    zone = ZoneInfo(settings.get("timezone"))
    source = sys.stdin if input_path == "-" else open(input_path, encoding="utf-8")  # noqa: SIM115
    sink = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
    errors = lines = 0
    try:
        for record in scan_lines(engine, source, zone, model):
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


def _asr_options(asr_engine, model, compute_type, collector_channel, device="cpu", batch_size=8, debtor_side="always"):
    from monitor.runs.pipeline import AsrOptions

    return AsrOptions(engine=asr_engine, model=model, compute_type=compute_type, collector_channel=collector_channel,
                      device=device, batch_size=batch_size, debtor_side=debtor_side)


DEBTOR_SIDES = ["always", "when-flagged", "never"]


def debtor_side_flag(default: str | None):
    """--debtor-side: the batch's default is the debtor_side setting; uploads and analyze use always."""
    return click.option(
        "--debtor-side", type=click.Choice(DEBTOR_SIDES), default=default or (lambda: settings.get("debtor_side")),
        show_default=default or "debtor_side setting (when-flagged)",
        help="Transcribe a stereo call's debtor channel always, only when the collector's may hold a finding "
             "(the rest on demand), or never.",
    )


def asr_option_flags(func):
    """The speech-recognition options shared by analyze, batch and serve."""
    for decorator in reversed((
        click.option("--engine", "asr_engine", type=click.Choice(["faster-whisper", "openai-whisper"]), default="faster-whisper", show_default=True),
        click.option("--model", help="Whisper model name or path (default: the packaged offline base model)."),
        click.option("--compute-type", help="faster-whisper compute type (default int8; float32, int8_float32 …)."),
        click.option("--collector-channel", type=click.Choice(["left", "right"]), default="left", show_default=True,
                     help="Which stereo channel is the collector."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=lambda: settings.get("device"),
                     show_default="device setting (auto)",
                     help="Where speech recognition runs; auto takes a CUDA GPU when CTranslate2 sees one."),
        click.option("--batch-size", type=click.IntRange(1), default=lambda: int(settings.get("batch_size")),
                     show_default="batch_size setting (8)", help="Windows decoded at once on a GPU."),
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
@debtor_side_flag("always")
@rules_option
def analyze(files, as_json, asr_engine, model, compute_type, collector_channel, device, batch_size, debtor_side,
            rules_dir) -> None:
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
    options = _asr_options(asr_engine, model, compute_type, collector_channel, device, batch_size, debtor_side)
    failed = 0
    for outcome in analyse_files(files, engine, InlineExecutor(options), debtor_side=debtor_side):
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
                **({"debtor_side": outcome.debtor_side} if outcome.debtor_side == "not transcribed" else {}),
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
@db_option
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Local worker processes.")
@click.option("--scheduler", help="Dask scheduler address (tcp://HOST:PORT): run on that cluster instead.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Only recordings that started on or after this date.")
@click.option("--retry-failed", is_flag=True, help="Try again the recordings an earlier run stored as failed.")
@click.option("--learn", "then_learn", is_flag=True, help="Afterwards retrain the risk model from reviewers' decisions (monitor learn).")
@asr_option_flags
@debtor_side_flag(None)
@rules_option
def batch(source, db, workers, scheduler, since, retry_failed, then_learn, asr_engine, model, compute_type, collector_channel,
          device, batch_size, debtor_side, rules_dir):
    """Analyse every recording of SOURCE (a folder tree, or a .csv/.jsonl manifest) into
    the database. Safe to run again: stored recordings are skipped; a run that was killed
    resumes. Exit status 1 when a recording failed."""
    from monitor.runs.batch import run_batch
    from monitor.runs.executor import make_executor

    try:
        engine = load_engine(rules_dir)
    except RuleError as error:
        _fail_rules(error)
    _risk_model()
    store = _open_store(db)
    executor = make_executor(workers, scheduler, _asr_options(asr_engine, model, compute_type, collector_channel,
                                                              device, batch_size))
    report = run_batch(
        Path(source), store, engine, executor, ZoneInfo(settings.get("timezone")),
        since=since.date() if since else None, filename_pattern=settings.get("filename_pattern") or None,
        retry_failed=retry_failed, progress=_progress, log=lambda line: click.echo(line, err=True),
        debtor_side=debtor_side,
    )
    click.echo(report.summary())
    if then_learn:
        _learn(store, engine, None)
    sys.exit(1 if report.failed else 0)


@main.command()
@db_option
@rules_option
def rescan(db, rules_dir):
    """Run the current rules over every stored transcript again, without transcribing."""
    from monitor.runs.batch import rescan as run_rescan

    try:
        engine = load_engine(rules_dir)
    except RuleError as error:
        _fail_rules(error)
    _risk_model()
    calls, counts = run_rescan(_open_store(db), engine)
    click.echo(f"rescanned {calls} call(s) with rule set {engine.pack.version}; findings: "
               + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))


@main.command()
@db_option
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="File to write (default: standard output).")
@click.option("--since", help="Calls that started on or after this date (YYYY-MM-DD, local).")
@click.option("--until", help="Calls that started on or before this date (YYYY-MM-DD, local).")
@click.option("--category", type=click.Choice(list(CATEGORIES)))
@click.option("--collector", help="Only this collector id.")
@click.option("--review-status", type=click.Choice(["unreviewed", "confirmed", "dismissed"]))
@click.option("--raised-voice", type=click.Choice(["any", "collector"]),
              help="Only calls where someone (or the collector) raised their voice.")
@click.option("--overtalk-at-least", type=click.FloatRange(0, 1), metavar="SHARE",
              help="Only calls whose overtalk share (0-1) is at least this.")
@click.option("--collector-share-at-least", type=click.FloatRange(0, 1), metavar="SHARE",
              help="Only calls where the collector's share of the talk (0-1) is at least this.")
def export(db, fmt, output, since, until, category, collector, review_status, raised_voice, overtalk_at_least,
           collector_share_at_least):
    """Export findings with their call metadata and signals as CSV or JSON Lines."""
    import csv as csv_module

    from monitor.redaction import redact_if_configured

    rows = _open_store(db).export_rows(since=since, until=until, category=category, collector=collector,
                                       review_status=review_status, raised_voice=raised_voice,
                                       overtalk_at_least=overtalk_at_least,
                                       collector_share_at_least=collector_share_at_least)
    sink = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout  # noqa: SIM115
    count = 0
    try:
        writer = None
        for row in rows:
            count += 1
            # Numbers read out in the call (ID, card, mobile) are masked unless MONITOR_REDACT_PII=0.
            row["evidence"] = redact_if_configured(row.get("evidence"))
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


_COMPLAINANT_HELP = "JSON file with the debtor's details (name, id_number, phone, address …) for a complaint."
_LENDER_HELP = ("JSON file with the lender's details (name, type, card_number, agency, calling_numbers, product, "
                "borrowed_on, amount, overdue_since …) for a complaint.")
_CORRECTIONS_HELP = "JSON file mapping finding ids to the complainant's corrected quotes (the automatic transcript is kept beside them)."


@main.command()
@click.argument("call_id")
@db_option
@click.option("--kind", type=click.Choice(["complaint", "incident"]), default="incident", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["docx", "pdf", "html"]), default="pdf", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True))
@click.option("--complainant", type=click.Path(exists=True, dir_okay=False), help=_COMPLAINANT_HELP)
@click.option("--lender", type=click.Path(exists=True, dir_okay=False), help=_LENDER_HELP)
@click.option("--corrections", type=click.Path(exists=True, dir_okay=False), help=_CORRECTIONS_HELP)
@click.option("--prepared-by", help="Who prepares an incident report (编制人).")
def report(call_id, db, kind, fmt, output, complainant, lender, corrections, prepared_by):
    """Write the debtor's complaint letter (投诉书) or the compliance incident report for a
    stored call. An incident report needs at least one confirmed finding."""
    from monitor.documents.reports import ReportError, complaint_context, incident_context, render

    store = _open_store(db)
    _complete_debtor_side(store, call_id)
    try:
        if kind == "complaint":
            context = complaint_context(store, call_id, _read_json(complainant), _read_json(lender), _read_json(corrections))
        else:
            context = incident_context(store, call_id, prepared_by=prepared_by)
        data = render(context, kind, fmt)
    except ReportError as error:
        raise click.ClickException(str(error)) from None
    Path(output).write_bytes(data)
    store.audit("cli", Action.INCIDENT_REPORT if kind == "incident" else Action.COMPLAINT_LETTER, call_id, {"format": fmt})
    click.echo(f"wrote {output}")


@main.command()
@click.argument("call_id")
@db_option
@click.option("--kind", type=click.Choice(["complaint", "incident"]), default="incident", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True))
@click.option("--complainant", type=click.Path(exists=True, dir_okay=False), help=_COMPLAINANT_HELP)
@click.option("--lender", type=click.Path(exists=True, dir_okay=False), help=_LENDER_HELP)
@click.option("--corrections", type=click.Path(exists=True, dir_okay=False), help=_CORRECTIONS_HELP)
def evidence(call_id, db, kind, output, complainant, lender, corrections):
    """Write an evidence package (zip): the original recording, a clip per incident, the
    transcript, the report and a signed manifest of SHA-256 hashes."""
    from monitor.documents.evidence import EvidenceError, build_evidence_package, instance_public_key, verify_package
    from monitor.documents.reports import ReportError

    if kind == "incident" and (complainant or lender or corrections):
        raise click.UsageError("--complainant, --lender and --corrections are for --kind complaint")
    store = _open_store(db)
    _complete_debtor_side(store, call_id)
    try:
        path = build_evidence_package(store, call_id, output, kind=kind, actor="cli",
                                      complainant=_read_json(complainant), lender=_read_json(lender),
                                      corrections=_read_json(corrections))
    except (EvidenceError, ReportError) as error:
        raise click.ClickException(str(error)) from None
    problems = verify_package(path, expected_key=instance_public_key())
    if problems:
        raise click.ClickException("; ".join(problems))
    click.echo(f"wrote {path} (manifest signed and verified)")


@main.command("evidence-key")
def evidence_key():
    """Print the Ed25519 public key (hex) evidence packages are signed with; give it to
    whoever checks a package (`monitor evidence-verify`)."""
    from monitor.documents.evidence import instance_public_key

    click.echo(instance_public_key())


@main.command("evidence-verify")
@click.argument("package", type=click.Path(exists=True, dir_okay=False))
@click.option("--key", help="The issuer's public key (hex, from `monitor evidence-key`); default: the one in the package.")
def evidence_verify(package, key):
    """Check an evidence package: the manifest's signature and every file's SHA-256."""
    from monitor.documents.evidence import verify_package

    problems = verify_package(package, expected_key=key)
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        sys.exit(1)
    click.echo(f"{package}: signature and every hash verified")


def _complete_debtor_side(store, call_id: str) -> None:
    """A document holds both sides: a debtor side the batch skipped is transcribed first."""
    from monitor.runs.debtor_side import needs_debtor_side, transcribe_debtor_side

    if store.call_row(call_id) is not None and needs_debtor_side(store, call_id):
        click.echo(f"transcribing the debtor side of {call_id} first …", err=True)
        transcribe_debtor_side(store, call_id, _asr_options("faster-whisper", None, None, "left", settings.get("device")))


def _read_json(path: str | None) -> dict | None:
    if not path:
        return None
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{path}: not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise click.ClickException(f"{path}: must hold a JSON object (key: value), not {type(value).__name__}")
    return value


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8000, show_default=True)
@db_option
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Local transcription workers for uploads.")
@click.option("--scheduler", help="Dask scheduler address: transcribe uploads on that cluster.")
@asr_option_flags
@debtor_side_flag("always")
@rules_option
def serve(host, port, db, workers, scheduler, asr_engine, model, compute_type, collector_channel, device, batch_size,
          debtor_side, rules_dir):
    """Serve the review app and the debtor portal with waitress."""
    from .web import serve as run_server

    try:
        engine = load_engine(rules_dir)  # a broken rule stops start-up here, with its location
    except RuleError as error:
        _fail_rules(error)
    # The checked engine is handed to the app, so the rules are loaded and their examples
    # run once per start.
    _risk_model()  # so does a bad risk-model file, named
    run_server(host, port, db, rules_dir=rules_dir, workers=workers, scheduler=scheduler,
               options=_asr_options(asr_engine, model, compute_type, collector_channel, device, batch_size, debtor_side),
               config={"ENGINE": engine})


@main.group()
def users() -> None:
    """Staff accounts of the web app."""


@users.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(["admin", "reviewer"]), default="reviewer", show_default=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@db_option
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
@db_option
def users_list(db):
    """List staff accounts."""
    for user in _open_store(db).users():
        click.echo(f"{user['username']:20} {user['role']}")


@main.command("token")
@click.argument("username")
@click.option("--label", default="", help="What the token is for.")
@db_option
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


@rules.command("suggest")
@db_option
def rules_suggest(db):
    """Candidate rule examples from reviewers' decisions, as YAML to paste: confirmed
    suspected lines as `fire`, dismissed findings as `quiet` for the rule that fired."""
    from monitor.learning.suggest import as_yaml, suggestions

    found = suggestions(_open_store(db))
    click.echo(as_yaml(found), nl=False)
    click.echo(f"{len(found)} suggestion(s)", err=True)


def _learn(store, engine, out):
    from monitor.learning.learn import learn as run_learn
    from monitor.learning.model import ModelError

    try:
        outcome = run_learn(store, engine, out)
    except ModelError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"learn: {outcome.summary()}")
    return outcome


@main.command()
@db_option
@click.option("--out", type=click.Path(dir_okay=False),
              help="Where to install the retrained model (default: MONITOR_RISK_MODEL, else the instance folder).")
@click.option("--shipped-only", "shipped_only", type=click.Path(dir_okay=False),
              help="Only train on the data shipped in the repository and write the model here (no database).")
@rules_option
def learn(db, out, shipped_only, rules_dir):
    """Retrain the risk model from the shipped data plus reviewers' decisions; install it
    only if it scores at least as well as the model in use on held-out decisions. Both
    scores go into the audit log."""
    try:
        engine = load_engine(rules_dir)
    except RuleError as error:
        _fail_rules(error)
    if shipped_only:
        from monitor.learning.data import shipped_lines
        from monitor.learning.model import save_model
        from monitor.learning.training import train

        model, report = train(shipped_lines(engine.pack), engine)
        save_model(model, shipped_only)
        click.echo(f"wrote {shipped_only} (model {model.version}) from {report.lines} lines in {report.seconds:.1f} s; "
                   f"out of fold: lawful lines suspected {report.oof_lawful_rate:.3f}, violations covered by rules "
                   f"or suspected {report.oof_coverage:.3f}; thresholds "
                   + ", ".join(f"{c} {t:.3f}" for c, t in report.thresholds.items()))
        return
    _learn(_open_store(db), engine, out)


@rules.command("calibrate")
@click.argument("labelled", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@rules_option
@click.option("--floor", type=click.FloatRange(0.5, 1.0), default=0.97, show_default=True,
              help="Precision a threshold must keep for its rule's category among anchored turns.")
def rules_calibrate(labelled: tuple[str, ...], rules_dir: str | None, floor: float) -> None:
    """Compute the thresholds of `similar:` leaves from labelled JSON Lines (each file
    held out in turn) and write them to the rules folder's calibration.json."""
    from monitor.detection.rules import DEFAULT_RULES_DIR
    from monitor.runs.calibration import calibrate, report, write_calibration

    directory = Path(rules_dir or settings.get("rules_dir") or DEFAULT_RULES_DIR)
    try:
        document = calibrate(directory, [Path(p) for p in labelled], floor)
    except RuleError as error:
        _fail_rules(error)
    click.echo(report(document))
    path = write_calibration(document, directory)
    click.echo(f"wrote {path} ({len(document['rules'])} similar rule(s)); run `monitor rules check` next")


@main.command()
@click.argument("labelled", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@rules_option
@click.option("--show-errors", is_flag=True, help="Also list every line whose categories differ.")
@click.option("--kind-examples", type=click.IntRange(0), default=2, show_default=True,
              help="Lines shown under each kind of miss.")
def evaluate(labelled: tuple[str, ...], rules_dir: str | None, show_errors: bool, kind_examples: int) -> None:
    """Precision and recall per category on labelled JSON Lines (scan input plus
    "categories"), such as the dev set's utterances.jsonl and calls.jsonl; then the
    misses by category and kind (nearest rule, the parts of it that did not match)."""
    from monitor.runs.evaluation import evaluate as run_evaluation
    from monitor.runs.evaluation import read_jsonl

    try:
        engine = load_engine(rules_dir)
    except RuleError as error:
        _fail_rules(error)
    result = run_evaluation(engine, read_jsonl(Path(p) for p in labelled), ZoneInfo(settings.get("timezone")))
    click.echo(result.table())
    click.echo("\nmisses by kind (nearest rule: parts that did not match):")
    click.echo(result.kinds_report(kind_examples))
    if show_errors:
        for error in result.mismatches:
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


