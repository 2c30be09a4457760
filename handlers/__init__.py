"""Slack-facing listeners. Each module exposes `register(app, services)`; listeners parse, call one service, reply."""
