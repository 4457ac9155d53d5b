"""The patient page's one SQL statement, written once per dialect.

One patient's record is a few hundred rows, so the page's cost is not reading them but the
round trips and the Python around them. The whole page is one statement (its parts joined
with UNION ALL into one row shape, written once per dialect and kept), and each part comes
back already aggregated: one row per track for the heatmap and the 7- and 30-day counts,
one per track for the streak's days, and only the rows the page shows for the timeline,
trends, homework, alerts and audit trail. Local days are computed in SQL from the zone's
UTC offsets over the last 90 days (a handful of DST transitions at most, cached per zone
and day), so no timestamp is converted in Python to place it on the calendar.
"""

from __future__ import annotations

import functools
import sqlite3

from sqlalchemy import Float, Integer, String, TextualSelect, bindparam, column, text

from coachbot.db import UTCDateTime

SQL_DIALECTS = {
    "sqlite": {
        # unixepoch() (SQLite 3.38+) parses the stored text a third faster than strftime.
        "epoch": "unixepoch({})"
        if sqlite3.sqlite_version_info >= (3, 38)
        else "CAST(strftime('%s', {}) AS INTEGER)",
        "agg": "group_concat({})",
        "find": "instr({}, {})",
        "ts": "TIMESTAMP",
        # SQLite answers the join from the covering (nudge_id, outcome, ...) index.
        "answers_of_patient": "",
    },
    "postgresql": {
        "epoch": "CAST(floor(extract(epoch FROM {})) AS BIGINT)",
        "agg": "string_agg({}, ',')",
        "find": "strpos({}, {})",
        "ts": "TIMESTAMPTZ",
        # PostgreSQL then hashes this patient's answers instead of probing once per nudge.
        "answers_of_patient": " AND a.patient_id = :pid",
    },
}
# The grid counts done and partial answers in one sum, a partial as this many dones (a
# track has far fewer than this many nudges in 30 days): done = sum % pack, partial = sum //
# pack. Two more columns would push the statement past psycopg's 4,096-character parse cache.
PARTIAL_PACK = 4096
# Sections of the page's one statement, in the `sec` column.
GRID, STREAK, TRACKS, TIMELINE, TRENDS, HOMEWORK, ALERTS, AUDIT = range(1, 9)

PATIENT_PAGE_SQL = """
SELECT {GRID} AS sec, g.track AS tag, SUM(g.c * g.w) AS i1, SUM(g.c * g.w * g.ok) AS i2,
  SUM(g.c) AS i3, SUM(g.c * g.ok) AS i4, CAST(NULL AS {ts}) AS at, {agg_grid} AS s1,
  NULL AS s2, NULL AS s3, CAST(NULL AS FLOAT) AS f
FROM (
  SELECT n.track AS track, {due_day} * 8 + {cell} AS v,
    CASE WHEN n.due_at >= :since30 AND n.state IN ('sent', 'delivered')
      AND n.occurrence_key NOT LIKE :followup THEN 1 ELSE 0 END AS c,
    CASE WHEN n.due_at >= :since7 THEN 1 ELSE 0 END AS w,
    CASE a.outcome WHEN 'done' THEN 1 WHEN 'partial' THEN {partial} ELSE 0 END AS ok
  FROM nudges n LEFT JOIN adherence_records a ON a.nudge_id = n.id{answers_of_patient}
  WHERE n.patient_id = :pid AND n.due_at >= :since90 AND n.due_at <= :now
) g
GROUP BY g.track
UNION ALL
SELECT {STREAK}, s.track, NULL, NULL, NULL, NULL, NULL, {agg_streak}, NULL, NULL, NULL
FROM (
  SELECT DISTINCT track, {record_day} AS d FROM adherence_records
  WHERE patient_id = :pid AND outcome = 'done' AND recorded_at >= :streak_since
    AND recorded_at <= :now
) s
GROUP BY s.track
UNION ALL
SELECT {TRACKS}, track, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM track_schedules WHERE patient_id = :pid
UNION ALL
SELECT {TIMELINE}, t.kind, t.inbound, t.id, NULL, NULL, t.at, t.body, t.status, NULL, NULL
FROM (
  SELECT * FROM (
    SELECT created_at AS at, 0 AS inbound, id, kind, body,
      COALESCE(delivery_status, '-') AS status
    FROM outbound_messages
    WHERE patient_id = :pid AND created_at <= :c_at
      AND (created_at < :c_at OR (:c_in = 0 AND id < :c_id))
    ORDER BY created_at DESC, id DESC LIMIT :lim
  ) o
  UNION ALL
  SELECT * FROM (
    SELECT received_at, 1, id, CASE WHEN is_proxy THEN 'caregiver' ELSE 'reply' END, body,
      COALESCE(outcome, 'received')
    FROM inbound_messages
    WHERE patient_id = :pid AND received_at <= :c_at
      AND (received_at < :c_at OR :c_in = 0 OR id < :c_id)
    ORDER BY received_at DESC, id DESC LIMIT :lim
  ) i
  ORDER BY at DESC, inbound, id DESC LIMIT :lim
) t
UNION ALL
SELECT {TRENDS}, track, id, NULL, NULL, NULL, recorded_at, unit, NULL, NULL, value
FROM adherence_records
WHERE patient_id = :pid AND value IS NOT NULL AND recorded_at >= :since90
UNION ALL
SELECT {HOMEWORK}, NULL, x.id, x.active, SUM(x.asked), SUM(x.asked * x.ok), x.created_at,
  x.description, NULL, NULL, NULL
FROM (
  SELECT h.id, CASE WHEN h.active THEN 1 ELSE 0 END AS active, h.created_at, h.description,
    CASE WHEN {asked} THEN 1 ELSE 0 END AS asked, COALESCE(r.ok, 0) AS ok
  FROM homework_items h LEFT JOIN (
    SELECT n.due_at, n.rendered_body AS body, CASE WHEN a.outcome = 'done' THEN 1 ELSE 0 END AS ok
    FROM nudges n LEFT JOIN adherence_records a ON a.nudge_id = n.id
    WHERE n.patient_id = :pid AND n.track = 'rehab' AND n.state IN ('sent', 'delivered')
      AND n.due_at >= :since_homework AND n.due_at <= :now
      AND n.occurrence_key NOT LIKE :followup
  ) r ON 1 = 1
  WHERE h.patient_id = :pid
) x
GROUP BY x.id, x.active, x.created_at, x.description
UNION ALL
SELECT {ALERTS}, kind, id, NULL, NULL, NULL, created_at, severity, status, resolution_note, NULL
FROM alerts WHERE patient_id = :pid
UNION ALL
SELECT {AUDIT}, e.actor, e.id, NULL, NULL, NULL, e.at, e.action, e.outcome, e.detail, NULL
FROM (
  SELECT * FROM audit_log WHERE patient_id = :pid ORDER BY at DESC, id DESC LIMIT :audit_rows
) e
"""


@functools.cache
def patient_page_statement(dialect: str, transitions: int) -> TextualSelect:
    """The page's statement for a dialect and a number of DST transitions in the window."""
    sql = SQL_DIALECTS[dialect]

    def local_day(column: str) -> str:
        # Days before today in the patient's zone: the local date is the UTC instant plus
        # the offset in force at that instant, whole days since the epoch.
        offset = "".join(f"WHEN {column} >= :tr{n} THEN :of{n} " for n in range(transitions))
        offset = f"(CASE {offset}ELSE :of_base END)" if transitions else ":of_base"
        return f"(:today - ({sql['epoch'].format(column)} + {offset}) / 86400)"

    # A reply says "done" for a whole rehab nudge: a homework item counts as asked by each
    # one whose text named it (or, for texts sent before the text was kept, each one due
    # after the item was assigned).
    asked = (
        f"(CASE WHEN r.body IS NOT NULL AND r.body <> ''"
        f" THEN {sql['find'].format('r.body', 'h.description')} > 0"
        f" ELSE r.due_at >= h.created_at END)"
    )
    text_of = "CAST({} AS TEXT)".format
    statement = PATIENT_PAGE_SQL.format(
        GRID=GRID,
        STREAK=STREAK,
        TRACKS=TRACKS,
        TIMELINE=TIMELINE,
        TRENDS=TRENDS,
        HOMEWORK=HOMEWORK,
        ALERTS=ALERTS,
        AUDIT=AUDIT,
        ts=sql["ts"],
        answers_of_patient=sql["answers_of_patient"],
        record_day=local_day("recorded_at"),
        due_day=local_day("n.due_at"),
        cell=_HEAT_CELL,
        partial=PARTIAL_PACK,
        agg_grid=sql["agg"].format(text_of("g.v")),
        agg_streak=sql["agg"].format(text_of("s.d")),
        asked=asked,
    )
    return _typed(statement, dialect, transitions)


# Each nudge's heatmap cell as its rank in HEAT_STATES (NULL: nothing to show, such as a text
# not sent yet); the day shows the best of its nudges.
_HEAT_CELL = (
    "(CASE WHEN a.outcome IS NOT NULL"
    " THEN (CASE a.outcome WHEN 'done' THEN 5 WHEN 'partial' THEN 4 WHEN 'skipped' THEN 3"
    " ELSE 2 END)"
    " WHEN n.state IN ('sent', 'delivered')"
    " THEN (CASE WHEN n.reply_window_ends_at <= :now THEN 2 ELSE 1 END)"
    " WHEN n.state IN ('missed', 'failed') THEN 2 END)"
)


def _typed(statement: str, dialect: str, transitions: int) -> TextualSelect:
    """The statement as one line with its instants' parameter types and its row shape."""
    # SQLite needs the column type's text form of an instant; psycopg sends an aware
    # datetime as timestamptz itself, and an untyped parameter spares SQLAlchemy's cast.
    instant = UTCDateTime() if dialect == "sqlite" else None
    return (
        # One line: psycopg caches its parse of a statement only up to 4,096 characters.
        text(" ".join(statement.split()))
        .bindparams(
            *(
                bindparam(name, type_=instant)
                for name in (
                    "now",
                    "since7",
                    "since30",
                    "since90",
                    "streak_since",
                    "since_homework",
                    "c_at",
                    *(f"tr{n}" for n in range(transitions)),
                )
            )
        )
        .columns(
            column("sec", Integer),
            column("tag", String),
            column("i1", Integer),
            column("i2", Integer),
            column("i3", Integer),
            column("i4", Integer),
            column("at", UTCDateTime()),
            column("s1", String),
            column("s2", String),
            column("s3", String),
            column("f", Float),
        )
    )


# The first page starts after a message later than any.
