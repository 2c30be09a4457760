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
