"""The sandbox stands in for the outside systems: it imports nothing from ``ct_pipelines``."""

from __future__ import annotations

import ast
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import ct_sandbox
from ct_sandbox.world import shop_timezone

PACKAGE = Path(ct_sandbox.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_sandbox_module_imports_ct_pipelines() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            name for name in _imported_modules(path) if name.split(".")[0] == "ct_pipelines"
        )
        for path in sorted(PACKAGE.rglob("*.py"))
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_shop_time_zone_comes_from_the_environment() -> None:
    assert shop_timezone({}) == ZoneInfo("Europe/London")
    assert shop_timezone({"CT_PIPELINES_SHOP_TIMEZONE": "Europe/Dublin"}) == ZoneInfo(
        "Europe/Dublin"
    )
    with pytest.raises(ValueError, match="not an IANA time zone"):
        shop_timezone({"CT_PIPELINES_SHOP_TIMEZONE": "Mars/Olympus"})
