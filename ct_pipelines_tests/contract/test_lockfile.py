"""The mock's npm pin: exact version, and a lock file that names no registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MOCK_DIR = Path(__file__).resolve().parents[2] / "tools" / "commercetools-mock"


def _walk(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _walk(v, f"{path}/{k}")]
    if isinstance(value, list):
        return [pair for i, v in enumerate(value) for pair in _walk(v, f"{path}/{i}")]
    return [(path, value)]


def test_the_mock_is_pinned_to_an_exact_version() -> None:
    package = json.loads((MOCK_DIR / "package.json").read_text())
    assert package["dependencies"] == {"@labdigital/commercetools-mock": "4.4.0"}
    lock = json.loads((MOCK_DIR / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@labdigital/commercetools-mock"]["version"] == "4.4.0"


def test_the_lock_records_integrity_but_no_registry_urls() -> None:
    lock = json.loads((MOCK_DIR / "package-lock.json").read_text())
    packages = {k: v for k, v in lock["packages"].items() if k}
    assert packages and all("integrity" in p for p in packages.values())
    assert not [k for k, p in packages.items() if "resolved" in p]
    # The only URLs left are the packages' own funding links, which npm never fetches.
    urls = [
        (path, value)
        for path, value in _walk(lock)
        if isinstance(value, str) and "://" in value and "/funding" not in path
    ]
    assert urls == []
    assert (MOCK_DIR / ".npmrc").read_text().count("omit-lockfile-registry-resolved=true") == 1
