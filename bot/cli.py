"""The command line: run the bot (or its offline demo), check a playbook, upgrade the database."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from jinja2 import TemplateError

from bot.core.config import ConfigError, Playbook, Settings, load_playbook, playbook_warnings
from bot.core.i18n import SUPPORTED, use_locale
from bot.core.logs import install_log_masking
from bot.core.render import Renderer
from bot.core.text import mask_identifiers, set_bank_patterns

if TYPE_CHECKING:
    from slack_bolt.adapter.socket_mode import SocketModeHandler
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from bot.app import Bot
    from bot.slack.web import HttpServer

log = logging.getLogger("incident-desk")


def check_playbook(playbook: Playbook) -> list[str]:
    """Problems that pydantic cannot see: templates that are missing or do not render."""
    renderer = Renderer(playbook.timezone, playbook.template_folder)
    problems = []
    for key, kind in playbook.kinds.items():
        problem = renderer.check(kind.welcome_template, playbook_version=playbook.version, incident=None)
        if problem:
            problems.append(f"kinds.{key}.welcome_template: {kind.welcome_template!r}: {problem}")
    from bot.notices.service import NOTICE_SAMPLE, notice_stages

    notices = playbook.notices
    # every kind's notice channels × stages × locales, rendered for the audience of the kinds that use it
    users: dict[tuple[str, str], list[str]] = {}
    for key, kind in playbook.kinds.items():
        for channel in playbook.notice_channels_for(key):
            users.setdefault((channel, kind.notice_audience), []).append(key)
    found: dict[str, tuple[str, list[str]]] = {}  # one line per template, naming every kind it fails for
    for (channel, audience), kinds in users.items():
        for locale in notices.locales:
            for stage in notice_stages():
                name = notices.template(locale, stage, channel)
                problem = renderer.check(name, plain=True, **{**NOTICE_SAMPLE, "audience": audience})
                if problem:
                    where = f"notices.channels.{channel} ({locale}, {stage}): {name!r}: {problem}"
                    found.setdefault(name, (where, []))[1].extend(kinds)
    problems.extend(f"{where} (used by kinds {', '.join(kinds)})" for where, kinds in found.values())
    try:  # the review draft is filled from a live record; here it must at least exist and compile
        renderer.markdown_env.get_template(playbook.review.template)
    except TemplateError as exc:
        problems.append(f"review.template: {playbook.review.template!r}: {type(exc).__name__}: {exc}")
    return problems


def load_checked_playbook(path: Path) -> Playbook:
    playbook = load_playbook(path)
    problems = check_playbook(playbook)
    if problems:
        raise ConfigError(str(path), problems)
    return playbook


def _print_config_error(exc: ConfigError) -> int:
    print(f"{exc.source}: {len(exc.problems)} problem(s):", file=sys.stderr)
    for problem in exc.problems:
        print(f"  - {problem}", file=sys.stderr)
    return 2


def cmd_check_config(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.path) if args.path else settings.config_path
    playbook = load_checked_playbook(path)
    if args.database_url:  # would the bot start on this file against that store? (a changed, unraised version)
        check_against_store(playbook, path, args.database_url)
    print(
        f"{path}: OK — playbook {playbook.version}, {len(playbook.kinds)} kinds, {len(playbook.roles)} roles, "
        f"{len(playbook.severities)} severities"
    )
    warnings = start_up_warnings(playbook)
    if warnings:
        print(f"{len(warnings)} warning(s) (the playbook loads; fill these in before going live):")
        for warning in warnings:
            print(f"  ! {warning}")
    return 1 if warnings and args.strict else 0


def start_up_warnings(playbook: Playbook) -> list[str]:
    """playbook_warnings plus the completeness findings (bot/core/completeness.py), each line once."""
    from bot.core.completeness import completeness_findings

    return list(dict.fromkeys([*playbook_warnings(playbook), *completeness_findings(playbook)]))


# ---- the plan's versions (bot/plan/versions.py) ---------------------------------------------------------------


def _store(database_url: str) -> tuple[Engine, sessionmaker[Session]]:
    from sqlalchemy.exc import OperationalError

    from store.db import make_engine, make_session_factory, upgrade

    engine = make_engine(database_url)
    try:
        upgrade(engine)
    except OperationalError as exc:
        engine.dispose()
        raise ConfigError(
            "command line", [f"--database-url: cannot reach the store ({type(exc.orig).__name__})"]
        ) from None
    return engine, make_session_factory(engine)


def check_against_store(playbook: Playbook, path: Path, database_url: str) -> None:
    """Refuse (ConfigError) a playbook the bot would refuse to start on against this store."""
    from bot.plan.versions import check_version

    engine, db = _store(database_url)
    try:
        with db() as s:
            check_version(s, playbook, path.read_text(encoding="utf-8"), str(path))
    finally:
        engine.dispose()


def adopt(playbook: Playbook, path: Path, database_url: str) -> None:
    """At start-up: store the playbook's version (refusing a changed file whose version was not raised)."""
    from datetime import UTC, datetime

    from bot.plan.versions import adopt_playbook

    engine, db = _store(database_url)
    try:
        adoption = adopt_playbook(db, playbook, path.read_text(encoding="utf-8"), datetime.now(UTC), str(path))
    finally:
        engine.dispose()
    if adoption.outcome == "new":
        log.info(
            "playbook: version %s is new (was %s); it is announced at the next sweep",
            playbook.version,
            adoption.previous,
        )
    elif adoption.outcome == "first":
        log.info("playbook: version %s recorded (the first this database has seen)", playbook.version)


def cmd_playbook(args: argparse.Namespace, settings: Settings) -> int:
    """`playbook history` lists the stored versions; `playbook diff <a> <b>` compares two of them."""
    from bot.plan.versions import describe, diff, history

    engine, db = _store(args.database_url or settings.database_url)
    try:
        if args.playbook_command == "diff":
            shown = diff(db, args.a, args.b)
            if not shown:  # an empty diff and exit 0 reads like a failure that said nothing: say why it is empty
                same = "are the same version" if args.a == args.b else "have the same text"
                shown = f"playbook {args.a} and {args.b} {same}: no differences\n"
            print(shown, end="")
            return 0
        lines = [describe(line) for line in history(db)]
    finally:
        engine.dispose()
    if not lines:
        print("no playbook version stored yet (the bot stores one each time it starts on a new version)")
        return 0
    print(f"{'version':<16} {'loaded at':<21} {'date':<10} {'hash':<12} {'read':>7}  reason")
    for row in lines:
        print(
            f"{row['version']:<16} {row['loaded_at']:<21} {row['date']:<10} {row['hash']:<12} "
            f"{row['confirmed']:>7}  {row['reason']}"
        )
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    from store.db import current_revision, make_engine, upgrade

    engine = make_engine(settings.database_url)
    upgrade(engine)
    print(f"database at revision {current_revision(engine)}")
    return 0


@dataclass
class Runtime:
    """What `incident-desk run` serves. HTTP mode: one server with /slack/events, /healthz and the status
    page. Socket Mode: events arrive over Slack's WebSocket (`socket`), and the HTTP side server on $PORT
    serves /healthz and the status page only (it has no signing secret to verify events with)."""

    bot: Bot
    engine: Engine
    http: HttpServer
    socket: SocketModeHandler | None


def build_runtime(settings: Settings, playbook: Playbook, *, host: str = "0.0.0.0") -> Runtime:
    """Upgrade the database and build the bot and its servers, without connecting to Slack."""
    from bot.app import create_app
    from bot.slack.gateway import make_web_client
    from bot.slack.web import HttpServer, make_wsgi
    from store.db import make_engine, make_session_factory, upgrade

    assert settings.bot_token is not None
    engine = make_engine(settings.database_url)
    upgrade(engine)
    socket_mode = settings.app_token is not None
    bot = create_app(
        playbook,
        make_session_factory(engine),
        client=make_web_client(settings.bot_token, settings.slack_api_url),
        signing_secret=None if socket_mode else settings.signing_secret,
    )
    wsgi = make_wsgi(
        bot, public_url=settings.public_url, slack_events=not socket_mode, intake_token=settings.intake_token
    )
    http = HttpServer(wsgi, host=host, port=settings.port)
    socket: SocketModeHandler | None = None
    if settings.app_token is not None:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        socket = SocketModeHandler(bot.app, settings.app_token)
    return Runtime(bot, engine, http, socket)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    playbook = load_checked_playbook(settings.config_path)
    if args.offline:
        from bot.offline import run_demo

        return run_demo(playbook, sys.stdout, database_url=args.database, lang=args.lang)
    settings.require_slack()
    adopt(playbook, settings.config_path, settings.database_url)  # refuses a changed file under the same version
    for warning in start_up_warnings(playbook):  # runs anyway: the reporter leads when nobody else is named
        log.warning("playbook: %s", warning)
    runtime = build_runtime(settings, playbook, host=args.host)
    from bot.app import resume_unfinished

    # unfinished side effects of the last run go out first (its sweep takes any whose lease still runs)
    threading.Thread(target=resume_unfinished, args=(runtime.bot,), name="resume", daemon=True).start()
    scheduler = runtime.bot.scheduler
    scheduler.start()  # with PostgreSQL, only the process holding the advisory lock sends
    try:
        if runtime.socket is not None:
            runtime.http.start()
            log.info(
                "incident-desk: Socket Mode; /healthz and /status on %s:%s; playbook %s",
                args.host,
                settings.port,
                playbook.version,
            )
            runtime.socket.start()  # blocks until the process is stopped
            return 0
        log.info(
            "incident-desk: HTTP mode on %s:%s (/slack/events, /healthz, /status), playbook %s",
            args.host,
            settings.port,
            playbook.version,
        )
        runtime.http.serve_forever()
    finally:
        scheduler.stop()  # a sweep in progress finishes; the advisory lock is released for a standby
        if runtime.socket is not None:
            runtime.http.stop()
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    """The KPI report over local days (both included), as text or CSV, straight from the store."""
    import html
    from datetime import UTC, date, datetime

    from sqlalchemy.exc import OperationalError

    from bot.core.inputs import FIRST_DAY, LAST_DAY, day_in_range
    from bot.review.kpi import as_csv, as_text, kpi_report
    from bot.review.weekly import period
    from store.db import make_engine, make_session_factory, upgrade

    days = []
    for flag, value in (("--from", args.start), ("--to", args.end)):
        if value is None:
            continue
        try:
            days.append(date.fromisoformat(value))
        except ValueError:
            raise ConfigError("command line", [f"{flag}: {value!r} is not a date; use YYYY-MM-DD"]) from None
        if not day_in_range(days[-1]):
            raise ConfigError(
                "command line", [f"{flag}: {value!r} is out of range; give a day from {FIRST_DAY} to {LAST_DAY}"]
            )
    if args.start is None and args.end is not None:
        raise ConfigError("command line", ["--to needs --from (the first day of the report)"])
    if len(days) == 2 and days[1] < days[0]:
        raise ConfigError("command line", [f"--to: {args.end} is before --from {args.start}; give the later day"])
    playbook = load_checked_playbook(settings.config_path)
    start, end, label = period(tuple(days), ZoneInfo(playbook.timezone), datetime.now(UTC))
    engine = make_engine(args.database or settings.database_url)
    try:
        upgrade(engine)
    except OperationalError as exc:  # say which store could not be reached, not a traceback
        raise ConfigError("command line", [f"--database: cannot reach the store ({type(exc.orig).__name__})"]) from None
    with make_session_factory(engine)() as session:
        spec = playbook.satisfaction
        report = kpi_report(
            session, start, end, good_at_least=spec.good_at_least, target=spec.target, zone=ZoneInfo(playbook.timezone)
        )
    engine.dispose()
    set_bank_patterns(p.regex for p in playbook.masking.patterns)
    if args.format == "csv":
        output = as_csv(report)
    else:  # the Slack text, in the playbook's language (or --lang), unescaped for a terminal
        with use_locale(args.lang or playbook.locale):
            output = html.unescape(as_text(report, label, Renderer(playbook.timezone)))
    print(mask_identifiers(output), end="" if args.format == "csv" else "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="incident-desk", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the bot (Socket Mode if SLACK_APP_TOKEN is set, else HTTP on $PORT)")
    run.add_argument("--offline", action="store_true", help="no Slack workspace: play a scripted incident")
    run.add_argument("--host", default="0.0.0.0", help="HTTP mode: the address to listen on (default 0.0.0.0)")
    run.add_argument("--database", help="offline: a database URL to keep (default: a throwaway SQLite file)")
    run.add_argument("--lang", choices=SUPPORTED, help="offline: the demo's language (default: the playbook's locale)")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check-config", help="validate a playbook and print every error with its field")
    check.add_argument("path", nargs="?", help="the playbook (default: $INCIDENT_DESK_CONFIG or ./config.yaml)")
    check.add_argument(
        "--database-url", "--database", dest="database_url", help="also check the playbook's version against this store"
    )
    check.add_argument("--strict", action="store_true", help="exit 1 when there are warnings (a gap in the plan)")
    check.set_defaults(func=cmd_check_config)
    plan = sub.add_parser("playbook", help="the playbook versions the bot has loaded")
    plan_sub = plan.add_subparsers(dest="playbook_command", required=True)
    plan_history = plan_sub.add_parser("history", help="every version loaded: when, its hash, who read it, the reason")
    plan_diff = plan_sub.add_parser("diff", help="a unified diff of two stored versions")
    plan_diff.add_argument("a", help="the older version, e.g. 2026.11-3")
    plan_diff.add_argument("b", help="the newer version")
    for command in (plan_history, plan_diff):
        command.add_argument(
            "--database-url", "--database", dest="database_url", help="a database URL (default: $DATABASE_URL)"
        )
    plan.set_defaults(func=cmd_playbook)
    report = sub.add_parser("report", help="the plan's KPIs over a period (drills excluded), as text or CSV")
    report.add_argument(
        "--from", dest="start", help="first day, YYYY-MM-DD in the playbook's timezone (default: 30 days ago)"
    )
    report.add_argument("--to", dest="end", help="last day, included (default: today)")
    report.add_argument("--format", choices=("text", "csv"), default="text")
    report.add_argument("--lang", choices=SUPPORTED, help="the text's language (default: the playbook's locale)")
    report.add_argument("--database", help="a database URL (default: $DATABASE_URL or sqlite:///incident-desk.db)")
    report.set_defaults(func=cmd_report)
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply the Alembic migrations (the bot also does this at start-up)").set_defaults(
        func=cmd_db
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_masking()
    for noisy in ("bolt", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.func(args, settings))
    except ConfigError as exc:
        return _print_config_error(exc)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
