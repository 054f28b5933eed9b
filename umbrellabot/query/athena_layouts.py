"""One Athena table per layout of the trail's bucket, and the one relation that reads them all.
Pure: names and SQL text from what discovery found; no I/O.

A layout is where a trail writes: the trail prefix (the part of a key before `AWSLogs/`) and, for
an organization trail, the organization's folder. A bucket often holds more than one: a
per-account trail's `AWSLogs/<account>/` beside the organization trail's `AWSLogs/<o-org>/`, or
Control Tower's `<o-org>/AWSLogs/<o-org>/` beside an older trail. One table has one location
template, so each layout gets a table of its own:

- a layout that has a table keeps it: a table never changes what it reads, so a per-account
  trail's `ATHENA_TABLE` stays that trail's when an organization trail starts beside it;
- the first layout without a table (in `layout_order`: organization trails before per-account
  ones, then by prefix) gets `ATHENA_TABLE` while no table has that name, so a bucket with one
  layout has exactly the table it always had;
- every other one gets `ATHENA_TABLE__<layout>`, e.g. `cloudtrail_enriched__awslogs` for
  `AWSLogs/` and `cloudtrail_enriched__o_abcd123456` for `AWSLogs/o-abcd123456/`.

Every table carries `'umbrellabot.layout'='<the layout>'` in its properties, which is how the
engine (athena_catalog.py) tells its tables from anyone else's in the database. Queries read
`{events}`, which `events_relation` turns into a UNION ALL of the tables; Athena pushes the
`"date"` predicate into each branch, so partition projection still reads only the days asked.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from umbrellabot.model.layout import AWS_LOGS, RegionFolder, locate, normalize_prefix
from umbrellabot.query.athena_ddl import (
    COLUMNS,
    COMMERCIAL_REGIONS,
    IDENTIFIER,
    LAYOUT_PROPERTY,
    PARTITION_COLUMNS,
    TEMPLATE_PROPERTY,
    TableLayout,
    TableLayoutError,
    layout_folder,
)

SEPARATOR = "__"
PATH_COLUMN = '"$path"'  # Athena's pseudo-column: the file a row came from
_MAX_NAME = 128
_NOT_NAME = re.compile(r"[^a-z0-9]+")


Location = Callable[[TableLayout], str]  # a layout's storage.location.template


@dataclass(frozen=True)
class LayoutTable:
    """One layout and the table that reads it."""

    name: str
    layout: TableLayout


def trail_prefix_of(prefix: str) -> str:
    """The part of a key prefix before `AWSLogs/` ('' or ending in '/')."""
    parts = prefix.split("/")
    if AWS_LOGS not in parts:
        raise TableLayoutError(f"{prefix!r} is not under an {AWS_LOGS}/ folder")
    return "".join(part + "/" for part in parts[: parts.index(AWS_LOGS)])


def folder_layout(folder: RegionFolder) -> str:
    """The layout a region folder belongs to, as its folder (TableLayout.folder)."""
    return layout_folder(trail_prefix_of(folder.prefix), folder.org)


def layout_order(layout: TableLayout) -> tuple[bool, str, str]:
    return (layout.org is None, layout.trail_prefix, layout.org or "")


def layouts_from_folders(
    folders: Iterable[RegionFolder], regions: Sequence[str] = COMMERCIAL_REGIONS
) -> list[TableLayout]:
    """The layouts of the region folders discovery found (of event logs, or of Insights: a
    layout reads one kind), in `layout_order`, each with its own accounts; every one covers
    every region seen anywhere (a region a trail has not written to yet costs one empty
    listing, and is exactly the activity worth finding)."""
    found = list(folders)
    accounts: dict[tuple[str, str | None, str], set[str]] = {}
    for folder in found:
        place = (trail_prefix_of(folder.prefix), folder.org, folder.logs)
        accounts.setdefault(place, set()).add(folder.account)
    all_regions = tuple(sorted(set(regions) | {folder.region for folder in found}))
    layouts = [
        TableLayout(prefix, org, tuple(sorted(names)), all_regions, logs)
        for (prefix, org, logs), names in accounts.items()
    ]
    return sorted(layouts, key=layout_order)


def layout_from_prefix(
    initial_prefix: str, regions: Sequence[str] = COMMERCIAL_REGIONS
) -> TableLayout | None:
    """The layout `CLOUDTRAIL_INITIAL_PREFIX` names when it reaches an account (for a bucket
    without logs yet); None when it does not name one. Raises layout.LayoutError for a prefix
    that cannot be a CloudTrail location."""
    position = locate(initial_prefix)
    if position.account is None:
        return None
    trail_prefix = trail_prefix_of(normalize_prefix(initial_prefix))
    return TableLayout(trail_prefix, position.org, (position.account,), tuple(sorted(regions)))


def offline_layout(
    initial_prefix: str,
    accounts: Sequence[str],
    org: str | None = None,
    regions: Sequence[str] = COMMERCIAL_REGIONS,
) -> TableLayout:
    """The layout `athena ddl --account ID [--org ID]` describes without looking at the bucket:
    the trail prefix (and organization) from CLOUDTRAIL_INITIAL_PREFIX, which may stop above
    `AWSLogs/` (a custom prefix) or reach into it. Raises layout.LayoutError for a prefix that
    cannot be a CloudTrail location, TableLayoutError for an org that contradicts it."""
    prefix = normalize_prefix(initial_prefix)
    position = locate(prefix)
    trail_prefix = trail_prefix_of(prefix) if position.level != "above" else prefix
    if org is not None and position.org is not None and org != position.org:
        raise TableLayoutError(
            f"--org {org} contradicts CLOUDTRAIL_INITIAL_PREFIX, which names {position.org}"
        )
    names = sorted({*accounts, *([position.account] if position.account else [])})
    return TableLayout(trail_prefix, org or position.org, tuple(names), tuple(sorted(regions)))


def _suffix(layout: TableLayout) -> str:
    text = (layout.trail_prefix + (layout.org or "")).lower() or AWS_LOGS.lower()
    return _NOT_NAME.sub("_", text).strip("_") or "layout"


def _hashed(base: str, suffix: str, layout: TableLayout) -> str:
    """`base__suffix_<hash of the layout>`, short enough for Athena."""
    digest = hashlib.sha256(layout.folder.encode()).hexdigest()[:8]
    room = _MAX_NAME - len(base) - len(SEPARATOR) - len(digest) - 1
    kept = suffix[: max(room, 0)].rstrip("_")
    return f"{base}{SEPARATOR}{kept + '_' if kept else ''}{digest}"


def _owner(
    layout: TableLayout,
    existing: Mapping[str, Mapping[str, str]],
    location: Location | None,
) -> str | None:
    """The existing table that reads this layout: by its layout property, or (a table made
    before tables carried one) by its location template."""
    for name, properties in sorted(existing.items()):
        if LAYOUT_PROPERTY in properties:
            if properties[LAYOUT_PROPERTY] == layout.folder:
                return name
        elif location is not None and properties.get(TEMPLATE_PROPERTY) == location(layout):
            return name
    return None


def layout_tables(
    base: str,
    layouts: Sequence[TableLayout],
    existing: Mapping[str, Mapping[str, str]] | None = None,
    location: Location | None = None,
) -> list[LayoutTable]:
    """Each layout's table, in `layout_order`. A layout that has a table (in `existing`, name ->
    table properties, from the catalog) keeps it, so no table ever changes what it reads; the
    first layout without one gets `base` while no table has that name, the others
    `base__<layout>` (with a short hash when that name is taken or two layouts share it).
    `location` gives a layout's location template, to recognise tables made without the
    layout property."""
    if not IDENTIFIER.match(base):
        raise TableLayoutError(f"{base!r} is not an Athena database or table name")
    existing = existing or {}
    ordered = sorted(layouts, key=layout_order)
    named: dict[TableLayout, str] = {}
    for layout in ordered:
        owner = _owner(layout, existing, location)
        if owner is not None and owner not in named.values():
            named[layout] = owner
    taken = set(existing) | set(named.values())
    fresh = [layout for layout in ordered if layout not in named]
    suffixes = [_suffix(layout) for layout in fresh]
    for layout, suffix in zip(fresh, suffixes, strict=True):
        if base not in taken:
            name = base
        else:
            name = f"{base}{SEPARATOR}{suffix}"
            if name in taken or suffixes.count(suffix) > 1 or len(name) > _MAX_NAME:
                name = _hashed(base, suffix, layout)
        named[layout] = name
        taken.add(name)
    return [LayoutTable(named[layout], layout) for layout in ordered]


def is_family_name(base: str, name: str) -> bool:
    """Whether a table name is one `layout_tables` could give."""
    return name == base or (
        name.startswith(base + SEPARATOR) and IDENTIFIER.match(name) is not None
    )


def events_relation(database: str, tables: Sequence[str]) -> str:
    """What stands for `{events}`: the one table, or a UNION ALL of them with the same columns
    (named, so a table made by another version cannot shift them) and `"$path"`."""
    if not tables:
        raise TableLayoutError("no Athena table to read")
    names = [f'"{database}"."{table}"' for table in tables]
    if len(names) == 1:
        return names[0]
    columns = ", ".join(
        [f'"{column}"' for column, _ in COLUMNS]
        + [f'"{column}"' for column in PARTITION_COLUMNS]
        + [PATH_COLUMN]
    )
    branches = " UNION ALL ".join(f"SELECT {columns} FROM {name}" for name in names)
    return f"({branches})"
