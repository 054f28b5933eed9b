"""Slack: text safety, alert and reply rendering, the roll-up algorithm (pure), the notifier,
what a mention asks, the `recent` sources and the Bolt Socket Mode bot. Imports `query` and
everything below it; never `app` or `config`."""
