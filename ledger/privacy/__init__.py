"""Room ``privacy``: a person's own data (个人信息) across every room, read in one transaction.

Owns ``erasure_requests`` (``models``). Export reads; erasure (``erasure``: request, complete) is the one use
case that writes across the rooms below, because a person's data lies in all of them. It sits above ``audit`` and ``views`` (it reuses the
statements' Chinese font lookup) and reads the capability rooms' tables, which those rooms may not read of
each other. Public: ``export`` (``my_data``: everything the system holds about the signed-in person as one
JSON-ready dict; ``my_data_pdf``: the same as a readable PDF), ``erasure``.
May call: every room below it. Never imported by the rooms below.
"""

from ledger.privacy.erasure import ErasureView, complete_erasure, list_erasures, request_erasure
from ledger.privacy.export import my_data, my_data_pdf
from ledger.privacy.retention import erase_expired_tips

__all__ = ["ErasureView", "complete_erasure", "erase_expired_tips", "list_erasures", "my_data", "my_data_pdf", "request_erasure"]
