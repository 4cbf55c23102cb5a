"""The notification outbox on SQLite and PostgreSQL: a notification is recorded once with a delivery per
channel; the inbox reads and marks one's own; the live channel delivers exactly once; SMS goes to a local
receiver started here (a free port), off by default, carries no content, and is retried with backoff until
sent or failed; old notifications are purged."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ledger import errors, notify
from ledger.errors import DomainError
from ledger.schema import User
from tests.earning_world import build_world


@pytest.fixture
def w(books):
    return build_world(books)


def send(w, who: str, key: str, topic: str = "patrol_reminder", **kw) -> int:
    return w.books.run(lambda s: notify.send_in(s, w.books, user_ids=[w.users[who]], topic=topic, title="巡逻提醒",
                                                body="您报名的班次将于 19:00 开始。", dedupe=key, link="/patrols",
                                                **kw))


class Receiver:
    """A local SMS provider: records every request; answers with the next status of ``plan`` (then 200)."""

    def __init__(self) -> None:
        self.got: list[dict] = []
        self.headers: list[dict] = []
        self.plan: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append(json.loads(body))
                outer.headers.append(dict(self.headers))
                status = outer.plan.pop(0) if outer.plan else 200
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # a free port
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sms"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


class FakeLive:
    def __init__(self) -> None:
        self.got: list[int] = []

    def publish_in(self, s, books, note) -> None:
        self.got.append(note.id)


def test_recorded_once_with_a_delivery_per_channel_and_sms_off_by_default(w):
    assert send(w, "v1", "reminder:1") == 1
    assert send(w, "v1", "reminder:1") == 0  # the same notification again: recorded once
    box = notify.inbox(w.books, w.actor("v1"))
    [note] = box.items
    assert (box.unread, note.title, note.link) == (1, "巡逻提醒", "/patrols")
    assert notify.delivery_states(w.books, note.id) == {"inbox": ("sent", 1, None), "live": ("pending", 0, None)}
    assert notify.inbox(w.books, w.actor("v3")).items == []


def test_one_sent_with_the_commit_is_recorded_as_send_in_records_it(w):
    """``send_one_in`` (an award's notification: on PostgreSQL one statement in the COMMIT's pipeline) makes the
    same rows as ``send_in``: once per key, a delivery per channel; nothing if the sender's work fails."""
    def one(key: str, fail: bool = False) -> None:
        def work(s) -> None:
            notify.send_one_in(s, w.books, user_id=w.users["v1"], topic="award", title="获得 5 金豆",
                               body="金豆已到账。", dedupe=key, link="/wallet", amount=5)
            if fail:
                raise DomainError(errors.VALIDATION_FAILED, "the sender's work failed")
        w.books.run(work)

    one("award:1")
    one("award:1")  # the same key again: recorded once
    with pytest.raises(DomainError):
        one("award:2", fail=True)
    [note] = notify.inbox(w.books, w.actor("v1")).items
    assert (note.title, note.amount, note.link) == ("获得 5 金豆", 5, "/wallet")
    assert notify.delivery_states(w.books, note.id) == {"inbox": ("sent", 1, None), "live": ("pending", 0, None)}


def test_the_inbox_is_ones_own_and_marks_read(w):
    send(w, "v1", "a")
    send(w, "v1", "b")
    first, second = sorted(n.id for n in notify.inbox(w.books, w.actor("v1")).items)
    with pytest.raises(DomainError) as exc:
        notify.mark_read(w.books, w.actor("v3"), first)
    assert exc.value.code == "not_found"
    assert notify.mark_read(w.books, w.actor("v1"), first).read_at is not None
    assert notify.inbox(w.books, w.actor("v1")).unread == 1
    assert [n.id for n in notify.inbox(w.books, w.actor("v1"), unread_only=True).items] == [second]
    assert notify.mark_all_read(w.books, w.actor("v1")) == 1
    assert notify.inbox(w.books, w.actor("v1")).unread == 0


def test_the_live_channel_delivers_each_notification_once(w):
    send(w, "v1", "a")
    send(w, "v3", "b")
    live = FakeLive()
    assert notify.deliver_due(w.books, live=live)["live"] == 2
    assert notify.deliver_due(w.books, live=live)["live"] == 0
    assert len(live.got) == 2
    assert notify.delivery_states(w.books, live.got[0])["live"] == ("sent", 1, None)


def _with_phone(w, who: str, phone: str | None) -> None:
    with w.books.session() as s:
        s.get(User, w.users[who]).phone = phone


def test_sms_goes_to_the_provider_without_content_and_is_retried_with_backoff(w, receiver):
    w.books.settings = w.books.settings.with_overrides({"notify": {"sms_url": receiver.url, "retry_base_s": 60}})
    _with_phone(w, "v1", "13800000001")
    send(w, "v1", "reminder:2")
    send(w, "v1", "award:9", topic="award")  # not an SMS topic: inbox and live only
    [award, reminder] = notify.inbox(w.books, w.actor("v1")).items
    assert "sms" not in notify.delivery_states(w.books, award.id)
    sms = notify.SmsChannel(receiver.url, token="t0ken", timeout_s=5)
    receiver.plan = [503]
    assert notify.deliver_due(w.books, sms=sms)["sms_retry"] == 1
    assert notify.delivery_states(w.books, reminder.id)["sms"] == ("pending", 1, "http_503")
    assert notify.deliver_due(w.books, sms=sms)["sms_sent"] == 0  # not due before the backoff
    w.books.clock.advance(61)
    assert notify.deliver_due(w.books, sms=sms)["sms_sent"] == 1
    assert notify.delivery_states(w.books, reminder.id)["sms"] == ("sent", 2, None)
    assert len(receiver.got) == 2 and receiver.got[0]["ref"] == receiver.got[1]["ref"]  # the same message
    msg = receiver.got[-1]
    assert msg["to"] == "13800000001" and msg["text"] == notify.sms_text("patrol_reminder")
    assert "19:00" not in msg["text"] and "班次将于" not in msg["text"]  # no content, only "open the app"
    assert receiver.headers[-1]["Authorization"] == "Bearer t0ken"


def test_sms_fails_after_the_last_attempt_and_skips_without_a_phone(w, receiver):
    w.books.settings = w.books.settings.with_overrides({"notify": {"sms_url": receiver.url, "max_attempts": 2,
                                                                   "retry_base_s": 1}})
    _with_phone(w, "v1", "13800000001")
    send(w, "v1", "r:1")
    send(w, "v3", "r:2")  # v3 has no phone
    sms = notify.SmsChannel(receiver.url)
    receiver.plan = [500, 500]
    first = notify.deliver_due(w.books, sms=sms)
    assert (first["sms_retry"], first["sms_skipped"]) == (1, 1)
    w.books.clock.advance(5)
    assert notify.deliver_due(w.books, sms=sms)["sms_failed"] == 1
    [note] = notify.inbox(w.books, w.actor("v1")).items
    assert notify.delivery_states(w.books, note.id)["sms"] == ("failed", 2, "http_500")
    [other] = notify.inbox(w.books, w.actor("v3")).items
    assert notify.delivery_states(w.books, other.id)["sms"] == ("skipped", 1, "no_phone")
    assert notify.deliver_due(w.books, sms=sms)["sms_sent"] == 0  # nothing left to try


def test_an_unreachable_provider_is_retried_and_a_crashed_send_runs_out_of_its_lease(w, receiver):
    url = receiver.url
    receiver.close()  # nobody listens there now
    w.books.settings = w.books.settings.with_overrides({"notify": {"sms_url": url, "retry_base_s": 1}})
    _with_phone(w, "v1", "13800000001")
    send(w, "v1", "r:3")
    assert notify.deliver_due(w.books, sms=notify.SmsChannel(url, timeout_s=1))["sms_retry"] == 1
    [note] = notify.inbox(w.books, w.actor("v1")).items
    assert notify.delivery_states(w.books, note.id)["sms"][2] == "unreachable"

    class Crash:
        def send(self, **kw):
            raise KeyboardInterrupt  # the worker dies mid-send

    w.books.clock.advance(5)
    with pytest.raises(KeyboardInterrupt):
        notify.deliver_due(w.books, sms=Crash())
    assert notify.deliver_due(w.books, sms=Crash())["sms_sent"] == 0  # leased: nobody tries it meanwhile
    w.books.clock.advance(w.books.settings.notify.lease_s + 1)
    sent: list[dict] = []

    class Ok:
        def send(self, **kw):
            sent.append(kw)

    assert notify.deliver_due(w.books, sms=Ok())["sms_sent"] == 1 and len(sent) == 1


def test_old_notifications_are_purged(w):
    send(w, "v1", "old")
    w.books.clock.advance(dt.timedelta(days=181).total_seconds())
    send(w, "v1", "new")
    assert notify.purge(w.books) == 1
    assert [n.title for n in notify.inbox(w.books, w.actor("v1")).items] == ["巡逻提醒"]


def test_two_senders_at_once_record_the_notification_once(w):
    barrier = threading.Barrier(2)
    made: list[int] = []

    def sender() -> None:
        barrier.wait()
        made.append(send(w, "v1", "race"))

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(made) == [0, 1]
    [note] = notify.inbox(w.books, w.actor("v1")).items
    assert set(notify.delivery_states(w.books, note.id)) == {"inbox", "live"}
