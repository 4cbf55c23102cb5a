"""Every model module is imported here so that ``Base.metadata`` is complete for Alembic."""

from ledger.access.models import Merchant, OrgUnit, RateCounter, RoleGrant, SecurityEvent, User, WebSession
from ledger.earning.models import Award, Claim
from ledger.infra.base import NAMING_CONVENTION, Base
from ledger.journal.models import Account, Checkpoint, Entry, Transfer
from ledger.patrols.models import (
    PatrolPost,
    PatrolShift,
    PatrolSignup,
    ServiceCertificate,
    ServiceRecord,
    ShiftSeries,
    UsedLeaderCode,
)
from ledger.people.models import Consent, RecruitmentCall, ResetCode, Signup, SignupChallenge
from ledger.privacy.models import ErasureRequest
from ledger.radar.models import Answer, Event, Notice, NoticeArea, NoticeVersion, Photo, Preference, Report
from ledger.redemption.models import (
    Card,
    CatalogueItem,
    IdempotencyRecord,
    PayNumber,
    Redemption,
    Refund,
    Settlement,
    SpentCode,
    Till,
    WalletDevice,
)
from ledger.surveys.models import Survey, SurveyQuestion, SurveyRespondent, SurveyResponse, SurveyTarget
