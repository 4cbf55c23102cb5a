"""The one catalogue of domain errors.

Every refusal the product can give is a ``DomainError`` whose ``code`` is a stable snake_case name of
the rule that was broken. The web layers map the error's ``category`` to an HTTP status once
(``merchant_api.errors``), to an HTML page once (``admin_ui``) and to a CLI exit once
(``goldbean.cli_common``); nothing else decides how a refusal looks.

Codes are part of the public API: never rename one, only add.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# category -> meaning; merchant_api maps these to HTTP statuses.
INVALID = "invalid"  # the input breaks a rule of shape or range (422)
UNAUTHENTICATED = "unauthenticated"  # who you are is not known (401)
FORBIDDEN = "forbidden"  # you may not do this (403)
NOT_FOUND = "not_found"  # no such thing (404)
CONFLICT = "conflict"  # the state of the books forbids it now (409)
TOO_MANY = "too_many"  # throttled (429)
UNAVAILABLE = "unavailable"  # retry later (503)


@dataclass(frozen=True)
class ErrorSpec:
    code: str
    category: str
    message: str  # English default; the UI translates by code


CATALOGUE: dict[str, ErrorSpec] = {}


def _spec(code: str, category: str, message: str) -> ErrorSpec:
    if code in CATALOGUE:
        raise ValueError(f"duplicate error code {code}")
    spec = ErrorSpec(code, category, message)
    CATALOGUE[code] = spec
    return spec


# --- input and identity -------------------------------------------------------------------------
VALIDATION_FAILED = _spec("validation_failed", INVALID, "The request is malformed.")
INVALID_AMOUNT = _spec("invalid_amount", INVALID, "Amounts are whole beans between 1 and the maximum.")
SAME_ACCOUNT = _spec("same_account", INVALID, "A transfer needs two different accounts.")
UNKNOWN_TRANSFER_KIND = _spec("unknown_transfer_kind", INVALID, "No such transfer kind.")
NOT_AUTHENTICATED = _spec("not_authenticated", UNAUTHENTICATED, "Sign in first.")
INVALID_CREDENTIALS = _spec("invalid_credentials", UNAUTHENTICATED, "Wrong username or password.")
INVALID_TOKEN = _spec("invalid_token", UNAUTHENTICATED, "The access token is not valid.")
TOKEN_EXPIRED = _spec("token_expired", UNAUTHENTICATED, "The access token has expired.")
PERMISSION_DENIED = _spec("permission_denied", FORBIDDEN, "You may not do this.")
OUT_OF_SCOPE = _spec("out_of_scope", FORBIDDEN, "This is outside the org units you serve.")
NOT_FOUND_ERR = _spec("not_found", NOT_FOUND, "No such object.")
ACCOUNT_LOCKED = _spec("account_locked", TOO_MANY, "Too many failed sign-ins; try again later.")
USER_INACTIVE = _spec("user_inactive", UNAUTHENTICATED, "This user is not active.")
USER_NOT_FOUND = _spec("user_not_found", NOT_FOUND, "No such user.")
ORG_UNIT_NOT_FOUND = _spec("org_unit_not_found", NOT_FOUND, "No such org unit.")
# --- earning (issue 3) -----------------------------------------------------------------------------
CLAIM_NOT_FOUND = _spec("claim_not_found", NOT_FOUND, "No such claim.")
CLAIM_ALREADY_DECIDED = _spec("claim_already_decided", CONFLICT, "The claim was already verified or rejected.")
AWARD_NOT_FOUND = _spec("award_not_found", NOT_FOUND, "No such award.")
AWARD_NOT_PENDING = _spec("award_not_pending", CONFLICT, "The award is not waiting for a second approval.")
AWARD_NOT_REVERSIBLE = _spec("award_not_reversible", CONFLICT, "Only a posted award can be reversed.")
OWN_APPROVAL = _spec("own_approval", FORBIDDEN, "Nobody approves their own award; a different officer must.")
SELF_DEALING = _spec("self_dealing", FORBIDDEN, "Officers may not verify or award their own work.")
NOT_A_VOLUNTEER = _spec("not_a_volunteer", INVALID, "That person is not a registered volunteer.")
NOT_A_COMMUNITY = _spec("not_a_community", INVALID, "Budgets belong to communities; name a community.")
CLAIM_IN_FUTURE = _spec("claim_in_future", INVALID, "The work cannot end in the future.")
CLAIM_TOO_OLD = _spec("claim_too_old", INVALID, "The work is older than claims are accepted for.")
TIER_REQUIRED = _spec("tier_required", INVALID, "Verifying a tip needs a value tier.")
VOLUNTEER_DAILY_CAP = _spec("volunteer_daily_cap", CONFLICT, "The volunteer's daily award cap would be exceeded.")
VOLUNTEER_MONTHLY_CAP = _spec(
    "volunteer_monthly_cap", CONFLICT, "The volunteer's monthly award cap would be exceeded."
)
OFFICER_DAILY_CAP = _spec("officer_daily_cap", CONFLICT, "Your daily award cap would be exceeded.")
BEANS_ALREADY_SPENT = _spec(
    "beans_already_spent", CONFLICT,
    "The volunteer already spent some of these beans; ask for a partial reversal of what remains.",
)
IMPORT_FAILED = _spec("import_failed", INVALID, "The award file has errors; nothing was imported.")
USERNAME_TAKEN = _spec("username_taken", CONFLICT, "That username or phone is already registered.")
WEAK_PASSWORD = _spec("weak_password", INVALID, "Passwords need at least 8 characters.")

# --- accounts and transfers ---------------------------------------------------------------------
ACCOUNT_NOT_FOUND = _spec("account_not_found", NOT_FOUND, "No such account.")
ACCOUNT_EXISTS = _spec("account_exists", CONFLICT, "An account with this code exists.")
TRANSFER_NOT_FOUND = _spec("transfer_not_found", NOT_FOUND, "No such transfer.")
EXISTS_WITH_DIFFERENT_FIELDS = _spec(
    "exists_with_different_fields",
    CONFLICT,
    "A transfer with this id exists with different fields.",
)
INSUFFICIENT_FUNDS = _spec("insufficient_funds", CONFLICT, "Not enough beans in the account.")
ACCOUNT_FROZEN = _spec("account_frozen", CONFLICT, "The account is frozen.")
ACCOUNT_CLOSED = _spec("account_closed", CONFLICT, "The account is closed.")
WALLET_FROZEN = _spec("wallet_frozen", CONFLICT, "The wallet is frozen.")
PENDING_NOT_FOUND = _spec("pending_transfer_not_found", NOT_FOUND, "No such hold.")
PENDING_ALREADY_RESOLVED = _spec(
    "pending_transfer_already_resolved", CONFLICT, "The hold was already posted, voided or expired."
)
PENDING_EXPIRED = _spec("pending_transfer_expired", CONFLICT, "The hold has expired.")
NOT_A_PENDING_TRANSFER = _spec("not_a_pending_transfer", INVALID, "That transfer is not a hold.")
EXCEEDS_PENDING_AMOUNT = _spec(
    "exceeds_pending_amount", INVALID, "Cannot post more than the hold reserved."
)
INVALID_TIMEOUT = _spec("invalid_timeout", INVALID, "A hold's timeout must be positive and bounded.")
NOT_REVERSIBLE = _spec("not_reversible", CONFLICT, "This transfer cannot be reversed.")
EXCEEDS_REVERSIBLE_AMOUNT = _spec(
    "exceeds_reversible_amount", CONFLICT, "That is more than remains to be reversed."
)
LINKED_TRANSFER_FAILED = _spec(
    "linked_transfer_failed", CONFLICT, "A transfer in the batch failed; nothing was committed."
)
BATCH_TOO_LARGE = _spec("batch_too_large", INVALID, "Too many transfers in one batch.")
BATCH_EMPTY = _spec("batch_empty", INVALID, "A batch needs at least one transfer.")
DUPLICATE_ID_IN_BATCH = _spec("duplicate_id_in_batch", INVALID, "Two transfers in the batch share an id.")
# --- redemption (issue 4) --------------------------------------------------------------------------
INVALID_CODE = _spec("invalid_code", INVALID, "The payment code is not valid.")
CODE_EXPIRED = _spec("code_expired", INVALID, "The payment code has expired; show a fresh one.")
CODE_NOT_YET_VALID = _spec("code_not_yet_valid", INVALID, "The payment code is not valid yet.")
CODE_ALREADY_USED = _spec("code_already_used", CONFLICT, "The payment code was already used.")
UNKNOWN_KEY = _spec("unknown_key", INVALID, "The code names a key that is unknown or retired.")
MERCHANT_SUSPENDED = _spec("merchant_suspended", CONFLICT, "The merchant may not redeem beans now.")
LIMIT_EXCEEDED = _spec("limit_exceeded", CONFLICT, "A daily redemption limit would be exceeded.")
IDEMPOTENCY_CONFLICT = _spec(
    "idempotency_conflict", INVALID, "This Idempotency-Key was used with a different request."
)
IDEMPOTENCY_KEY_REQUIRED = _spec(
    "idempotency_key_required", INVALID, "Send an Idempotency-Key header (1 to 100 characters)."
)
PIN_REQUIRED = _spec("pin_required", INVALID, "A bean card needs its PIN.")
WRONG_PIN = _spec("wrong_pin", FORBIDDEN, "Wrong PIN.")
CARD_LOCKED = _spec("card_locked", FORBIDDEN, "The card is locked after too many wrong PINs; an officer can unlock it.")
CARD_REVOKED = _spec("card_revoked", FORBIDDEN, "The card was revoked.")
INVALID_TILL_KEY = _spec("invalid_till_key", UNAUTHENTICATED, "The till key is not valid or was revoked.")
UNKNOWN_ITEM = _spec("unknown_item", INVALID, "No such item in this merchant's catalogue.")
NOT_REFUNDABLE = _spec("not_refundable", CONFLICT, "This redemption cannot be refunded.")
REFUND_WINDOW_CLOSED = _spec("refund_window_closed", CONFLICT, "The refund window for this redemption has closed.")
EXCEEDS_REFUNDABLE = _spec("exceeds_refundable", CONFLICT, "That is more than remains to be refunded.")
HOLD_NOT_AWAITING = _spec("hold_not_awaiting", CONFLICT, "This redemption is not waiting for confirmation.")
PERIOD_NOT_ENDED = _spec("period_not_ended", INVALID, "A period can be settled only after it has ended.")
DEVICE_REVOKED = _spec("device_revoked", FORBIDDEN, "This phone's key was revoked; its offline codes are refused.")
DEVICE_KEY_INVALID = _spec("device_key_invalid", INVALID, "The public key is not an Ed25519 or P-256 public key (JWK).")
DEVICE_ALREADY_REGISTERED = _spec("device_already_registered", CONFLICT, "This public key is already registered.")
TOO_MANY_DEVICES = _spec("too_many_devices", CONFLICT, "Too many phones hold a key for this wallet; revoke one first.")
OFFLINE_LIMIT_EXCEEDED = _spec("offline_limit_exceeded", CONFLICT,
                               "Today's limit of offline codes would be exceeded; show an online code.")
BUSY = _spec("busy", UNAVAILABLE, "The books are busy; try again.")
SIGNING_KEY_MISSING = _spec("signing_key_missing", UNAVAILABLE, "The ledger signing key is not loaded.")
# --- the database itself (issue 19: failovers) -------------------------------------------------------
DATABASE_UNAVAILABLE = _spec("database_unavailable", UNAVAILABLE,
                             "The database cannot be reached (a failover may be under way); nothing was changed. "
                             "Try again in a few seconds.")
COMMIT_OUTCOME_UNKNOWN = _spec("commit_outcome_unknown", UNAVAILABLE,
                               "The connection to the database was lost while committing: the change may or may "
                               "not have been made. Send it again with the same Idempotency-Key.")

# --- surveys (社调) -------------------------------------------------------------------------------
SURVEY_NOT_FOUND = _spec("survey_not_found", NOT_FOUND, "No such survey.")
SURVEY_NOT_OPEN = _spec("survey_not_open", CONFLICT, "The survey is not open for answers.")
SURVEY_NOT_DRAFT = _spec("survey_not_draft", CONFLICT, "Only a draft survey can be published.")
SURVEY_FULL = _spec("survey_full", CONFLICT, "The survey has all the responses it asked for.")
SURVEY_ALREADY_ANSWERED = _spec("survey_already_answered", CONFLICT, "You have answered this survey already.")
SURVEY_OUTSIDE_AREA = _spec("survey_outside_area", FORBIDDEN, "This survey is for residents of another area.")
SURVEY_ANSWER_INVALID = _spec("survey_answer_invalid", INVALID,
                              "An answer is missing, unknown or out of range; nothing was recorded.")
SURVEY_INVALID = _spec("survey_invalid", INVALID, "The survey's questions, targets or limits are not valid.")

# --- recruitment and accounts (志愿者征集) ------------------------------------------------------------
CALL_NOT_FOUND = _spec("call_not_found", NOT_FOUND, "No such call for volunteers.")
CALL_CLOSED = _spec("call_closed", CONFLICT, "This call for volunteers is closed.")
SIGNUP_NOT_FOUND = _spec("signup_not_found", NOT_FOUND, "No such sign-up.")
SIGNUP_NOT_PENDING = _spec("signup_not_pending", CONFLICT, "This sign-up was already approved or declined.")
SIGNUP_ALREADY_WAITING = _spec("signup_already_waiting", CONFLICT, "A sign-up with this mobile number is already waiting.")
ERASURE_NOT_FOUND = _spec("erasure_not_found", NOT_FOUND, "No such erasure request.")
ERASURE_ALREADY_REQUESTED = _spec("erasure_already_requested", CONFLICT, "Your erasure request is already waiting.")
ERASURE_COMPLETED = _spec("erasure_completed", CONFLICT, "This erasure was already completed.")
ERASURE_BEANS_ON_HOLD = _spec("erasure_beans_on_hold", CONFLICT,
                              "Beans in this wallet are on hold; settle them before erasing.")
INVALID_PHONE = _spec("invalid_phone", INVALID, "A mobile number is 11 digits starting with 1.")
CONSENT_REQUIRED = _spec("consent_required", INVALID, "Read and accept the current notice (how your data is used and kept) first.")
GUARDIAN_CONSENT_REQUIRED = _spec("guardian_consent_required", INVALID,
                                  "Under 14, a parent or guardian must consent, with their name and mobile number.")
TOO_YOUNG = _spec("too_young", INVALID, "This call needs volunteers of a higher age.")
CHALLENGE_FAILED = _spec("challenge_failed", INVALID, "The answer to the question is wrong or too late; try a new one.")
RESET_CODE_INVALID = _spec("reset_code_invalid", UNAUTHENTICATED,
                           "The reset code is wrong, used or expired; ask your community office for a new one.")
WRONG_PASSWORD = _spec("wrong_password", FORBIDDEN, "The current password is not right.")

# --- the auditor's desk (issue 6) ---------------------------------------------------------------
CJK_FONT_MISSING = _spec("cjk_font_missing", UNAVAILABLE, "No Chinese font is installed, so no PDF can be made.")
EXPORT_UNREADABLE = _spec("export_unreadable", INVALID, "The file is not a Gold Bean journal export.")
NO_TRUSTED_KEY = _spec("no_trusted_key", INVALID, "No ledger public key to verify against.")

# --- security (issue 8) ---------------------------------------------------------------------------
TOO_MANY_ATTEMPTS = _spec("too_many_attempts", TOO_MANY,
                          "Too many failed attempts from this address; try later or ask an officer to unlock it.")
RATE_LIMITED = _spec("rate_limited", TOO_MANY, "Too many requests of this kind; slow down.")

# --- patrols (issue 16) ----------------------------------------------------------------------------
POST_NOT_FOUND = _spec("post_not_found", NOT_FOUND, "No such patrol post.")
SHIFT_NOT_FOUND = _spec("shift_not_found", NOT_FOUND, "No such shift.")
NOT_A_POST_UNIT = _spec("not_a_post_unit", INVALID, "Patrol posts belong to a community, resident group or building.")
BEANS_PER_HOUR_OUT_OF_LIMITS = _spec("beans_per_hour_out_of_limits", INVALID,
                                     "Beans per hour must stay within the rule table's limits.")
SHIFT_CANCELLED = _spec("shift_cancelled", CONFLICT, "The shift was cancelled.")
SHIFT_FULL = _spec("shift_full", CONFLICT, "The shift already has as many volunteers as it needs.")
ALREADY_SIGNED_UP = _spec("already_signed_up", CONFLICT, "You are already signed up for this shift.")
SHIFT_OVERLAPS = _spec("shift_overlaps", CONFLICT, "You are signed up for another shift at that time.")
SIGNUP_CLOSED = _spec("signup_closed", CONFLICT, "This shift has started or ended; sign-up is closed.")
WITHDRAW_CUTOFF_PASSED = _spec("withdraw_cutoff_passed", CONFLICT,
                               "It is too close to the shift to withdraw; tell the team leader or the officer.")
MINOR_NIGHT_SHIFT = _spec("minor_night_shift", CONFLICT,
                          "Volunteers under 18 do not patrol at night (the shift runs between 22:00 and 06:00).")
NOT_SIGNED_UP = _spec("not_signed_up", CONFLICT, "You are not signed up for this shift.")
SIGNUP_PENDING = _spec("signup_pending", CONFLICT, "Your sign-up awaits an officer (insurance); you cannot check in yet.")
ALREADY_CHECKED_IN = _spec("already_checked_in", CONFLICT, "Already checked in.")
NOT_CHECKED_IN = _spec("not_checked_in", CONFLICT, "Check in first.")
ALREADY_CHECKED_OUT = _spec("already_checked_out", CONFLICT, "Already checked out.")
PROOF_REQUIRED = _spec("proof_required", INVALID, "Scan the leader's code, or the post sign with your location.")
WRONG_POST = _spec("wrong_post", INVALID, "That code belongs to another post or shift.")
SIGN_REPRINTED = _spec("sign_reprinted", INVALID, "That post sign was replaced; scan the sign now on the post.")
LEADER_CODE_REPLAYED = _spec("leader_code_replayed", CONFLICT,
                             "That code was already used from another phone; scan a fresh one.")
OUTSIDE_SHIFT_WINDOW = _spec("outside_shift_window", CONFLICT, "It is too early or too late for this shift.")
OUTSIDE_POST_RADIUS = _spec("outside_post_radius", CONFLICT, "Your location is too far from the post.")
LOCATION_TOO_VAGUE = _spec("location_too_vague", INVALID, "Your phone's location is too imprecise; try outdoors.")
ATTENDANCE_NOT_AWAITING = _spec("attendance_not_awaiting", CONFLICT,
                                "This attendance is not waiting for an officer.")
INVALID_CERTIFICATE = _spec("invalid_certificate", INVALID, "This certificate is not genuine or was altered.")


# --- the police radar (issue 15) ---------------------------------------------------------------------
NOTICE_NOT_FOUND = _spec("notice_not_found", NOT_FOUND, "No such notice (or it is not for your area).")
NOTICE_NOT_OPEN = _spec("notice_not_open", CONFLICT, "The notice is closed or has ended.")
NOTICE_END_INVALID = _spec("notice_end_invalid", INVALID, "A notice ends in the future, within 31 days.")
ALREADY_ANSWERED = _spec("already_answered", CONFLICT, "You already answered this notice.")
ANSWER_NOT_FOUND = _spec("answer_not_found", NOT_FOUND, "No such answer.")
EXCEEDS_BOUNTY = _spec("exceeds_bounty", CONFLICT, "That is more than remains of the notice's bounty.")
RESERVE_RELEASED = _spec("reserve_released", CONFLICT,
                         "The beans set aside for this claim were released (the notice closed or ended).")
REPORT_NOT_FOUND = _spec("report_not_found", NOT_FOUND, "No such report.")
REPORT_NOT_OPEN = _spec("report_not_open", CONFLICT, "This report was already closed or made a notice.")
REPORT_HAS_NO_PHONE = _spec("report_has_no_phone", NOT_FOUND,
                            "This report has no call-back number (none was given, or it was erased after the "
                            "retention period).")
PHOTO_INVALID = _spec("photo_invalid", INVALID, "Photos are JPEG, PNG or WebP images, at most 5 MB each.")
TOO_MANY_PHOTOS = _spec("too_many_photos", INVALID, "At most four photos.")

class DomainError(Exception):
    """A refusal with a stable code. Raising one inside a unit of work rolls it back."""

    def __init__(self, spec: ErrorSpec, message: str | None = None, **details: Any) -> None:
        self.spec = spec
        self.code = spec.code
        self.category = spec.category
        self.message = message or spec.message
        self.details = details
        super().__init__(f"{self.code}: {self.message}")

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


def error_spec(code: str) -> ErrorSpec:
    return CATALOGUE[code]
