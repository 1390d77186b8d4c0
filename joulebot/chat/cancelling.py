"""/cancel and the Cancel button: a question still waiting in the queue is taken out of it.

A running answer is not cut short: its energy is being measured over the whole
generation, and half a window would be neither a whole answer's cost nor comparable.
"""

from __future__ import annotations

from joulebot.queueing.client import JobError, QueueClient
from joulebot.queueing.deliveries import DeliveryBook

CANCELLED = "🚫 Cancelled before it ran: nothing was measured or stored."


class Cancelling:
    def __init__(self, client: QueueClient, deliveries: DeliveryBook) -> None:
        self.client, self.deliveries = client, deliveries

    def cancel(self, user_id: str, chat_id: str, request_id: str | None = None, message_ref: str | None = None) -> str:
        """Cancel this user's questions still queued in this chat (or the one given, by its request id
        or by the status message that shows it); say what happened."""
        owed = [d for d in self.deliveries.pending_of(user_id) if d.chat_id == chat_id]
        if request_id is not None:
            owed = [d for d in owed if request_id in d.request_ids]
        if message_ref is not None:
            owed = [d for d in owed if d.status_message_id == message_ref]
        if not owed:
            return "Nothing of yours is waiting to be cancelled."
        cancelled = running = 0
        for delivery in owed:
            for rid in delivery.request_ids:
                try:
                    job = self.client.job(rid)
                except JobError:
                    continue
                if self.client.cancel(job):
                    cancelled += 1
                else:
                    running += 1
        parts = []
        if cancelled:
            parts.append(
                f"Cancelled {cancelled} waiting question{'s' * (cancelled > 1)}: nothing was measured or stored."
            )
        if running:
            parts.append(
                f"{running} already being generated: {'it' if running == 1 else 'they'} will finish and be stored "
                "(a generation is measured whole; stopping it halfway would leave a figure that is no answer's cost)."
            )
        return " ".join(parts) or "Nothing of yours is waiting to be cancelled."
