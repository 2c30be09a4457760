"""Customer and internal notices: drafts, approval, the delivery outbox, status page, e-mail, webhooks."""
