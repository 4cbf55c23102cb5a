"""Room ``infra``: what every other room stands on.

Owns: engines and transactions (``db``: ``make_engine``, ``run_in_transaction``, ``utc_from_db``), ``Books`` (one
database, one key store, one clock; ``Books.run`` opens the one transaction of a use case), the Ed25519 key store
(``keys``), the declarative ``Base`` with its naming convention (``base``) and the one CSV writer that keeps
spreadsheet formulas out of every export (``csvsafe``). No tables of its own beyond the base.
May call: ``ledger.errors``, ``ledger.invariants`` only.
"""
