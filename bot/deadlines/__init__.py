"""The plan's clock: deadlines, reminders, escalation and acknowledgement, working hours, the scheduler sweep."""
