"""The one place where a refusal's stable code becomes a plain sentence that tells the person what to
do next (translated through the catalogue). Codes without a sentence of their own fall back to one per
category, so a new code never shows a raw English message to a Chinese cashier."""

from __future__ import annotations

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from ledger import errors
from ledger.errors import DomainError

SENTENCES = {
    # till
    "invalid_code": _l("This code cannot be read. Ask the customer to open their wallet again and scan the new code."),
    "code_expired": _l("This code has expired. Ask the customer to refresh the code in their wallet and scan again."),
    "code_not_yet_valid": _l("This code is not valid yet. Check the till's clock, then scan again."),
    "code_already_used": _l("This code was already used. Ask the customer to show a new code."),
    "unknown_key": _l("This code was signed with a key that is no longer accepted. Ask for a new code."),
    "insufficient_funds": _l("Not enough beans. Tell the customer their balance and enter a smaller amount."),
    "limit_exceeded": _l("Today's redemption limit would be exceeded. Enter a smaller amount or try again tomorrow."),
    "merchant_suspended": _l("This shop may not redeem beans right now. Call the community office."),
    "wallet_frozen": _l("This wallet is frozen. Ask the customer to contact their community office."),
    "pin_required": _l("This is a bean card: ask the customer to type their PIN on the pad."),
    "wrong_pin": _l("Wrong PIN. Ask the customer to type it again carefully."),
    "card_locked": _l("This card is locked after too many wrong PINs. The customer should ask an officer to unlock it."),
    "card_revoked": _l("This card was cancelled. The customer should ask their community for a new card."),
    "unknown_item": _l("That item is no longer sold here. Choose another item."),
    "device_revoked": _l("This phone's offline codes were switched off. Ask the customer to go online and show a new code."),
    "offline_limit_exceeded": _l("Today's offline payments of this wallet are used up. Ask the customer to go online and show a new code."),
    "too_many_devices": _l("Offline codes are on for too many phones. Switch one off in the wallet's settings first."),
    "invalid_amount": _l("Enter a whole number of beans, 1 or more."),
    "not_refundable": _l("This redemption cannot be refunded (it is not completed)."),
    "refund_window_closed": _l("The refund period for this redemption is over."),
    "exceeds_refundable": _l("That is more than is left to refund. Enter a smaller amount."),
    "idempotency_conflict": _l("This form was already sent with other values. Start a new sale."),
    "hold_not_awaiting": _l("This payment is no longer waiting for you: it was confirmed, declined or it expired."),
    "busy": _l("The system is busy. Wait a moment and try again."),
    "database_unavailable": _l("The database is switching to its standby. Nothing was changed: wait a few "
                               "seconds and try again."),
    "commit_outcome_unknown": _l("The connection to the database was lost while saving: it may or may not have "
                                 "been saved. Check before you do it again."),
    "erasure_already_requested": _l("Your erasure request is already waiting for your community staff."),
    "erasure_beans_on_hold": _l("Beans of this wallet are on hold. Settle them first, then complete the erasure."),
    # sign-in and access
    "invalid_credentials": _l("Wrong username or password. Check them and try again."),
    "account_locked": _l("Too many wrong passwords. Wait 15 minutes, then try again."),
    "not_authenticated": _l("Please sign in first."),
    "permission_denied": _l("Your role may not do this. Ask an administrator if you need it."),
    "out_of_scope": _l("This belongs to a community you do not serve."),
    "user_inactive": _l("This user is disabled."),
    "username_taken": _l("That username or phone number is already registered. Choose another."),
    "weak_password": _l("The password needs at least 8 characters."),
    # earning
    "claim_already_decided": _l("Another officer already decided this claim. Refresh the queue."),
    "self_dealing": _l("You may not decide or award your own work. Ask another officer."),
    "own_approval": _l("A different officer must give the second approval."),
    "award_not_pending": _l("This award is no longer waiting for approval. Refresh the list."),
    "award_not_reversible": _l("Only a paid award can be reversed."),
    "tier_required": _l("Choose the value of the tip before verifying it."),
    "volunteer_daily_cap": _l("The volunteer reached today's award limit. Award the rest tomorrow."),
    "volunteer_monthly_cap": _l("The volunteer reached this month's award limit."),
    "officer_daily_cap": _l("You reached your daily award limit. Another officer can continue."),
    "claim_in_future": _l("The time of the work cannot be in the future. Check the date and time."),
    "claim_too_old": _l("This work is too old to be claimed."),
    "not_a_volunteer": _l("That person is not a registered volunteer."),
    "not_a_community": _l("Choose a community."),
    "beans_already_spent": _l("The volunteer already spent some of these beans; reverse only what remains."),
    "period_not_ended": _l("This month has not ended yet; settle it next month."),
    "cjk_font_missing": _l("No Chinese font is installed on the server; download CSV instead."),
    # patrols
    "shift_full": _l("This shift already has enough volunteers. Choose another shift."),
    "already_signed_up": _l("You are already on this shift."),
    "shift_overlaps": _l("You are on another shift at that time. Leave it first, or choose another shift."),
    "signup_closed": _l("This shift has started; sign-up is closed."),
    "minor_night_shift": _l("Volunteers under 18 do not patrol at night (22:00 to 06:00). Choose an earlier shift."),
    "withdraw_cutoff_passed": _l("It is too close to the shift to leave it here. Tell your team leader."),
    "not_signed_up": _l("You are not on this shift. Sign up first."),
    "signup_pending": _l("An officer must first confirm your insurance for this shift."),
    "already_checked_in": _l("You are already checked in."),
    "not_checked_in": _l("Check in first."),
    "already_checked_out": _l("You already checked out of this shift."),
    "proof_required": _l("Scan the leader's code, or the post sign and allow your location."),
    "wrong_post": _l("That code belongs to another post or shift. Scan the code at your post."),
    "sign_reprinted": _l("That post sign was replaced. Scan the sign now on the post."),
    "leader_code_replayed": _l("That code was already used by another phone. Ask the leader for a fresh one."),
    "outside_shift_window": _l("It is too early or too late for this shift."),
    "outside_post_radius": _l("You seem too far from the post. Go to the post and try again."),
    "location_too_vague": _l("Your location is too imprecise. Step outside and try again."),
    "beans_per_hour_out_of_limits": _l("The beans per hour are outside the allowed range."),
    "attendance_not_awaiting": _l("This attendance was already decided. Refresh the page."),
    "invalid_certificate": _l("This certificate is not genuine or was altered."),
    "csrf": _l("This form has expired. Go back, reload the page and try again."),
    # surveys
    "survey_not_found": _l("This survey does not exist or is not meant for you."),
    "survey_not_open": _l("This survey is not taking answers now."),
    "survey_not_draft": _l("Only a draft can be published; this survey was published already."),
    "survey_full": _l("This survey has all the answers it asked for. Thank you all the same."),
    "survey_already_answered": _l("You have answered this survey already. Each person answers once."),
    "survey_outside_area": _l("This survey is for the residents of another area."),
    "survey_answer_invalid": _l("Please answer every question that is not marked optional, then submit again."),
    "survey_invalid": _l("Check the questions (2 or more options for a choice), the reward (0 to 100 beans) and the days (1 to 31)."),
    # recruitment and accounts
    "call_not_found": _l("This call for volunteers does not exist."),
    "call_closed": _l("This call for volunteers has closed. You can still sign up without it."),
    "signup_not_pending": _l("This sign-up was already decided."),
    "signup_already_waiting": _l("A sign-up with this mobile number is already waiting for the community's answer."),
    "invalid_phone": _l("Enter an 11-digit mobile number starting with 1."),
    "consent_required": _l("Tick the box to accept the privacy notice."),
    "guardian_consent_required": _l("Under 14: a parent or guardian must fill in their name and mobile number and tick their box."),
    "too_young": _l("This call is for older volunteers. You can still sign up without it."),
    "challenge_failed": _l("The answer to the sum was not right. Here is a new one."),
    "reset_code_invalid": _l("That code is wrong, used or expired. Ask your community office for a new one."),
    "wrong_password": _l("The current password is not right."),
    # the police radar
    "notice_not_open": _l("This notice has closed or ended; answers are no longer taken."),
    "already_answered": _l("You already sent a tip for this notice."),
    "exceeds_bounty": _l("That is more than is left of the reward. Enter a smaller number of beans."),
    "notice_end_invalid": _l("Choose an end time in the future, at most 28 days ahead."),
    "report_has_no_phone": _l("This report has no call-back number: the resident gave none, or it was erased "
                              "after the retention period."),
    "reserve_released": _l("The reward of this notice was released when it closed or ended; verify without beans."),
}

BY_CATEGORY = {
    errors.INVALID: _l("Some of what you entered is not valid. Check the form and try again."),
    errors.UNAUTHENTICATED: _l("Please sign in again."),
    errors.FORBIDDEN: _l("You may not do this."),
    errors.NOT_FOUND: _l("This was not found. It may have been removed; refresh the page."),
    errors.CONFLICT: _l("This cannot be done now; the records have changed. Refresh the page and check."),
    errors.TOO_MANY: _l("Too many attempts. Wait a while and try again."),
    errors.UNAVAILABLE: _l("The system is busy. Wait a moment and try again."),
}


def sentence_for(exc: DomainError) -> str:
    text = SENTENCES.get(exc.code) or BY_CATEGORY.get(exc.category) or BY_CATEGORY[errors.INVALID]
    if exc.code == "wrong_pin" and "tries_left" in exc.details:
        return gettext("Wrong PIN. %(n)s tries left; ask the customer to type it again carefully.",
                       n=exc.details["tries_left"])
    return str(text)


def sentence_for_code(code: str) -> str:
    return str(SENTENCES.get(code) or BY_CATEGORY[errors.INVALID])
