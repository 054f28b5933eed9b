"""The Athena table over the enriched copies: `CREATE EXTERNAL TABLE` with partition projection.
Pure: builds SQL text from what discovery found; no I/O. A bucket with more than one layout gets
one table per layout (athena_layouts.py), each built here.

The enriched copies sit at `CLOUDTRAIL_PROCESSED_PREFIX` + the original key, one JSON record per
line, gzip-compressed:

    s3://<bucket>/<processed>/<trail prefix>AWSLogs/[<o-org>/]<account>/CloudTrail/<region>/
        YYYY/MM/DD/<file>.json.gz

CloudTrail Insights records (`CloudTrail-Insight/` beside `CloudTrail/`) get a table of their own,
ATHENA_INSIGHTS_TABLE, with the same columns (`insightDetails` is JSON text) and a template that
reads `CloudTrail-Insight/` (`TableLayout.logs`).

The table is partitioned by `account`, `region` and `date` (the `YYYY/MM/DD` folder, a string that
sorts as text: query.RANGE_PREDICATE compares it with `"date" BETWEEN ? AND ?`). Partition
projection computes every partition's location from `storage.location.template`, so no partition
is ever added, no `MSCK REPAIR TABLE` and no crawler is needed; a query that restricts `"date"`
reads only those days' folders.

- `account` is an `enum` of the known accounts, not `injected`: an injected column must be pinned
  by an equality in every query, and an eventID lookup or "recent alerts over all accounts" does
  not know the account. New accounts are added by re-running setup
  (`projection_update_ddl`, an `ALTER TABLE ... SET TBLPROPERTIES`).
- `region` is an `enum` of every commercial region (plus any other one discovery saw): a
  multi-region trail starts a region's folder the first time anything happens there, and that is
  exactly the activity worth finding. A folder that does not exist costs one empty listing.
- `date` is a `date` projection, `yyyy/MM/dd`, one day at a time, from a start day to `NOW`.

Columns follow AWS's documented CloudTrail table: nested objects with a fixed shape
(`userIdentity`, `resources`, `tlsDetails`, `addendum`) are structs; the free-form ones
(`requestParameters`, `responseElements`, `additionalEventData`, `serviceEventDetails`, ...)
are STRING, which the OpenX JSON SerDe fills with the object's JSON text. The SerDe matches keys
case-insensitively (`userIdentity` -> `useridentity`) and `ignore.malformed.json` turns a bad line
into a row of NULLs instead of a failed query. `xpriority`, `xrules`, `xcountry_code` are the
enrichment's fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from umbrellabot.errors import UsageError
from umbrellabot.model import schema
from umbrellabot.model.layout import (
    AWS_LOGS,
    CLOUDTRAIL,
    INSIGHT,
    is_account,
    is_org,
    is_region,
    normalize_prefix,
)

PARTITION_COLUMNS = ("account", "region", "date")
LAYOUT_PROPERTY = "umbrellabot.layout"  # which layout a table reads (athena_layouts.py)
TEMPLATE_PROPERTY = "storage.location.template"
DATE_FORMAT = "yyyy/MM/dd"  # Java DateTimeFormatter pattern of the day folders
DEFAULT_START = date(2013, 11, 1)  # CloudTrail's first month: no log can be older
SERDE = "org.openx.data.jsonserde.JsonSerDe"

# Commercial (`aws` partition) regions; discovery adds any other one it sees.
COMMERCIAL_REGIONS = (
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
)

IDENTIFIER = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# Key characters that are safe inside a quoted DDL literal and a projection template.
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*()=+/-]*$")

# Column types: a scalar is its name, a struct a dict of fields, an array a one-item list.
ColumnType = str | dict[str, "ColumnType"] | list["ColumnType"]
_HIVE = {schema.TEXT: "STRING", schema.TEXT_MAP: "MAP<STRING, STRING>"}
COLUMNS: tuple[tuple[str, ColumnType], ...] = tuple(
    (key.lower(), schema.convert(kind, _HIVE, str.lower)) for key, kind in schema.RECORD.items()
)
_ONE_LINE = 72


def render_type(kind: ColumnType, indent: int = 2) -> str:
    """Hive type text; a struct too long for one line gets one field per line."""
    if isinstance(kind, str):
        return kind
    if isinstance(kind, list):
        return f"ARRAY<{render_type(kind[0], indent)}>"
    fields = [(name, render_type(inner, indent + 2)) for name, inner in kind.items()]
    flat = "STRUCT<" + ", ".join(f"{name}: {text}" for name, text in fields) + ">"
    if len(flat) + indent <= _ONE_LINE and "\n" not in flat:
        return flat
    pad = " " * (indent + 2)
    lines = ",\n".join(f"{pad}{name}: {text}" for name, text in fields)
    return f"STRUCT<\n{lines}\n{' ' * indent}>"


class TableLayoutError(UsageError, ValueError):
    """The Athena table cannot be built from what was found or set; str() says what to set
    instead (the CLI prints it and exits 2)."""


@dataclass(frozen=True)
class TableLayout:
    """What the table's location depends on: the trail prefix (the part of a key before
    `AWSLogs/`, '' or ending in '/'), the organization id of an organization trail, the accounts
    and the regions."""

    trail_prefix: str
    org: str | None
    accounts: tuple[str, ...]
    regions: tuple[str, ...] = COMMERCIAL_REGIONS
    logs: str = CLOUDTRAIL  # the account folder read: CloudTrail/ or CloudTrail-Insight/

    @property
    def insights(self) -> bool:
        return self.logs == INSIGHT

    @property
    def folder(self) -> str:
        """The layout as its folder: `AWSLogs/`, `AWSLogs/o-x/`, `logs/AWSLogs/`."""
        return layout_folder(self.trail_prefix, self.org)


def layout_folder(trail_prefix: str, org: str | None) -> str:
    return f"{trail_prefix}{AWS_LOGS}/{org + '/' if org else ''}"


def _check(layout: TableLayout, bucket: str, processed_prefix: str) -> None:
    if not _BUCKET.match(bucket):
        raise TableLayoutError(f"{bucket!r} is not an S3 bucket name (CLOUDTRAIL_BUCKET_NAME)")
    for name, prefix in (
        ("CLOUDTRAIL_PROCESSED_PREFIX", processed_prefix),
        ("the trail prefix", layout.trail_prefix),
    ):
        if not _PREFIX.match(prefix):
            raise TableLayoutError(
                f"{name} {prefix!r} has characters the Athena table's location cannot hold;"
                " use letters, digits and !_.*()=+-/"
            )
    if not normalize_prefix(processed_prefix):
        raise TableLayoutError(
            "CLOUDTRAIL_PROCESSED_PREFIX is empty: the table would read the original logs"
        )
    if not layout.accounts:
        raise TableLayoutError("the Athena table needs at least one account")
    bad = [a for a in layout.accounts if not is_account(a)]
    bad += [r for r in layout.regions if not is_region(r)]
    if layout.org is not None and not is_org(layout.org):
        bad.append(layout.org)
    if bad:
        raise TableLayoutError(f"{bad[0]!r} is not an account id, region or organization id")


def logs_root(bucket: str, processed_prefix: str, layout: TableLayout) -> str:
    """The table's LOCATION: the processed copy of `AWSLogs/` (or of the organization's folder)."""
    return f"s3://{bucket}/{normalize_prefix(processed_prefix)}{layout.folder}"


def location_template(bucket: str, processed_prefix: str, layout: TableLayout) -> str:
    """`storage.location.template`: where the files of one (account, region, date) are."""
    root = logs_root(bucket, processed_prefix, layout)
    return root + "${account}/" + layout.logs + "/${region}/${date}"


def projection_properties(
    bucket: str, processed_prefix: str, layout: TableLayout, start: date
) -> dict[str, str]:
    return {
        "projection.enabled": "true",
        "projection.account.type": "enum",
        "projection.account.values": ",".join(layout.accounts),
        "projection.region.type": "enum",
        "projection.region.values": ",".join(layout.regions),
        "projection.date.type": "date",
        "projection.date.format": DATE_FORMAT,
        "projection.date.range": f"{start:%Y/%m/%d},NOW",
        "projection.date.interval": "1",
        "projection.date.interval.unit": "DAYS",
        TEMPLATE_PROPERTY: location_template(bucket, processed_prefix, layout),
        LAYOUT_PROPERTY: layout.folder,
    }


def _qualified(database: str, table: str) -> str:
    for name in (database, table):
        if not IDENTIFIER.match(name):
            raise TableLayoutError(f"{name!r} is not an Athena database or table name")
    return f"`{database}`.`{table}`"


def _properties(values: dict[str, str]) -> str:
    # Values were checked above (ids, regions, safe key characters): none holds a quote.
    return ",\n".join(f"  '{key}'='{value}'" for key, value in values.items())


def create_database_ddl(database: str) -> str:
    _qualified(database, "t")
    return f"CREATE DATABASE IF NOT EXISTS `{database}`"


def create_table_ddl(
    *,
    database: str,
    table: str,
    bucket: str,
    processed_prefix: str,
    layout: TableLayout,
    start: date = DEFAULT_START,
) -> str:
    """`CREATE EXTERNAL TABLE IF NOT EXISTS` for the enriched copies, with partition projection."""
    _check(layout, bucket, processed_prefix)
    name = _qualified(database, table)
    columns = ",\n".join(f"  {column} {render_type(kind)}" for column, kind in COLUMNS)
    properties = projection_properties(bucket, processed_prefix, layout, start)
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {name} (\n{columns}\n)\n"
        "PARTITIONED BY (account STRING, region STRING, `date` STRING)\n"
        f"ROW FORMAT SERDE '{SERDE}'\n"
        "WITH SERDEPROPERTIES ('ignore.malformed.json'='true')\n"
        "STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'\n"
        "OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'\n"
        f"LOCATION '{logs_root(bucket, processed_prefix, layout)}'\n"
        f"TBLPROPERTIES (\n{_properties(properties)}\n)"
    )


def projection_update_ddl(
    *,
    database: str,
    table: str,
    bucket: str,
    processed_prefix: str,
    layout: TableLayout,
) -> str:
    """`ALTER TABLE ... SET TBLPROPERTIES`: the accounts, regions and location template of an
    existing table brought up to date (what `CREATE ... IF NOT EXISTS` leaves alone)."""
    _check(layout, bucket, processed_prefix)
    name = _qualified(database, table)
    values = {
        "projection.account.values": ",".join(layout.accounts),
        "projection.region.values": ",".join(layout.regions),
        TEMPLATE_PROPERTY: location_template(bucket, processed_prefix, layout),
        LAYOUT_PROPERTY: layout.folder,
    }
    return f"ALTER TABLE {name} SET TBLPROPERTIES (\n{_properties(values)}\n)"
