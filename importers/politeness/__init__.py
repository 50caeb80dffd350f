"""One politeness stack for everything that asks the register.

* ``budget``: ``HPCSA_MAX_RATE`` requests per second in total, shared by every process and
  host (in the database, or Redis when ``REGISTER_BUDGET_URL`` names it), with the 429
  slow-down and Retry-After pauses shared too;
* ``retry``: the one retry policy (exponential backoff with full jitter, Retry-After a floor);
* ``asking``: the settings (``Politeness``) and the adapters, ``Asker`` for
  ``flask registry verify`` and ``AsyncAsker`` for the recheck's asyncio workers.

What the history records: one row per look-up (its last attempt's result, the answer when
an attempt got one), never one per attempt; docs/registration-rules.md says why.
"""
