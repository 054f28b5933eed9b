"""`umbrellabot rules new ID`: a rule to start from, with every key explained and one test case
that must match and one that must not, so `umbrellabot rules test` passes on it as written."""

from __future__ import annotations

import re

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")

_SKELETON = """\
# {id}: a rule for umbrellabot. Keys: docs/rules.md. Check it with
#   umbrellabot rules test {id}.yaml
# and load it beside the default pack with RULES_PATH=default,./{id}.yaml
rules:
  - id: {id}                        # unique; a default rule's id here replaces that rule
    title: Security group rule added by a human  # what the alert is called
    description: >-
      Say here why this event matters: what an attacker gains, what a mistake costs.
    severity: medium                # critical | high | medium | low | info
    tags: [network]                 # free text; e.g. attack.t1562.007 for MITRE ATT&CK
    runbook: >-
      What the responder checks first, and what to do when it is not expected.
    author: you@example.com         # optional; shown on the alert
    # Every condition must hold; a list is "any of"; see docs/rules.md for the operators
    # (prefix, contains, regex, cidr, exists, gt, any, all, not, where ...).
    match:
      eventSource: ec2.amazonaws.com
      eventName: [AuthorizeSecurityGroupIngress, AuthorizeSecurityGroupEgress]
      errorCode: {{exists: false}}    # only calls that succeeded
    # Optional allow-list: no alert when this holds.
    unless:
      userIdentity.invokedBy: cloudformation.amazonaws.com
    # What the alert shows first: {{label: field.path}} or a bare path.
    context:
      - {{group: requestParameters.groupId}}
      - {{"from port": requestParameters.ipPermissions.items.fromPort}}
      - {{CIDR: requestParameters.ipPermissions.items.ipRanges.items.cidrIp}}
    # Cases `umbrellabot rules test` checks: keep one that matches and one that must not.
    tests:
      - name: a person opens a port
        expect: true
        record:
          eventSource: ec2.amazonaws.com
          eventName: AuthorizeSecurityGroupIngress
          userIdentity: {{type: IAMUser, userName: alice}}
          requestParameters:
            groupId: sg-0123456789abcdef0
            ipPermissions:
              items: [{{ipProtocol: tcp, fromPort: 22, toPort: 22,
                        ipRanges: {{items: [{{cidrIp: 203.0.113.0/24}}]}}}}]
      - name: CloudFormation deploying a stack does not fire
        expect: false
        record:
          eventSource: ec2.amazonaws.com
          eventName: AuthorizeSecurityGroupIngress
          userIdentity: {{type: AssumedRole, invokedBy: cloudformation.amazonaws.com}}
"""


def skeleton(rule_id: str) -> str:
    """The skeleton's text; raises ValueError for an id that cannot be a file name."""
    if not ID_PATTERN.match(rule_id):
        raise ValueError(
            f"{rule_id!r} is not a rule id for a new file: use lower-case letters, digits,"
            " '.', '_' and '-' (such as my-team-sg-opened)"
        )
    return _SKELETON.format(id=rule_id)
