"""The dispatcher: plan the nudges due soon as rows, then claim, send and record the due ones.

* `plan`: occurrences due before now + the horizon become rows, once each.
* `claim`: a batch is leased and committed before any network call, gated again by
  `domain.sendability`, rendered, and moved to `sending` (conditionally on the patient still
  being active) before the provider is called, so a crash can never lead to a blind
  resend: a `sending` row whose lease ran out becomes `ambiguous` and waits for its status
  callback or reconciliation.
* `send`: the batch loop (`dispatch_due`), paced, one pool of connections per run.
* `record`: each batch's outcomes in one transaction.

The SQL that writes nudges is `coachbot.store.nudges`; the tick that runs all this is
`coachbot.services.tick`.
"""

from __future__ import annotations

from coachbot.services.dispatch.claim import claim_batch, recover_expired_leases
from coachbot.services.dispatch.plan import plan_nudges
from coachbot.services.dispatch.send import dispatch_due

__all__ = ["claim_batch", "dispatch_due", "plan_nudges", "recover_expired_leases"]
