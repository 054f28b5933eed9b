"""The one place that turns `Settings` into adapters: the rules, geo-IP, the state, the object
store (S3 or a local folder), the query engine (Athena or DuckDB), the notifier (Slack or the
console) and the Slack bot. The CLI and the daemon ask here for what a command needs; nothing
below `app/` reads the settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from umbrellabot.app.delivery import ConsoleNotifier
from umbrellabot.config import Settings, SettingsError
from umbrellabot.enrich.geoip import CountryLookup, IpstackGeo, OfflineGeo
from umbrellabot.errors import UsageError
from umbrellabot.model.layout import normalize_prefix, output_key
from umbrellabot.query.lookup import EventLocator
from umbrellabot.query.queries import Engine
from umbrellabot.rules.rule import Rule, default_rules_path, load_rule_catalog, load_rules
from umbrellabot.rules.ruleset import RuleSet
from umbrellabot.storage.local import LocalStore
from umbrellabot.storage.ports import Notifier, ObjectStore, StateBackend

# The adapters that load AWS, Slack or DuckDB are imported where they are built, so that `scan`
# and `rules` start fast.
if TYPE_CHECKING:
    from umbrellabot.query.athena import AthenaEngine
    from umbrellabot.query.athena_catalog import CatalogTables
    from umbrellabot.query.detections import Detection
    from umbrellabot.query.duckdb_engine import DuckDBEngine
    from umbrellabot.slack.bot import BotConfig, SlackBot
    from umbrellabot.slack.notifier import SlackNotifier
    from umbrellabot.storage.aws import AssumedRole


class SlackSettingsError(UsageError):
    """Slack alerts are configured incompletely."""


# rules, detections, geo-IP


DEFAULT_PACK = "default"  # in RULES_PATH and --rules: the packaged default pack


def rule_paths(settings: Settings, override: Sequence[Path] | None = None) -> list[Path]:
    """RULES_PATH (or --rules), each a layer over the ones before; the word `default` is the
    packaged pack (a folder of that name: `./default`). Unset: the packaged pack alone."""
    paths = list(override or settings.rules_path) or [Path(DEFAULT_PACK)]
    return [default_rules_path() if str(path) == DEFAULT_PACK else path for path in paths]


def load_rule_list(settings: Settings, override: Sequence[Path] | None = None) -> list[Rule]:
    """Every rule (enabled or not) under the configured paths; raises rule.RuleError."""
    return load_rules(
        rule_paths(settings, override),
        settings.rule_variables(),
        sigma_skip_unsupported=settings.sigma_skip_unsupported,
    )


def load_rule_set(settings: Settings, override: Sequence[Path] | None = None) -> RuleSet:
    return RuleSet(load_rule_list(settings, override))


def detection_paths(settings: Settings) -> list[Path]:
    """DETECTIONS_PATH, else the packaged set."""
    from umbrellabot.query.detections import default_detections_path

    return list(settings.detections_path) or [default_detections_path()]


def load_configured_detections(settings: Settings) -> list[Detection]:
    return load_all_detections(settings) if settings.detections_enabled else []


def load_all_detections(settings: Settings, paths: Sequence[Path] | None = None) -> list[Detection]:
    """The SQL detections under `paths` (default DETECTIONS_PATH) and those of the Sigma
    correlation rules under RULES_PATH. Raises DetectionError, RuleError."""
    from umbrellabot.query.detections import load_detections
    from umbrellabot.query.sigma_detections import correlation_detections

    correlations = load_rule_catalog(
        rule_paths(settings),
        settings.rule_variables(),
        sigma_skip_unsupported=settings.sigma_skip_unsupported,
        quiet=True,
    ).correlations
    found = load_detections(list(paths or detection_paths(settings)))
    return found + correlation_detections(correlations)


def build_geo(settings: Settings) -> CountryLookup:
    offline = OfflineGeo()
    if settings.ipstack_access_key is None:
        return offline
    return IpstackGeo(
        settings.ipstack_access_key.get_secret_value(),
        base_url=settings.ipstack_api_url,
        max_calls=settings.ipstack_max_calls,
        timeout_s=settings.ipstack_timeout_s,
        fallback=offline,
    )


# state and the object store


def local_store(settings: Settings, *, check: bool = True) -> LocalStore:
    folder = settings.cloudtrail_local_path
    if check and not folder.is_dir():
        raise UsageError(
            f"CLOUDTRAIL_LOCAL_PATH: no such folder: {folder} (set CLOUDTRAIL_BUCKET_NAME for S3,"
            " or point CLOUDTRAIL_LOCAL_PATH at a folder of CloudTrail logs, e.g. examples/)"
        )
    return LocalStore(folder, settings.enriched_local_path)


def trail_role(settings: Settings) -> AssumedRole | None:
    if not settings.aws_role_arn:
        return None
    from umbrellabot.storage.aws import AssumedRole

    return AssumedRole(settings.aws_role_arn, settings.aws_role_external_id)


def aws_region(settings: Settings) -> str:
    """AWS_REGION, else botocore's region; UsageError (exit 2) naming what to set when none."""
    from umbrellabot.storage.aws import resolved_region

    region = resolved_region(settings.aws_region)
    if region is None:
        raise UsageError(
            "no AWS region: set AWS_REGION to the trail bucket's region (e.g. us-east-1) in .env"
            " or the environment, or give the AWS profile a region"
        )
    return region


@asynccontextmanager
async def open_store(
    settings: Settings, *, concurrency: int | None = None, check: bool = True
) -> AsyncIterator[ObjectStore]:
    """The trail's bucket (read as AWS_ROLE_ARN when set), or the local folder standing in
    for it."""
    if not settings.cloudtrail_bucket_name:
        yield local_store(settings, check=check)
        return
    from umbrellabot.storage.s3 import open_bucket

    async with open_bucket(
        settings.cloudtrail_bucket_name,
        region=aws_region(settings),
        concurrency=concurrency or settings.s3_concurrency,
        max_attempts=settings.s3_max_attempts,
        role=trail_role(settings),
    ) as bucket:
        yield bucket


@asynccontextmanager
async def open_output_store(
    settings: Settings, trail: ObjectStore, *, concurrency: int | None = None
) -> AsyncIterator[ObjectStore]:
    """Where the enriched copies go, and are read back from: the trail's own store, unless
    PROCESSED_BUCKET_NAME or AWS_ROLE_ARN (the role reads the trail; the default credentials
    write) sets another bucket or other credentials."""
    bucket = settings.processed_bucket()
    if not settings.cloudtrail_bucket_name or (
        bucket == settings.cloudtrail_bucket_name and not settings.aws_role_arn
    ):
        yield trail
        return
    assert bucket is not None
    from umbrellabot.storage.s3 import open_bucket

    setting = (
        "PROCESSED_BUCKET_NAME" if settings.processed_bucket_name else "CLOUDTRAIL_BUCKET_NAME"
    )
    async with open_bucket(
        bucket,
        region=aws_region(settings),
        concurrency=concurrency or settings.s3_concurrency,
        max_attempts=settings.s3_max_attempts,
        setting=setting,
    ) as output:
        yield output


def output_for(settings: Settings) -> Callable[[str], str]:
    """Where a log file's enriched copy goes: the processed prefix in the bucket, or the same
    key under ENRICHED_LOCAL_PATH."""
    prefix = settings.cloudtrail_processed_prefix if settings.cloudtrail_bucket_name else ""
    return partial(output_key, prefix)


# the query engine


def require_bucket(settings: Settings) -> str:
    if not settings.cloudtrail_bucket_name:
        raise UsageError(
            "CLOUDTRAIL_BUCKET_NAME is not set (the Athena table reads the enriched copies there"
            " and query results go under ATHENA_RESULTS_PREFIX)"
        )
    return settings.cloudtrail_bucket_name


def results_location(settings: Settings) -> str:
    """ATHENA_RESULTS_BUCKET (else the trail's bucket) and ATHENA_RESULTS_PREFIX."""
    bucket = settings.athena_results_bucket or require_bucket(settings)
    return f"s3://{bucket}/{normalize_prefix(settings.athena_results_prefix)}"


@asynccontextmanager
async def open_athena_parts(
    settings: Settings, table: str | None = None, **options: Any
) -> AsyncIterator[tuple[AthenaEngine, CatalogTables]]:
    """An AthenaEngine from the settings and the Glue catalog reader it takes its tables from
    (`table`: that family instead of ATHENA_TABLE's; `options`: backoff, page_size, sleep,
    on_state)."""
    from umbrellabot.query.athena import AthenaEngine, athena_client
    from umbrellabot.query.athena_catalog import CatalogTables, glue_client

    output = results_location(settings)
    region, attempts = aws_region(settings), settings.s3_max_attempts
    async with (
        athena_client(region=region, max_attempts=attempts) as client,
        glue_client(region=region, max_attempts=attempts) as glue,
    ):
        base = table or settings.athena_table
        catalog = CatalogTables(glue, database=settings.athena_database, base=base)
        engine = AthenaEngine(
            client,
            database=settings.athena_database,
            table=base,
            workgroup=settings.athena_workgroup,
            output_location=output,
            timeout_s=settings.athena_timeout_s,
            tables=catalog,
            **options,
        )
        yield engine, catalog


@asynccontextmanager
async def open_athena(settings: Settings, **options: Any) -> AsyncIterator[AthenaEngine]:
    """An AthenaEngine reading every layout's table the Glue catalog holds."""
    async with open_athena_parts(settings, **options) as (engine, _):
        yield engine


def duckdb_engine(settings: Settings) -> DuckDBEngine:
    from umbrellabot.query.duckdb_engine import DuckDBEngine

    return DuckDBEngine(settings.enriched_local_path)


@asynccontextmanager
async def open_engine(settings: Settings) -> AsyncIterator[Engine]:
    """Athena when configured (a bucket, or QUERY_ENGINE=athena), else DuckDB."""
    if settings.uses_athena():
        async with open_athena(settings) as engine:
            yield engine
    else:
        yield duckdb_engine(settings)


# Slack


def slack_notifier(
    settings: Settings,
    state: StateBackend,
    channels: Mapping[str, str] | None = None,
    rules: Sequence[Rule] = (),
    account_names: Mapping[str, str] | None = None,
    **options: Any,
) -> SlackNotifier:
    """Alerts to their routes' channels (ROUTING_PATH), the rules' own, else SLACK_CHANNEL
    (`options`: client and the notifier's clocks, for tests). Raises RoutingError."""
    from umbrellabot.slack.client import slack_client
    from umbrellabot.slack.notifier import SlackNotifier
    from umbrellabot.slack.routing import Router, load_routes

    if settings.slack_bot_token is None:
        raise SlackSettingsError("SLACK_BOT_TOKEN is not set")
    if not settings.slack_channel:
        raise SlackSettingsError("SLACK_CHANNEL is not set (alerts need it with a bot token)")
    client = options.pop("client", None) or slack_client(
        settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    router = Router(
        load_routes(settings.routing_path) if settings.routing_path else [],
        settings.slack_channel,
        rule_tags={rule.id: rule.tags for rule in rules},
        rule_channels=channels,
    )
    return SlackNotifier(
        client,
        outbox=state.outbox,
        rollups=state.rollups,
        channel=settings.slack_channel,
        router=router,
        account_names=settings.account_names if account_names is None else account_names,
        min_severity=settings.alert_min_severity,
        rollup_threshold=settings.slack_rollup_threshold,
        rollup_window_minutes=settings.slack_rollup_window_minutes,
        post_interval_s=settings.slack_post_interval_s,
        cycle_summary=settings.slack_cycle_summary,
        **options,
    )


def notifier_for(
    settings: Settings,
    state: StateBackend,
    console: Console,
    rules: Sequence[Rule] = (),
    *,
    wide: bool = False,
    account_names: Mapping[str, str] | None = None,
    **options: Any,
) -> Notifier:
    """Slack when a bot token is configured, else the console (the embedded default)."""
    if settings.slack_enabled():
        channels = {rule.id: rule.channel for rule in rules if rule.channel}
        return slack_notifier(settings, state, channels, rules, account_names, **options)
    return ConsoleNotifier(console, wide=wide)


def bot_config(settings: Settings) -> BotConfig:
    from umbrellabot.slack.bot import BotConfig
    from umbrellabot.slack.rollup import RollupShape

    if settings.slack_bot_token is None:
        raise SettingsError("SLACK_BOT_TOKEN is not set (the bot needs a xoxb- token)")
    if settings.slack_app_token is None:
        raise SettingsError("SLACK_APP_TOKEN is not set (Socket Mode needs a xapp- token)")
    return BotConfig(
        bot_token=settings.slack_bot_token.get_secret_value(),
        app_token=settings.slack_app_token.get_secret_value(),
        api_url=settings.slack_api_url,
        allowed_channels=frozenset(settings.allowed_channels),
        allowed_users=frozenset(settings.allowed_users),
        allow_external_users=settings.allow_external_users,
        allowed_muters=frozenset(settings.allowed_muters),
        allowed_usergroups=frozenset(settings.allowed_usergroups),
        allow_guests=settings.allow_guests,
        lookup_rate_per_minute=settings.lookup_rate_per_minute,
        account_names=dict(settings.account_names),
        lookup_days=settings.event_lookup_days,
        lookup_timeout_s=settings.athena_timeout_s + 30,
        rollup_shape=RollupShape(
            settings.slack_rollup_threshold, settings.slack_rollup_window_minutes
        ),
    )


def slack_bot(
    settings: Settings,
    *,
    locator: EventLocator,
    rules: Sequence[Rule],
    state: StateBackend | None = None,
    account_names: Mapping[str, str] | None = None,
    **options: Any,
) -> SlackBot:
    """The Socket Mode bot; `state` gives `status` its cycles and outbox; `account_names`
    (default ACCOUNT_NAMES) may be the process's shared, refreshed directory."""
    from dataclasses import replace

    from umbrellabot.slack.bot import SlackBot

    config = bot_config(settings)
    if account_names is not None:
        config = replace(config, account_names=account_names)
    return SlackBot(
        config,
        locator=locator,
        rules=rules,
        state=state,
        **options,
    )
