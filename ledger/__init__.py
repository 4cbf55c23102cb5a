"""Gold Bean's domain: no Flask, no HTTP statuses, no PNGs. Organised as rooms, lowest first:

- ``ledger.errors``, ``ledger.invariants``: the catalogue of domain errors and the assertion helper; anyone may import them.
- ``ledger.infra``: engines, ``Books.run``, keys, the declarative base.
- ``ledger.journal``: the double-entry engine (accounts, transfers, holds, chains, checkpoints, verify).
- ``ledger.access``: who is acting and what they may do (actors, scopes, policy, passwords, sessions, tokens, the security log).
- the capability rooms, independent of each other: ``ledger.earning``, ``ledger.redemption``, ``ledger.people``,
  ``ledger.radar`` (the police radar, docs/radar.md).
- the reading rooms above them: ``ledger.audit`` (statements, reports, exports) and ``ledger.views`` (page read models).
- ``ledger.schema``: every table, for Alembic, ``db copy`` and tests; nothing in ``ledger`` imports it.

The contracts in ``pyproject.toml`` ([tool.importlinter]) enforce the direction; docs/architecture.md has the map.
"""
