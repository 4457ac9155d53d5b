"""Liveness with a real database round trip, for load balancers and `make run`'s check."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from coachbot.db import ping

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    runtime = current_app.extensions["coachbot"]
    try:
        ping(runtime.engine)
    except Exception:
        log.exception("health check: database unreachable")
        return jsonify(status="error", database="unreachable"), 503
    return jsonify(status="ok", database="ok")
