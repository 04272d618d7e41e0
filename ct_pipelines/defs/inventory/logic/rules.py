"""Inventory mapping rules: which ERP/WMS locations feed which commercetools supply channel.

A rules file (JSON, or TOML with the same structure) is validated completely when it is loaded;
every problem is reported at once, each with its place in the file, for example
``channels.store-london.sources[1].share_percent: must be greater than 0 (got 0)``.

Structure (see ``default_rules.json`` next to this module for a complete example)::

    {
      "version": 1,
      "default_buffer": {"absolute": 0, "percent": 0},
      "channels": {
        "<channel key>": {
          "sources": ["<location>", {"location": "<location>", "share_percent": 50}],
          "buffer": {"absolute": 2, "percent": 5}
        }
      },
      "sku_buffers": [{"sku": "<sku>", "channel": "<channel key, optional>", "absolute": 5}],
      "shared_locations": ["<location published in full to several channels>"],
      "ignored_locations": ["<location that never feeds a channel>"],
      "ignored_channels": ["<channel key not fed from the ERP>"],
      "create_zero_entries": false
    }

- **one-to-one**: a channel with one source location;
- **many-to-one**: a channel with several sources, whose available stock is summed;
- **one-to-many**: a location listed under several channels. Its stock is split by
  ``share_percent`` (the shares of one location may not exceed 100 %), unless the location is in
  ``shared_locations``, which publishes its full stock to every channel it feeds (for two
  channels selling the same units, for example a web shop and click-and-collect).

Buffers are described in :mod:`ct_pipelines.defs.inventory.logic`.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
)

DEFAULT_RULES_RESOURCE = "default_rules.json"
RULES_VERSION = 1

# Channel keys follow the API's key pattern; locations are ERP codes, so only blanks are refused.
_CHANNEL_KEY = re.compile(r"^[A-Za-z0-9_-]{2,256}$")
_HUNDRED = Decimal(100)

Percent = Annotated[Decimal, Field(ge=0, le=100, max_digits=7, decimal_places=4)]


class InventoryRulesError(ValueError):
    """A rules file that cannot be used; ``problems`` lists every reason, one per line."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid inventory rules in {source}:\n{listed}")


class _Strict(BaseModel):
    # A misspelt key ("buffers", "share") must fail loudly, not silently mean "no buffer".
    model_config = ConfigDict(extra="forbid", frozen=True)


class Buffer(_Strict):
    """Units held back from sale: the larger of ``absolute`` and ``percent`` of available stock."""

    absolute: Annotated[StrictInt, Field(ge=0)] = 0
    percent: Percent = Decimal(0)

    @field_validator("percent", mode="before")
    @classmethod
    def _exact_percent(cls, value: Any) -> Any:
        # JSON numbers arrive as float; str() keeps what was written (12.5, not 12.4999...).
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError("must be a finite number")
            return Decimal(str(value))
        return value

    @field_validator("percent")
    @classmethod
    def _below_hundred(cls, value: Decimal) -> Decimal:
        if value >= _HUNDRED:
            raise ValueError("must be below 100 (a 100 % buffer would never sell anything)")
        return value

    def units(self, available: int) -> int:
        """Units to hold back from ``available`` (the percentage rounds up: never oversell)."""
        if available <= 0:
            return 0
        by_percent = 0
        if self.percent:
            by_percent = int((available * self.percent / _HUNDRED).to_integral_value(ROUND_CEILING))
        return max(self.absolute, by_percent)

    @property
    def is_zero(self) -> bool:
        return self.absolute == 0 and self.percent == 0


NO_BUFFER = Buffer()


class Source(_Strict):
    location: str = Field(min_length=1)
    share_percent: Percent = _HUNDRED

    @field_validator("share_percent", mode="before")
    @classmethod
    def _exact_share(cls, value: Any) -> Any:
        return Buffer._exact_percent(value)

    @field_validator("share_percent")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError(f"must be greater than 0 (got {value})")
        return value

    @field_validator("location")
    @classmethod
    def _no_blanks(cls, value: str) -> str:
        if value != value.strip():
            raise ValueError(f"location {value!r} has leading or trailing spaces")
        return value

    def share_of(self, available: int) -> int:
        """This channel's part of a location's available stock, rounded down."""
        if self.share_percent == _HUNDRED:
            return available
        return int((available * self.share_percent / _HUNDRED).to_integral_value(ROUND_FLOOR))


class ChannelRule(_Strict):
    sources: list[Source] = Field(min_length=1)
    buffer: Buffer | None = None

    @field_validator("sources", mode="before")
    @classmethod
    def _plain_locations(cls, value: Any) -> Any:
        # "WH-MAN" is shorthand for {"location": "WH-MAN"}.
        if isinstance(value, list):
            return [{"location": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("sources")
    @classmethod
    def _distinct_sources(cls, sources: list[Source]) -> list[Source]:
        seen: set[str] = set()
        for source in sources:
            if source.location in seen:
                raise ValueError(f"location {source.location!r} is listed twice")
            seen.add(source.location)
        return sources


class SkuBuffer(Buffer):
    sku: str = Field(min_length=1)
    channel: str | None = None  # None: every channel


class InventoryRulesModel(_Strict):
    version: StrictInt = RULES_VERSION
    default_buffer: Buffer = NO_BUFFER
    channels: dict[str, ChannelRule] = Field(min_length=1)
    sku_buffers: list[SkuBuffer] = Field(default_factory=list)
    shared_locations: list[str] = Field(default_factory=list)
    ignored_locations: list[str] = Field(default_factory=list)
    ignored_channels: list[str] = Field(default_factory=list)
    # Strict: "yes" or 1 must not quietly mean true in a file that decides what goes on sale.
    create_zero_entries: StrictBool = False
    description: str | None = Field(default=None, alias="$comment")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


@dataclass(frozen=True, slots=True)
class ChannelSource:
    channel: str
    source: Source


class InventoryRules:
    """Validated rules with the lookups the target computation needs."""

    def __init__(self, model: InventoryRulesModel, source: str = "<rules>") -> None:
        self.model = model
        self.source = source
        self.channels: dict[str, ChannelRule] = dict(model.channels)
        feeds: dict[str, list[ChannelSource]] = defaultdict(list)
        for key, rule in model.channels.items():
            for src in rule.sources:
                feeds[src.location].append(ChannelSource(key, src))
        #: location -> the channels it feeds, with its share in each
        self.feeds: dict[str, tuple[ChannelSource, ...]] = {k: tuple(v) for k, v in feeds.items()}
        self.ignored_locations = frozenset(model.ignored_locations)
        self.ignored_channels = frozenset(model.ignored_channels)
        self.create_zero_entries = model.create_zero_entries
        self._sku_channel: dict[tuple[str, str], Buffer] = {}
        self._sku_any: dict[str, Buffer] = {}
        for sku_rule in model.sku_buffers:
            buffer = Buffer(absolute=sku_rule.absolute, percent=sku_rule.percent)
            if sku_rule.channel is None:
                self._sku_any[sku_rule.sku] = buffer
            else:
                self._sku_channel[(sku_rule.sku, sku_rule.channel)] = buffer
        self._channel_buffer = {
            key: rule.buffer if rule.buffer is not None else model.default_buffer
            for key, rule in model.channels.items()
        }
        #: False when no buffer anywhere holds stock back (the target computation skips them)
        self.has_buffers = bool(model.sku_buffers) or any(
            not b.is_zero for b in self._channel_buffer.values()
        )

    def __repr__(self) -> str:
        return f"InventoryRules(source={self.source!r}, channels={sorted(self.channels)})"

    @property
    def channel_keys(self) -> frozenset[str]:
        return frozenset(self.channels)

    @property
    def locations(self) -> frozenset[str]:
        return frozenset(self.feeds)

    def sources_of(self, channel: str) -> tuple[str, ...]:
        return tuple(s.location for s in self.channels[channel].sources)

    def channels_fed_by(self, locations: Iterable[str]) -> set[str]:
        return {cs.channel for loc in locations for cs in self.feeds.get(loc, ())}

    def buffer_for(self, sku: str, channel: str) -> Buffer:
        """The most specific buffer wins: SKU in channel, SKU anywhere, channel, default."""
        if self._sku_channel or self._sku_any:
            specific = self._sku_channel.get((sku, channel)) or self._sku_any.get(sku)
            if specific is not None:
                return specific
        return self._channel_buffer[channel]

    @property
    def channel_buffers(self) -> Mapping[str, Buffer]:
        """The buffer of each mapped channel (its own, else ``default_buffer``)."""
        return self._channel_buffer

    @property
    def sku_buffers(self) -> Mapping[str, Buffer]:
        """SKU -> buffer in every channel (``sku_buffers`` without a channel)."""
        return self._sku_any

    @property
    def sku_channel_buffers(self) -> Mapping[tuple[str, str], Buffer]:
        """(SKU, channel key) -> buffer in that channel only."""
        return self._sku_channel

    def describe(self) -> dict[str, Any]:
        """A summary for asset metadata."""
        return {
            "source": self.source,
            "channels": {
                key: [
                    f"{s.location}"
                    + ("" if s.share_percent == _HUNDRED else f" ({s.share_percent}%)")
                    for s in rule.sources
                ]
                for key, rule in sorted(self.channels.items())
            },
            "sku_buffers": len(self.model.sku_buffers),
            "ignored_locations": sorted(self.ignored_locations),
            "ignored_channels": sorted(self.ignored_channels),
        }


# --- loading ------------------------------------------------------------------------------------


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _pydantic_problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        # Drop pydantic's internal union/validator tags from the path, keep the user's keys.
        loc = tuple(
            p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-"))
        )
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting (misspelt?)"
        elif item["type"] == "missing":
            message = "is required"
        got = item.get("input")
        if item["type"] not in ("missing", "extra_forbidden") and not isinstance(got, (dict, list)):
            message += f" (got {got!r})" if "(got" not in message else ""
        problems.append(f"{_format_loc(loc)}: {message}")
    return problems


def _cross_check(model: InventoryRulesModel) -> list[str]:
    """Rules that are each valid but wrong together."""
    problems: list[str] = []
    if model.version != RULES_VERSION:
        problems.append(
            f"version: only version {RULES_VERSION} is understood (got {model.version})"
        )
    for key in model.channels:
        if not _CHANNEL_KEY.match(key):
            problems.append(
                f"channels.{key}: a channel key is 2-256 letters, digits, '_' or '-' (got {key!r})"
            )
    for key in model.ignored_channels:
        if key in model.channels:
            problems.append(f"ignored_channels: channel {key!r} is both mapped and ignored")
    mapped_locations: dict[str, list[tuple[str, Source]]] = defaultdict(list)
    for key, rule in model.channels.items():
        for source in rule.sources:
            mapped_locations[source.location].append((key, source))
    for location in model.ignored_locations:
        if location in mapped_locations:
            channels = ", ".join(k for k, _ in mapped_locations[location])
            problems.append(
                f"ignored_locations: location {location!r} is ignored but feeds channel(s) {channels}"
            )
    shared = set(model.shared_locations)
    for location in sorted(shared):
        if location not in mapped_locations:
            problems.append(f"shared_locations: location {location!r} does not feed any channel")
    for location, uses in sorted(mapped_locations.items()):
        if len(uses) < 2 or location in shared:
            continue
        total = sum((s.share_percent for _, s in uses), Decimal(0))
        if total > _HUNDRED:
            parts = ", ".join(f"{k} {s.share_percent}%" for k, s in uses)
            problems.append(
                f"channels: location {location!r} feeds {len(uses)} channels with shares adding up "
                f"to {total}% ({parts}); split it with share_percent (at most 100% in total) or "
                f"list it in shared_locations to publish its full stock to each channel"
            )
    seen_buffers: set[tuple[str, str | None]] = set()
    for index, sku_rule in enumerate(model.sku_buffers):
        if sku_rule.channel is not None and sku_rule.channel not in model.channels:
            problems.append(
                f"sku_buffers[{index}].channel: {sku_rule.channel!r} is not a mapped channel "
                f"(mapped: {', '.join(sorted(model.channels))})"
            )
        if (sku_rule.sku, sku_rule.channel) in seen_buffers:
            where = f"channel {sku_rule.channel!r}" if sku_rule.channel else "all channels"
            problems.append(
                f"sku_buffers[{index}]: a second buffer for SKU {sku_rule.sku!r} in {where}"
            )
        seen_buffers.add((sku_rule.sku, sku_rule.channel))
    return problems


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys; a channel listed twice must not vanish silently.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(key)


def parse_rules(data: Mapping[str, Any], source: str = "<rules>") -> InventoryRules:
    """Validate already-parsed rules; raises :class:`InventoryRulesError` naming every problem."""
    if not isinstance(data, Mapping):
        raise InventoryRulesError(source, ["(top level): expected an object of settings"])
    try:
        model = InventoryRulesModel.model_validate(dict(data))
    except ValidationError as exc:
        raise InventoryRulesError(source, _pydantic_problems(exc)) from None
    problems = _cross_check(model)
    if problems:
        raise InventoryRulesError(source, problems)
    return InventoryRules(model, source)


def parse_rules_text(text: str, *, fmt: str = "json", source: str = "<rules>") -> InventoryRules:
    if not text.strip():
        raise InventoryRulesError(
            source, ["the file is empty: expected an object of settings (see default_rules.json)"]
        )
    try:
        if fmt == "toml":
            data = tomllib.loads(text)
        else:
            data = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except _DuplicateKey as exc:
        raise InventoryRulesError(
            source, [f"key {exc.key!r} appears twice in one object"]
        ) from None
    except json.JSONDecodeError as exc:
        raise InventoryRulesError(
            source, [f"not valid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"]
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise InventoryRulesError(source, [f"not valid TOML: {exc}"]) from None
    except RecursionError:
        raise InventoryRulesError(
            source, ["nested too deeply to be a rules file: expected an object of settings"]
        ) from None
    return parse_rules(data, source)


def load_rules(path: str | Path | None = None) -> InventoryRules:
    """Rules from a file (``.json`` or ``.toml``), or the packaged default when ``path`` is None."""
    if path is None:
        text = resources.files(__package__).joinpath(DEFAULT_RULES_RESOURCE).read_text("utf-8")
        return parse_rules_text(text, source=f"{__package__}/{DEFAULT_RULES_RESOURCE}")
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix not in (".json", ".toml"):
        raise InventoryRulesError(
            str(file), [f"unsupported file type {suffix or '(none)'!r}: expected .json or .toml"]
        )
    try:
        # utf-8-sig: a byte-order mark, as some Windows editors write, is not an error.
        text = file.read_text("utf-8-sig")
    except OSError as exc:
        raise InventoryRulesError(str(file), [f"cannot read the file: {exc.strerror}"]) from None
    except UnicodeDecodeError as exc:
        raise InventoryRulesError(
            str(file), [f"not UTF-8 text (byte {exc.start}): save the file as UTF-8"]
        ) from None
    fmt = "toml" if suffix == ".toml" else "json"
    return parse_rules_text(text, fmt=fmt, source=str(file))


__all__ = [
    "NO_BUFFER",
    "Buffer",
    "ChannelRule",
    "InventoryRules",
    "InventoryRulesError",
    "SkuBuffer",
    "Source",
    "load_rules",
    "parse_rules",
    "parse_rules_text",
]
