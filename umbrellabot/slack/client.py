"""The Slack Web API client umbrellabot posts with, and what its errors mean.

429 waits Retry-After (slack_sdk's handler); 5xx and connection errors are retried a few times
with exponential backoff. Errors are described in one short line that never carries the token or
the payload.
"""

from __future__ import annotations

import logging
import random

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.jitter import Jitter
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

SLACK_API_URL = "https://slack.com/api/"
# refusals about the message itself: sent again as plain text, then left for a later round
CONTENT_ERRORS = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "msg_blocks_too_long",
        "too_many_attachments",
        "invalid_attachments",
        "invalid_arguments",
    }
)


def api_url(url: str | None) -> str:
    """SLACK_API_URL (with the trailing slash slack_sdk needs) or Slack's own."""
    url = url or SLACK_API_URL
    return url if url.endswith("/") else url + "/"


class _ServerErrorRetryHandler(AsyncServerErrorRetryHandler):
    """slack_sdk's server-error handler retries 500 and 503 only; any 5xx is worth a retry."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code >= 500


class _ProportionalJitter(Jitter):
    """Up to the interval again (slack_sdk's RandomJitter adds up to a whole second, whatever
    the interval)."""

    def recalculate(self, duration: float) -> float:
        return duration * (1 + random.random())


def slack_client(
    token: str,
    *,
    base_url: str | None = None,
    server_error_retries: int = 2,
    retry_backoff_s: float = 0.5,
    rate_limit_retries: int = 3,
    timeout_s: int = 30,
) -> AsyncWebClient:
    """The Web API client for alerts: 429 waits Retry-After (slack_sdk's handler), 5xx and
    connection errors are retried a few times with exponential backoff."""
    backoff = BackoffRetryIntervalCalculator(
        backoff_factor=retry_backoff_s, jitter=_ProportionalJitter()
    )
    return AsyncWebClient(
        token=token,
        base_url=api_url(base_url),
        timeout=timeout_s,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(max_retry_count=2, interval_calculator=backoff),
            AsyncRateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
            _ServerErrorRetryHandler(
                max_retry_count=server_error_retries, interval_calculator=backoff
            ),
        ],
    )


def describe_error(err: Exception) -> tuple[str, float | None]:
    """A short reason (never the token or the payload) and Retry-After, if Slack sent one."""
    if isinstance(err, SlackApiError):
        response = err.response
        status = getattr(response, "status_code", None)
        data = getattr(response, "data", None)
        error = data.get("error") if isinstance(data, dict) else None
        retry_after: float | None = None
        headers = getattr(response, "headers", None) or {}
        for name, value in dict(headers).items():
            if str(name).lower() == "retry-after":
                raw = value[0] if isinstance(value, list) and value else value
                try:
                    retry_after = float(raw)
                except (TypeError, ValueError):
                    retry_after = None
        return f"slack: HTTP {status}" + (f" {error}" if error else ""), retry_after
    return f"slack: {type(err).__name__}: {err}"[:300], None


class _TokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself and then warns that the client
    we hand it wins; that is intended, so the notice is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def bolt_logger() -> logging.Logger:
    logger = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(f, _TokenNotice) for f in logger.filters):
        logger.addFilter(_TokenNotice())
    return logger
