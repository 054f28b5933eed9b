"""umbrellabot: CloudTrail to Slack, with declarative rules and an answer for every event."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("umbrellabot")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
