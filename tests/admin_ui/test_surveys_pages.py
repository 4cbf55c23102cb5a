"""Surveys in the pages, as the demo district's officer and volunteer would use them: the officer writes a
survey in the short one-line-per-question form, publishes it, the volunteer answers on the phone page and
is paid once; a second answer is refused; the officer sees results only once five have answered."""

from __future__ import annotations

import re

from doors import books_of
from ledger.access.identity import wallet_of
from ledger.journal.accounts import get_account
from ledger.schema import User
from tests.admin_ui.conftest import asks_first_and_acts_once, csrf_of

QUESTIONS = "单选: 夜间照明够吗? | 够 | 不够\n多选: 最担心什么? | 盗窃 | 诈骗\n评分: 安全感 | 5\n填空: 建议 (选填)"


def _balance(app, username: str) -> int:
    books = books_of(app)
    with books.session(readonly=True) as s:
        user_id = s.query(User.id).filter(User.username == username).scalar()
    return get_account(books, wallet_of(books, user_id)).balance


def _community_id(page: str) -> str:
    return re.search(r'<option value="(\d+)">金沙社区</option>', page).group(1)


def test_officer_builds_and_publishes_volunteer_answers_once(seeded, signed_in) -> None:
    officer = signed_in("officer")
    page = officer.get("/surveys")
    assert page.status_code == 200 and "新建社调" in page.text
    made = officer.post("/surveys/new", data={
        "csrf_token": csrf_of(page.text), "org_unit_id": _community_id(page.text), "title": "楼道照明调查",
        "questions": QUESTIONS, "reward": "2", "max_responses": "20", "days": "7"})
    assert made.status_code == 302, made.text
    survey_url = made.headers["Location"]
    draft = officer.get(survey_url)
    assert "草稿" in draft.text and "夜间照明够吗?" in draft.text
    published = officer.post(survey_url + "/publish", data={"csrf_token": csrf_of(draft.text)})
    assert published.status_code == 302

    volunteer = signed_in("volunteer")
    listing = volunteer.get("/surveys")
    assert "楼道照明调查" in listing.text
    form = volunteer.get(survey_url)
    assert "匿名" in form.text and 'type="radio"' in form.text
    ids = re.findall(r'name="q(\d+)"', form.text)
    single, multiple, scale = ids[0], ids[2], ids[4]
    before = _balance(seeded, "volunteer")
    answered = volunteer.post(survey_url + "/answer", data={
        "csrf_token": csrf_of(form.text), f"q{single}": "不够", f"q{multiple}": ["盗窃", "诈骗"], f"q{scale}": "4"})
    assert answered.status_code == 302
    assert "金豆已到账" in volunteer.get("/surveys").text
    assert _balance(seeded, "volunteer") == before + 2
    again = volunteer.post(survey_url + "/answer", data={"csrf_token": csrf_of(form.text), f"q{single}": "够",
                                                         f"q{scale}": "1"})
    assert again.status_code == 409
    assert _balance(seeded, "volunteer") == before + 2
    assert "满 5 人作答后才显示结果" in officer.get(survey_url).text


def test_a_bad_question_line_is_explained_and_nothing_is_saved(seeded, signed_in) -> None:
    officer = signed_in("officer")
    page = officer.get("/surveys")
    bad = officer.post("/surveys/new", data={"csrf_token": csrf_of(page.text),
                                             "org_unit_id": _community_id(page.text), "title": "t",
                                             "questions": "问答: 什么?", "reward": "0"})
    assert bad.status_code == 422 and "单选" in bad.text
    assert "楼道" not in officer.get("/surveys").text


def test_closing_a_survey_asks_first_on_a_page_and_acts_once(seeded, signed_in) -> None:
    """Closing takes no more answers and gives unpaid rewards back: a page of its own asks first (no script
    needed), and a resent confirmation closes nothing twice."""
    from ledger.schema import Survey

    officer = signed_in("officer")
    page = officer.get("/surveys")
    made = officer.post("/surveys/new", data={
        "csrf_token": csrf_of(page.text), "org_unit_id": _community_id(page.text), "title": "楼道照明调查",
        "questions": QUESTIONS, "reward": "2", "max_responses": "20", "days": "7"})
    survey_url = made.headers["Location"]
    officer.post(survey_url + "/publish", data={"csrf_token": csrf_of(officer.get(survey_url).text)})
    shown = officer.get(survey_url)
    assert "onsubmit" not in shown.text
    survey_id = int(survey_url.rstrip("/").rsplit("/", 1)[1])

    def status():
        with books_of(seeded).session(readonly=True) as s:
            return s.get(Survey, survey_id).status
    assert status() == "published"
    asks_first_and_acts_once(officer, survey_url + "/close", {"csrf_token": csrf_of(shown.text)}, status, "楼道照明调查")
    assert status() == "closed"
