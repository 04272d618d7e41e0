"""Preflight: is the configured commercetools project and ERP ready for these flows?

The checks are pure functions of already-fetched facts (:class:`PreflightFacts`), each giving
rows of OK / MISSING / MISMATCH with what to do; a row marked ``blocker`` makes the preflight
fail (the CLI exits non-zero, the job fails). :func:`collect` does the fetching, read-only;
the one write is :func:`create_export_channel`, only when asked (``--create-missing``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

from ct_pipelines.commercetools.errors import CommercetoolsError
from ct_pipelines.defs.inventory.logic.rules import InventoryRules
from ct_pipelines.defs.product_master.logic.master import (
    DEFAULT_TAX_CATEGORIES,
    MasterCatalog,
)
from ct_pipelines.defs.product_master.logic.planner import attribute_misfit
from ct_pipelines.erp.errors import ErpError

#: what a read may fail with: reported as a finding, never a crash of the preflight
READ_ERRORS = (CommercetoolsError, ErpError, httpx.HTTPError, OSError, ValueError)

Status = Literal["OK", "MISSING", "MISMATCH"]

EXPORT_CHANNEL_KEY = "erp-order-export"
EXPORT_CHANNEL_ROLE = "OrderExport"
INVENTORY_SUPPLY = "InventorySupply"
#: (scope, what needs it); manage_X grants view_X, manage_project grants every scope
NEEDED_SCOPES: tuple[tuple[str, str], ...] = (
    ("manage_orders", "order export write-back, dispatch deliveries"),
    ("manage_products", "inventory entries and product syndication"),
    ("view_payments", "order eligibility and finance"),
    ("view_channels", "supply and export channels"),
    ("view_tax_categories", "tax categories of products"),
)
CREATE_SCOPE = ("manage_channels", "--create-missing creates the export channel")
DEFAULT_CUSTOM_ITEMS = {"gift-wrap": "GIFT-WRAP", "engraving": "ENGRAVING"}
SAMPLE = 10


@dataclass(frozen=True)
class Finding:
    area: str
    item: str
    status: Status
    detail: str
    fix: str = ""
    blocker: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "area": self.area,
            "item": self.item,
            "status": self.status,
            "blocker": self.blocker,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class PreflightSettings:
    """What the flows are configured to use; the defaults are the sandbox shop's."""

    export_channel_key: str = EXPORT_CHANNEL_KEY
    #: master tax code -> commercetools tax category key
    tax_categories: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TAX_CATEGORIES))
    product_type_key: str | None = None
    excluded_attributes: frozenset[str] = frozenset({"category"})
    flag_attribute: str | None = "discontinued"
    #: custom line item slug/key -> ERP service item
    custom_items: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CUSTOM_ITEMS))
    default_custom_item: str = "CUSTOM"
    create_missing: bool = False


@dataclass
class PreflightFacts:
    """What :func:`collect` read; None where it could not be read (the error says why)."""

    project_key: str
    token_error: str | None = None
    granted_scopes: list[str] | None = None
    channels: list[dict[str, Any]] | None = None
    tax_category_keys: set[str] | None = None
    products: list[dict[str, Any]] | None = None  # id, productType of existing products
    product_types: list[dict[str, Any]] | None = None
    product_types_error: str | None = None
    project: dict[str, Any] | None = None
    project_error: str | None = None
    custom_line_slugs: Counter[str] = field(default_factory=Counter)
    master: MasterCatalog | None = None
    erp_error: str | None = None
    created: list[str] = field(default_factory=list)  # what --create-missing created
    errors: dict[str, str] = field(default_factory=dict)  # area -> read error


def _granted(scopes: Iterable[str], project_key: str) -> set[str]:
    """Permissions a token's scopes grant in the project (store-scoped ones count too)."""
    granted: set[str] = set()
    for scope in scopes:
        parts = scope.split(":")
        if len(parts) >= 2 and parts[1] != project_key:
            continue
        permission = parts[0]
        granted.add(permission)
        if permission.startswith("manage_"):
            granted.add("view_" + permission.removeprefix("manage_"))
    return granted


def check_credentials(facts: PreflightFacts, settings: PreflightSettings) -> list[Finding]:
    if facts.token_error is not None:
        return [
            Finding(
                "credentials",
                "access token",
                "MISSING",
                f"no token: {facts.token_error}",
                "check CTP_CLIENT_ID, CTP_CLIENT_SECRET, CTP_AUTH_URL and CTP_PROJECT_KEY",
                blocker=True,
            )
        ]
    rows = [Finding("credentials", "access token", "OK", "token obtained")]
    if facts.granted_scopes is None:
        rows.append(
            Finding(
                "scopes",
                "token scope",
                "MISMATCH",
                "the token response lists no scope; scopes not verified",
                "set CTP_SCOPES to the scopes the API client has",
            )
        )
        return rows
    granted = _granted(facts.granted_scopes, facts.project_key)
    needed = list(NEEDED_SCOPES) + ([CREATE_SCOPE] if settings.create_missing else [])
    for scope, why in needed:
        if "manage_project" in granted or scope in granted:
            rows.append(Finding("scopes", scope, "OK", f"granted ({why})"))
        else:
            rows.append(
                Finding(
                    "scopes",
                    scope,
                    "MISSING",
                    f"not granted; needed for {why}",
                    f"give the API client {scope}:{facts.project_key} and add it to CTP_SCOPES",
                    blocker=True,
                )
            )
    return rows


def _channel_roles(facts: PreflightFacts) -> dict[str, set[str]]:
    return {c["key"]: set(c.get("roles") or ()) for c in facts.channels or [] if c.get("key")}


def check_export_channel(facts: PreflightFacts, settings: PreflightSettings) -> list[Finding]:
    if facts.channels is None:
        return [_unreadable("export channel", "channels", facts)]
    key = settings.export_channel_key
    roles = _channel_roles(facts).get(key)
    if roles is None:
        return [
            Finding(
                "export channel",
                key,
                "MISSING",
                "write-back (updateSyncInfo) needs this channel; every export would stay "
                "unmarked (400 ReferencedResourceNotFound)",
                f"ct-pipelines preflight --create-missing (creates it with role "
                f"{EXPORT_CHANNEL_ROLE}), or create channel {key!r} in the Merchant Center",
                blocker=True,
            )
        ]
    created = " (created now)" if key in facts.created else ""
    if EXPORT_CHANNEL_ROLE not in roles:
        return [
            Finding(
                "export channel",
                key,
                "MISMATCH",
                f"exists{created} with roles {sorted(roles)}, not {EXPORT_CHANNEL_ROLE}",
                f"add the role {EXPORT_CHANNEL_ROLE} to channel {key!r}",
            )
        ]
    return [
        Finding("export channel", key, "OK", f"exists with role {EXPORT_CHANNEL_ROLE}{created}")
    ]


def check_supply_channels(facts: PreflightFacts, rules: InventoryRules) -> list[Finding]:
    if facts.channels is None:
        return [_unreadable("supply channels", "channels", facts)]
    roles = _channel_roles(facts)
    rows = []
    for channel in sorted(rules.channels):
        sources = ", ".join(rules.sources_of(channel))
        if channel not in roles:
            rows.append(
                Finding(
                    "supply channels",
                    channel,
                    "MISSING",
                    f"named in the inventory rules (fed by {sources}); its stock is never "
                    "published",
                    f"create channel {channel!r} with role {INVENTORY_SUPPLY}, or map the "
                    "locations to an existing channel in CT_PIPELINES_INVENTORY_RULES",
                    blocker=True,
                )
            )
        elif INVENTORY_SUPPLY not in roles[channel]:
            rows.append(
                Finding(
                    "supply channels",
                    channel,
                    "MISMATCH",
                    f"exists without role {INVENTORY_SUPPLY} (roles {sorted(roles[channel])})",
                    f"add the role {INVENTORY_SUPPLY} to channel {channel!r}",
                )
            )
        else:
            rows.append(Finding("supply channels", channel, "OK", f"exists, fed by {sources}"))
    return rows


def check_tax_categories(facts: PreflightFacts, settings: PreflightSettings) -> list[Finding]:
    if facts.tax_category_keys is None:
        return [_unreadable("tax categories", "tax-categories", facts)]
    rows = []
    used: Counter[str] = Counter()
    if facts.master is not None:
        used.update(p.tax_category_key for p in facts.master.products if p.tax_category_key)
    wanted = sorted(set(settings.tax_categories.values()) | set(used))
    codes = {v: k for k, v in settings.tax_categories.items()}
    for key in wanted:
        where = f"tax code {codes[key]}" if key in codes else "the master"
        if key in facts.tax_category_keys:
            rows.append(Finding("tax categories", key, "OK", f"exists (from {where})"))
        else:
            rows.append(
                Finding(
                    "tax categories",
                    key,
                    "MISSING",
                    f"no tax category with key {key!r} (from {where}); "
                    f"{used.get(key, 0)} master products use it",
                    f"create tax category {key!r} in the project, or map {where} to an existing "
                    "key in the tax table (product_catalog.tax_categories)",
                    blocker=True,
                )
            )
    if facts.master is not None:
        unknown = Counter(i.detail for i in facts.master.issues if i.kind == "unknown_tax_code")
        if unknown:
            rows.append(
                Finding(
                    "tax categories",
                    "master tax codes",
                    "MISMATCH",
                    f"{sum(unknown.values())} master products carry a tax code outside the tax "
                    "table; they are created unpublished: " + "; ".join(list(unknown)[:SAMPLE]),
                    "add the codes to product_catalog.tax_categories",
                )
            )
    return rows


def _product_type_in_use(facts: PreflightFacts, settings: PreflightSettings) -> dict[str, Any]:
    types = facts.product_types or []
    if settings.product_type_key:
        return {"key": settings.product_type_key}
    counts = Counter(p["productType"]["id"] for p in facts.products or [] if p.get("productType"))
    if counts:
        return {"id": counts.most_common(1)[0][0]}
    return {"id": types[0]["id"]} if len(types) == 1 else {}


def check_product_types(facts: PreflightFacts, settings: PreflightSettings) -> list[Finding]:
    if facts.product_types is None:
        return [
            Finding(
                "product types",
                "product-types",
                "MISMATCH",
                f"cannot read product types ({facts.product_types_error or 'unknown error'}); "
                "drafts are not checked against the type",
                "the API client needs view_products; a 404 means the API lacks the endpoint",
            )
        ]
    reference = _product_type_in_use(facts, settings)
    by_id = {t["id"]: t for t in facts.product_types}
    by_key = {t.get("key"): t for t in facts.product_types if t.get("key")}
    doc = by_id.get(reference.get("id", "")) or by_key.get(reference.get("key"))
    if doc is None:
        return [
            Finding(
                "product types",
                str(reference.get("key") or reference.get("id") or "(none)"),
                "MISSING",
                "no product type for the products the sync creates",
                "create the product type, or set product_catalog.product_type_key to an "
                "existing one",
                blocker=True,
            )
        ]
    name = str(doc.get("key") or doc["id"])
    rows = [Finding("product types", name, "OK", "used for products the sync creates")]
    if facts.master is None:
        return rows
    attribute_names = set(facts.master.attribute_names) - set(settings.excluded_attributes)
    if settings.flag_attribute:
        attribute_names.add(settings.flag_attribute)
    undefined: list[str] = []
    bad_values: Counter[str] = Counter()
    for attribute in sorted(attribute_names):
        if attribute_misfit(doc, attribute, None) is not None:
            undefined.append(attribute)
            continue
        for product in facts.master.products:
            for variant in product.variants:
                value = variant.attributes.get(attribute)
                if value is not None and attribute_misfit(doc, attribute, value) is not None:
                    bad_values[f"{attribute}={value}"] += 1
    if undefined:
        rows.append(
            Finding(
                "product types",
                f"{name}: attributes",
                "MISMATCH",
                f"master attributes the type does not define (not sent): {', '.join(undefined)}",
                "add them to the product type, or list them in product_catalog.excluded_attributes",
            )
        )
    if bad_values:
        rows.append(
            Finding(
                "product types",
                f"{name}: enum values",
                "MISMATCH",
                f"{sum(bad_values.values())} master values are not among the type's enum values "
                f"(not sent): {', '.join(list(bad_values)[:SAMPLE])}",
                "add the values to the enum attribute in the product type",
            )
        )
    if not undefined and not bad_values:
        rows.append(
            Finding("product types", f"{name}: attributes", "OK", "every master attribute fits")
        )
    return rows


def check_currencies_and_countries(facts: PreflightFacts) -> list[Finding]:
    if facts.project is None:
        return [
            Finding(
                "project",
                "currencies and countries",
                "MISMATCH",
                f"cannot read the project ({facts.project_error or 'unknown error'}); prices "
                "are not checked against its currencies",
                "the API client needs view_project_settings; a 404 means the API lacks the "
                "endpoint",
            )
        ]
    currencies = {str(c).upper() for c in facts.project.get("currencies") or []}
    countries = {str(c).upper() for c in facts.project.get("countries") or []}
    used_currencies: Counter[str] = Counter()
    used_countries: Counter[str] = Counter()
    for product in facts.master.products if facts.master else []:
        for variant in product.variants:
            for price in variant.prices:
                used_currencies[price.scope.currency] += 1
                if price.scope.country:
                    used_countries[price.scope.country.upper()] += 1
    rows = []
    for area, have, used in (
        ("currencies", currencies, used_currencies),
        ("countries", countries, used_countries),
    ):
        lacking = sorted(set(used) - have)
        if lacking:
            rows.append(
                Finding(
                    "project",
                    area,
                    "MISMATCH",
                    f"the master's prices use {', '.join(lacking)} "
                    f"({sum(used[c] for c in lacking)} prices, not sent); the project has "
                    f"{', '.join(sorted(have)) or 'none'}",
                    f"add {', '.join(lacking)} to the project's {area} (Merchant Center > "
                    "Settings > Project settings)",
                )
            )
        else:
            rows.append(
                Finding(
                    "project", area, "OK", f"{', '.join(sorted(have)) or 'none'} cover the master"
                )
            )
    return rows


def check_custom_lines(facts: PreflightFacts, settings: PreflightSettings) -> list[Finding]:
    mapped = set(settings.custom_items)
    seen = facts.custom_line_slugs
    unmapped = sorted(s for s in seen if s not in mapped)
    rows = [
        Finding(
            "custom lines",
            slug,
            "OK",
            f"-> ERP item {item}" + (f" ({seen[slug]} in recent orders)" if seen.get(slug) else ""),
        )
        for slug, item in sorted(settings.custom_items.items())
    ]
    if unmapped:
        rows.append(
            Finding(
                "custom lines",
                ", ".join(unmapped[:SAMPLE]),
                "MISMATCH",
                f"custom line slugs in recent orders without an ERP item; exported as "
                f"{settings.default_custom_item}",
                "add them to order_to_cash custom_items (slug -> ERP service item)",
            )
        )
    return rows


def check_erp(facts: PreflightFacts) -> list[Finding]:
    if facts.erp_error is not None:
        return [
            Finding(
                "ERP",
                "reachability",
                "MISSING",
                f"the ERP did not answer: {facts.erp_error}",
                "check CT_PIPELINES_ERP_URL and CT_PIPELINES_ERP_TOKEN",
                blocker=True,
            )
        ]
    items = len(facts.master.products) if facts.master else 0
    return [Finding("ERP", "reachability", "OK", f"answered; {items} master products read")]


def _unreadable(area: str, resource: str, facts: PreflightFacts) -> Finding:
    return Finding(
        area,
        resource,
        "MISSING",
        f"cannot read {resource}: {facts.errors.get(resource, 'no token')}",
        "fix the credentials and scopes above first",
        blocker=True,
    )


def evaluate(
    facts: PreflightFacts, settings: PreflightSettings, rules: InventoryRules
) -> list[Finding]:
    """Every finding, in table order."""
    rows = check_credentials(facts, settings)
    if facts.token_error is None:
        rows += check_export_channel(facts, settings)
        rows += check_supply_channels(facts, rules)
        rows += check_tax_categories(facts, settings)
        rows += check_product_types(facts, settings)
        rows += check_currencies_and_countries(facts)
        rows += check_custom_lines(facts, settings)
    rows += check_erp(facts)
    return rows


def blockers(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.blocker]


def table(findings: Collection[Finding]) -> str:
    """A plain-text table: status, area, item, detail and what to do."""
    headers = ("STATUS", "AREA", "ITEM", "DETAIL / WHAT TO DO")
    lines = []
    for f in findings:
        status = f.status + (" !" if f.blocker else "")
        text = f.detail + (f"\n    -> {f.fix}" if f.fix and f.status != "OK" else "")
        lines.append((status, f.area, f.item, text))
    widths = [max(len(h), *(len(row[i]) for row in lines)) for i, h in enumerate(headers[:3])]
    out = [
        "  ".join(h.ljust(w) for h, w in zip(headers[:3], widths, strict=True)) + "  " + headers[3]
    ]
    for row in lines:
        first, *rest = row[3].split("\n")
        out.append(
            "  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + first
        )
        pad = " " * (sum(widths) + 6)
        out.extend(pad + r for r in rest)
    n = len(blockers(findings))
    out.append("")
    out.append(
        f"{n} blocker(s) (marked !): not ready to go live" if n else "no blocker: ready to go live"
    )
    return "\n".join(out)


def markdown(findings: Iterable[Finding]) -> str:
    rows = ["| status | area | item | detail | what to do |", "|---|---|---|---|---|"]
    for f in findings:
        status = f"**{f.status}** (blocker)" if f.blocker else f.status
        cells = (status, f.area, f.item, f.detail, f.fix if f.status != "OK" else "")
        rows.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(rows)


# --- fetching (thin; read-only except create_export_channel) ----------------------------------


class PreflightClient(Protocol):
    """The part of ``CommercetoolsClient`` the preflight uses."""

    def token_scope(self) -> list[str]: ...

    def query_all(self, resource: str) -> Iterable[dict[str, Any]]: ...

    def get(self, path: str, params: Any = None) -> dict[str, Any]: ...

    def get_project(self) -> dict[str, Any]: ...

    def create(self, resource: str, draft: Mapping[str, Any]) -> dict[str, Any]: ...


def _error_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def collect(
    client: PreflightClient,
    project_key: str,
    read_master: Callable[[], MasterCatalog],
    settings: PreflightSettings,
    *,
    recent_orders: int = 200,
) -> PreflightFacts:
    """Read what the checks need. ``read_master`` reads the ERP (the product master); its
    failure is the ERP reachability finding."""
    facts = PreflightFacts(project_key=project_key)
    try:
        facts.granted_scopes = client.token_scope() or None
    except READ_ERRORS as exc:
        facts.token_error = _error_text(exc)
    if facts.token_error is None:
        _read_commercetools(client, facts, settings, recent_orders)
    try:
        facts.master = read_master()
    except READ_ERRORS as exc:
        facts.erp_error = _error_text(exc)
    return facts


def _read_commercetools(
    client: PreflightClient, facts: PreflightFacts, settings: PreflightSettings, recent: int
) -> None:
    def read(resource: str) -> list[dict[str, Any]] | None:
        try:
            return list(client.query_all(resource))
        except READ_ERRORS as exc:
            facts.errors[resource] = _error_text(exc)
            return None

    facts.channels = read("channels")
    if (
        settings.create_missing
        and facts.channels is not None
        and settings.export_channel_key not in {c.get("key") for c in facts.channels}
    ):
        created = create_export_channel(client, settings.export_channel_key)
        facts.channels.append(created)
        facts.created.append(settings.export_channel_key)
    taxes = read("tax-categories")
    facts.tax_category_keys = None if taxes is None else {t["key"] for t in taxes if t.get("key")}
    products = read("products")
    facts.products = (
        None
        if products is None
        else [{"id": p["id"], "productType": p.get("productType")} for p in products]
    )
    facts.product_types = read("product-types")
    facts.product_types_error = facts.errors.get("product-types")
    try:
        facts.project = client.get_project()
    except READ_ERRORS as exc:
        facts.project_error = _error_text(exc)
    try:
        page = client.get("orders", {"limit": recent, "sort": "createdAt desc"})
        for order in page.get("results", []):
            for line in order.get("customLineItems") or []:
                if line.get("slug"):
                    facts.custom_line_slugs[str(line["slug"])] += 1
    except READ_ERRORS as exc:
        facts.errors["orders"] = _error_text(exc)


def create_export_channel(client: PreflightClient, key: str) -> dict[str, Any]:
    """The export channel write-back needs, with role OrderExport (``--create-missing``)."""
    return client.create(
        "channels",
        {"key": key, "roles": [EXPORT_CHANNEL_ROLE], "name": {"en": "ERP order export"}},
    )


__all__ = [
    "EXPORT_CHANNEL_KEY",
    "NEEDED_SCOPES",
    "Finding",
    "PreflightFacts",
    "PreflightSettings",
    "blockers",
    "collect",
    "create_export_channel",
    "evaluate",
    "markdown",
    "table",
]
