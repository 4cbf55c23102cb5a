"""Room ``radar`` (警务雷达): officers push notices to the volunteers of an area; volunteers answer with
tips; a notice's bounty is reserved from a community budget, paid to verified answers and released when the
notice closes or ends; residents without an account report online.

Owns the tables ``radar_notices``, ``radar_notice_versions``, ``radar_notice_areas``, ``radar_answers``,
``radar_reports``, ``radar_photos``, ``radar_preferences`` and ``radar_events`` (``models``).

**Layered above earning**: an answer is an earning claim (``radar_answers`` links it to its notice) and a
bounty is an earning reserve (a hold the claim is paid from), so answers are verified, rejected and approved
through earning's claim and award use cases (the existing claim routes and pages), with earning's caps,
maker-checker and "paid once"; earning knows nothing of notices.
May call: ``ledger.earning``, ``ledger.service``, ``ledger.notify``, ``ledger.access``, ``ledger.journal``,
``ledger.infra``, ``ledger.errors``. Not the other capability rooms (``ledger.redemption``, ``ledger.people``,
``ledger.surveys``, ``ledger.patrols``: an import-linter contract).
"""

# the room's public use cases, so that a door writes ``from ledger import radar``
from ledger.radar.answers import AnswerView, answer_notice, list_answers, my_answers
from ledger.radar.live import announce_in, latest_event_id, preferences, set_preferences
from ledger.radar.models import NOTICE_KINDS, REPORT_CATEGORIES
from ledger.radar.notices import (
    NoticeView,
    amend_notice,
    close_notice,
    expire_notices,
    get_notice,
    list_notices,
    notice_history,
    publish_notice,
)
from ledger.radar.photos import add_answer_photo, add_notice_photo, clean_image, get_photo, notice_photo_ids
from ledger.radar.reports import (
    CONSENT_VERSION,
    RETENTION_DAYS,
    ReportView,
    RevealedPhone,
    convert_report,
    list_reports,
    purge_reports,
    report_places,
    reveal_phone,
    submit_report,
    triage_report,
)
from ledger.radar.stream import LiveChannel, events_for
