"""The Slack edge: the gateway (the only WebClient user), Block Kit, forms, ids, the command parser, the HTTP front."""
