"""Surveys (社调) pages: residents see the open surveys of their area and answer once (paid at once);
officers build a survey from a short form, publish, close and read the results."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext

from doors import current_books
from ledger import errors, surveys
from ledger.errors import DomainError

from . import forms, web
from .messages import sentence_for

bp = Blueprint("ui_surveys", __name__, url_prefix="/surveys")
KIND_PREFIX = {"单选": "single", "多选": "multiple", "评分": "scale", "填空": "text",
               "single": "single", "multiple": "multiple", "scale": "scale", "text": "text"}


@bp.get("")
@web.requires()
def page():
    books = current_books()
    listed = surveys.list_surveys(books, g.actor)
    communities = surveys.communities_run_by(books, g.actor)
    return render_template("ui/surveys.html", surveys=listed, officer=bool(communities), communities=communities,
                           max_days=surveys.MAX_OPEN_DAYS, max_reward=surveys.MAX_REWARD)


@bp.get("/<int:survey_id>")
@web.requires()
def survey(survey_id: int):
    books = current_books()
    view, results = surveys.survey_page(books, g.actor, survey_id)
    return render_template("ui/survey.html", survey=view, staff=results is not None, results=results,
                           kept=forms.kept("survey"))


def _answers_from_form(view: surveys.SurveyView) -> dict[str, object]:
    answers: dict[str, object] = {}
    for q in view.questions:
        name = f"q{q.id}"
        if q.kind == "multiple":
            values = request.form.getlist(name)
            if values:
                answers[str(q.id)] = values
        elif q.kind == "scale":
            raw = request.form.get(name, "").strip()
            if raw:
                answers[str(q.id)] = int(raw) if raw.isdigit() else raw
        else:
            raw = request.form.get(name, "").strip()
            if raw:
                answers[str(q.id)] = raw
    return answers


@bp.post("/<int:survey_id>/answer")
@web.requires("volunteer", "leader")
def answer(survey_id: int):
    books = current_books()
    view = surveys.get_survey(books, g.actor, survey_id)
    answers = _answers_from_form(view)
    try:
        out = surveys.answer_survey(books, g.actor, survey_id, answers)
    except DomainError as exc:
        if exc.code != "survey_answer_invalid":
            raise
        # a question left out is said beside it, and every answer given stays (admin_ui/forms.py)
        wrong = {f"q{q.id}": gettext("Please answer this question.") for q in view.questions
                 if q.required and str(q.id) not in answers} or {"": sentence_for(exc)}
        forms.keep("survey", wrong, fields=tuple(f"q{q.id}" for q in view.questions))
        return redirect(url_for("ui_surveys.survey", survey_id=survey_id) + "#answer-form")
    if out["paid"]:
        flash(gettext("Thank you. %(n)s beans are in your wallet.", n=out["paid"]), "ok")
    else:
        flash(gettext("Thank you for your answers."), "ok")
    return redirect(url_for("ui_surveys.page"))


def _parse_questions(text: str) -> list[dict[str, object]]:
    """One question a line: ``单选: 问题 | 选项 | 选项``, ``多选: …``, ``评分: 问题 | 5``, ``填空: 问题``;
    a trailing ``(选填)`` makes it optional."""
    out = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        head, _, rest = line.replace("：", ":").partition(":")
        kind = KIND_PREFIX.get(head.strip())
        if kind is None or not rest.strip():
            raise DomainError(errors.SURVEY_INVALID, gettext("Each line starts with 单选, 多选, 评分 or 填空.") + f" ({line[:40]})",
                              form=True)
        parts = [p.strip() for p in rest.replace("｜", "|").split("|")]
        question, required = parts[0], True
        for mark in ("(选填)", "（选填）"):
            if question.endswith(mark):
                question, required = question[: -len(mark)].strip(), False
        q: dict[str, object] = {"kind": kind, "text": question, "required": required}
        if kind in ("single", "multiple"):
            q["options"] = [p for p in parts[1:] if p]
        if kind == "scale":
            q["scale_max"] = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 5
        out.append(q)
    return out


def _int_field(name: str, default: int) -> int:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise DomainError(errors.VALIDATION_FAILED, field=name)
    return int(raw)


@bp.post("/new")
@web.requires("officer")
def create():
    """Save a draft; a refusal comes back on the same form, with what was typed kept."""
    from .messages import sentence_for

    try:
        view = _create_from_form()
    except DomainError as exc:
        flash(exc.message if exc.details.get("form") else sentence_for(exc), "error")
        books = current_books()
        return render_template("ui/surveys.html", surveys=surveys.list_surveys(books, g.actor), officer=True,
                               communities=surveys.communities_run_by(books, g.actor), form=request.form,
                               max_days=surveys.MAX_OPEN_DAYS, max_reward=surveys.MAX_REWARD), 422
    flash(gettext("Draft saved. Check it, then publish."), "ok")
    return redirect(url_for("ui_surveys.survey", survey_id=view.id))


def _create_from_form() -> surveys.SurveyView:
    books = current_books()
    days = _int_field("days", 7)
    return surveys.create_survey(
        books, g.actor, org_unit_id=_int_field("org_unit_id", 0), title=request.form.get("title", ""),
        intro=request.form.get("intro", ""), questions=_parse_questions(request.form.get("questions", "")),
        target_org_unit_ids=[], reward=_int_field("reward", 0), max_responses=_int_field("max_responses", 100),
        closes_at=books.now() + dt.timedelta(days=min(days, surveys.MAX_OPEN_DAYS)),
        named=request.form.get("named") == "1")


@bp.post("/<int:survey_id>/publish")
@web.requires("officer")
def publish(survey_id: int):
    surveys.publish_survey(current_books(), g.actor, survey_id)
    flash(gettext("Published: residents of the area can answer now."), "ok")
    return redirect(url_for("ui_surveys.survey", survey_id=survey_id))


@bp.post("/<int:survey_id>/close")
@web.requires("officer")
def close(survey_id: int):
    """Closing a survey asks first: no more answers are taken and unpaid rewards go back."""
    books = current_books()
    view = surveys.get_survey(books, g.actor, survey_id)
    page = web.confirm_step(
        f"close-survey:{survey_id}", title=gettext("Close this survey?"),
        cancel=url_for("ui_surveys.survey", survey_id=survey_id), button=gettext("Close survey"),
        facts=[(gettext("Survey"), view.title), (gettext("Responses"), f"{view.responses} / {view.max_responses}")],
        warning=gettext("No more answers are taken; unpaid rewards go back to the budget. This cannot be undone."))
    if page is not None:
        return page
    surveys.close_survey(books, g.actor, survey_id)
    flash(gettext("Closed: unpaid rewards went back to the budget."), "ok")
    return redirect(url_for("ui_surveys.survey", survey_id=survey_id))


@bp.get("/<int:survey_id>/results.csv")
@web.requires("officer")
def results_csv(survey_id: int):
    data = surveys.results_csv(current_books(), g.actor, survey_id)
    return Response(data, content_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="survey-{survey_id}.csv"',
                             "Cache-Control": "no-store"})
