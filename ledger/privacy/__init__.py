"""Room ``privacy``: a person's own data (个人信息) across every room, read in one transaction.

A reading room: owns no tables and changes nothing. It sits above ``audit`` and ``views`` (it reuses the
statements' Chinese font lookup) and reads the capability rooms' tables, which those rooms may not read of
each other. Public: ``export`` (``my_data``: everything the system holds about the signed-in person as one
JSON-ready dict; ``my_data_pdf``: the same as a readable PDF).
May call: every room below it. Never imported by the rooms below.
"""

from ledger.privacy.export import my_data, my_data_pdf

__all__ = ["my_data", "my_data_pdf"]
