"""Settings: one typed object, read from the environment (first), an env file
(`UMBRELLABOT_ENV_FILE`, else `.env`), then the defaults below (scale-out's: config_scale.py).
Names keep the original system's (`CLOUDTRAIL_BUCKET_NAME`...). A wrong value is one line naming
the variable, its source and what was expected (`SettingsError`; the CLI exits 2)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import NoDecode, SettingsConfigDict

from umbrellabot.config_scale import ScaleOutSettings
from umbrellabot.env_check import (
    EnvFileError,
    check_env_file,
    chosen_env_file,
    describe_error,
    names_of,
    placeholder_in,
    source_of,
    warn_about_environment,
)
from umbrellabot.model.accounts import parse_account_names
from umbrellabot.model.severity import Severity

ENV_FILE_VARIABLE = "UMBRELLABOT_ENV_FILE"
DEFAULT_ENV_FILE = ".env"
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_TOKENS = {
    "slack_bot_token": ("a bot token", "xoxb-"),
    "slack_app_token": ("an app-level token", "xapp-"),
}


class SettingsError(Exception):
    """A setting that cannot be used; the message is one line for the user."""


def _split_list(value: Any) -> Any:
    """`US,GB` or `US GB` from the environment; real lists pass through."""
    if isinstance(value, str):
        return [item for item in re.split(r"[,\s]+", value.strip()) if item]
    return value


class Settings(ScaleOutSettings):
    model_config = SettingsConfigDict(
        env_file=DEFAULT_ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        validate_default=True,
        populate_by_name=True,
    )

    cloudtrail_bucket_name: str | None = Field(
        None, description="S3 bucket CloudTrail delivers to; empty: watch a local folder."
    )
    aws_role_arn: str | None = Field(
        None,
        description="A role to read the trail's bucket as (a log-archive account); unset: the"
        " default credentials read it.",
    )
    aws_role_external_id: str | None = Field(
        None, description="The external ID the role's trust policy asks for, if any."
    )
    processed_bucket_name: str | None = Field(
        None,
        description="Bucket of the enriched copies (the default credentials write it); unset:"
        " the trail's bucket.",
    )
    athena_results_bucket: str | None = Field(
        None, description="Bucket of Athena's query results; unset: the trail's bucket."
    )
    cloudtrail_initial_prefix: str = Field(
        "", description="Where CloudTrail files start in the bucket (AWSLogs/, an org id, ...)."
    )
    cloudtrail_processed_prefix: str = Field(
        "processed/", description="Prefix of the enriched copies written back to the bucket."
    )
    athena_results_prefix: str = Field(
        "athena-results/", description="Prefix for Athena query results in the bucket."
    )
    slack_channel: str | None = Field(None, description="Channel ID or name for alerts.")
    slack_bot_token: SecretStr | None = Field(
        None, description="Bot token (xoxb-...); with SLACK_APP_TOKEN: Slack alerts and the bot."
    )
    slack_app_token: SecretStr | None = Field(
        None, description="App-level token (xapp-...) for Socket Mode."
    )
    routing_path: Path | None = Field(None, description="Alert routes (YAML) to channels.")
    slack_api_url: str | None = Field(
        None, description="Slack Web API base URL override (proxies, tests)."
    )
    allowed_channels: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Channel IDs the bot answers in; empty: any."
    )
    allowed_users: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="User IDs the bot answers; empty: anyone."
    )
    allowed_muters: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="User IDs who may mute alerts; empty: bot users."
    )
    account_names: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, description="Account names: 111122223333=prod-payments,..."
    )
    account_names_from_organizations: bool = Field(
        False, description="Also name accounts from AWS Organizations ListAccounts (daily)."
    )
    allowed_usergroups: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="User group IDs whose members may use the bot; empty: any.",
    )
    allow_guests: bool = Field(False, description="Answer guests (single- and multi-channel).")
    allow_external_users: bool = Field(False, description="Answer Slack Connect people too.")
    slack_rollup_threshold: int = Field(
        5, ge=1, description="More alerts than this of one rule and principal are rolled up."
    )
    slack_rollup_window_minutes: int = Field(
        10, ge=1, description="The window, in minutes, in which alerts are rolled up."
    )
    slack_post_interval_s: float = Field(
        1.0, ge=0, description="Least time between two posts to one channel."
    )
    digest_schedule: str | None = Field(
        None, description="Cron (UTC) of the daily digest of the quiet matches; unset: off."
    )
    digest_min_severity: Severity = Field(
        Severity.LOW, description="Lowest severity the digest counts (below ALERT_MIN_SEVERITY)."
    )
    slack_cycle_summary: bool = Field(
        False, description="Post a short summary after a cycle that processed files."
    )
    rules_path: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Rule files or folders, comma-separated, each over the ones before; the word"
        " default is the packaged pack (default,./mine.yaml); empty: the packaged pack.",
    )
    sigma_skip_unsupported: bool = Field(
        False, description="Skip (with a line) Sigma rules umbrellabot cannot evaluate."
    )
    allowed_countries: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["US"],
        description="ISO-3166 alpha-2 codes API calls may come from, comma-separated.",
    )
    alert_min_severity: Severity = Field(
        Severity.HIGH, description="Lowest severity that is alerted on (info..critical)."
    )
    ipstack_access_key: SecretStr | None = Field(
        None, description="ipstack key; unset: the offline geo-IP database only."
    )
    ipstack_api_url: str = Field("http://api.ipstack.com", description="ipstack API base URL.")
    ipstack_max_calls: int = Field(
        1000, ge=0, description="Most ipstack calls per run; past it the offline database answers."
    )
    ipstack_timeout_s: float = Field(5.0, gt=0, description="Timeout of one ipstack call.")
    state_dir: Path = Field(Path("state"), description="Folder for durable state.")
    aws_region: str | None = Field(
        None, description="AWS region of the bucket; unset: the standard AWS configuration."
    )
    lookback_days: int = Field(
        2, ge=1, le=31, description="Day folders listed each cycle: 2 is yesterday and today (UTC)."
    )
    max_catchup_days: int = Field(
        14, ge=1, le=366, description="After a downtime, days listed back, at most this many."
    )
    log_silence_hours: float = Field(
        6,
        ge=0,
        le=24 * 366,
        description="An account that delivers no log file (any region) for this long is an"
        " alert, cloudtrail-delivery-silent; 0 turns it off. Not in local mode.",
    )
    max_record_bytes: int = Field(
        16 << 20,
        ge=1024,
        le=1 << 31,
        description="A record larger than this is copied unparsed, flagged"
        " umbrellabot-record-too-large and alerted (CloudTrail's own are far smaller).",
    )
    s3_concurrency: int = Field(8, ge=1, le=64, description="Files downloaded/uploaded at once.")
    s3_max_attempts: int = Field(
        8, ge=1, le=20, description="Attempts per S3 request (botocore adaptive retries)."
    )
    enrich_workers: int = Field(
        -1,
        ge=-1,
        le=64,
        description="Enrichment processes; -1: one per core (at most 4); 0: one thread.",
    )
    max_file_attempts: int = Field(
        5, ge=1, description="Attempts at a corrupt file before it is left alone and reported."
    )
    retry_base_delay_s: float = Field(
        300.0, ge=0, description="Delay before retrying a failed file; doubles each attempt."
    )
    query_engine: Literal["auto", "athena", "duckdb"] = Field(
        "auto", description="Query engine; auto: Athena with a bucket, else DuckDB."
    )
    athena_database: str = Field("default", description="Athena (Glue) database of the table.")
    athena_table: str = Field("cloudtrail_enriched", description="Athena table name.")
    athena_insights_table: str = Field("cloudtrail_insights", description="Insights' table.")
    athena_workgroup: str = Field("primary", description="Athena workgroup for queries.")
    athena_timeout_s: float = Field(
        300.0, gt=0, description="Longest an Athena query may run before it is stopped."
    )
    athena_setup_on_start: bool = Field(
        False, description="Create the Athena table (IF NOT EXISTS) when the daemon starts."
    )
    enriched_local_path: Path = Field(
        Path("enriched"), description="Local folder of enriched files (the DuckDB engine's data)."
    )
    lookup_rate_per_minute: int = Field(
        6, ge=0, description="Bot lookups per user a minute that reach the query engine; 0: any."
    )
    event_lookup_days: int = Field(
        90, ge=1, le=3660, description="Days searched for an eventID the index does not know."
    )
    detections_path: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="SQL detection files or folders, comma-separated; empty: the packaged set.",
    )
    detections_enabled: bool = Field(
        True, description="Run the scheduled SQL detections after each ingest cycle."
    )
    schedule: str | None = Field(
        None, description="Cron expression for ingest cycles (UTC); unset: every POLL_INTERVAL."
    )
    poll_interval: int = Field(300, ge=1, description="Seconds between ingest cycles.")
    cloudtrail_local_path: Path = Field(
        Path("cloudtrail"), description="Folder watched when no bucket is set (local mode)."
    )
    health_host: str = Field("0.0.0.0", description="Address of /healthz, /readyz, /metrics.")
    health_port: int = Field(8080, ge=0, le=65535, description="Port of the health server; 0: off.")
    log_format: Literal["text", "json"] = Field("text", description="text or json (one line each).")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )
    shutdown_timeout_s: float = Field(
        30.0, gt=0, le=300, description="Longest wait for running work on SIGTERM before exit."
    )
    state_retention_days: int = Field(
        90,
        ge=1,
        validation_alias=AliasChoices("state_retention_days", "index_retention_days"),
        description="Days the state keeps files, indexed events, alerts and cycles (older: the"
        " query engine); INDEX_RETENTION_DAYS is its old name.",
    )

    @field_validator("rules_path", "detections_path", mode="before")
    @classmethod
    def _split_paths(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in re.split(f"[,{os.pathsep}]", value) if item.strip()]
        return value

    @field_validator(
        "allowed_countries",
        "allowed_channels",
        "allowed_users",
        "allowed_muters",
        "allowed_usergroups",
        mode="before",
    )
    @classmethod
    def _split_lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("slack_bot_token", "slack_app_token")
    @classmethod
    def _check_token(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        kind, prefix = _TOKENS[str(info.field_name)]
        if value is not None and not value.get_secret_value().startswith(prefix):
            raise ValueError(f"expected {kind} starting with {prefix}")
        return value

    @field_validator("schedule", "digest_schedule")
    @classmethod
    def _check_schedule(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value.strip(), timezone="UTC")
        except ValueError as err:
            raise ValueError(f"expected a cron expression such as '*/10 * * * *': {err}") from None
        return value.strip()

    @field_validator("account_names", mode="before")
    @classmethod
    def _parse_names(cls, value: Any) -> Any:
        return parse_account_names(value) if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None

    @field_validator("allowed_countries")
    @classmethod
    def _check_countries(cls, value: list[str]) -> list[str]:
        codes = [item.upper() for item in value]
        if not codes:
            raise ValueError("expected at least one ISO-3166 alpha-2 code such as US")
        bad = [item for item in codes if not _COUNTRY.match(item)]
        if bad:
            raise ValueError(f"expected ISO-3166 alpha-2 codes such as US,GB; got {bad[0]!r}")
        import pycountry  # only when the setting is read: a few ms

        unknown = [code for code in codes if pycountry.countries.get(alpha_2=code) is None]
        if unknown:
            raise ValueError(
                f"{unknown[0]!r} is not an ISO-3166 country code (such as US, GB, DE, JP)"
            )
        return codes

    @field_validator("alert_min_severity", "digest_min_severity", mode="before")
    @classmethod
    def _parse_severity(cls, value: Any) -> Any:
        return Severity.parse(value) if isinstance(value, str) else value

    @field_validator("athena_database", "athena_table", "athena_insights_table", "athena_workgroup")
    @classmethod
    def _check_identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", value):
            raise ValueError("expected letters, digits, '_' or '-' only")
        return value

    @field_validator("aws_role_arn")
    @classmethod
    def _check_role(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", value.strip()):
            raise ValueError("expected a role ARN such as arn:aws:iam::111122223333:role/name")
        return value.strip()

    def processed_bucket(self) -> str | None:
        """Where the enriched copies go: PROCESSED_BUCKET_NAME, else the trail's bucket."""
        return self.processed_bucket_name or self.cloudtrail_bucket_name

    def uses_athena(self) -> bool:
        if self.query_engine == "auto":
            return bool(self.cloudtrail_bucket_name)
        return self.query_engine == "athena"

    def rule_variables(self) -> dict[str, Any]:
        """The values rules may name as `$variable`."""
        return {"allowed_countries": list(self.allowed_countries)}


def setting_names() -> frozenset[str]:
    """Every variable name a setting is read from (old aliases too), upper case."""
    return names_of(Settings, ENV_FILE_VARIABLE)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; raises SettingsError with one line naming the variable."""
    names = setting_names()
    try:
        env_file = chosen_env_file(ENV_FILE_VARIABLE, DEFAULT_ENV_FILE)
        if env_file is not None:
            check_env_file(env_file, names)
    except EnvFileError as err:
        raise SettingsError(str(err)) from None
    warn_about_environment(names)
    try:
        settings = Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as err:
        first = err.errors()[0]
        name = str(first["loc"][0]).upper() if first.get("loc") else "settings"
        value = first.get("input")
        message = describe_error(first)
        secret = "key" in name.lower() or "token" in name.lower()
        if not (secret or isinstance(value, dict) or repr(value) in message):
            message += f" (got {value!r})"
        raise SettingsError(
            f"invalid setting {name} {source_of(name, env_file)}: {message}"
        ) from None
    problem = placeholder_in(settings, lambda key: source_of(key, env_file))
    problem = problem or settings.check_scale_out()
    if problem is not None:
        raise SettingsError(problem)
    return settings
