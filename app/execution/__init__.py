"""Durable execution of runs: DBOS workflows (``workflows``), handing runs to DBOS (``dispatch``) and
one engine per run per process (``engines``).

The API and the pages never execute anything: they go through ``app.services``, which hands work to
``dispatch``; whichever process executes (``--execution inprocess`` or ``ctxeval worker``) runs
``workflows``.
"""
