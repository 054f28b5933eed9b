"""LOG_SILENCE_HOURS: an account that delivers no log file, in any region, for that long is an
alert (`cloudtrail-delivery-silent`, once per silence, naming the last file seen), and a line in
its thread when files arrive again. Measured from the newest file's LastModified, kept per
account in the state, so a silence that began before a downtime is still seen after it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from umbrellabot.model.alerts import Alert, dedup_key
from umbrellabot.model.layout import account_region_of
from umbrellabot.model.own_alerts import delivery_resumed, delivery_silent
from umbrellabot.storage.ports import Delivery, DeliveryWatch, ObjectInfo


def newest_by_account(listed: Iterable[ObjectInfo]) -> dict[str, ObjectInfo]:
    newest: dict[str, ObjectInfo] = {}
    for item in listed:
        account, _ = account_region_of(item.key)
        if account is None or item.modified is None:
            continue
        known = newest.get(account)
        if known is None or (item.modified, item.key) > (known.modified or 0, known.key):
            newest[account] = item
    return newest


def check_silence(
    watch: DeliveryWatch,
    listed: Sequence[ObjectInfo],
    accounts: Iterable[str],
    now: float,
    hours: float,
) -> list[Alert]:
    """The alerts of this cycle's listing (the state is read and written: off the loop)."""
    known = watch.deliveries()
    newest = newest_by_account(listed)
    changed: list[Delivery] = []
    alerts: list[Alert] = []
    for account in sorted(set(accounts) | set(known)):
        before = known.get(account)
        latest = newest.get(account)
        current = before
        if (
            latest is not None
            and latest.modified is not None
            and (before is None or latest.modified > before.last_modified)
        ):
            current = Delivery(account, latest.key, latest.modified, None)
            if before is not None and before.silent_alert is not None:
                alerts.append(
                    delivery_resumed(
                        account,
                        before.silent_alert,
                        latest.key,
                        latest.modified,
                        before.last_modified,
                    )
                )
        if current is None:
            continue  # never a file seen: nothing to measure from
        if current.silent_alert is None and now - current.last_modified >= hours * 3600:
            alert = delivery_silent(account, current.last_key, current.last_modified, hours)
            alerts.append(alert)
            current = Delivery(account, current.last_key, current.last_modified, dedup_key(alert))
        if current != before:
            changed.append(current)
    watch.save_deliveries(changed)
    return alerts
