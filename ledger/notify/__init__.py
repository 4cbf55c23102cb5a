"""Room ``notify``: notifications through an outbox with channels.

Owns the tables ``notifications`` (the in-app inbox: one row per notification, recorded once by its
``dedupe_key``) and ``notification_deliveries`` (one per channel, with its state, attempts, next try and last
error) (``models``). A room above records a notification in its own transaction (``send_in``); the worker
delivers what is due (``deliver_due``): the live stream through the ``LiveChannel`` the stream's room provides
(the radar's), and SMS through ``channels.SmsChannel`` when a provider URL is configured (off by default),
with retries and backoff; old notifications are purged after ``retention_days``. The volunteer reads and marks
their inbox (``inbox``, ``mark_read``, ``mark_all_read``).
May call: ``ledger.access``, ``ledger.infra``, ``ledger.errors``. Called by the capability rooms (earning,
patrols, radar); it knows none of them.
"""

# the room's public use cases, so that a door writes ``from ledger import notify``
from ledger.notify.channels import DeliveryFailed, SmsChannel
from ledger.notify.models import CHANNELS, STATES
from ledger.notify.outbox import (
    Inbox,
    LiveChannel,
    Note,
    SmsSender,
    deliver_due,
    delivery_states,
    inbox,
    mark_all_read,
    mark_read,
    note_in,
    purge,
    send_in,
    send_one_in,
    sms_text,
)
