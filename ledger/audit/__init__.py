"""Room ``audit``: reading the books for auditors and fund managers.

Owns no tables. Statements (``statements``, CSV and PDF), the trial balance, fund reconciliation, settlement
statements and anomaly reports (``reports``). The signed journal export and its offline verifier are the
journal's (``ledger.journal.export``).
May call: the capability rooms (read only), ``ledger.access``, ``ledger.journal``, ``ledger.infra``.
"""
