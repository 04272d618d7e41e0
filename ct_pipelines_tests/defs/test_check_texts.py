"""What an operator reads about each check: a description in the UI and, when it fails, what
failed, what to do and the runbook section, which is a real heading of docs/runbook.md."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import dagster as dg

from ct_pipelines.definitions import defs
from ct_pipelines.defs.metadata import check_text, runbook_hint
from ct_pipelines_tests.runbook import assert_says_what_to_do, runbook_headings, sections_named

PACKAGE = Path(__file__).resolve().parents[2] / "ct_pipelines"


def _definitions() -> dg.Definitions:
    loaded = defs()
    return loaded if isinstance(loaded, dg.Definitions) else loaded()


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text())) for path in sorted(PACKAGE.rglob("*.py"))]


def test_every_check_of_the_definitions_has_a_description_an_operator_can_read() -> None:
    graph = _definitions().resolve_asset_graph()
    keys = list(graph.asset_check_keys)
    assert len(keys) >= 20
    for key in keys:
        description = (graph.get_check_spec(key).description or "").strip()
        assert len(description) >= 40, (key.name, description)
        assert description[0].isupper() and description.endswith((".", ")")), (
            key.name,
            description,
        )


def test_every_check_has_a_runbook_section_under_its_own_name() -> None:
    names = {key.name for key in _definitions().resolve_asset_graph().asset_check_keys}
    assert not names - runbook_headings()


def test_every_check_result_the_code_builds_has_a_text() -> None:
    """Every ``AssetCheckResult(...)`` in the package says something (``description=``)."""
    silent = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "AssetCheckResult"
        and not any(k.arg == "description" for k in node.keywords)
    ]
    assert silent == []


def _named_sections() -> dict[str, str]:
    """Every runbook section the package names: ``runbook_hint(X)`` / ``check_text(X, ...)``
    (X a string or a module constant) and the literal ``docs/runbook.md, section `X``` texts."""
    named: dict[str, str] = {}
    for path, tree in _modules():
        if path == PACKAGE / "defs" / "metadata.py":  # where the helpers are defined
            continue
        module = None
        for node in ast.walk(tree):
            where = f"{path.relative_to(PACKAGE.parent)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.JoinedStr) or (
                isinstance(node, ast.Constant) and isinstance(node.value, str)
            ):
                # "...{RUNBOOK}, section `Failed runs`." as well as the spelled-out path
                for name in re.findall(r", section `([^`{}]+)`", ast.unparse(node)):
                    named[name] = where
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("runbook_hint", "check_text")
                and node.args
            ):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant):
                named[str(first.value)] = where
            elif isinstance(first, ast.Name):
                if module is None:
                    dotted = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
                    module = importlib.import_module(dotted)
                value = getattr(module, first.id, None)
                assert isinstance(value, str), f"{where}: {first.id} is no module constant"
                named[value] = where
            else:
                raise AssertionError(f"{where}: a runbook section named by an expression")
    return named


def test_every_runbook_section_the_code_names_is_a_heading_of_the_runbook() -> None:
    named = _named_sections()
    checks = {key.name for key in _definitions().resolve_asset_graph().asset_check_keys}
    # Every check points at its section from the code, and the alerts at "Failed runs".
    assert checks <= set(named), sorted(checks - set(named))
    assert "Failed runs" in named
    missing = {name: where for name, where in named.items() if name not in runbook_headings()}
    assert missing == {}


def test_a_failing_text_says_what_failed_what_to_do_and_where_to_read_more() -> None:
    text = check_text("orphaned_orders", False, "fine", "2 orders are late", "run the export")
    assert text == (
        "2 orders are late. What to do: run the export. "
        "Runbook: docs/runbook.md, section `orphaned_orders`."
    )
    assert_says_what_to_do(text, "orphaned_orders")
    assert check_text("orphaned_orders", True, "fine", "late", "run") == "fine"
    assert sections_named(runbook_hint("No such section")) == ["No such section"]
    assert "No such section" not in runbook_headings()
