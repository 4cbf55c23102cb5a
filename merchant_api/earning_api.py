"""Earning: claims, verification, awards, second approval, reversal, the fund, leaderboards.

Every view is thin: parse (unknown fields rejected, strict integers), call one ``ledger.earning`` use
case with the signed-in actor, return the result. Scope (which org units the actor serves) is checked
by the use case against the object's org unit.
"""

from __future__ import annotations

from marshmallow import fields, validate

from doors import current_books
from ledger import earning

from .auth import current_actor, requires_roles
from .edge import Blueprint
from .schemas import Boolean, In, Out, String

blp = Blueprint("earning", __name__, url_prefix="", description="Earning beans: claims, awards, the fund")



class ClaimIn(In):
    kind = String(required=True, validate=validate.OneOf(["tip", "patrol"]))
    volunteer_id = fields.Integer(strict=True, load_default=None,
                                  metadata={"description": "leaders: the volunteer you claim for"})
    org_unit_id = fields.Integer(strict=True, load_default=None,
                                 metadata={"description": "patrol: the community; tip: default your own"})
    category = String(load_default=None, validate=validate.OneOf(earning.EarningRules().tip_categories),
                      metadata={"description": "tips: the kind of tip (patrols: ignored)"})
    description = String(load_default=None, validate=validate.Length(max=4000))
    location = String(load_default=None, validate=validate.Length(max=200))
    police_case_ref = String(load_default=None, validate=validate.Length(max=60))
    occurred_at = fields.AwareDateTime(required=True, metadata={"description": "tip time or patrol start"})
    ended_at = fields.AwareDateTime(load_default=None, metadata={"description": "patrol end"})
    team = String(load_default=None, validate=validate.Length(max=200))


MONTH = r"^2\d{3}-(0[1-9]|1[0-2])$"
AMOUNT = validate.Range(min=1, max=10**12)  # beans: positive (the journal refuses 0 and negatives)


class TipDetails(Out):
    description = String(allow_none=True)
    location = String(allow_none=True)
    police_case_ref = String(allow_none=True)


class ClaimOut(Out):
    id = fields.Integer()
    kind = fields.String()
    status = fields.String()
    volunteer_id = fields.Integer()
    submitted_by_id = fields.Integer()
    org_unit_id = fields.Integer()
    category = fields.String(allow_none=True)
    occurred_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)
    team = fields.String(allow_none=True)
    submitted_at = fields.DateTime()
    tier = fields.String(allow_none=True)
    decided_by_id = fields.Integer(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    decision_reason = fields.String(allow_none=True)
    award_id = fields.Integer(allow_none=True)
    award_status = fields.String(allow_none=True)
    amount = fields.Integer(allow_none=True)
    details = fields.Nested(TipDetails, allow_none=True,
                            metadata={"description": "tip details, for officers in scope only"})
    reserve_id = fields.Integer(allow_none=True, metadata={
        "description": "paid from this bounty (an answer of a notice with a bounty), not by the rule table"})


class ListQuery(In):
    status = String(load_default=None)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class VerifyIn(In):
    reason = String(required=True, validate=validate.Length(min=1, max=2000))
    tier = String(load_default=None, metadata={"description": "tips: low, medium, high or critical"})
    amount = fields.Integer(strict=True, load_default=None, validate=validate.Range(min=1, max=1_000_000), metadata={
        "description": "claims paid from a bounty (answers of a notice with a bounty): beans of it; "
                       "default all that is left"})


class ReasonIn(In):
    reason = String(required=True, validate=validate.Length(min=1, max=2000))


class ApproveIn(In):
    reason = String(load_default="", validate=validate.Length(max=2000))


class ReverseIn(In):
    reason = String(required=True, validate=validate.Length(min=1, max=2000))
    partial = Boolean(load_default=False)


class AwardIn(In):
    volunteer_id = fields.Integer(strict=True, required=True)
    org_unit_id = fields.Integer(strict=True, required=True)
    amount = fields.Integer(strict=True, required=True, validate=AMOUNT)
    reference = String(required=True, validate=validate.Length(min=1, max=120))
    reason = String(load_default="", validate=validate.Length(max=500))
    key = String(load_default=None, validate=validate.Length(min=1, max=60),
                        metadata={"description": "idempotency key: the same key awards once"})


class AwardOut(Out):
    id = fields.Integer()
    source = fields.String()
    status = fields.String()
    volunteer_id = fields.Integer()
    org_unit_id = fields.Integer()
    claim_id = fields.Integer(allow_none=True)
    officer_id = fields.Integer()
    amount = fields.Integer()
    reversed_amount = fields.Integer()
    reference = fields.String()
    reason = fields.String()
    transfer_key = fields.String()
    hold_key = fields.String(allow_none=True)
    approval_reason = fields.String(allow_none=True)
    approved_by_id = fields.Integer(allow_none=True, metadata={"description": "the second officer who approved"})
    voided_by_id = fields.Integer(allow_none=True, metadata={"description": "the second officer who refused"})
    awarded_at = fields.DateTime()


class DonationIn(In):
    amount = fields.Integer(strict=True, required=True, validate=AMOUNT)
    donor = String(required=True, validate=validate.Length(min=1, max=200))
    reference = String(load_default=None, validate=validate.Length(max=120))
    key = String(load_default=None, validate=validate.Length(min=1, max=60))


class AllocationIn(In):
    org_unit_id = fields.Integer(strict=True, required=True)
    amount = fields.Integer(strict=True, required=True, validate=AMOUNT)
    reason = String(load_default="", validate=validate.Length(max=500))
    key = String(load_default=None, validate=validate.Length(min=1, max=60))


class LeaderboardQuery(In):
    org_unit_id = fields.Integer(required=True)
    month = String(load_default=None, validate=validate.Regexp(MONTH),
                   metadata={"description": "YYYY-MM, Beijing time; default now"})


class TransferDone(Out):
    transfer_id = fields.Integer(required=True)
    transfer_key = fields.String(required=True)
    amount = fields.Integer(required=True)
    replayed = Boolean(required=True, metadata={"description": "true: this key was recorded before"})


class AllocationOut(TransferDone):
    budget_account_id = fields.Integer(required=True)


class FundOut(Out):
    donated = fields.Integer(required=True)
    fund = fields.Integer(required=True)
    budgets = fields.Integer(required=True)
    wallets = fields.Integer(required=True)
    merchants = fields.Integer(required=True)
    paid_out = fields.Integer(required=True)
    expired = fields.Integer(required=True)
    adjustments = fields.Integer(required=True)


class BudgetOut(Out):
    org_unit_id = fields.Integer(required=True)
    name = fields.String(required=True)
    account_id = fields.Integer(required=True)
    balance = fields.Integer(required=True)
    available = fields.Integer(required=True)
    on_hold = fields.Integer(required=True)


class BudgetsOut(Out):
    budgets = fields.List(fields.Nested(BudgetOut), required=True)


class VolunteerRank(Out):
    rank = fields.Integer(required=True)
    name = fields.String(required=True, metadata={"description": "display name or chosen pseudonym"})
    beans = fields.Integer(required=True)
    awards = fields.Integer(required=True)


class CommunityRank(Out):
    rank = fields.Integer(required=True)
    org_unit_id = fields.Integer(required=True)
    name = fields.String(required=True)
    beans = fields.Integer(required=True)
    verified_claims = fields.Integer(required=True)
    volunteers = fields.Integer(required=True)


class VolunteerBoard(Out):
    org_unit_id = fields.Integer(required=True)
    org_unit = fields.String(required=True)
    month = fields.String(required=True)
    entries = fields.List(fields.Nested(VolunteerRank), required=True)


class CommunityBoard(VolunteerBoard):
    entries = fields.List(fields.Nested(CommunityRank), required=True)


# --- claims ---------------------------------------------------------------------------------------

@blp.route("/claims", methods=["POST"])
@requires_roles("volunteer", "leader")
@blp.arguments(ClaimIn())
@blp.response(201, ClaimOut)
def submit_claim(body: dict):
    """Submit a claim for a tip or a patrol (volunteers; leaders for a volunteer in their unit)."""
    return earning.submit_claim(current_books(), current_actor(), **body)


@blp.route("/claims", methods=["GET"])
@requires_roles()
@blp.arguments(ListQuery(), location="query")
@blp.response(200, ClaimOut(many=True))
def list_claims(query: dict):
    """Claims you may see: your own, those you submitted, and (officers) those in your scope."""
    return earning.list_claims(current_books(), current_actor(), **query)


@blp.route("/claims/<int:claim_id>", methods=["GET"])
@requires_roles()
@blp.response(200, ClaimOut)
def get_claim(claim_id: int):
    """One claim; tip details only for officers in scope."""
    return earning.get_claim(current_books(), current_actor(), claim_id)


@blp.route("/claims/<int:claim_id>/verify", methods=["POST"])
@requires_roles("officer")
@blp.arguments(VerifyIn())
@blp.response(200, ClaimOut)
def verify_claim(body: dict, claim_id: int):
    """Verify a claim in your scope: awards beans by the rule table (or holds them for a second officer)."""
    return earning.verify_claim(current_books(), current_actor(), claim_id, **body)


@blp.route("/claims/<int:claim_id>/reject", methods=["POST"])
@requires_roles("officer")
@blp.arguments(ReasonIn())
@blp.response(200, ClaimOut)
def reject_claim(body: dict, claim_id: int):
    """Reject a claim in your scope, with a reason."""
    return earning.reject_claim(current_books(), current_actor(), claim_id, **body)


# --- awards ---------------------------------------------------------------------------------------

@blp.route("/awards", methods=["POST"])
@requires_roles("officer")
@blp.arguments(AwardIn())
@blp.response(201, AwardOut)
def award_directly(body: dict):
    """Award beans directly for verified work in your scope, citing a reference."""
    return earning.award_directly(current_books(), current_actor(), **body)


@blp.route("/awards", methods=["GET"])
@requires_roles()
@blp.arguments(ListQuery(), location="query")
@blp.response(200, AwardOut(many=True))
def list_awards(query: dict):
    """Awards you may see (yours, those you made, those in your scope; auditors and the fund all)."""
    return earning.list_awards(current_books(), current_actor(), **query)


@blp.route("/awards/<int:award_id>", methods=["GET"])
@requires_roles()
@blp.response(200, AwardOut)
def get_award(award_id: int):
    """One award."""
    return earning.get_award(current_books(), current_actor(), award_id)


@blp.route("/awards/<int:award_id>/approve", methods=["POST"])
@requires_roles("officer")
@blp.arguments(ApproveIn(), required=False)
@blp.response(200, AwardOut)
def approve_award(body: dict, award_id: int):
    """Second approval: a different officer in scope posts the held award."""
    return earning.approve_award(current_books(), current_actor(), award_id, **body)


@blp.route("/awards/<int:award_id>/void", methods=["POST"])
@requires_roles("officer")
@blp.arguments(ReasonIn())
@blp.response(200, AwardOut)
def void_award(body: dict, award_id: int):
    """Second approval refused: a different officer in scope voids the held award."""
    return earning.void_award(current_books(), current_actor(), award_id, **body)


@blp.route("/awards/<int:award_id>/reverse", methods=["POST"])
@requires_roles("officer")
@blp.arguments(ReverseIn())
@blp.response(200, AwardOut)
def reverse_award(body: dict, award_id: int):
    """Reverse a posted award in your scope; refused if the beans were spent unless `partial`."""
    return earning.reverse_award(current_books(), current_actor(), award_id, **body)


# --- the fund -------------------------------------------------------------------------------------

@blp.route("/fund/donations", methods=["POST"])
@requires_roles("fund_manager")
@blp.arguments(DonationIn())
@blp.response(201, TransferDone)
def record_donation(body: dict):
    """Record a donation into the Gold Bean Fund (fund managers)."""
    return earning.record_donation(current_books(), current_actor(), **body)


@blp.route("/fund/allocations", methods=["POST"])
@requires_roles("fund_manager")
@blp.arguments(AllocationIn())
@blp.response(201, AllocationOut)
def allocate_budget(body: dict):
    """Allocate beans from the fund to a community's budget (never more than the fund holds)."""
    return earning.allocate_budget(current_books(), current_actor(), **body)


@blp.route("/fund", methods=["GET"])
@requires_roles("fund_manager", "auditor", "admin")
@blp.response(200, FundOut)
def fund_position():
    """Where the donated beans are: fund, budgets, wallets, merchants, paid out."""
    return earning.fund_position(current_books(), current_actor())


@blp.route("/fund/budgets", methods=["GET"])
@requires_roles("fund_manager", "auditor", "admin", "officer")
@blp.response(200, BudgetsOut)
def budgets():
    """Community budgets (officers: those in scope)."""
    return {"budgets": earning.budget_balances(current_books(), current_actor())}


# --- leaderboards ---------------------------------------------------------------------------------

@blp.route("/leaderboards/volunteers", methods=["GET"])
@requires_roles()
@blp.arguments(LeaderboardQuery(), location="query")
@blp.response(200, VolunteerBoard)
def volunteer_leaderboard(query: dict):
    """Volunteers of a street or community ranked by beans in a month (name or pseudonym)."""
    return earning.volunteer_leaderboard(current_books(), current_actor(), **query)


@blp.route("/leaderboards/communities", methods=["GET"])
@requires_roles()
@blp.arguments(LeaderboardQuery(), location="query")
@blp.response(200, CommunityBoard)
def community_leaderboard(query: dict):
    """Communities under a street office ranked by verified activity in a month."""
    return earning.community_leaderboard(current_books(), current_actor(), **query)
