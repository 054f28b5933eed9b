"""File leases in DynamoDB: `lease#<key>` taken by a conditional write (none held, or held by
the same owner, or expired), listed per owner in `by_state` so that a process known to be gone
is let go of at once. An expired lease also expires as an item (TTL)."""

from __future__ import annotations

import time

from umbrellabot.storage.dynamodb.table import ConditionFailed, Table, part

LEASES = "leases"
_KEEP_S = 3600.0  # an expired lease item lingers this long before its TTL


def lease_key(key: str) -> tuple[str, str]:
    return f"lease#{part(key)}", "lease"


class Leases:
    """The lease half of the file ledger."""

    def __init__(self, table: Table) -> None:
        self._leases = table

    def claim(self, key: str, owner: str, ttl_s: float) -> bool:
        now = time.time()
        pk, sk = lease_key(key)
        try:
            self._leases.update(
                pk,
                sk,
                "SET lease_owner = :owner, held_until = :until, file_key = :key,"
                " g1pk = :leases, g1sk = :listed, expires = :expires",
                "attribute_not_exists(pk) OR lease_owner = :owner OR held_until < :now",
                owner=owner,
                until=now + ttl_s,
                key=key,
                leases=LEASES,
                listed=f"{part(owner)}#{part(key)}",
                expires=now + ttl_s + _KEEP_S,
                now=now,
            )
        except ConditionFailed:
            return False
        return True

    def release(self, key: str, owner: str) -> None:
        self._leases.delete(*lease_key(key), "lease_owner = :owner", owner=owner)

    def lease_owners(self) -> set[str]:
        now = time.time()
        return {
            str(item["lease_owner"])
            for item in self._leases.query(LEASES, index="by_state", now=now)
            if float(item["held_until"]) >= now
        }

    def release_all(self, owner: str) -> int:
        released = 0
        for item in self._leases.query(
            LEASES, index="by_state", sk_condition="begins_with(#sk, :sk)", sk=f"{part(owner)}#"
        ):
            if self._leases.delete(
                *lease_key(str(item["file_key"])), "lease_owner = :owner", owner=owner
            ):
                released += 1
        return released
