"""survey-burst (``bench/survey_burst.py``) tiny: 20 volunteers answer a paid survey over HTTP within 3 s on
PostgreSQL (gunicorn as ``goldbean serve`` runs it); every honest response is paid once from the survey's hold,
the planted bad answers come back with their codes, and the hold plus what was paid is the budget."""

from __future__ import annotations

import pytest

from bench.survey_burst import clean, run_survey_burst

pytestmark = pytest.mark.postgres


def test_a_tiny_survey_burst_pays_every_honest_response_once(pg_server, tmp_path) -> None:
    res = run_survey_burst(pg_server, tmp_path, volunteers=20, window_s=3, planted=2, workers=2)
    books = res["books"]
    assert res["unexpected"] == [] and res["unexpected_count"] == 0
    assert res["refusals"] == {"survey_already_answered": 2, "survey_answer_invalid": 2}
    assert res["planted"] == res["refusals"]
    assert res["requests"] == 20 + 2  # one answer each, and the planted second answers
    assert books["honest"] == books["paid_count"] == books["responses"] == books["respondents"] == 18
    assert books["paid_once"] and books["books_balance"] and books["reserve_balance"] == 0
    assert books["held"] + books["paid_beans"] == books["budget"] and books["paid_beans"] == 18 * 5
    assert clean(res) and res["p99_ms"] is not None
