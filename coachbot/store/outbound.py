"""The one writer of outbound message rows: every text we send, or answer with, or mute.

A nudge batch, a welcome or confirmation, the reply inside a TwiML answer, the loop
guard's muted marker and the timeline row of an ambiguous send settled later are all an
`Outbound`, written by `insert_many` (or `insert_one` when the caller needs the row's id).
On PostgreSQL a batch is one INSERT over arrays (unnest); elsewhere it is executemany,
already cheap in-process.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Connection, Table, insert, text

from coachbot.models import OutboundMessage

_OUTBOUND = cast(Table, OutboundMessage.__table__)
_INSERT = insert(_OUTBOUND)
_INSERT_RETURNING_ID = insert(_OUTBOUND).returning(_OUTBOUND.c.id)


@dataclass(frozen=True)
class Outbound:
    """One outbound row; its fields are the table's columns (but the id)."""

    patient_id: int | None
    to_e164: str
    body: str
    kind: str  # welcome | nudge | reply | system
    template_id: str | None
    variant_id: str | None
    backend: str  # console | twilio | twiml | muted
    segments: int
    created_at: dt.datetime
    nudge_id: int | None = None
    provider_sid: str | None = None
    delivery_status: str | None = None
    error_code: str | None = None


_COLUMNS = tuple(Outbound.__dataclass_fields__)
# The column lists are the mapped ones of OutboundMessage (tests on PostgreSQL catch a drift).
_PG_INSERT_MANY = text(
    "INSERT INTO outbound_messages (patient_id, to_e164, body, kind, template_id, variant_id,"
    " backend, segments, created_at, nudge_id, provider_sid, delivery_status, error_code)"
    " SELECT * FROM unnest(CAST(:patient_id AS integer[]), CAST(:to_e164 AS varchar[]),"
    " CAST(:body AS text[]), CAST(:kind AS varchar[]), CAST(:template_id AS varchar[]),"
    " CAST(:variant_id AS varchar[]), CAST(:backend AS varchar[]),"
    " CAST(:segments AS integer[]), CAST(:created_at AS timestamptz[]),"
    " CAST(:nudge_id AS integer[]), CAST(:provider_sid AS varchar[]),"
    " CAST(:delivery_status AS varchar[]), CAST(:error_code AS varchar[]))"
)


def _values(row: Outbound) -> dict[str, object]:
    return {column: getattr(row, column) for column in _COLUMNS}


def insert_one(connection: Connection, row: Outbound) -> int:
    """Writes one row and returns its id."""
    return int(connection.execute(_INSERT_RETURNING_ID, _values(row)).scalar_one())


def insert_many(connection: Connection, rows: Sequence[Outbound]) -> None:
    """Writes the rows in one round trip."""
    if not rows:
        return
    if len(rows) > 1 and connection.dialect.name == "postgresql":
        connection.execute(
            _PG_INSERT_MANY,
            {column: [getattr(row, column) for row in rows] for column in _COLUMNS},
        )
        return
    connection.execute(_INSERT, [_values(row) for row in rows])
