"""Every malformed rules file is refused with an error naming the file, the place and the fix.

An operator edits this file by hand; whatever is wrong with it, the answer must be an
InventoryRulesError (never a traceback from a parser) that says where and what is expected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ct_pipelines.defs.inventory.logic.rules import InventoryRulesError, load_rules

WEB = '"channels": {"web": {"sources": ["A"]}}'

# file name, content (bytes or text), the place the message must name, a word of what is expected
CASES: list[tuple[str, str | bytes, str, str]] = [
    ("empty.json", "", "empty", "expected an object"),
    ("array.json", "[]", "(top level)", "expected an object"),
    ("null.json", "null", "(top level)", "expected an object"),
    ("truncated.json", '{"version": 1, "channels": {', "line 1 column", "property name"),
    (
        "latin1.json",
        b'{"version": 1, "channels": {"caf\xe9": {"sources": ["A"]}}}',
        "byte",
        "UTF-8",
    ),
    (
        "nan.json",
        '{"version": 1, "channels": {"web": {"sources": ["A"], "buffer": {"percent": NaN}}}}',
        "channels.web.buffer.percent",
        "finite",
    ),
    ("version.json", '{"version": 2, ' + WEB + "}", "version", "only version 1"),
    ("version_text.json", '{"version": "1", ' + WEB + "}", "version", "integer"),
    ("channels_list.json", '{"version": 1, "channels": ["web"]}', "channels", "dictionary"),
    (
        "sources_text.json",
        '{"version": 1, "channels": {"web": {"sources": "A"}}}',
        "channels.web.sources",
        "list",
    ),
    (
        "share_text.json",
        '{"version": 1, "channels": {"web": {"sources": [{"location": "A", "share_percent": "half"}]}}}',
        "channels.web.sources[0].share_percent",
        "decimal",
    ),
    (
        "share_zero.json",
        '{"version": 1, "channels": {"web": {"sources": [{"location": "A", "share_percent": 0}]}}}',
        "channels.web.sources[0].share_percent",
        "greater than 0",
    ),
    (
        "buffer_negative.json",
        '{"version": 1, "channels": {"web": {"sources": ["A"], "buffer": {"absolute": -1}}}}',
        "channels.web.buffer.absolute",
        "greater than or equal to 0",
    ),
    (
        "buffer_fraction.json",
        '{"version": 1, "channels": {"web": {"sources": ["A"], "buffer": {"absolute": 1.5}}}}',
        "channels.web.buffer.absolute",
        "integer",
    ),
    (
        "misspelt.json",
        '{"version": 1, "channels": {"web": {"sources": ["A"], "buffers": {}}}}',
        "channels.web.buffers",
        "unknown setting",
    ),
    (
        "sku_buffers_object.json",
        '{"version": 1, ' + WEB + ', "sku_buffers": {"x": 1}}',
        "sku_buffers",
        "list",
    ),
    ("duplicate_key.json", '{"version": 1, "version": 1, ' + WEB + "}", "'version'", "twice"),
    (
        "zero_entries_text.json",
        '{"version": 1, ' + WEB + ', "create_zero_entries": "yes"}',
        "create_zero_entries",
        "boolean",
    ),
    ("broken.toml", 'version = 1\n[channels.web\nsources = ["A"]', "line 2", "TOML"),
    (
        "sources_text.toml",
        'version = 1\n[channels.web]\nsources = "A"',
        "channels.web.sources",
        "list",
    ),
    ("deep.json", "[" * 100_000 + "]" * 100_000, "nested", "expected an object"),
    ("rules.yaml", "version: 1", "'.yaml'", ".json or .toml"),
    (
        "overshared.json",
        '{"version": 1, "channels": {"web": {"sources": [{"location": "A", "share_percent": 60}]}, "shop": {"sources": [{"location": "A", "share_percent": 60}]}}}',
        "location 'A'",
        "at most 100%",
    ),
]


@pytest.mark.parametrize(("name", "content", "place", "expected"), CASES, ids=[c[0] for c in CASES])
def test_a_malformed_rules_file_names_file_place_and_what_is_expected(
    tmp_path: Path, name: str, content: str | bytes, place: str, expected: str
) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(InventoryRulesError) as caught:
        load_rules(path)
    message = str(caught.value)
    assert str(path) in message
    assert place in message, message
    assert expected in message, message


def test_a_missing_file_and_a_folder_are_named_too(tmp_path: Path) -> None:
    folder = tmp_path / "rules.json"
    folder.mkdir()
    for path in (tmp_path / "absent.json", folder):
        with pytest.raises(InventoryRulesError, match="cannot read the file") as caught:
            load_rules(path)
        assert str(path) in str(caught.value)


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_text("\ufeff" + '{"version": 1, ' + WEB + "}", encoding="utf-8")
    assert load_rules(path).channel_keys == frozenset({"web"})
