"""The SQL that writes, in one place: each statement once, PostgreSQL and SQLite side by side.

Services decide; this package knows how a decision is stored. Nothing here decides whether
a text may go or what a row should say, and nothing here commits: every function runs in
the caller's transaction. Read models stay in `coachbot.queries`.

* `dialect`: the one "insert, ignore duplicates" helper and the few dialect questions
  (row locks that skip locked rows, the planner's advisory lock).
* `nudges`: planning, claiming, moving to `sending`, marking sent, finishing and requeueing.
* `outbound`: the one writer of outbound message rows.
* `inbound`: the inbound row and the sender look-up.
"""
