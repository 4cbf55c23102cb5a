"""Request ids, JSON logs without secrets, and /metrics."""

from __future__ import annotations

import io
import json
import logging

import pytest
from flask import g
from prometheus_client import REGISTRY

from doors import books_of
from goldbean.observability import JsonFormatter, redact
from ledger.journal.accounts import open_account, post, post_in
from ledger.journal.posting import transfer


@pytest.fixture
def log_lines():
    """Every log line written during the test, as parsed JSON objects."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)

    def lines() -> list[dict]:
        return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]

    yield lines
    root.removeHandler(handler)
    root.setLevel(old_level)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_sane_incoming_request_id_is_kept_and_echoed(client) -> None:
    resp = client.get("/healthz", headers={"X-Request-ID": "till-7:abc.123"})
    assert resp.headers["X-Request-ID"] == "till-7:abc.123"


@pytest.mark.parametrize("incoming", ["", "has space", "x" * 65, "line\\nbreak", "<script>"])
def test_an_insane_or_missing_request_id_is_replaced(client, incoming: str) -> None:
    headers = {"X-Request-ID": incoming} if incoming else {}
    resp = client.get("/healthz", headers=headers)
    rid = resp.headers["X-Request-ID"]
    assert rid != incoming and len(rid) == 32 and rid.isalnum()


def test_error_bodies_carry_the_request_id_of_the_response(client) -> None:
    resp = client.get("/api/v1/no-such-thing", headers={"X-Request-ID": "req-42"})
    assert resp.status_code == 404
    assert resp.json["request_id"] == "req-42" == resp.headers["X-Request-ID"]


def test_every_request_logs_one_json_access_line(app, client, log_lines) -> None:
    @app.get("/_test/who")
    def who():
        g.user_id = 17
        logging.getLogger("goldbean.test").info("inside the view")
        return "me"

    client.get("/_test/who", headers={"X-Request-ID": "r-1"})
    lines = log_lines()
    access = [line for line in lines if line["logger"] == "goldbean.access"]
    assert len(access) == 1
    line = access[0]
    assert {"ts", "level", "msg"} <= set(line)
    assert line["request_id"] == "r-1"
    assert line["method"] == "GET" and line["path"] == "/_test/who" and line["status"] == 200
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["user_id"] == 17
    # lines logged by the view itself carry the request id too
    inner = next(line for line in lines if line["msg"] == "inside the view")
    assert inner["request_id"] == "r-1" and inner["path"] == "/_test/who"


def test_no_secrets_reach_the_logs(client, log_lines) -> None:
    jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl"
    client.post("/api/v1/auth/token?pin=8642&token=sekrit-q", json={"password": "hunter22", "pin": "8642"},
                headers={"Authorization": f"Bearer {jwt}", "Cookie": "session=cookie-value-xyz"})
    logging.getLogger("goldbean.test").warning("user typed pin=8642 with Authorization: Bearer %s", jwt,
                                               extra={"password": "hunter22", "pin_hash": "abc"})
    text = json.dumps(log_lines())
    for secret in ("8642", "hunter22", "sekrit-q", jwt, "cookie-value-xyz", "abc\""):
        assert secret not in text, secret
    assert "[redacted]" in text


def test_redact_masks_tokens_and_keeps_the_rest() -> None:
    assert redact("Authorization: Bearer abc.def-ghi rest") == "Authorization: Bearer [redacted] rest"
    assert redact('{"pin": "1234", "amount": 5}') == '{"pin": "[redacted]", "amount": 5}'
    assert redact("password=pa55&user=li") == "password=[redacted]&user=li"
    assert redact("redeemed 12 beans at 金沙") == "redeemed 12 beans at 金沙"


def test_metrics_count_requests_by_route_and_status(client) -> None:
    before = sample("goldbean_http_requests_total", method="GET", route="/healthz", status="200")
    hist_before = sample("goldbean_http_request_duration_seconds_count", method="GET", route="/healthz")
    for _ in range(3):
        client.get("/healthz")
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    body = resp.data.decode()
    assert 'goldbean_http_requests_total{method="GET",route="/healthz",status="200"}' in body
    assert "goldbean_http_request_duration_seconds_bucket" in body
    assert "goldbean_db_pool_checked_out" in body
    assert sample("goldbean_http_requests_total", method="GET", route="/healthz", status="200") == before + 3
    assert sample("goldbean_http_request_duration_seconds_count", method="GET", route="/healthz") == hist_before + 3


def test_api_errors_are_counted_by_stable_code(client) -> None:
    before = sample("goldbean_api_errors_total", route="(unmatched)", code="not_found")
    client.get("/api/v1/nothing-here")
    client.get("/api/v1/nothing-here-either")
    assert sample("goldbean_api_errors_total", route="(unmatched)", code="not_found") == before + 2


def test_transfers_are_counted_when_committed_only(app) -> None:
    books = books_of(app)
    a = open_account(books, "obs:fund", "fund", no_negative=False)
    b = open_account(books, "obs:wallet", "wallet")
    before = sample("goldbean_transfers_posted_total", kind="award", phase="single")
    beans_before = sample("goldbean_beans_posted_total", kind="award", phase="single")
    post(books, transfer("obs:1", "award", a.id, b.id, 30))
    post(books, transfer("obs:1", "award", a.id, b.id, 30))  # a retry: nothing new is posted

    class Boom(Exception):
        pass

    def work(s):
        post_in(s, books, [transfer("obs:2", "award", a.id, b.id, 5)])
        raise Boom

    with pytest.raises(Boom):
        books.run(work)  # rolled back: never counted
    assert sample("goldbean_transfers_posted_total", kind="award", phase="single") == before + 1
    assert sample("goldbean_beans_posted_total", kind="award", phase="single") == beans_before + 30


def test_the_access_line_names_the_user_of_a_bearer_token(app, client, log_lines) -> None:
    from ledger.access.identity import create_user_in, grant_role_in, load_actor
    from ledger.access.tokens import issue_access_token

    books = books_of(app)

    def work(s):
        user = create_user_in(s, "obs-admin", "a long enough password", "Obs")
        grant_role_in(s, user.id, "admin")
        return user.id

    user_id = books.run(work)
    with books.session(readonly=True) as s:
        token, _ = issue_access_token(books, load_actor(s, user_id))
    client.get("/api/v1/awards", headers={"Authorization": f"Bearer {token}"})
    access = [line for line in log_lines() if line["logger"] == "goldbean.access"]
    assert access[-1]["user_id"] == user_id
    assert token not in json.dumps(log_lines())


def test_refused_redemptions_are_counted_by_code(client) -> None:
    before = sample("goldbean_redemptions_refused_total", code="not_authenticated")
    other = sample("goldbean_api_errors_total", route="/api/v1/redemptions", code="not_authenticated")
    resp = client.post("/api/v1/redemptions", json={"code": "x", "amount": 1})
    assert resp.status_code == 401
    assert sample("goldbean_redemptions_refused_total", code="not_authenticated") == before + 1
    assert sample("goldbean_api_errors_total", route="/api/v1/redemptions", code="not_authenticated") == other + 1


def test_invented_methods_and_paths_add_no_series(client) -> None:
    """A request with a new HTTP method name or a new path adds no label values: metrics stay bounded."""
    from prometheus_client import REGISTRY

    def series() -> int:
        return sum(len(m.samples) for m in REGISTRY.collect() if m.name.startswith("goldbean_http"))

    client.open("/healthz", method="FROBNICATE0")  # the first of each kind may add its one "other" series
    client.open("/api/v1/x0", method="BREW0")
    client.get("/no/such/page/0")
    before = series()
    for i in range(1, 30):
        client.open("/healthz", method=f"FROBNICATE{i}")
        client.open(f"/api/v1/x{i}", method=f"BREW{i}")
        client.get(f"/no/such/page/{i}")
    assert series() == before
    body = client.get("/metrics").data.decode()
    assert "FROBNICATE" not in body and "BREW" not in body and 'method="other"' in body
