"""The redemption room stays readable: no function over 70 lines (house style; issue 13), and the room's
public use cases keep answering as ``from ledger import redemption; redemption.redeem(...)``."""

from __future__ import annotations

import ast
from pathlib import Path

import ledger.redemption
from ledger import redemption

ROOM = Path(ledger.redemption.__file__).parent


def test_no_function_in_the_redemption_room_exceeds_70_lines():
    long = []
    for path in sorted(ROOM.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 70:
                    long.append((path.name, node.name, lines))
    assert not long, long


def test_the_room_reexports_its_use_cases():
    for name in ("redeem", "redeem_at_till", "refund", "confirm_hold", "decline_hold", "issue_till", "list_tills",
                 "revoke_till", "authenticate_till", "add_item", "update_item", "list_items", "issue_card",
                 "get_card", "revoke_card", "unlock_card", "get_redemption", "list_redemptions", "wallet_overview",
                 "TillContext", "Answer", "setting", "local_tz"):
        assert callable(getattr(redemption, name)), name
