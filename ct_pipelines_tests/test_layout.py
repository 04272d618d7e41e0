"""The layout's rules, checked: where Dagster may appear, who may use the sandbox, what ships.

- No Dagster in the plain-Python parts (each flow's ``logic/``, the kernel, the clients, the
  store): they stay testable and reusable without an instance.
- In the product, only the resources and the CLI open the sandbox; the sandbox imports nothing
  from the product (it stands in for systems we did not write).
- The wheel ships both packages with their ``py.typed`` markers and none of the tests.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import setuptools

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "ct_pipelines"
SANDBOX = ROOT / "ct_sandbox"
PLAIN = [
    *sorted((PACKAGE / "defs").glob("*/logic")),
    PACKAGE / "kernel",
    PACKAGE / "commercetools",
    PACKAGE / "erp",
    PACKAGE / "store",
    PACKAGE / "lib",
]
SANDBOX_USERS = {PACKAGE / "defs" / "resources.py", PACKAGE / "cli.py"}


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """Every module a file imports, at any depth (imports inside functions count too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def _top(module: str) -> str:
    return module.split(".")[0]


def test_every_flow_has_its_logic_folder() -> None:
    flows = {"order_to_cash", "inventory", "product_master", "dispatch", "finance", "operations"}
    assert {p.parent.name for p in PLAIN if p.name == "logic"} == flows


def test_no_dagster_in_the_plain_python_parts() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for folder in PLAIN
        for path in sorted(folder.rglob("*.py"))
        for line, module in imported_modules(path)
        if _top(module) in {"dagster", "dagster_postgres", "dagster_slack", "dagster_webserver"}
    ]
    assert not found, "\n".join(found)


def test_only_the_resources_and_the_cli_use_the_sandbox() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path not in SANDBOX_USERS
        for line, module in imported_modules(path)
        if _top(module) == "ct_sandbox"
    ]
    assert not found, "\n".join(found)


def test_the_sandbox_imports_nothing_from_the_product() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted(SANDBOX.rglob("*.py"))
        for line, module in imported_modules(path)
        if _top(module) == "ct_pipelines"
    ]
    assert not found, "\n".join(found)


def test_the_wheel_ships_the_packages_and_no_tests() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = setuptools.find_packages(
        where=str(ROOT),
        include=config["packages"]["find"]["include"],
        exclude=config["packages"]["find"].get("exclude", ()),
    )
    assert "ct_pipelines" in found and "ct_sandbox" in found
    assert "ct_pipelines.defs.order_to_cash.logic" in found
    assert not [name for name in found if "tests" in name.split(".")[0]], found
    data = config["package-data"]
    for package in ("ct_pipelines", "ct_sandbox"):
        assert "py.typed" in data[package]
        assert (ROOT / package / "py.typed").is_file()
