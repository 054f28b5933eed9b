"""The columns of an enriched record, once for both engines. Pure.

CloudTrail's top-level fields with their JSON keys in their exact case (DuckDB matches JSON keys
case-sensitively) and a neutral type: `TEXT`, `TEXT_MAP`, a struct (a dict of fields) or an
array (a one-item list). `athena_ddl` lower-cases the names and writes Hive types; the DuckDB
engine keeps the case and writes DuckDB types. Objects that Athena keeps as JSON text
(requestParameters...) are TEXT in both.
"""

from __future__ import annotations

from collections.abc import Callable

TEXT = "text"
TEXT_MAP = "map<text, text>"
Kind = str | dict[str, "Kind"] | list["Kind"]

# What enrichment adds to a record: highest matched severity, matched rule ids, country.
ENRICHMENT: dict[str, Kind] = {"xpriority": TEXT, "xrules": [TEXT], "xcountry_code": TEXT}
ENRICHMENT_FIELDS = tuple(ENRICHMENT)

USER_IDENTITY: Kind = {
    "type": TEXT,
    "principalId": TEXT,
    "arn": TEXT,
    "accountId": TEXT,
    "invokedBy": TEXT,
    "accessKeyId": TEXT,
    "userName": TEXT,
    "onBehalfOf": {"userId": TEXT, "identityStoreArn": TEXT},
    "sessionContext": {
        "attributes": {"mfaAuthenticated": TEXT, "creationDate": TEXT},
        "sessionIssuer": {
            "type": TEXT,
            "principalId": TEXT,
            "arn": TEXT,
            "accountId": TEXT,
            "userName": TEXT,
        },
        "webIdFederationData": {"federatedProvider": TEXT, "attributes": TEXT_MAP},
        "sourceIdentity": TEXT,
        "ec2RoleDelivery": TEXT,
        "ec2IssuedInVPC": TEXT,
    },
    "inScopeOf": {
        "sourceArn": TEXT,
        "sourceAccount": TEXT,
        "issuerType": TEXT,
        "credentialsIssuedTo": TEXT,
    },
    "identityProvider": TEXT,
    "credentialId": TEXT,
}

# Every top-level field of a CloudTrail record (eventVersion 1.11), then the enrichment's.
RECORD: dict[str, Kind] = {
    "eventVersion": TEXT,
    "userIdentity": USER_IDENTITY,
    "eventTime": TEXT,  # ISO text, compared as text (queries.RANGE_PREDICATE)
    "eventSource": TEXT,
    "eventName": TEXT,
    "awsRegion": TEXT,
    "sourceIPAddress": TEXT,
    "userAgent": TEXT,
    "errorCode": TEXT,
    "errorMessage": TEXT,
    "requestParameters": TEXT,
    "responseElements": TEXT,
    "additionalEventData": TEXT,
    "requestID": TEXT,
    "eventID": TEXT,
    "readOnly": TEXT,
    "resources": [{"ARN": TEXT, "accountId": TEXT, "type": TEXT}],
    "eventType": TEXT,
    "apiVersion": TEXT,
    "managementEvent": TEXT,
    "recipientAccountId": TEXT,
    "serviceEventDetails": TEXT,
    "sharedEventID": TEXT,
    "vpcEndpointId": TEXT,
    "vpcEndpointAccountId": TEXT,
    "eventCategory": TEXT,
    "addendum": {
        "reason": TEXT,
        "updatedFields": TEXT,
        "originalRequestID": TEXT,
        "originalEventID": TEXT,
    },
    "sessionCredentialFromConsole": TEXT,
    "edgeDeviceDetails": TEXT,
    "tlsDetails": {"tlsVersion": TEXT, "cipherSuite": TEXT, "clientProvidedHostHeader": TEXT},
    "insightDetails": TEXT,
    **ENRICHMENT,
}


def convert(kind: Kind, scalars: dict[str, str], name: Callable[[str], str]) -> Kind:
    """The same shape with engine type names for scalars and `name` applied to field names."""
    if isinstance(kind, str):
        return scalars[kind]
    if isinstance(kind, list):
        return [convert(kind[0], scalars, name)]
    return {name(field): convert(inner, scalars, name) for field, inner in kind.items()}
