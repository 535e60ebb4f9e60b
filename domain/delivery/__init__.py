"""Change events on their way out: the outbox's dispatch, live feeds, webhooks, their
delivery, and the time-based triggers."""

__all__ = ["dispatch", "feed", "sending", "triggers", "webhooks"]
