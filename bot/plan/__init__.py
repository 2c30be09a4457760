"""The plan's life cycle: its stored versions, the announcement of a new one and its read confirmations."""
