"""API fuzzing with schemathesis, in process against ``/api/v1/openapi.json`` (the Flask app through its
WSGI interface): every operation, with valid credentials of the roles that may call it (round robin, and
a caller holding every role), positive and negative examples, and the conformance checks named in
``CHECKS``: no server error (5xx), every response's status, content type, headers and body match the
document (every response has a schema, tests/merchant_api/test_api_document.py), no input the document
forbids is accepted and none it allows is refused by the parser. Examples per operation stay small so
the run stays within about a minute of CPU in ``make test``."""

from __future__ import annotations

import itertools
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.config._checks import PositiveDataAcceptanceConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from doors import books_of
from ledger.access.identity import create_user_in, grant_role_in, hash_password, load_actor
from ledger.access.tokens import issue_access_token
from ledger.schema import CatalogueItem
from tests.redemption_world import build_world

# GOLDBEAN_FUZZ_EXAMPLES=200 for a longer, randomised hunt (docs/security.md); the suite's run is fixed
MAX_EXAMPLES = int(os.environ.get("GOLDBEAN_FUZZ_EXAMPLES", "15"))
DERANDOMIZE = "GOLDBEAN_FUZZ_EXAMPLES" not in os.environ
# named, not left to the library's defaults: the document is the truth, so its conformance is checked
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection, positive_data_acceptance]
ROLES = ("volunteer", "leader", "officer", "cashier", "merchant_owner", "fund_manager", "auditor", "admin")


@pytest.fixture
def app_config(app_config):
    # business caps and issuance limits out of the way: the fuzzer calls a few endpoints many times
    return {**app_config, "LEDGER_SETTINGS": {
        "rate_limits": {"token_per_ip": 10**6, "token_per_user": 10**6, "code_per_user": 10**6,
                        "failed_sign_ins_per_ip": 10**6, "failed_pin_cards_per_till": 10**6}}}


@pytest.fixture
def fuzz_world(app):
    books = books_of(app)
    w = build_world(books, password_hash=hash_password("pw"))

    def work(s):
        s.add(CatalogueItem(merchant_id=w.merchant_a, name="米线", price=12, active=True))
        everyone = create_user_in(s, "everyone", "pw", "all roles").id
        for role in ROLES:
            scope = {"merchant_id": w.merchant_a} if role in ("cashier", "merchant_owner") else (
                {"org_unit_id": w.community} if role in ("volunteer", "leader", "officer") else {})
            grant_role_in(s, everyone, role, **scope)
        leader = create_user_in(s, "leader", "pw", "leader").id
        grant_role_in(s, leader, "leader", w.community)
        auditor = create_user_in(s, "auditor", "pw", "auditor").id
        grant_role_in(s, auditor, "auditor")
        return {"volunteer": w.volunteer, "leader": leader, "officer": w.officer, "cashier": w.cashier_a,
                "merchant_owner": w.owner_a, "fund_manager": w.fund_manager, "auditor": auditor, "admin": w.admin,
                "everyone": everyone}

    users = books.run(work)
    tokens = {}
    for role, uid in users.items():
        with books.session(readonly=True) as s:
            tokens[role] = issue_access_token(books, load_actor(s, uid))[0]
    return tokens


def _endpoint(app, case) -> str:
    path = case.operation.path.format(**dict.fromkeys(case.path_parameters or {}, 1))
    try:
        endpoint, _ = app.url_map.bind("localhost").match(f"/api/v1{path}", method=case.method.upper())
    except Exception:
        return ""
    return endpoint


def parser_refused(response) -> bool:
    """A 422 from the request parser (flask-smorest/marshmallow: details by location), not a domain rule."""
    if response.status_code != 422:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    details = body.get("details")
    return body.get("error") == "validation_failed" and isinstance(details, dict) and bool(
        set(details) & {"json", "query", "headers", "path", "form", "files", "cookies"})


# the operations are dealt round robin into shards, so that `pytest -n` spreads the run over the cores
SHARDS = 4


@pytest.mark.parametrize("shard", range(SHARDS))
def test_api_conforms_to_its_document(app, fuzz_world, shard):
    """The pytest plugin's lazy loader does not run on pytest 9, so the operations are driven here with
    schemathesis' own Hypothesis strategies and checks."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    # the bearer token is ours to send (a valid one per role); tokens themselves are attacked in test_tokens
    schema.config.generation.update(with_security_parameters=False)
    # Business rules refuse some schema-valid requests with a domain code (a period not ended yet, a
    # payment code that does not verify, "name either a user or an address"): 422 with that code is a
    # fair answer to valid *shape*. What must never happen is the request parser refusing what the
    # document allows; that is checked below (``parser_refused``).
    schema.config.checks.positive_data_acceptance = PositiveDataAcceptanceConfig(
        expected_statuses=["2xx", "3xx", "401", "403", "404", "409", "422", "429"])
    failures: dict[str, str] = {}
    turn = itertools.count()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40
    for operation in operations[shard::SHARDS]:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=DERANDOMIZE, database=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.generate])
            def run(case) -> None:
                endpoint = _endpoint(app, case)
                required = tuple(getattr(app.view_functions.get(endpoint), "required_roles", ()) or ROLES)
                callers = [r for r in required if r in fuzz_world] + ["everyone"]
                role = callers[next(turn) % len(callers)]
                name = f"{case.method.upper()} {case.operation.path} [{mode.value}, {role}]"
                if name in failures:
                    return
                try:
                    response = case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_world[role]}"},
                                                      checks=CHECKS)
                    if mode is schemathesis.GenerationMode.POSITIVE and parser_refused(response):
                        raise AssertionError(f"the request parser refused a request the document allows: "
                                             f"{response.status_code} {response.text[:500]} for {case.as_curl_command()}")
                except BaseException as exc:  # collected, reported together below
                    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                        raise
                    failures[name] = f"{type(exc).__name__}: {str(exc)[:1500]}"

            try:
                run()
            except Unsatisfiable:  # nothing to get wrong (no parameters and no body) in negative mode
                assert mode is schemathesis.GenerationMode.NEGATIVE
    assert not failures, "\n\n".join(f"{k}\n{v}" for k, v in sorted(failures.items()))
