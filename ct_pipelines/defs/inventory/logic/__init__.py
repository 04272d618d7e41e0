"""Inventory: stock per location from the ERP/WMS to commercetools supply channels, delta only.

The ERP/WMS is the source of truth. For every SKU and mapped supply channel:

    erp_available(sku, channel) = sum over the channel's source locations of
                                  floor(available(sku, location) * share_percent / 100)
    buffer(sku, channel)        = max(absolute, ceil(erp_available * percent / 100))
    target(sku, channel)        = max(0, erp_available - buffer)

- ``available`` is the ERP's on hand minus reserved/allocated stock: units already promised to
  orders in the ERP (picked, allocated, held) are never offered again in commercetools.
- The target is written as commercetools ``quantityOnStock`` with ``changeQuantity`` (absolute,
  so repeating it is harmless). commercetools then derives ``availableQuantity`` by taking off
  its own cart/order reservations, which the ERP does not know about yet.
- A location with negative availability (over-allocated) reduces the channel's sum: that
  shortfall has to be met from somewhere. The target never goes below zero.
- The buffer is the most specific one configured: SKU in that channel, else SKU in every
  channel, else the channel's, else ``default_buffer``. Within one buffer the larger of the
  absolute units and the percentage (rounded up) is held back.
- A commercetools entry in a mapped channel whose SKU has no stock at the channel's locations
  is set to 0. A missing entry is created only when there is stock to publish (no entry sells
  nothing), unless ``create_zero_entries`` is set.
- A mapped channel none of whose locations appears in the ERP feed is left alone and reported:
  zeroing a whole channel because of a mapping or feed fault would take it off sale.
- Entries without a supply channel (a SKU's global entry) are never touched.

Only differences are written: one request per changed entry. A 409 ConcurrentModification
re-reads that entry and sends ``changeQuantity`` again with the fresh version, unless the fresh
entry already holds the target.

Modules: :mod:`~ct_pipelines.defs.inventory.logic.rules` (mapping rules, validated at load),
:mod:`~ct_pipelines.defs.inventory.logic.targets`, :mod:`~ct_pipelines.defs.inventory.logic.diff` (pure) and
:mod:`~ct_pipelines.defs.inventory.logic.sync` (the engine). No Dagster here.
"""

from ct_pipelines.defs.inventory.logic.diff import (
    Change,
    ChannelCounts,
    CtInventory,
    CtStock,
    InventoryPlan,
    MappingReport,
    index_entries,
    mapping_report,
    plan_changes,
)
from ct_pipelines.defs.inventory.logic.rules import (
    Buffer,
    InventoryRules,
    InventoryRulesError,
    load_rules,
    parse_rules,
    parse_rules_text,
)
from ct_pipelines.defs.inventory.logic.sync import (
    ChannelDirectory,
    InventoryOptions,
    InventoryReport,
    InventorySync,
    InventorySyncRefused,
    SyncStats,
    source_locations,
)
from ct_pipelines.defs.inventory.logic.targets import Target, TargetSet, compute_targets

__all__ = [
    "Buffer",
    "Change",
    "ChannelCounts",
    "ChannelDirectory",
    "CtInventory",
    "CtStock",
    "InventoryOptions",
    "InventoryPlan",
    "InventoryReport",
    "InventoryRules",
    "InventoryRulesError",
    "InventorySync",
    "InventorySyncRefused",
    "MappingReport",
    "SyncStats",
    "Target",
    "TargetSet",
    "compute_targets",
    "index_entries",
    "load_rules",
    "mapping_report",
    "parse_rules",
    "parse_rules_text",
    "plan_changes",
    "source_locations",
]
