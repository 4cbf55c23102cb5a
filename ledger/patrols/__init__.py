"""Room ``patrols``: 卫星布防, patrol deployment.

Owns the tables ``patrol_posts``, ``patrol_series``, ``patrol_shifts``, ``patrol_signups``,
``patrol_used_codes``, ``service_records`` and ``service_certificates`` (``models``): posts on the org tree
with their printed signs, shifts (one-off and recurring), sign-ups, check-in and check-out with proof of
presence (``proofs``: the leader's rotating code, or the post sign with the phone's location), attendance
paid in beans once from the community budget, service records kept apart from beans, the coverage board
and signed service certificates (``certificates``). Who may do what is in ``rules``.
May call: ``ledger.access``, ``ledger.journal``, ``ledger.infra``, ``ledger.errors``. Not the other capability rooms.
"""
