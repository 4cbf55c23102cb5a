"""Surveys (社调): officers build and publish surveys for the residents of an area; residents answer once
and are paid at once; officers read the results (groups under five hidden) and download them as CSV.

Thin: parse, name the caller, call one ``ledger.surveys`` use case; who may do what is decided there."""

from __future__ import annotations

from flask import Response
from marshmallow import fields, validate

from doors import current_books
from ledger import surveys

from .auth import current_actor, requires_roles
from .edge import Blueprint
from .schemas import NO_NUL_PATTERN, Boolean, In, Out, String, no_nul_inside

blp = Blueprint("surveys", __name__, url_prefix="", description="Surveys (社调): ask residents, pay each complete answer once")


class QuestionIn(In):
    kind = String(required=True, validate=validate.OneOf(surveys.QUESTION_KINDS))
    text = String(required=True, validate=validate.Length(min=1, max=500))
    required = Boolean(load_default=True)
    options = fields.List(String(validate=validate.Length(min=1, max=200)), load_default=list,
                          validate=validate.Length(max=12), metadata={"description": "single and multiple only"})
    scale_max = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=2, max=10),
                               metadata={"description": "scale only: answers run from 1 to this"})


class SurveyIn(In):
    org_unit_id = fields.Integer(strict=True, load_default=None,
                                 metadata={"description": "the community that runs and pays for it; default: the "
                                                          "community of the first target"})
    title = String(required=True, validate=validate.Length(min=1, max=200))
    intro = String(load_default="", validate=validate.Length(max=4000))
    questions = fields.List(fields.Nested(QuestionIn), required=True,
                            validate=validate.Length(min=1, max=surveys.MAX_QUESTIONS))
    target_org_unit_ids = fields.List(fields.Integer(strict=True), load_default=list,
                                      validate=validate.Length(max=50),
                                      metadata={"description": "units inside one community; default all of it"})
    reward = fields.Integer(strict=True, load_default=0, validate=validate.Range(min=0, max=surveys.MAX_REWARD),
                            metadata={"description": "beans per complete response"})
    max_responses = fields.Integer(strict=True, load_default=100,
                                   validate=validate.Range(min=1, max=surveys.MAX_RESPONSES))
    closes_at = fields.AwareDateTime(load_default=None, metadata={
        "description": f"within {surveys.MAX_OPEN_DAYS} days; default {surveys.DEFAULT_OPEN_DAYS} days from now"})
    publish = Boolean(load_default=True, metadata={
        "description": "publish at once (rewards held from the budget); false keeps a draft to publish later"})
    named = Boolean(load_default=False, metadata={"description": "respondents are named to the staff; "
                                                                        "shown to them before they start"})


class QuestionOut(Out):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    text = fields.String(required=True)
    required = Boolean(required=True)
    options = fields.List(fields.String(), required=True)
    scale_max = fields.Integer(allow_none=True)


class SurveyOut(Out):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    intro = fields.String(required=True)
    org_unit_id = fields.Integer(required=True)
    status = fields.String(required=True, metadata={"description": "draft, published or closed"})
    named = Boolean(required=True)
    reward = fields.Integer(required=True)
    max_responses = fields.Integer(required=True)
    responses = fields.Integer(required=True)
    paid_responses = fields.Integer(required=True)
    closes_at = fields.DateTime(required=True)
    target_org_unit_ids = fields.List(fields.Integer(), required=True)
    questions = fields.List(fields.Nested(QuestionOut), required=True)
    answered = Boolean(allow_none=True, metadata={"description": "have you answered it?"})


class ListQuery(In):
    limit = fields.Integer(strict=False, load_default=100, validate=validate.Range(min=1, max=500))


def _no_nul_in_answers(answers: dict) -> None:
    """No NUL in any answer. A question id is not checked here: OpenAPI 3.0 cannot say what an object's keys
    may hold, and an id that names no question (one with a NUL included) is the survey's own refusal."""
    no_nul_inside(list(answers.values()))


class AnswersIn(In):
    # the document names the shapes an answer takes, each string without NUL (the rule no_nul_inside
    # enforces at any depth), so that no client is refused what the document allowed
    answers = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True, metadata={"anyOf": [
                              {"type": "string", "pattern": NO_NUL_PATTERN}, {"type": "integer"},
                              {"type": "array", "items": {"type": "string", "pattern": NO_NUL_PATTERN}}]}),
                          required=True, validate=_no_nul_in_answers,
                          metadata={"description": "question id to answer: an option, a list of options, "
                                                   "a whole number on the scale, or text"})


class SurveyAnswerOut(Out):
    survey_id = fields.Integer(required=True)
    paid = fields.Integer(required=True, metadata={"description": "beans paid to your wallet"})
    status = fields.String(required=True)


class TallyOut(Out):
    question_id = fields.Integer(required=True)
    kind = fields.String(required=True)
    text = fields.String(required=True)
    answered = fields.Integer(required=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    texts = fields.List(fields.String())


class CommunityTallyOut(Out):
    org_unit_id = fields.Integer(required=True)
    responses = fields.Integer(required=True)
    questions = fields.List(fields.Nested(TallyOut), required=True)


class ResultsOut(Out):
    survey_id = fields.Integer(required=True)
    title = fields.String(required=True)
    status = fields.String(required=True)
    responses = fields.Integer(required=True)
    paid_responses = fields.Integer(required=True)
    min_group = fields.Integer(required=True, metadata={"description": "smaller groups are not shown"})
    questions = fields.List(fields.Nested(TallyOut), required=True)
    communities = fields.List(fields.Nested(CommunityTallyOut), required=True)
    hidden_communities = fields.Integer(required=True)


@blp.route("/surveys", methods=["POST"])
@requires_roles("officer")
@blp.arguments(SurveyIn())
@blp.response(201, SurveyOut)
def create_survey(body: dict):
    """Build a survey for a community in your scope; published at once unless `publish` is false."""
    return surveys.create_survey(current_books(), current_actor(), **body)


@blp.route("/surveys", methods=["GET"])
@requires_roles()
@blp.arguments(ListQuery(), location="query")
@blp.response(200, SurveyOut(many=True))
def list_surveys(query: dict):
    """Officers: the surveys of the communities you serve. Residents: the open surveys of your area."""
    return surveys.list_surveys(current_books(), current_actor(), **query)


@blp.route("/surveys/<int:survey_id>", methods=["GET"])
@requires_roles()
@blp.response(200, SurveyOut)
def get_survey(survey_id: int):
    """One survey and its questions (404 for a survey not meant for you)."""
    return surveys.get_survey(current_books(), current_actor(), survey_id)


@blp.route("/surveys/<int:survey_id>/publish", methods=["POST"])
@requires_roles("officer")
@blp.response(200, SurveyOut)
def publish_survey(survey_id: int):
    """Open a draft for answers; a paid survey's rewards are held from the community budget."""
    return surveys.publish_survey(current_books(), current_actor(), survey_id)


@blp.route("/surveys/<int:survey_id>/close", methods=["POST"])
@requires_roles("officer")
@blp.response(200, SurveyOut)
def close_survey(survey_id: int):
    """Stop taking answers; unpaid rewards go back to the budget. Closing twice is harmless."""
    return surveys.close_survey(current_books(), current_actor(), survey_id)


@blp.route("/surveys/<int:survey_id>/responses", methods=["POST"])
@requires_roles("volunteer", "leader")
@blp.arguments(AnswersIn())
@blp.response(201, SurveyAnswerOut)
def answer_survey(body: dict, survey_id: int):
    """Answer a survey of your area once; a paid survey pays your wallet at once."""
    return surveys.answer_survey(current_books(), current_actor(), survey_id, body["answers"])


@blp.route("/surveys/<int:survey_id>/results", methods=["GET"])
@requires_roles("officer")
@blp.response(200, ResultsOut)
def survey_results(survey_id: int):
    """Counts per option, overall and per community; any group under five respondents is not shown."""
    return surveys.survey_results(current_books(), current_actor(), survey_id)


@blp.route("/surveys/<int:survey_id>/results.csv", methods=["GET"])
@requires_roles("officer")
@blp.response(200, {"type": "string"}, content_type="text/csv")
def survey_results_csv(survey_id: int):
    """The overall results as CSV (UTF-8 with BOM for Excel; formula-safe)."""
    data = surveys.results_csv(current_books(), current_actor(), survey_id)
    return Response(data, content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="survey-{survey_id}.csv"',
                             "Cache-Control": "no-store"})
