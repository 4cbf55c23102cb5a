"""Room ``views``: read models for the pages (the org tree, people in scope, merchants, takings, the dashboard).

Owns no tables and changes nothing. May call: ``ledger.access``, ``ledger.journal``, ``ledger.infra``.
"""
