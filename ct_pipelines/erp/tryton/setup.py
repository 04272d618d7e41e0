"""A ready Tryton shop database: ``ct-pipelines tryton setup`` and ``ct-pipelines tryton serve``.

``write_config`` puts a trytond.conf in a folder of the caller's choosing (never in the repo);
``create_database`` activates the modules (``trytond-admin --all``, about a minute or two) and
``configure_shop`` fills the shop with proteus, in process: company (GBP), fiscal years (last
year and this) with periods, the English minimal chart plus the finance flow's account codes,
UK VAT 20/5/0 %, one accounting category per VAT code, warehouses MAN, MK and LDN-STORE, the
journal SHOP, a parcel package type, carriers, the sandbox ERP's items (goods by SKU, the
service items) and its opening stock.

On PostgreSQL a finished database can be a template: ``clone_database`` copies it in seconds
(``CREATE DATABASE new TEMPLATE tpl``), which the tests use to set up once per session.
"""

from __future__ import annotations

import configparser
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from ct_pipelines.erp.tryton.master_data import description_text

MODULES = ("sale", "stock_package_shipping")
WAREHOUSES = {
    "MAN": "Manchester DC",
    "MK": "Milton Keynes DC",
    "LDN-STORE": "London Covent Garden store",
}
TAXES = {
    "S": ("UK VAT 20%", Decimal("0.20")),
    "R": ("UK VAT 5%", Decimal("0.05")),
    "Z": ("UK VAT 0%", Decimal("0")),
}
# The finance flow's posting accounts (defs/finance/logic/posting.py defaults) by kind.
FINANCE_ACCOUNTS: dict[str, tuple[str, str]] = {
    "1210": ("PSP receivable", "asset"),
    "1250": ("Payment clearing", "asset"),
    "2200": ("VAT output 20%", "liability"),
    "2205": ("VAT output 5%", "liability"),
    "2210": ("VAT output 0%", "liability"),
    "2290": ("VAT output other", "liability"),
    "4000": ("Sales standard rated", "revenue"),
    "4010": ("Sales reduced rated", "revenue"),
    "4020": ("Sales zero rated", "revenue"),
    "4090": ("Sales other", "revenue"),
    "4100": ("Carriage", "revenue"),
    "4900": ("Refunds", "revenue"),
    "4910": ("Chargebacks", "expense"),
    "7990": ("Rounding", "expense"),
}
# Per VAT rate, a fixed tax of one penny up and one down: a sale line of ROUNDING_ITEM with no
# net and N pennies of one of them makes Tryton's VAT equal what commercetools charged (Tryton
# computes VAT on the net, commercetools split it out of VAT-inclusive prices; see adapter.py).
ROUNDING_ITEM = "VAT-ROUNDING"
ROUNDING_TAXES = {
    (code, sign): (f"{name} rounding {'+' if sign > 0 else '-'}1p", Decimal("0.01") * sign)
    for code, (name, rate) in TAXES.items()
    if rate
    for sign in (1, -1)
}
SERVICE_ITEMS = {
    "SHIPPING": ("Carriage", "S"),
    "CUSTOM": ("Sundry charge", "S"),
    "DISCOUNT": ("Discount", "S"),
    "GIFT-WRAP": ("Gift wrapping", "S"),
    "ENGRAVING": ("Personal engraving", "S"),
    ROUNDING_ITEM: ("VAT rounding (VAT-inclusive prices)", "S"),
}
ADMIN_USER = "admin"
# Records per create/do call: SQLite's parser overflows on the validation query of a few hundred.
CHUNK = 50


@dataclass(frozen=True)
class ShopItem:
    sku: str
    name: str
    price: Decimal  # VAT inclusive, GBP
    tax_code: str
    active: bool = True
    description: str | None = None
    # product_key, colour, size, ... and the prices in other currencies (ErpPrice fields):
    # kept in the variant's description (see master_data).
    attributes: dict[str, Any] = field(default_factory=dict)
    other_prices: list[dict[str, Any]] = field(default_factory=list)


def write_config(directory: Path, database_uri: str, port: int) -> Path:
    """trytond.conf in ``directory`` (data path inside it), listening on 127.0.0.1:port."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "files").mkdir(exist_ok=True)
    config = directory / "trytond.conf"
    config.write_text(
        "[database]\n"
        f"uri = {database_uri}\n"
        f"path = {directory / 'files'}\n"
        "[web]\n"
        f"listen = 127.0.0.1:{port}\n"
        "[session]\n"
        "timeout = 86400\n"
        "max_attempt = 100\n"
        "[request]\n"
        "max_size_authenticated = 209715200\n"
    )
    return config


def _bin(name: str) -> str:
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else name


def _psql(admin_url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(statement)


def create_database(
    config: Path, database: str, password: str, *, postgres_admin_url: str | None = None
) -> None:
    """A new database with the shop's modules activated and the admin user's password set."""
    if postgres_admin_url:
        _psql(postgres_admin_url, f'DROP DATABASE IF EXISTS "{database}"')
        _psql(postgres_admin_url, f"CREATE DATABASE \"{database}\" ENCODING 'UTF8'")
    else:
        parser = configparser.ConfigParser()
        parser.read(config)
        if parser.get("database", "uri", fallback="").startswith("sqlite"):
            # trytond opens an SQLite database only if its file exists: an empty one is new.
            path = Path(parser.get("database", "path")) / f"{database}.sqlite"
            path.unlink(missing_ok=True)
            path.touch()
    passfile = config.with_name("admin.pass")
    passfile.write_text(password)
    env = {**os.environ, "TRYTONPASSFILE": str(passfile)}
    subprocess.run(
        [
            _bin("trytond-admin"),
            "-c",
            str(config),
            "-d",
            database,
            "--all",
            "--email",
            "admin@example.invalid",
            "--activate-dependencies",
            "-u",
            *MODULES,
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    passfile.unlink()


def clone_database(postgres_admin_url: str, template: str, database: str) -> None:
    _psql(postgres_admin_url, f'DROP DATABASE IF EXISTS "{database}"')
    _psql(postgres_admin_url, f'CREATE DATABASE "{database}" TEMPLATE "{template}"')


def write_shop(path: Path, items: Iterable[ShopItem], stock: Mapping[tuple[str, str], int]) -> Path:
    """The shop's items and stock per (sku, location) as JSON, for the setup process."""
    path.write_text(
        json.dumps(
            {
                "items": [
                    {
                        "sku": item.sku,
                        "name": item.name,
                        "price": str(item.price),
                        "tax_code": item.tax_code,
                        "active": item.active,
                        "description": item.description,
                        "attributes": item.attributes,
                        "other_prices": item.other_prices,
                    }
                    for item in items
                ],
                "stock": [[sku, location, quantity] for (sku, location), quantity in stock.items()],
            }
        )
    )
    return path


def read_shop(path: Path) -> tuple[list[ShopItem], dict[tuple[str, str], int]]:
    data = json.loads(path.read_text())
    items = [
        ShopItem(
            sku=row["sku"],
            name=row["name"],
            price=Decimal(row["price"]),
            tax_code=row["tax_code"],
            active=bool(row["active"]),
            description=row.get("description"),
            attributes=dict(row.get("attributes") or {}),
            other_prices=list(row.get("other_prices") or []),
        )
        for row in data["items"]
    ]
    stock = {(sku, location): int(quantity) for sku, location, quantity in data["stock"]}
    return items, stock


def configure_shop(
    config: Path,
    database: str,
    items: Iterable[ShopItem],
    stock: Mapping[tuple[str, str], int],
    *,
    today: dt.date | None = None,
) -> dict[str, int]:
    """Fill an activated database with the shop (in process, through proteus)."""
    from proteus import Model, Wizard
    from proteus import config as proteus_config

    cfg = proteus_config.set_trytond(database=database, config_file=str(config))
    today = today or dt.date.today()

    Currency = Model.get("currency.currency")
    gbp = Currency(name="Pound Sterling", code="GBP", symbol="£", rounding=Decimal("0.01"))
    gbp.digits = 2
    gbp.save()
    eur = Currency(name="Euro", code="EUR", symbol="€", rounding=Decimal("0.01"))
    eur.digits = 2
    eur.save()
    Country = Model.get("country.country")
    Country(name="United Kingdom", code="GB").save()
    Country(name="Ireland", code="IE").save()

    Party = Model.get("party.party")
    company_party = Party(name="CT Pipelines Demo Shop Ltd")
    company_party.save()
    company_config = Wizard("company.company.config")
    company_config.execute("company")
    company_config.form.party = company_party
    company_config.form.currency = gbp
    company_config.execute("add")
    User = Model.get("res.user")
    cfg._context = User.get_preferences(True, {})
    Company = Model.get("company.company")
    (company,) = Company.find()

    # Fiscal years of last year and this one with monthly periods, so days shortly before a
    # new year can still be posted.
    FiscalYear = Model.get("account.fiscalyear")
    Sequence = Model.get("ir.sequence.strict")
    SequenceType = Model.get("ir.sequence.type")
    (move_type,) = SequenceType.find([("name", "=", "Account Move")], limit=1)
    # account_invoice's invoice and credit note sequences (its own helper does exactly that).
    from trytond.modules.account_invoice.tests.tools import set_fiscalyear_invoice_sequences

    for year in (today.year - 1, today.year):
        sequence = Sequence(name=str(year), sequence_type=move_type, company=company)
        sequence.save()
        fiscalyear = FiscalYear(
            name=str(year),
            start_date=dt.date(year, 1, 1),
            end_date=dt.date(year, 12, 31),
            company=company,
            move_sequence=sequence,
        )
        fiscalyear = set_fiscalyear_invoice_sequences(fiscalyear)
        fiscalyear.save()
        fiscalyear.click("create_period")

    # The English minimal chart, then the finance flow's own account codes beside it.
    AccountTemplate = Model.get("account.account.template")
    ModelData = Model.get("ir.model.data")
    template = AccountTemplate(ModelData.get_id("account.account_template_root_en", cfg.context))
    chart = Wizard("account.create_chart")
    chart.execute("account")
    chart.form.account_template = template
    chart.form.company = company
    chart.execute("create_account")
    Account = Model.get("account.account")

    def one(kind: str) -> Any:
        return Account.find([(f"type.{kind}", "=", True), ("closed", "!=", True)], limit=1)[0]

    receivable, payable, revenue, expense = (
        one("receivable"),
        one("payable"),
        one("revenue"),
        one("expense"),
    )
    chart.form.account_receivable = receivable
    chart.form.account_payable = payable
    chart.form.category_account_revenue = revenue
    chart.form.category_account_expense = expense
    chart.execute("create_properties")
    AccountType = Model.get("account.account.type")
    asset_type = AccountType.find([("statement", "=", "balance"), ("assets", "=", True)], limit=1)[
        0
    ]
    liability_type = AccountType.find(
        [("statement", "=", "balance"), ("assets", "=", False)], limit=1
    )[0]
    types = {
        "asset": asset_type,
        "liability": liability_type,
        "revenue": revenue.type,
        "expense": expense.type,
    }
    root = Account.find([("parent", "=", None)], limit=1)[0]
    coded: dict[str, Any] = {}
    for code, (name, kind) in FINANCE_ACCOUNTS.items():
        account = Account(name=name, code=code, parent=root, type=types[kind])
        account.save()
        coded[code] = account

    Tax = Model.get("account.tax")
    taxes: dict[str, Any] = {}
    for code, (name, rate) in TAXES.items():
        account = coded[{"S": "2200", "R": "2205", "Z": "2210"}[code]]
        tax = Tax(
            name=name,
            description=f"{name} ({code})",
            type="percentage",
            rate=rate,
            invoice_account=account,
            credit_note_account=account,
        )
        tax.save()
        taxes[code] = tax
    for (code, _sign), (name, amount) in ROUNDING_TAXES.items():
        account = coded[{"S": "2200", "R": "2205"}[code]]
        Tax(
            name=name,
            description=f"{name} ({code})",
            type="fixed",
            amount=amount,
            invoice_account=account,
            credit_note_account=account,
        ).save()
    Category = Model.get("product.category")
    categories: dict[str, Any] = {}
    for code, tax in taxes.items():
        category = Category(name=f"VAT {code}", accounting=True)
        category.account_revenue = coded[{"S": "4000", "R": "4010", "Z": "4020"}[code]]
        category.account_expense = expense
        category.customer_taxes.append(Tax(tax.id))
        category.save()
        categories[code] = category

    Journal = Model.get("account.journal")
    Journal(name="Shop postings", code="SHOP", type="general").save()

    # Warehouses: the default one becomes MAN, the others get their own locations.
    Location = Model.get("stock.location")
    (default_wh,) = Location.find([("type", "=", "warehouse")])
    default_wh.code, default_wh.name = "MAN", WAREHOUSES["MAN"]
    default_wh.save()
    storage_of = {"MAN": default_wh.storage_location.id}
    for code, name in WAREHOUSES.items():
        if code == "MAN":
            continue
        children = {}
        for kind in ("input", "output", "storage"):
            child = Location(name=f"{code} {kind}", type="storage")
            child.save()
            children[kind] = child
        warehouse = Location(
            name=name,
            code=code,
            type="warehouse",
            input_location=children["input"],
            output_location=children["output"],
            storage_location=children["storage"],
        )
        warehouse.save()
        for child in children.values():
            child.parent = warehouse
            child.save()
        storage_of[code] = children["storage"].id

    Uom = Model.get("product.uom")
    (unit,) = Uom.find([("name", "=", "Unit")])
    Template = Model.get("product.template")
    product_ids: dict[str, int] = {}
    values = []
    all_items = list(items) + [
        ShopItem(sku=code, name=name, price=Decimal(0), tax_code=tax)
        for code, (name, tax) in SERVICE_ITEMS.items()
    ]
    for item in all_items:
        service = item.sku in SERVICE_ITEMS
        values.append(
            {
                "name": item.name,
                "type": "service" if service else "goods",
                "list_price": item.price,
                "default_uom": unit.id,
                "salable": True,
                "sale_uom": unit.id,
                "account_category": categories.get(item.tax_code, categories["S"]).id,
                "products": [
                    [
                        "create",
                        [
                            {
                                "suffix_code": item.sku,
                                "description": description_text(
                                    item.description, item.attributes, item.other_prices
                                ),
                            }
                        ],
                    ]
                ],
            }
        )
    for start in range(0, len(values), CHUNK):
        Template._proxy.create(values[start : start + CHUNK], cfg.context)
    Product = Model.get("product.product")
    for row in Product._proxy.search_read(
        [("code", "!=", None)], 0, None, None, ["code"], {**cfg.context, "active_test": False}
    ):
        product_ids[row["code"]] = row["id"]
    # Blocked items: created active (the code is read-only on inactive products), then closed.
    blocked = [product_ids[item.sku] for item in all_items if not item.active]
    if blocked:
        Product._proxy.write(blocked, {"active": False}, cfg.context)

    # Opening stock: done moves from the lost-and-found location, dated yesterday.
    (lost_found,) = Location.find([("type", "=", "lost_found")], limit=1)
    Move = Model.get("stock.move")
    moves = [
        {
            "product": product_ids[sku],
            "unit": unit.id,
            "quantity": float(quantity),
            "from_location": lost_found.id,
            "to_location": storage_of[location],
            "company": company.id,
            "effective_date": today - dt.timedelta(days=1),
        }
        for (sku, location), quantity in sorted(stock.items())
        if sku in product_ids and location in storage_of
    ]
    for start in range(0, len(moves), CHUNK):
        ids = Move._proxy.create(moves[start : start + CHUNK], cfg.context)
        Move._proxy.do(ids, cfg.context)

    PackageType = Model.get("stock.package.type")
    PackageType(name="Parcel").save()
    Carrier = Model.get("carrier")
    for name in ("Royal Mail", "DPD", "Evri"):
        party = Party(name=name)
        party.save()
        Carrier(party=party, carrier_product=Product(product_ids["SHIPPING"])).save()
    return {"items": len(all_items), "stock_moves": len(moves)}


def setup_shop(
    directory: Path,
    database: str,
    password: str,
    *,
    database_uri: str,
    port: int,
    items: Iterable[ShopItem],
    stock: Mapping[tuple[str, str], int],
    postgres_admin_url: str | None = None,
) -> dict[str, Any]:
    """Config, database, modules and shop data, in a fresh process for proteus' own pool."""
    config = write_config(directory, database_uri, port)
    create_database(config, database, password, postgres_admin_url=postgres_admin_url)
    shop = write_shop(directory / "shop.json", items, stock)
    result = subprocess.run(
        [sys.executable, "-m", "ct_pipelines.erp.tryton.setup", str(config), database, str(shop)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"setting up the Tryton shop {database} failed ({result.returncode}): "
            + "\n".join(result.stderr.strip().splitlines()[-15:])
        )
    return {"config": str(config), "database": database, "output": result.stdout.strip()}


def serve(config: Path, database: str, log: IO[bytes] | None = None) -> subprocess.Popen[bytes]:
    """trytond on the config's 127.0.0.1 port with the database loaded, as a child process
    (its output to ``log`` if given)."""
    return subprocess.Popen(
        [_bin("trytond"), "-c", str(config), "-d", database],
        stdout=log,
        stderr=subprocess.STDOUT if log is not None else None,
    )


def wait_until_serving(url: str, database: str, process: subprocess.Popen[bytes]) -> None:
    """Until trytond answers on ``url`` (RuntimeError if it exits or takes over two minutes)."""
    import time

    import httpx

    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.post(f"{url}/{database}/rpc/", json={"id": 0, "method": "x", "params": []})
            return
        except httpx.TransportError:
            if process.poll() is not None:
                raise RuntimeError(f"trytond exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError("trytond did not answer within two minutes") from None
            time.sleep(0.2)


def _main(argv: list[str]) -> int:
    config, database, shop = Path(argv[0]), argv[1], Path(argv[2])
    items, stock = read_shop(shop)
    counts = configure_shop(config, database, items, stock)
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
