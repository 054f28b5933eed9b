"""Writes the made-up sample CloudTrail files in examples/AWSLogs/ (run from the repo root).

The files are committed; this script documents how they were made and re-makes them:
    python examples/make_examples.py
Every account id, key, name and event id here is invented. The addresses are public ones whose
country the offline database knows (US, GB, DE, RU), so the country rules have something to do.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

ACCOUNT = "111122223333"
ROOT = Path(__file__).resolve().parent / "AWSLogs" / ACCOUNT / "CloudTrail"


def identity(kind: str, name: str) -> dict[str, Any]:
    if kind == "Root":
        return {
            "type": "Root",
            "principalId": ACCOUNT,
            "arn": f"arn:aws:iam::{ACCOUNT}:root",
            "accountId": ACCOUNT,
            "accessKeyId": "",
        }
    if kind == "IAMUser":
        return {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLEUSERID0001",
            "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
            "accountId": ACCOUNT,
            "accessKeyId": "AKIAEXAMPLEKEY000001",
            "userName": name,
        }
    role, session = name.split("/")
    return {
        "type": "AssumedRole",
        "principalId": f"AROAEXAMPLEROLE0001:{session}",
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}",
        "accountId": ACCOUNT,
        "accessKeyId": "ASIAEXAMPLEKEY000001",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "userName": role,
                "arn": f"arn:aws:iam::{ACCOUNT}:role/{role}",
                "principalId": "AROAEXAMPLEROLE0001",
                "accountId": ACCOUNT,
            },
            "attributes": {"creationDate": "2026-11-29T08:00:00Z", "mfaAuthenticated": "false"},
        },
    }


def event(
    n: int,
    time: str,
    source: str,
    name: str,
    who: dict[str, Any],
    ip: str,
    region: str = "us-east-1",
    **extra: Any,
) -> dict[str, Any]:
    record = {
        "eventVersion": "1.10",
        "userIdentity": who,
        "eventTime": f"2026-11-29T{time}Z",
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": ip,
        "userAgent": extra.pop("userAgent", "aws-cli/2.22.4 Python/3.12.6 Linux/6.1 exe/x86_64"),
        "requestParameters": extra.pop("requestParameters", None),
        "responseElements": extra.pop("responseElements", None),
        "requestID": f"0d5f8e0c-0000-4000-8000-{n:012d}",
        "eventID": f"7f3c2a10-{n:04d}-4e5b-9a61-0c1d2e3f{n:04d}",
        "readOnly": name.startswith(("Describe", "Get", "List")),
        "eventType": extra.pop("eventType", "AwsApiCall"),
        "managementEvent": True,
        "recipientAccountId": ACCOUNT,
        "eventCategory": "Management",
    }
    record.update(extra)
    return record


ADMIN = identity("IAMUser", "alice")
DEPLOY = identity("AssumedRole", "Deploy/github-actions")
ROOT_ID = identity("Root", "")
POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)

MORNING = [  # routine work, one new user, one admin grant
    event(
        1,
        "08:01:12",
        "ec2.amazonaws.com",
        "DescribeInstances",
        DEPLOY,
        "52.95.110.1",
        requestParameters={"instancesSet": {}, "filterSet": {}},
    ),
    event(
        2,
        "08:02:40",
        "sts.amazonaws.com",
        "AssumeRole",
        identity("IAMUser", "ci-bot"),
        "3.14.23.9",
        requestParameters={
            "roleArn": f"arn:aws:iam::{ACCOUNT}:role/Deploy",
            "roleSessionName": "github-actions",
        },
    ),
    event(
        3,
        "08:05:03",
        "iam.amazonaws.com",
        "CreateUser",
        ADMIN,
        "72.21.196.65",
        requestParameters={"userName": "backup-operator"},
        responseElements={
            "user": {
                "userName": "backup-operator",
                "arn": f"arn:aws:iam::{ACCOUNT}:user/backup-operator",
                "createDate": "Nov 29, 2026 8:05:03 AM",
            }
        },
    ),
    event(
        4,
        "08:06:30",
        "iam.amazonaws.com",
        "PutUserPolicy",
        ADMIN,
        "72.21.196.65",
        requestParameters={
            "userName": "backup-operator",
            "policyName": "everything",
            "policyDocument": POLICY,
        },
    ),
    event(5, "08:07:10", "s3.amazonaws.com", "ListBuckets", DEPLOY, "AWS Internal"),
]
GUESSES = [  # password guessing from abroad: six failed sign-ins in five minutes
    event(
        13 + n,
        f"14:0{n + 2}:05",
        "signin.amazonaws.com",
        "ConsoleLogin",
        {**identity("IAMUser", user), "principalId": "", "arn": "", "accessKeyId": ""},
        "81.2.69.142",
        eventType="AwsConsoleSignIn",
        userAgent="Mozilla/5.0 (X11; Linux x86_64) Firefox/132.0",
        errorMessage="Failed authentication",
        responseElements={"ConsoleLogin": "Failure"},
        additionalEventData={
            "LoginTo": "https://console.aws.amazon.com/console/home",
            "MobileVersion": "No",
            "MFAUsed": "No",
        },
    )
    for n, user in enumerate(["alice", "admin", "alice", "backup", "ops", "alice"])
]
AFTERNOON = [  # someone from abroad guesses passwords, then turns things off
    *GUESSES,
    event(
        6,
        "14:20:00",
        "signin.amazonaws.com",
        "ConsoleLogin",
        ROOT_ID,
        "81.2.69.142",
        eventType="AwsConsoleSignIn",
        userAgent="Mozilla/5.0 (X11; Linux x86_64) Firefox/132.0",
        responseElements={"ConsoleLogin": "Success"},
        additionalEventData={
            "LoginTo": "https://console.aws.amazon.com/console/home",
            "MobileVersion": "No",
            "MFAUsed": "No",
        },
    ),
    event(
        7,
        "14:22:31",
        "cloudtrail.amazonaws.com",
        "StopLogging",
        ROOT_ID,
        "81.2.69.142",
        requestParameters={"name": f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/main"},
    ),
    event(
        8,
        "14:24:02",
        "ec2.amazonaws.com",
        "AuthorizeSecurityGroupIngress",
        ROOT_ID,
        "81.2.69.142",
        requestParameters={
            "groupId": "sg-0a1b2c3d4e5f60718",
            "ipPermissions": {
                "items": [
                    {
                        "ipProtocol": "tcp",
                        "fromPort": 22,
                        "toPort": 22,
                        "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
                    }
                ]
            },
        },
    ),
    event(
        9,
        "14:26:45",
        "guardduty.amazonaws.com",
        "DeleteDetector",
        ROOT_ID,
        "81.2.69.142",
        requestParameters={"detectorId": "12abc34d567e8fa901bc2d34e56789f0"},
    ),
    event(
        10,
        "14:30:00",
        "s3.amazonaws.com",
        "GetObject",
        identity("IAMUser", "svc-reports"),
        "5.188.10.3",
        errorCode="AccessDenied",
        errorMessage="Access Denied",
        requestParameters={"bucketName": "finance-reports", "key": "2026/q3.xlsx"},
        userAgent="python-requests/2.32 <!channel> ünïcødé",
    ),
]
EU = [  # another region, flat .json, a made-up IPv6 address in Germany
    event(
        11,
        "16:00:00",
        "kms.amazonaws.com",
        "ScheduleKeyDeletion",
        DEPLOY,
        "2a01:4f8::1",
        region="eu-central-1",
        requestParameters={
            "keyId": f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/0000aaaa-1111-2222-3333-444455556666",
            "pendingWindowInDays": 7,
        },
    ),
    event(
        12,
        "16:01:00",
        "ec2.amazonaws.com",
        "DescribeRegions",
        DEPLOY,
        "ec2.amazonaws.com",
        region="eu-central-1",
    ),
]


def main() -> None:
    day = "2026/11/29"
    files = {
        f"us-east-1/{day}/{ACCOUNT}_CloudTrail_us-east-1_20261129T0805Z_am.json.gz": MORNING,
        f"us-east-1/{day}/{ACCOUNT}_CloudTrail_us-east-1_20261129T1430Z_pm.json.gz": AFTERNOON,
        f"eu-central-1/{day}/{ACCOUNT}_CloudTrail_eu-central-1_20261129T1600Z_eu.json": EU,
    }
    for relative, records in files.items():
        path = ROOT / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".gz":  # compact, as CloudTrail delivers
            body = json.dumps({"Records": records}, ensure_ascii=False).encode()
            path.write_bytes(gzip.compress(body, mtime=0))
        else:  # pretty, for people to read
            body = json.dumps({"Records": records}, ensure_ascii=False, indent=2).encode()
            path.write_bytes(body)
    digest = (
        Path(__file__).resolve().parent
        / "AWSLogs"
        / ACCOUNT
        / "CloudTrail-Digest"
        / "us-east-1/2026/11/29"
        / "111122223333_CloudTrail-Digest_us-east-1_main_us-east-1_20261129T150000Z.json.gz"
    )
    digest.parent.mkdir(parents=True, exist_ok=True)
    digest.write_bytes(
        gzip.compress(
            json.dumps(
                {
                    "awsAccountId": ACCOUNT,
                    "digestStartTime": "2026-11-29T14:00:00Z",
                    "digestEndTime": "2026-11-29T15:00:00Z",
                    "logFiles": [],
                }
            ).encode(),
            mtime=0,
        )
    )


if __name__ == "__main__":
    main()
