"""Notifications: who is told of alert changes (the config), what they are told (notices),
and the delivery that tells them (an outbox in the state file, retried until acknowledged)."""
