"""The phone simulator (development with the console SMS backend only): each of the signed-in
clinician's patients' phones, the texts it received, and a reply box.

A reply is not handed to the inbound service directly: it is signed with the app's Twilio
auth token and posted to /sms/inbound, so it runs the very pipeline a real reply runs,
signature check included.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from twilio.request_validator import RequestValidator

from coachbot.domain.states import Role
from coachbot.queries import simulator as queries
from coachbot.web.common import owned_patient, read_db, roles_required, runtime, staff
from coachbot.web.forms import ReplyForm

bp = Blueprint("simulator", __name__, url_prefix="/simulator")
INBOUND_PATH = "/sms/inbound"
THREAD_LENGTH = 30


def simulator_enabled() -> bool:
    settings = runtime().settings
    return settings.env == "development" and settings.sms_backend == "console"


@bp.before_request
def _only_in_development() -> None:
    if not simulator_enabled():
        abort(404)


@bp.get("")
@roles_required(Role.CLINICIAN)
def phones() -> ResponseReturnValue:
    # Only reads: the read session takes no SQLite write lock, so the page never holds up
    # the webhook a reply from this very page is about to call.
    found = queries.phones(read_db(), staff().user_id, THREAD_LENGTH)
    patients = [phone.patient for phone in found]
    threads = {phone.patient.id: phone.texts for phone in found}
    return render_template("simulator.html", patients=patients, threads=threads, form=ReplyForm())


@bp.post("/<int:patient_id>/reply")
@roles_required(Role.CLINICIAN)
def reply(patient_id: int) -> ResponseReturnValue:
    # Read without the write lock: the webhook this posts to must take it.
    patient = owned_patient(patient_id, "simulator.reply", session=read_db())
    form = ReplyForm()
    if not form.validate_on_submit():
        flash("Type a reply first.", "error")
        return redirect(url_for("simulator.phones"))
    settings = runtime().settings
    sid = "SM" + secrets.token_hex(16)
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": settings.twilio_account_sid or "AC" + "0" * 32,
        "From": patient.phone_e164,
        "To": settings.twilio_from_number or settings.clinic_phone,
        "Body": form.body.data or "",
        "NumMedia": "0",
    }
    signature = RequestValidator(settings.twilio_auth_token or "").compute_signature(
        settings.public_base_url + INBOUND_PATH, params
    )
    # Nothing of this request stays open while the webhook runs in the same thread: the
    # read session (it wrote nothing) gives its connection back.
    read_db().close()
    # A fresh application context, so the inner request shares nothing (g, the signed-in user).
    with current_app.app_context():
        answer = current_app.test_client().post(
            INBOUND_PATH,
            data=urlencode(params),
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": signature},
        )
    if answer.status_code != 200:
        flash(f"The webhook refused the reply ({answer.status_code}).", "error")
    return redirect(url_for("simulator.phones", _anchor=f"phone-{patient_id}"))
