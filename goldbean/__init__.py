"""The composition root: ``goldbean.app.create_app`` wires configuration, the ledger's ``Books``, the REST API
(``merchant_api``) and the pages (``admin_ui``) together; ``goldbean.cli`` is the ``goldbean`` command line and
the rest are operations (serve, worker, backups, guards, seeds). Nothing outside this package imports it, and
nothing here builds an app, an engine or a session at import time."""
