"""Room ``surveys`` (社调): questions to the residents of an area, a complete response paid once.

Owns the tables ``surveys``, ``survey_questions``, ``survey_targets``, ``survey_respondents`` and
``survey_responses`` (``models``). Publishing a paid survey holds reward x maximum responses from the owning
community's budget; each complete response is paid at once from that hold (the hold is posted in part and the
rest held again, in one linked batch); closing, or the hold's own expiry at the survey's end, releases the rest.
Who answered and what they answered are kept apart, so an anonymous survey's answers name nobody.
May call: ``ledger.access``, ``ledger.journal``, ``ledger.infra``, ``ledger.errors``. Not the other capability rooms.
"""

# the room's public use cases, so that a door writes ``from ledger import surveys``
from ledger.surveys.core import (
    DEFAULT_OPEN_DAYS,
    MAX_OPEN_DAYS,
    MAX_QUESTIONS,
    MAX_RESPONSES,
    MAX_REWARD,
    MIN_GROUP,
    QUESTION_KINDS,
    SurveyView,
    answer_survey,
    close_survey,
    communities_run_by,
    create_survey,
    get_survey,
    list_surveys,
    publish_survey,
    results_csv,
    survey_page,
    survey_results,
)
