"""Dependencies point one way: handlers → bot → store; only the gateway talks to slack_sdk's WebClient."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT


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
