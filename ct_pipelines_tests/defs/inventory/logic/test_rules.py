"""Rules files: the documented targets for each kind of mapping, and bad files named precisely."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ct_pipelines.defs.inventory import logic as inventory
from ct_pipelines.defs.inventory.logic import (
    Buffer,
    InventoryRulesError,
    Target,
    compute_targets,
    load_rules,
    parse_rules,
    parse_rules_text,
)
from ct_pipelines_tests.defs.inventory.logic.fakes import Row


def _targets(rules_data: dict, rows: list[Row]) -> dict[tuple[str, str], Target]:
    return compute_targets(rows, parse_rules(rules_data)).targets


# --- mappings ---------------------------------------------------------------------------------


def test_one_to_one_maps_available_stock_on_hand_minus_reserved() -> None:
    targets = _targets(
        {"channels": {"wh-north": {"sources": ["MAN"]}}},
        [Row("SKU-1", "MAN", on_hand=10, reserved=3)],
    )
    assert targets == {("SKU-1", "wh-north"): Target(quantity=7, erp_available=7, buffer=0)}


def test_many_to_one_sums_the_locations_of_a_channel() -> None:
    targets = _targets(
        {"channels": {"online-uk": {"sources": ["MAN", "BRS", "GLA"]}}},
        [
            Row("SKU-1", "MAN", 10, 3),
            Row("SKU-1", "BRS", 5),
            Row("SKU-2", "GLA", 4, 4),
        ],
    )
    assert targets[("SKU-1", "online-uk")].quantity == 12
    assert targets[("SKU-2", "online-uk")].quantity == 0


def test_many_to_one_lets_an_over_allocated_location_reduce_the_sum() -> None:
    targets = _targets(
        {"channels": {"online-uk": {"sources": ["MAN", "BRS"]}}},
        [Row("SKU-1", "MAN", 2, 5), Row("SKU-1", "BRS", 5)],
    )
    assert targets[("SKU-1", "online-uk")] == Target(2, 2, 0)


def test_one_to_many_splits_a_location_by_share_rounding_down() -> None:
    rules = {
        "channels": {
            "web": {"sources": [{"location": "MAN", "share_percent": 60}]},
            "marketplace": {"sources": [{"location": "MAN", "share_percent": 40}]},
        }
    }
    targets = _targets(rules, [Row("A", "MAN", 10), Row("B", "MAN", 7)])
    assert targets[("A", "web")].quantity == 6
    assert targets[("A", "marketplace")].quantity == 4
    # 4.2 and 2.8: both round down, so the channels never offer more than the location has.
    assert targets[("B", "web")].quantity == 4
    assert targets[("B", "marketplace")].quantity == 2


def test_one_to_many_shared_location_publishes_full_stock_to_each_channel() -> None:
    rules = {
        "channels": {
            "web": {"sources": ["LDN-STORE", "MAN"]},
            "click-collect-london": {"sources": ["LDN-STORE"]},
        },
        "shared_locations": ["LDN-STORE"],
    }
    targets = _targets(rules, [Row("A", "LDN-STORE", 3), Row("A", "MAN", 10)])
    assert targets[("A", "web")].quantity == 13
    assert targets[("A", "click-collect-london")].quantity == 3


def test_locations_outside_the_rules_are_reported_unless_ignored() -> None:
    rules = parse_rules(
        {"channels": {"wh-north": {"sources": ["MAN"]}}, "ignored_locations": ["QUARANTINE"]}
    )
    result = compute_targets(
        [
            Row("A", "MAN", 1),
            Row("A", "QUARANTINE", 9),
            Row("A", "RETURNS", 2),
            Row("B", "RETURNS", 1),
        ],
        rules,
    )
    assert result.unmapped_locations == {"RETURNS": 2}
    assert set(result.targets) == {("A", "wh-north")}
    assert result.locations_seen == {"MAN", "QUARANTINE", "RETURNS"}


def test_negative_stock_rows_are_counted_per_location() -> None:
    rules = parse_rules({"channels": {"wh-north": {"sources": ["MAN"]}}})
    result = compute_targets(
        [Row("A", "MAN", -2), Row("B", "MAN", 1, 4), Row("C", "MAN", 3)], rules
    )
    assert result.negative_rows == {"MAN": 2}
    assert result.targets[("A", "wh-north")].quantity == 0


# --- buffers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("buffer", "available", "held_back", "target"),
    [
        ({"absolute": 2}, 10, 2, 8),
        ({"absolute": 2}, 1, 2, 0),  # never below zero
        ({"percent": 10}, 15, 2, 13),  # 1.5 rounds up
        ({"percent": 12.5}, 8, 1, 7),
        ({"absolute": 2, "percent": 10}, 50, 5, 45),  # the larger of the two
        ({"absolute": 2, "percent": 10}, 10, 2, 8),
        ({"absolute": 3}, 0, 0, 0),
    ],
)
def test_channel_buffers(buffer: dict, available: int, held_back: int, target: int) -> None:
    rules = {"channels": {"web": {"sources": ["MAN"], "buffer": buffer}}}
    assert _targets(rules, [Row("A", "MAN", available)])[("A", "web")] == Target(
        target, available, held_back
    )


def test_the_most_specific_buffer_wins() -> None:
    rules = {
        "default_buffer": {"absolute": 1},
        "channels": {
            "web": {"sources": ["MAN"], "buffer": {"absolute": 2}},
            "store": {"sources": ["LDN"]},
        },
        "sku_buffers": [
            {"sku": "HOT", "absolute": 5},
            {"sku": "HOT", "channel": "web", "percent": 50},
            {"sku": "EXACT", "channel": "web", "absolute": 0},
        ],
    }
    rows = [Row(s, loc, 20) for s in ("HOT", "EXACT", "PLAIN") for loc in ("MAN", "LDN")]
    targets = _targets(rules, rows)
    assert targets[("HOT", "web")].quantity == 10  # SKU in channel: 50 %
    assert targets[("HOT", "store")].quantity == 15  # SKU everywhere: 5
    assert targets[("EXACT", "web")].quantity == 20  # an explicit zero buffer for the SKU
    assert targets[("PLAIN", "web")].quantity == 18  # the channel's buffer
    assert targets[("PLAIN", "store")].quantity == 19  # the default buffer


def test_buffer_percent_is_exact_decimal() -> None:
    buffer = Buffer.model_validate({"percent": 0.1})
    assert buffer.percent == Decimal("0.1")
    assert buffer.units(1000) == 1
    assert buffer.units(1001) == 2


@settings(deadline=None, max_examples=60)  # parsing rules per example: slow on a busy machine
@given(
    available=st.integers(min_value=-50, max_value=10_000),
    absolute=st.integers(min_value=0, max_value=100),
    percent=st.decimals(min_value=0, max_value=Decimal("99.99"), places=2),
    share=st.decimals(min_value=Decimal("0.01"), max_value=100, places=2),
)
def test_targets_never_negative_and_never_above_the_share(
    available: int, absolute: int, percent: Decimal, share: Decimal
) -> None:
    rules = {
        "channels": {
            "ch-a": {
                "sources": [{"location": "L", "share_percent": str(share)}],
                "buffer": {"absolute": absolute, "percent": str(percent)},
            },
            "ch-b": {"sources": [{"location": "L", "share_percent": str(100 - share or 1)}]},
        },
        "shared_locations": ["L"] if share == 100 else [],
    }
    targets = _targets(rules, [Row("S", "L", available)])
    a = targets[("S", "ch-a")]
    assert 0 <= a.quantity <= max(available, 0)
    assert a.quantity <= max(a.erp_available, 0)
    assert a.erp_available <= max(available, 0) or available < 0


# --- loading and validation ----------------------------------------------------------------------


def test_the_packaged_default_rules_load() -> None:
    rules = load_rules()
    assert rules.channels
    assert "default_rules.json" in rules.source


def test_rules_load_from_json_and_toml_files(tmp_path: Path) -> None:
    data = {"channels": {"wh-north": {"sources": ["MAN"], "buffer": {"absolute": 1}}}}
    json_file = tmp_path / "rules.json"
    json_file.write_text(json.dumps(data))
    toml_file = tmp_path / "rules.toml"
    toml_file.write_text('[channels.wh-north]\nsources = ["MAN"]\nbuffer = { absolute = 1 }\n')
    for path in (json_file, toml_file):
        rules = load_rules(path)
        assert rules.sources_of("wh-north") == ("MAN",)
        assert rules.buffer_for("X", "wh-north").absolute == 1


def _problems(text: str, fmt: str = "json") -> str:
    with pytest.raises(InventoryRulesError) as caught:
        parse_rules_text(text, fmt=fmt, source="bad.json")
    message = str(caught.value)
    assert message.startswith("invalid inventory rules in bad.json:")
    return message


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            {"channels": {"web": {"sources": ["MAN"], "buffers": {"absolute": 1}}}},
            "channels.web.buffers: unknown setting (misspelt?)",
        ),
        (
            {"channels": {"web": {"sources": ["MAN"], "buffer": {"percent": 150}}}},
            "channels.web.buffer.percent: Input should be less than or equal to 100",
        ),
        (
            {"channels": {"web": {"sources": ["MAN"], "buffer": {"percent": 100}}}},
            "channels.web.buffer.percent: must be below 100",
        ),
        (
            {"channels": {"web": {"sources": ["MAN"], "buffer": {"absolute": -1}}}},
            "channels.web.buffer.absolute: Input should be greater than or equal to 0",
        ),
        (
            {"channels": {"web": {"sources": ["MAN"], "buffer": {"absolute": 1.5}}}},
            "channels.web.buffer.absolute: Input should be a valid integer",
        ),
        (
            {"channels": {"web": {"sources": []}}},
            "channels.web.sources: List should have at least 1",
        ),
        ({"channels": {}}, "channels: Dictionary should have at least 1 item"),
        ({}, "channels: is required"),
        (
            {"channels": {"web": {"sources": ["MAN", "MAN"]}}},
            "channels.web.sources: location 'MAN' is listed twice",
        ),
        (
            {"channels": {"web": {"sources": [{"location": "MAN", "share_percent": 0}]}}},
            "channels.web.sources[0].share_percent: must be greater than 0",
        ),
        (
            {
                "channels": {
                    "web": {"sources": [{"location": "MAN", "share_percent": 70}]},
                    "marketplace": {"sources": [{"location": "MAN", "share_percent": 40}]},
                }
            },
            "location 'MAN' feeds 2 channels with shares adding up to 110%",
        ),
        (
            {"channels": {"web": {"sources": ["MAN"]}, "store": {"sources": ["MAN"]}}},
            "location 'MAN' feeds 2 channels with shares adding up to 200%",
        ),
        (
            {"channels": {"web": {"sources": ["MAN"]}}, "ignored_locations": ["MAN"]},
            "ignored_locations: location 'MAN' is ignored but feeds channel(s) web",
        ),
        (
            {"channels": {"web": {"sources": ["MAN"]}}, "ignored_channels": ["web"]},
            "ignored_channels: channel 'web' is both mapped and ignored",
        ),
        (
            {"channels": {"web": {"sources": ["MAN"]}}, "shared_locations": ["BRS"]},
            "shared_locations: location 'BRS' does not feed any channel",
        ),
        (
            {
                "channels": {"web": {"sources": ["MAN"]}},
                "sku_buffers": [{"sku": "A", "channel": "wbe", "absolute": 1}],
            },
            "sku_buffers[0].channel: 'wbe' is not a mapped channel (mapped: web)",
        ),
        (
            {
                "channels": {"web": {"sources": ["MAN"]}},
                "sku_buffers": [{"sku": "A", "absolute": 1}, {"sku": "A", "percent": 5}],
            },
            "sku_buffers[1]: a second buffer for SKU 'A' in all channels",
        ),
        (
            {"channels": {"web shop": {"sources": ["MAN"]}}},
            "channels.web shop: a channel key is 2-256 letters, digits, '_' or '-'",
        ),
        (
            {"channels": {"web": {"sources": [" MAN"]}}},
            "location ' MAN' has leading or trailing spaces",
        ),
        ({"version": 2, "channels": {"web": {"sources": ["MAN"]}}}, "version: only version 1"),
    ],
)
def test_bad_rules_are_rejected_with_a_message_naming_the_problem(
    rules: dict, expected: str
) -> None:
    assert expected in _problems(json.dumps(rules))


def test_every_problem_is_reported_at_once() -> None:
    message = _problems(
        json.dumps(
            {
                "channels": {
                    "web": {"sources": ["MAN"], "buffer": {"percent": 120}},
                    "store": {"sources": ["LDN"], "bufer": {}},
                },
                "ignored_location": [],
            }
        )
    )
    assert "channels.web.buffer.percent" in message
    assert "channels.store.bufer: unknown setting" in message
    assert "ignored_location: unknown setting" in message


def test_a_channel_listed_twice_in_the_file_is_rejected_not_overwritten() -> None:
    text = '{"channels": {"web": {"sources": ["MAN"]}, "web": {"sources": ["BRS"]}}}'
    assert "key 'web' appears twice in one object" in _problems(text)


def test_unreadable_or_malformed_files_are_named(tmp_path: Path) -> None:
    assert "not valid JSON at line 1" in _problems('{"channels": ')
    assert "not valid TOML" in _problems("[channels\n", fmt="toml")
    with pytest.raises(InventoryRulesError, match=r"missing\.json:\n  - cannot read the file"):
        load_rules(tmp_path / "missing.json")


def test_the_example_rules_produce_their_documented_targets() -> None:
    rules = load_rules(Path(inventory.__file__).parent / "example_rules.toml")
    rows = [
        Row("MUG-STONEWARE-GREY", "MAN", 30, 5),  # available 25
        Row("MUG-STONEWARE-GREY", "MK", 10),
        Row("MUG-STONEWARE-GREY", "LDN-STORE", 4),
        Row("MUG-STONEWARE-GREY", "MAN-MARKETPLACE", 20),
        Row("TEE-RED-M", "LDN-STORE", 20),
        Row("TEE-RED-M", "MAN-MARKETPLACE", 9),
        Row("TEE-RED-M", "QUARANTINE", 50),
    ]
    result = compute_targets(rows, rules)
    quantity = {key: t.quantity for key, t in result.targets.items()}
    assert quantity == {
        # The SKU's own buffer (6 units) replaces every channel buffer...
        ("MUG-STONEWARE-GREY", "web-uk-fulfilment"): 25 + 10 + 4 - 6,
        ("MUG-STONEWARE-GREY", "store-london"): 0,  # 4 - 6, floored
        ("MUG-STONEWARE-GREY", "marketplace-ebay"): 8 - 6,  # 40 % of 20
        # ...except where a SKU-in-channel buffer is more specific: 25 % of 12, rounded up.
        ("MUG-STONEWARE-GREY", "marketplace-amazon"): 12 - 3,
        ("TEE-RED-M", "store-london"): 20 - 2,  # max(1, 10 % of 20)
        ("TEE-RED-M", "web-uk-fulfilment"): 20 - 2,  # the shared store stock, buffer 2
        ("TEE-RED-M", "marketplace-amazon"): 5,  # 60 % of 9 = 5.4, rounded down
        ("TEE-RED-M", "marketplace-ebay"): 3 - 1,  # 40 % of 9 = 3.6 -> 3, 5 % buffer rounds up
    }
    assert result.unmapped_locations == {}
