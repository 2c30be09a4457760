"""Incidents: the lifecycle and its state machine, channel set-up and repair, roles, views, the permission policy."""
