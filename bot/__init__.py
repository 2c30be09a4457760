"""incident-desk: a Slack bot that runs a financial-services contingency plan."""
