"""Dependencies point one way: handlers → bot → store; only the gateway talks to slack_sdk's WebClient."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bot.core.events import IncidentResolved, ScheduleChanged
from tests.conftest import ROOT, Stack


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def modules(package: str) -> dict[str, set[str]]:
    return {str(p.relative_to(ROOT)): imports(p) for p in (ROOT / package).rglob("*.py")}


def top(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


def test_store_imports_only_sqlalchemy_alembic_and_the_standard_library() -> None:
    for path, names in modules("store").items():
        assert not top(names) & {"bot", "handlers", "slack_sdk", "slack_bolt", "jinja2"}, path


def test_bot_never_imports_handlers_and_only_the_app_imports_bolt() -> None:
    for path, names in modules("bot").items():
        if path == "bot/app.py":
            continue
        assert "handlers" not in top(names), path
        # bolt lives in the app, its HTTP front (web.py) and the Socket Mode start in the CLI
        if path not in ("bot/slack/web.py", "bot/cli.py"):
            assert "slack_bolt" not in top(names), path


def test_only_the_gateway_uses_the_web_client() -> None:
    allowed = {"bot/slack/gateway.py", "bot/app.py"}  # the app hands the gateway's client to bolt
    for package in ("bot", "handlers"):
        for path, names in modules(package).items():
            if path.startswith("bot/sandbox/"):
                continue
            if {"slack_sdk", "slack_sdk.web", "slack_sdk.webhook"} & names:
                assert path in allowed, path


def test_handlers_do_not_touch_the_store_or_sql() -> None:
    for path, names in modules("handlers").items():
        assert not top(names) & {"store", "sqlalchemy"}, path


def test_templates_are_read_only_by_the_renderer() -> None:
    for package in ("bot", "handlers", "store"):
        for path in (ROOT / package).rglob("*.py"):
            if path.name != "render.py":
                assert '"templates"' not in path.read_text(encoding="utf-8"), path


# ---- the store rule: persistence stays in store/ ------------------------------------------------------------

# the KPI query module is the one place outside store/ allowed to build its (performance-tuned) queries
QUERY_EXCEPTIONS = {"bot/review/kpi.py"}
SQL_BUILDERS = {"select", "update", "delete", "insert", "func", "text", "and_", "or_", "case", "exists"}
# what a unit of work may still do with its session outside store/: re-read a row it holds after losing a
# conditional update, or open/commit/close; anything that reads or writes rows goes through a store function
SESSION_QUERY_METHODS = {"query", "execute", "scalar", "scalars", "get", "add", "add_all", "delete", "merge"}
SESSION_NAMES = {"s", "session", "own", "conn", "connection"}
STATEMENT_METHODS = {"where", "filter_by", "order_by", "group_by", "join", "with_for_update", "returning"}


def model_names() -> set[str]:
    tree = ast.parse((ROOT / "store" / "models.py").read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.ClassDef)}


def query_building(path: Path, models: set[str]) -> list[str]:
    """Where a module imports SQLAlchemy's statement builders or builds and runs a query itself."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sqlalchemy":
            found += [f"{node.lineno}: imports {a.name}" for a in node.names if a.name in SQL_BUILDERS]
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in SQL_BUILDERS - {"func"}:
            found.append(f"{node.lineno}: {func.id}(...)")
        if not isinstance(func, ast.Attribute):
            continue
        receiver = func.value.id if isinstance(func.value, ast.Name) else None
        if func.attr in STATEMENT_METHODS and receiver not in {"re", "self"}:
            text_join = isinstance(func.value, ast.Constant) or (  # ", ".join(...) or _(" and ").join(...)
                isinstance(func.value, ast.Call)
                and isinstance(func.value.func, ast.Name)
                and func.value.func.id in {"_", "gettext"}
            )
            if func.attr != "join" or not text_join:
                found.append(f"{node.lineno}: .{func.attr}(...)")
        elif func.attr == "query":
            found.append(f"{node.lineno}: .query(...)")
        elif func.attr in SESSION_QUERY_METHODS and receiver in SESSION_NAMES:
            found.append(f"{node.lineno}: {receiver}.{func.attr}(...)")
        elif func.attr == "get" and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in models:
            found.append(f"{node.lineno}: .get({node.args[0].id}, ...)")
    return found


def test_queries_are_built_only_in_the_store() -> None:
    models = model_names()
    offenders = {}
    for package in ("bot", "handlers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            if name in QUERY_EXCEPTIONS:
                continue
            if found := query_building(path, models):
                offenders[name] = found
    assert not offenders, f"build these queries in store/ and call them by name: {offenders}"


def test_the_store_rule_sees_a_query_built_in_a_service(tmp_path: Path) -> None:
    """The check above must be able to fail: a service that selects, counts or loads rows itself is caught."""
    sample = tmp_path / "service.py"
    sample.write_text(
        "from sqlalchemy import func, select\n"
        "from store.models import Deadline\n"
        "def pending(s, i):\n"
        "    return s.scalars(select(Deadline).where(Deadline.incident_id == i))\n"
        "def one(db, i):\n"
        "    return db.get(Deadline, i)\n",
        encoding="utf-8",
    )
    found = {f.split(": ", 1)[1] for f in query_building(sample, model_names())}
    assert found == {
        "imports func",
        "imports select",
        "s.scalars(...)",
        "select(...)",
        ".where(...)",
        ".get(Deadline, ...)",
    }


# ---- explicit dependencies and package boundaries ------------------------------------------------------------

# Which bot packages (and `store`) each part of the tree may import, besides the standard library and
# third-party libraries. Read top to bottom: the core depends on nothing of ours, the Slack edge on the
# core, the domain packages on the core, the edge and each other, never on handlers or the composition root
# (bot/app.py, bot/services.py, bot/cli.py, bot/offline.py), which alone see everything.
CORE, SLACK, STORE = "bot.core", "bot.slack", "store"
DOMAIN = {"bot.incidents", "bot.deadlines", "bot.notices", "bot.review"}
BOUNDARIES: dict[str, set[str]] = {
    "bot/core": {CORE},
    "bot/slack": {CORE, SLACK},
    "bot/incidents": {CORE, SLACK, STORE, *DOMAIN} - {"bot.review"},
    "bot/deadlines": {CORE, SLACK, STORE, *DOMAIN} - {"bot.review", "bot.notices"},
    "bot/notices": {CORE, SLACK, STORE, *DOMAIN} - {"bot.review"},
    "bot/review": {CORE, SLACK, STORE, *DOMAIN},
    # signals from other systems: recorded, routed to incidents, watched for a surge
    "bot/intake": {CORE, SLACK, STORE, *DOMAIN, "bot.intake", "bot.surge"},
    "bot/surge": {CORE, SLACK, STORE, *DOMAIN, "bot.surge"},  # the surge plan drives incidents, not the intake
    "bot/plan": {CORE, SLACK, STORE, "bot.plan"},  # the plan's versions: stored, announced, confirmed
    "bot/sandbox": {"bot.sandbox"},  # the test server knows nothing of the bot it serves
    "handlers": {CORE, SLACK, *DOMAIN, "bot.intake", "bot.surge", "bot.services", "handlers"},
    "store": {STORE},
}
# Each exception says why; a module listed here may import that one package (prefix) besides its table row.
JUSTIFIED = {
    ("bot/core/clock.py", "store.types"): "utc() refuses a naive moment with the store's own NaiveDatetimeError",
    ("bot/slack/forms.py", "bot.incidents.service"): "the report modal is parsed into the domain's IncidentCreate",
    ("bot/slack/blocks.py", "store.models"): "card builders read Incident and Notice rows",
    ("bot/slack/blocks.py", "store.states"): "cards show a row's state from the store's own enums",
    ("bot/slack/web.py", "store.db"): "/healthz pings the database",
    # the one command registry declares, per command, its permission, its typed input and the service it calls
    ("bot/slack/registry.py", "bot.incidents.permissions"): "each command's permission (Action)",
    ("bot/slack/registry.py", "bot.incidents.service"): "`open` is parsed into IncidentCreate",
    ("bot/slack/registry.py", "bot.review.service"): "`action` parses its due time (Due)",
    ("bot/slack/registry.py", "bot.services"): "each command names the service method it calls",
    ("bot/slack/signing.py", "store.queries"): "replay protection records each request's signature",
    ("bot/slack/web.py", "bot.intake.service"): "the intake API's body is parsed into ComplaintInput",
    ("bot/slack/web.py", "bot.app"): "the HTTP front serves the built Bot (a type-only import)",
    ("bot/core/events.py", "store.models"): "an event carries the row its transaction changed (type-only)",
}
COMPOSITION_ROOT = {"bot/app.py", "bot/services.py"}
# What a service is given and keeps to itself: reading one of these through another object
# (`self.incidents.db`, `services.notices.clock`, `incidents.renderer` in a constructor) is a reach-through.
PRIVATE_DEPENDENCIES = {
    "db",
    "session_factory",
    "clock",
    "slack",
    "gateway",
    "renderer",
    "playbook",
    "outbox",
    "permissions",
    "events",
}
CONTAINER = "services"  # the container handed to handlers and jobs; `services.db` is its own field


def bot_package_of(module: str) -> str:
    """`bot.deadlines.scheduler` → `bot.deadlines`; `store.models` → `store`; `handlers.x` → `handlers`."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "bot" and len(parts) > 1 else parts[0]


def ours(names: set[str]) -> set[str]:
    return {n for n in names if n.split(".")[0] in ("bot", "handlers", "store")}


def boundary_of(path: str) -> str | None:
    return next((row for row in BOUNDARIES if path == row or path.startswith(row + "/")), None)


def test_packages_import_one_way_as_the_table_says() -> None:
    wrong = []
    for package in ("bot", "handlers", "store"):
        for path, names in modules(package).items():
            if (row := boundary_of(path)) is None or "/migrations/" in path:
                continue  # the composition root, the CLI and the demo may import anything
            for name in sorted(ours(names)):
                if bot_package_of(name) in BOUNDARIES[row]:
                    continue
                if any(path == p and (name == m or name.startswith(m + ".")) for p, m in JUSTIFIED):
                    continue
                wrong.append(f"{path} imports {name}")
    assert not wrong, "imports against the boundary table:\n" + "\n".join(wrong)


def reach_throughs(source: str) -> list[str]:
    """Every place a module reads another object's private dependency: `<x>.<y>.<dep>` (unless `<y>` is
    the services container), and `<param>.<dep>` inside a constructor."""
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE_DEPENDENCIES:
            owner = node.value
            if isinstance(owner, ast.Attribute) and owner.attr not in (CONTAINER, node.attr):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    for init in ast.walk(tree):
        if isinstance(init, ast.FunctionDef) and init.name == "__init__":
            params = {a.arg for a in init.args.args + init.args.kwonlyargs} - {"self"}
            for node in ast.walk(init):
                if (
                    isinstance(node, ast.Attribute)
                    and node.attr in PRIVATE_DEPENDENCIES
                    and isinstance(node.value, ast.Name)
                    and node.value.id in params - {node.attr, CONTAINER}
                ):
                    found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_reach_through_check_sees_the_old_patterns() -> None:
    """The check itself: it must catch what the services used to do, and leave plain use alone."""
    old = """
class NoticeService:
    def __init__(self, *, incidents, deadlines):
        self.incidents = incidents
        self.webhooks = WebhookSender(sleep=incidents.clock.sleep)

    def draft(self):
        with self.incidents.db.begin() as s:
            return self.incidents.renderer.render("x")
"""
    assert len(reach_throughs(old)) == 3
    fine = """
class NoticeService:
    def __init__(self, *, db, clock, renderer, incidents):
        self.db, self.clock, self.renderer, self.incidents = db, clock, renderer, incidents

    def draft(self, services):
        with self.db.begin() as s:
            return self.renderer.render(self.incidents.find(channel_id=None).title), services.clock.now()
"""
    assert reach_throughs(fine) == []


def test_no_service_reaches_through_another_for_its_dependencies() -> None:
    wrong = []
    for package in ("bot", "handlers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = str(path.relative_to(ROOT))
            if name in COMPOSITION_ROOT or name.startswith("bot/sandbox/"):
                continue
            wrong += [f"{name} {where}" for where in reach_throughs(path.read_text(encoding="utf-8"))]
    assert not wrong, "reach-throughs (give the service what it uses in its constructor):\n" + "\n".join(wrong)


def listener_registrations(trees: dict[str, ast.Module]) -> list[str]:
    """Subscriptions, callback lists kept on an object (`self.after_resolve: list[Callable[...]]`), and a
    method of ours appended to a list (`services.schedule_changed.append(self.poke)`)."""
    methods = {
        f.name
        for tree in trees.values()
        for c in ast.walk(tree)
        if isinstance(c, ast.ClassDef)
        for f in c.body
        if isinstance(f, ast.FunctionDef) and not f.name.startswith("__")
    }
    found = []
    for name, tree in trees.items():
        for node in ast.walk(tree):
            kept = ast.unparse(node.annotation) if isinstance(node, ast.AnnAssign) else ""
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Attribute) and "list[Callable" in kept:
                found.append(f"{name}:{node.lineno} keeps a list of callbacks: {ast.unparse(node.target)}")
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr == "subscribe":
                found.append(f"{name}:{node.lineno} subscribes")
            if node.func.attr in ("append", "extend", "insert") and node.args:
                item = node.args[-1]
                if isinstance(item, ast.Attribute) and item.attr in methods:
                    found.append(f"{name}:{node.lineno} appends {ast.unparse(item)} to {ast.unparse(node.func.value)}")
    return found


def test_the_listener_check_sees_the_old_patterns() -> None:
    old = {
        "bot/services.py": ast.parse("incidents.after_resolve.append(aftercare.on_resolved)"),
        "bot/deadlines/scheduler.py": ast.parse(
            "class Scheduler:\n"
            "    def __init__(self, services):\n"
            "        self.hooks: list[Callable[[], None]] = []\n"
            "        services.schedule_changed.append(self.poke)\n"
            "    def poke(self): pass\n"
            "    def on_resolved(self): pass\n"
        ),
    }
    assert len(listener_registrations(old)) == 3


def test_only_the_composition_root_declares_who_reacts_to_what() -> None:
    """No listener lists filled at start-up: events are subscribed in bot/services.py and nowhere else."""
    trees = {
        str(path.relative_to(ROOT)): ast.parse(path.read_text(encoding="utf-8"))
        for package in ("bot", "handlers")
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    found = listener_registrations(trees)
    wrong = [f for f in found if f.split(":")[0] not in COMPOSITION_ROOT | {"bot/core/events.py"}]
    assert not wrong, "\n".join(wrong)


def test_the_wiring_is_sealed_once_built(stack: Stack) -> None:
    """Who reacts to what is fixed when the app is built: one subscriber each, and no later additions."""
    events = stack.bot.services.events
    assert len(events.subscribers(ScheduleChanged)) == 1
    assert len(events.subscribers(IncidentResolved)) == 1
    with pytest.raises(RuntimeError):
        events.subscribe(ScheduleChanged, lambda _: None)
