"""`ports.WorkQueue` over one SQS queue through aioboto3: long polls, deletes, invisibility
extended while a file is worked on, and sends (to the dead-letter queue). Errors become
`QueueError`, one sentence naming the queue; `fatal` when retrying cannot help (no such queue,
access denied)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from umbrellabot.storage.aws import AssumedRole, aws_session, client_config
from umbrellabot.storage.ports import QueueMessage

FATAL_CODES: Final = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidAddress",
        "InvalidSecurity",
    }
)
_GONE: Final = frozenset({"ReceiptHandleIsInvalid", "InvalidParameterValue", "MessageNotInflight"})


class QueueError(Exception):
    def __init__(self, sentence: str, *, fatal: bool = False, gone: bool = False) -> None:
        super().__init__(sentence)
        self.fatal = fatal
        self.gone = gone  # the receipt no longer holds (the message came back to another)


class SQSQueue:
    def __init__(self, client: Any, url: str, setting: str = "SQS_QUEUE_URL") -> None:
        self._client = client
        self.url = url
        self.setting = setting
        self.requests: Counter[str] = Counter()

    def location(self) -> str:
        return self.url

    async def _call(self, operation: str, **params: Any) -> Any:
        self.requests[operation] += 1
        try:
            return await getattr(self._client, operation)(QueueUrl=self.url, **params)
        except ClientError as err:
            error = err.response.get("Error", {})
            code = str(error.get("Code", "")) or type(err).__name__
            message = str(error.get("Message", "")).strip()
            raise QueueError(
                f"SQS {operation} on {self.setting} {self.url}: {code}"
                f"{': ' + message if message else ''}",
                fatal=code in FATAL_CODES,
                gone=code in _GONE,
            ) from err
        except (BotoCoreError, aiohttp.ClientError, TimeoutError) as err:
            raise QueueError(
                f"SQS {operation} on {self.setting} {self.url}: {type(err).__name__}: {err}"
            ) from err

    async def receive(self, limit: int, wait_s: int, hidden_s: int) -> list[QueueMessage]:
        answer = await self._call(
            "receive_message",
            MaxNumberOfMessages=limit,
            WaitTimeSeconds=wait_s,
            VisibilityTimeout=hidden_s,
        )
        return [
            QueueMessage(str(item["MessageId"]), str(item["ReceiptHandle"]), str(item["Body"]))
            for item in answer.get("Messages", [])
        ]

    async def delete(self, message: QueueMessage) -> None:
        await self._call("delete_message", ReceiptHandle=message.receipt)

    async def hide(self, message: QueueMessage, hidden_s: int) -> None:
        await self._call(
            "change_message_visibility", ReceiptHandle=message.receipt, VisibilityTimeout=hidden_s
        )

    async def send(self, body: str, attributes: dict[str, str]) -> None:
        await self._call(
            "send_message",
            MessageBody=body,
            MessageAttributes={
                name: {"DataType": "String", "StringValue": value[:1024] or "-"}
                for name, value in attributes.items()
            },
        )


@asynccontextmanager
async def open_queue(
    url: str,
    *,
    region: str | None,
    max_attempts: int,
    role: AssumedRole | None = None,
    setting: str = "SQS_QUEUE_URL",
) -> AsyncIterator[SQSQueue]:
    """An SQSQueue; AWS_ENDPOINT_URL and the standard credential chain apply (botocore)."""
    session = aws_session(role, region)
    async with session.client(
        "sqs", region_name=region, config=client_config(4, max_attempts)
    ) as client:
        yield SQSQueue(client, url, setting)
