"""The preflight checks on already-fetched facts (pure)."""

from __future__ import annotations

from collections import Counter

from ct_pipelines.defs.inventory.logic import load_rules
from ct_pipelines.defs.operations.logic.preflight import (
    Finding,
    PreflightFacts,
    PreflightSettings,
    blockers,
    evaluate,
    table,
)
from ct_pipelines.defs.product_master.logic.master import build_catalog
from ct_pipelines_tests.defs.product_master.logic.factories import gbp, item

KEY = "acme-prod"
NEEDED = ("manage_orders", "manage_products", "view_payments", "view_channels")
SCOPES = [f"{s}:{KEY}" for s in (*NEEDED, "view_tax_categories")]
CHANNELS = [
    {"key": "erp-order-export", "roles": ["OrderExport"]},
    {"key": "wh-manchester", "roles": ["InventorySupply"]},
    {"key": "wh-milton-keynes", "roles": ["InventorySupply"]},
    {"key": "store-london", "roles": ["InventorySupply"]},
]
PRODUCT_TYPE = {
    "id": "pt-1",
    "key": "goods",
    "attributes": [
        {"name": "colour", "type": {"name": "enum", "values": [{"key": "Navy"}]}},
        {"name": "discontinued", "type": {"name": "boolean"}},
    ],
}


def _facts(**overrides: object) -> PreflightFacts:
    master = build_catalog(
        [
            item("A-1", product="a", attributes={"colour": "Navy"}),
            item("B-1", product="b", attributes={"colour": "Teal", "fabric": "silk"}),
            item(
                "C-1",
                product="c",
                prices=[gbp(100), gbp(200).model_copy(update={"currency": "USD", "country": "US"})],
            ),
        ]
    )
    facts = PreflightFacts(
        project_key=KEY,
        granted_scopes=list(SCOPES),
        channels=[dict(c) for c in CHANNELS],
        tax_category_keys={"standard", "reduced", "zero"},
        products=[{"id": "p1", "productType": {"typeId": "product-type", "id": "pt-1"}}],
        product_types=[PRODUCT_TYPE],
        project={"currencies": ["GBP", "USD"], "countries": ["GB", "US"]},
        custom_line_slugs=Counter({"gift-wrap": 3}),
        master=master,
    )
    for name, value in overrides.items():
        setattr(facts, name, value)
    return facts


def _run(facts: PreflightFacts, **settings: object) -> list[Finding]:
    return evaluate(facts, PreflightSettings(**settings), load_rules())  # type: ignore[arg-type]


def _row(findings: list[Finding], area: str, item: str) -> Finding:
    return next(f for f in findings if f.area == area and f.item == item)


def test_a_ready_project_has_no_blocker() -> None:
    findings = _run(_facts())
    assert blockers(findings) == []
    assert "no blocker: ready to go live" in table(findings)


def test_a_missing_export_channel_and_unknown_tax_categories_are_blockers_named_each() -> None:
    channels = [c for c in CHANNELS if c["key"] != "erp-order-export"]
    findings = _run(_facts(channels=channels, tax_category_keys={"standard"}))
    named = {(f.area, f.item, f.status) for f in blockers(findings)}
    assert named == {
        ("export channel", "erp-order-export", "MISSING"),
        ("tax categories", "reduced", "MISSING"),
        ("tax categories", "zero", "MISSING"),
    }
    assert "--create-missing" in _row(findings, "export channel", "erp-order-export").fix
    assert "MISSING !" in table(findings)


def test_scopes_are_checked_against_the_token_response() -> None:
    findings = _run(_facts(granted_scopes=[f"view_orders:{KEY}", f"manage_products:{KEY}"]))
    missing = {f.item for f in blockers(findings) if f.area == "scopes"}
    assert missing == {"manage_orders", "view_payments", "view_channels", "view_tax_categories"}
    assert blockers(_run(_facts(granted_scopes=[f"manage_project:{KEY}"]))) == []
    other = _run(_facts(granted_scopes=["manage_project:another-project"]))
    assert len([f for f in blockers(other) if f.area == "scopes"]) == 5
    create = _run(_facts(), create_missing=True)
    assert _row(create, "scopes", "manage_channels").blocker


def test_no_token_is_one_blocker_and_stops_the_commercetools_checks() -> None:
    findings = _run(_facts(token_error="AuthError: invalid_client"))
    assert [(f.area, f.status) for f in blockers(findings)] == [("credentials", "MISSING")]
    assert {f.area for f in findings} == {"credentials", "ERP"}


def test_supply_channels_of_the_rules_must_exist() -> None:
    channels = [c for c in CHANNELS if c["key"] != "store-london"]
    channels.append({"key": "store-london", "roles": []})
    findings = _run(_facts(channels=[c for c in channels if c["key"] != "wh-manchester"]))
    assert _row(findings, "supply channels", "wh-manchester").blocker
    role = _row(findings, "supply channels", "store-london")
    assert role.status == "MISMATCH" and not role.blocker


def test_master_attributes_enum_values_and_currencies_against_the_project() -> None:
    findings = _run(_facts(project={"currencies": ["GBP"], "countries": ["GB"]}))
    attributes = _row(findings, "product types", "goods: attributes")
    assert attributes.status == "MISMATCH" and "fabric" in attributes.detail
    enums = _row(findings, "product types", "goods: enum values")
    assert "colour=Teal" in enums.detail
    currencies = _row(findings, "project", "currencies")
    assert currencies.status == "MISMATCH" and "USD" in currencies.detail
    assert _row(findings, "project", "countries").status == "MISMATCH"


def test_a_configured_product_type_that_does_not_exist_is_a_blocker() -> None:
    findings = _run(_facts(), product_type_key="clothing")
    assert _row(findings, "product types", "clothing").blocker


def test_unmapped_custom_line_slugs_and_an_unreachable_erp() -> None:
    findings = _run(_facts(custom_line_slugs=Counter({"monogram": 2}), erp_error="timeout"))
    assert _row(findings, "custom lines", "monogram").status == "MISMATCH"
    assert _row(findings, "ERP", "reachability").blocker
