"""config/iam-policy.json allows every AWS API the code calls, and nothing as broad as the
original AmazonS3FullAccess + AmazonAthenaFullAccess."""

from __future__ import annotations

import fnmatch
import json
import re
from typing import Any

from conftest import REPO_ROOT

ACCOUNT, REGION, BUCKET = "123456789012", "us-east-1", "my-trail-bucket"
PLACEHOLDERS = {
    "CLOUDTRAIL_BUCKET_NAME": BUCKET,
    "ACCOUNT_ID": ACCOUNT,
    "REGION": REGION,
    "ATHENA_WORKGROUP": "primary",
    "ATHENA_DATABASE": "default",
    "ATHENA_TABLE": "cloudtrail_enriched",
    "ATHENA_INSIGHTS_TABLE": "cloudtrail_insights",
    "TRAIL_PREFIX": "AWSLogs/",
    "KMS_KEY_ARN": "arn:aws:kms:us-east-1:999988887777:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "SQS_QUEUE_NAME": "cloudtrail-files",
    "SQS_DEAD_LETTER_QUEUE_NAME": "cloudtrail-files-dead",
    "DYNAMODB_TABLE": "umbrellabot-state",
}
KEY = PLACEHOLDERS["KMS_KEY_ARN"]
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
LOG = f"{BUCKET_ARN}/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/29/x.json.gz"
PROCESSED = f"{BUCKET_ARN}/processed/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/29/x.json.gz"
RESULTS = f"{BUCKET_ARN}/athena-results/0f1e2d3c.csv"
WORKGROUP = f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/primary"
CATALOG = f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog"
DATABASE = f"arn:aws:glue:{REGION}:{ACCOUNT}:database/default"
TABLE = f"arn:aws:glue:{REGION}:{ACCOUNT}:table/default/cloudtrail_enriched"
# Another layout's table (query/athena_layouts.py)
LAYOUT_TABLE = f"arn:aws:glue:{REGION}:{ACCOUNT}:table/default/cloudtrail_enriched__awslogs"
INSIGHTS_TABLE = f"arn:aws:glue:{REGION}:{ACCOUNT}:table/default/cloudtrail_insights"
INSIGHT_LOG = f"{BUCKET_ARN}/AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/11/29/i.json.gz"
INSIGHT_COPY = INSIGHT_LOG.replace("/AWSLogs/", "/processed/AWSLogs/")
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:cloudtrail-files"  # INGEST_MODE=sqs
DEAD_LETTERS = f"arn:aws:sqs:{REGION}:{ACCOUNT}:cloudtrail-files-dead"
STATE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/umbrellabot-state"  # STATE_BACKEND=dynamodb
STATE_INDEX = f"{STATE}/index/by_state"
# Athena reads the table and writes results with the caller's permissions.
ATHENA_READS = [
    ("glue:GetDatabase", DATABASE),
    ("glue:GetTable", TABLE),
    ("glue:GetPartitions", TABLE),
    ("glue:GetTable", LAYOUT_TABLE),
    ("glue:GetPartitions", LAYOUT_TABLE),
    ("glue:GetTable", CATALOG),
    ("s3:ListBucket", BUCKET_ARN),
    ("s3:GetBucketLocation", BUCKET_ARN),
    ("s3:GetObject", PROCESSED),
    ("s3:PutObject", RESULTS),
    ("s3:GetObject", RESULTS),
]

# What each API operation the code calls needs: (action, resource) pairs.
NEEDS: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("s3", "list_objects_v2"): [("s3:ListBucket", BUCKET_ARN)],
    ("s3", "get_object"): [
        ("s3:GetObject", LOG),
        ("s3:GetObject", INSIGHT_LOG),
        ("s3:GetObject", PROCESSED),
        ("kms:Decrypt", KEY),  # an SSE-KMS trail (Control Tower's always)
    ],
    ("s3", "put_object"): [
        ("s3:PutObject", PROCESSED),
        ("s3:PutObject", INSIGHT_COPY),
        ("kms:GenerateDataKey", KEY),
    ],
    ("athena", "start_query_execution"): [
        ("athena:StartQueryExecution", WORKGROUP),
        *ATHENA_READS,
        ("glue:CreateTable", DATABASE),
        ("glue:CreateTable", LAYOUT_TABLE),
        ("glue:CreateDatabase", CATALOG),
        ("glue:UpdateTable", TABLE),
        ("glue:UpdateTable", LAYOUT_TABLE),
        ("glue:CreateTable", INSIGHTS_TABLE),  # ATHENA_INSIGHTS_TABLE
        ("glue:UpdateTable", INSIGHTS_TABLE),
        ("glue:GetTable", INSIGHTS_TABLE),
        ("glue:GetPartitions", INSIGHTS_TABLE),
    ],
    ("athena", "get_query_execution"): [("athena:GetQueryExecution", WORKGROUP)],
    ("athena", "get_query_results"): [
        ("athena:GetQueryResults", WORKGROUP),
        ("s3:GetObject", RESULTS),
    ],
    ("athena", "stop_query_execution"): [("athena:StopQueryExecution", WORKGROUP)],
    # Which layouts' tables exist (query/athena_catalog.py)
    ("glue", "get_tables"): [
        ("glue:GetTables", CATALOG),
        ("glue:GetTables", DATABASE),
        ("glue:GetTables", TABLE),
        ("glue:GetTables", LAYOUT_TABLE),
        ("glue:GetTables", INSIGHTS_TABLE),
    ],
    # ACCOUNT_NAMES_FROM_ORGANIZATIONS (storage/organizations.py); ListAccounts has no
    # resource-level permissions, so its statement's Resource is "*"
    ("organizations", "list_accounts"): [("organizations:ListAccounts", "*")],
    # INGEST_MODE=sqs (storage/sqs.py): the queue, and its dead letters; `retry` announces again
    ("sqs", "receive_message"): [("sqs:ReceiveMessage", QUEUE)],
    ("sqs", "delete_message"): [("sqs:DeleteMessage", QUEUE)],
    ("sqs", "change_message_visibility"): [("sqs:ChangeMessageVisibility", QUEUE)],
    ("sqs", "send_message"): [("sqs:SendMessage", DEAD_LETTERS), ("sqs:SendMessage", QUEUE)],
    # STATE_BACKEND=dynamodb (storage/dynamodb/): a transaction needs each item's own action
    ("dynamodb", "get_item"): [("dynamodb:GetItem", STATE)],
    ("dynamodb", "batch_get_item"): [("dynamodb:BatchGetItem", STATE)],
    ("dynamodb", "put_item"): [("dynamodb:PutItem", STATE)],
    ("dynamodb", "update_item"): [("dynamodb:UpdateItem", STATE)],
    ("dynamodb", "delete_item"): [("dynamodb:DeleteItem", STATE)],
    ("dynamodb", "batch_write_item"): [("dynamodb:BatchWriteItem", STATE)],
    ("dynamodb", "transact_write_items"): [
        ("dynamodb:PutItem", STATE),
        ("dynamodb:UpdateItem", STATE),
    ],
    ("dynamodb", "query"): [("dynamodb:Query", STATE), ("dynamodb:Query", STATE_INDEX)],
    ("dynamodb", "describe_table"): [("dynamodb:DescribeTable", STATE)],
    # `umbrellabot state setup` alone (the waiter asks DescribeTable)
    ("dynamodb", "create_table"): [("dynamodb:CreateTable", STATE)],
    ("dynamodb", "describe_time_to_live"): [("dynamodb:DescribeTimeToLive", STATE)],
    ("dynamodb", "update_time_to_live"): [("dynamodb:UpdateTimeToLive", STATE)],
}
SERVICE_OF_MODULE = {
    "s3.py": "s3",
    "athena.py": "athena",
    "athena_catalog.py": "glue",
    "organizations.py": "organizations",
    "sqs.py": "sqs",
    "table.py": "dynamodb",
    "setup.py": "dynamodb",
}
NO_RESOURCE_LEVEL = {"organizations:ListAccounts"}  # AWS allows only Resource "*" for these
_CALL = re.compile(r"""(?:_call|\.call)\(\s*["']([a-z0-9_]+)["']""")


def called_operations() -> set[tuple[str, str]]:
    found = set()
    for path in (REPO_ROOT / "umbrellabot").rglob("*.py"):
        operations = _CALL.findall(path.read_text())
        if operations:
            assert path.name in SERVICE_OF_MODULE, f"{path.name} calls AWS: map it to a service"
            found |= {(SERVICE_OF_MODULE[path.name], name) for name in operations}
    return found


def policy(**values: str) -> dict[str, Any]:
    text = (REPO_ROOT / "config" / "iam-policy.json").read_text()
    for placeholder, value in {**PLACEHOLDERS, **values}.items():
        text = text.replace(placeholder, value)
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def allowed(action: str, resource: str, **values: str) -> bool:
    for statement in policy(**values)["Statement"]:
        assert statement["Effect"] == "Allow"
        if any(fnmatch.fnmatchcase(action, a) for a in as_list(statement["Action"])) and any(
            fnmatch.fnmatchcase(resource, r) for r in as_list(statement["Resource"])
        ):
            return True
    return False


def test_the_code_calls_only_known_operations() -> None:
    operations = called_operations()
    assert {("s3", "get_object"), ("athena", "start_query_execution")} <= operations
    unknown = operations - set(NEEDS)
    assert not unknown, f"new AWS calls {unknown}: add them to NEEDS and to the policy"


def test_every_call_is_allowed() -> None:
    missing = [
        f"{operation}: {action} on {resource}"
        for operation in sorted(called_operations())
        for action, resource in NEEDS[operation]
        if not allowed(action, resource)
    ]
    assert not missing, "\n".join(missing)


def test_least_privilege() -> None:
    for statement in policy()["Statement"]:
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"wildcard action {action}"
        if set(as_list(statement["Action"])) <= NO_RESOURCE_LEVEL:
            continue  # read-only actions that take no resource ARN
        for resource in as_list(statement["Resource"]):
            assert resource not in ("*", f"{BUCKET_ARN}/*"), f"too broad: {resource}"
    assert not allowed("s3:PutObject", LOG)  # CloudTrail's own logs are never written
    assert not allowed("s3:DeleteObject", PROCESSED)
    assert not allowed("sqs:ReceiveMessage", DEAD_LETTERS)  # dead letters are for people
    assert not allowed("sqs:DeleteQueue", QUEUE)
    assert not allowed("dynamodb:DeleteTable", STATE) and not allowed("dynamodb:Scan", STATE)
    assert not allowed("dynamodb:GetItem", STATE.replace("umbrellabot-state", "another"))
    assert not allowed("s3:GetObject", "arn:aws:s3:::another-bucket/AWSLogs/x")
    assert not allowed(
        "athena:StartQueryExecution", f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/other"
    )
    # Only umbrellabot's own tables: another table of the database stays out of reach, also
    # for glue:GetTables, which returns only the tables the policy allows.
    for other in ("cloudtrail_enriched_backup", "billing"):
        for action in ("glue:GetTable", "glue:GetTables", "glue:UpdateTable"):
            assert not allowed(action, f"arn:aws:glue:{REGION}:{ACCOUNT}:table/default/{other}")


def test_kms_is_allowed_only_through_s3_of_the_region() -> None:
    [kms] = [s for s in policy()["Statement"] if s["Action"][0].startswith("kms:")]
    assert kms["Resource"] == KEY
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    assert not allowed("kms:Decrypt", "arn:aws:kms:us-east-1:999988887777:key/another")


def test_control_tower_and_custom_prefixes_read_only_the_trail() -> None:
    tower = "o-abcdefghij/AWSLogs/"
    inside = f"{BUCKET_ARN}/{tower}o-abcdefghij/111122223333/CloudTrail/us-east-1/x.json.gz"
    assert allowed("s3:GetObject", inside, TRAIL_PREFIX=tower)
    assert not allowed("s3:GetObject", f"{BUCKET_ARN}/AWSLogs/111122223333/x", TRAIL_PREFIX=tower)
    custom = "audit/trail/AWSLogs/"
    assert allowed("s3:GetObject", f"{BUCKET_ARN}/{custom}1/CloudTrail/x", TRAIL_PREFIX=custom)


def test_a_table_outside_the_default_database_may_still_read_default() -> None:
    """Athena asks glue:GetDatabase on `default` too, whatever database the table is in."""
    default = f"arn:aws:glue:{REGION}:{ACCOUNT}:database/default"
    assert allowed("glue:GetDatabase", default, ATHENA_DATABASE="security")
    own = f"arn:aws:glue:{REGION}:{ACCOUNT}:database/security"
    assert allowed("glue:CreateTable", own, ATHENA_DATABASE="security")
