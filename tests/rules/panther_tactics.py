"""The ATT&CK tactics panther-analysis gives its CloudTrail rules (each rule's `Reports: MITRE
ATT&CK` ids, else the tactic its tags name, as pypanther's ports of the rules carry them; read
through the search tool), for the rules the pack covers. Apache-2.0 data of panther-labs; a
covered rule not listed here was not found there. docs/coverage.md's MITRE map merges them with
the pack's own `attack.<tactic>` tags."""

from __future__ import annotations

PANTHER_TACTICS: dict[str, tuple[str, ...]] = {
    "AWS.Bedrock.DeleteModelInvocationLoggingConfiguration": ("TA0005",),
    "AWS.Bedrock.GuardrailUpdateDelete": ("TA0005",),  # tag "Impair Defenses"
    "AWS.CloudTrail.AMIModifiedForPublicAccess": ("TA0010",),
    "AWS.CloudTrail.AttemptToLeaveOrg": ("TA0005",),
    "AWS.CloudTrail.CodebuildProjectMadePublic": ("TA0010",),
    "AWS.CloudTrail.Created": ("TA0007",),
    "AWS.CloudTrail.EnableRegion": ("TA0005",),
    "AWS.CloudTrail.EventSelectorsDisabled": ("TA0005",),
    "AWS.CloudTrail.IAMCompromisedKeyQuarantine": ("TA0001", "TA0006"),
    "AWS.CloudTrail.LoginProfileCreatedOrModified": ("TA0003", "TA0005", "TA0008"),
    "AWS.CloudTrail.NetworkACLPermissiveEntry": ("TA0003",),
    "AWS.CloudTrail.RootAccessKeyCreated": ("TA0003",),
    "AWS.CloudTrail.RootPasswordChanged": ("TA0003",),
    "AWS.CloudTrail.SnapshotMadePublic": ("TA0010",),
    "AWS.CloudTrail.Stopped": ("TA0005",),
    "AWS.CloudTrail.UnauthorizedAPICall": ("TA0007",),
    "AWS.CloudTrail.VPCE.AccessDenied": ("TA0005", "TA0008"),  # tags
    "AWS.CloudTrail.VPCE.SensitiveAPICalls": ("TA0007", "TA0003", "TA0005"),
    "AWS.ConfigService.DisabledDeleted": ("TA0005",),
    "AWS.Console.LoginWithoutSAML": ("TA0001",),
    "AWS.Console.RootLogin": ("TA0004",),  # tag "Privilege Escalation:Valid Accounts"
    "AWS.Console.RootLoginFailed": ("TA0006",),  # tag "Credential Access:Brute Force"
    "AWS.EC2.GatewayModified": ("TA0005",),
    "AWS.EC2.NetworkACLModified": ("TA0005",),
    "AWS.EC2.RouteTableModified": ("TA0010",),
    "AWS.EC2.SecurityGroupModified": ("TA0005",),
    "AWS.EC2.Startup.Script.Change": ("TA0002",),
    "AWS.EC2.VPCModified": ("TA0005",),
    "AWS.IAM.AccessKeyCompromised": ("TA0006",),
    "AWS.IAM.AttachAdminRolePolicy": ("TA0007",),
    "AWS.IAM.AttachAdminUserPolicy": ("TA0007",),
    "AWS.IAM.Backdoor.User.Keys": ("TA0003", "TA0005", "TA0008"),
    "AWS.IAM.BackdoorRole": ("TA0007",),
    "AWS.KMS.CustomerManagedKeyLoss": ("TA0040",),
    "AWS.Lambda.UpdateFunctionCode": ("TA0007",),
    "AWS.Lambda.UpdateFunctionConfiguration": ("TA0007",),
    "AWS.Potential.Backdoor.Lambda": ("TA0007",),
    "AWS.RDS.ManualSnapshotCreated": ("TA0010",),
    "AWS.RDS.PublicRestore": ("TA0010",),
    "AWS.RDS.SnapshotShared": ("TA0010",),
    "AWS.Root.Activity": ("TA0004",),
    "AWS.S3.DeleteBucketEncryption": ("TA0005", "TA0040"),
    "AWS.S3.DeleteBucketReplication": ("TA0005", "TA0040"),
    "AWS.S3.DisableBucketLogging": ("TA0005", "TA0040"),
    "AWS.S3.SuspendVersioning": ("TA0005", "TA0040"),
    "AWS.Unsuccessful.MFA.attempt": ("TA0006",),
    "AWS.User.Login.Profile.Modified": ("TA0003", "TA0005", "TA0008"),
    "AWS.VPCFlow.LogsDeleted": ("TA0005",),
    "AWS.WAF.Disassociation": ("TA0004",),
}
