"""The clinician's patients list and the admin's staff page (delivery health lives in the
operator console; /delivery still serves it)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from coachbot.domain.program import COACHING_TRACKS
from coachbot.domain.states import PatientStatus, Role
from coachbot.queries.dashboard import SORTS, ListFilter, patients_page
from coachbot.services.errors import ValidationFailed
from coachbot.services.oncall import set_staff_phone
from coachbot.services.staff import (
    SelfChangeRefused,
    change_role,
    create_staff_user,
    staff_accounts,
    toggle_active,
)
from coachbot.web.common import (
    login_required,
    now,
    read_db,
    roles_required,
    runtime,
    staff,
    write_sessions,
)
from coachbot.web.forms import ActionForm, RoleForm, StaffForm

bp = Blueprint("dashboard", __name__)
SORT_LABELS = {
    "need": "Need (most pressing first)",
    "name": "Name",
    "enrolled": "Newest enrolled",
    "last_reply": "Latest reply",
    "alerts": "Most open alerts",
    "adherence": "Lowest adherence this week",
}


@bp.get("/")
@login_required
def home() -> ResponseReturnValue:
    role = staff().role
    if role == Role.CLINICIAN:
        return redirect(url_for("dashboard.patients"))
    if role == Role.OPERATOR:
        return redirect(url_for("operator.health"))
    return redirect(url_for("dashboard.staff_list"))


def _int_arg(name: str, default: int) -> int:
    try:
        return max(1, int(request.args.get(name, default)))
    except ValueError:
        return default


@bp.get("/patients")
@roles_required(Role.CLINICIAN)
def patients() -> ResponseReturnValue:
    # Need first by default: who the care team should look at now (coachbot.domain.need).
    sort = request.args.get("sort", "need")
    status = request.args.get("status", "")
    track = request.args.get("track", "")
    f = ListFilter(
        q=request.args.get("q", "")[:80],
        status=status if status in {s.value for s in PatientStatus} else "",
        track=track if track in COACHING_TRACKS or track == "checkin" else "",
        sort=sort if sort in SORTS else "need",
        page=_int_arg("page", 1),
    )
    page = patients_page(read_db(), clinician_id=staff().user_id, now=now(), f=f)
    return render_template(
        "patients.html",
        page=page,
        f=f,
        now=now(),
        sorts=SORT_LABELS,
        statuses=[s.value for s in PatientStatus],
        tracks=(*COACHING_TRACKS, "checkin"),
    )


@bp.get("/delivery")
@roles_required(Role.OPERATOR, Role.ADMIN)
def delivery() -> ResponseReturnValue:
    """Delivery health moved into the operator console; old links and bookmarks still work."""
    from coachbot.web.operator import health

    return health()


@bp.route("/staff", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def staff_list() -> ResponseReturnValue:
    form = StaffForm()
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            user = create_staff_user(
                write_sessions(),
                email=form.email.data or "",
                role=form.role.data or "",
                password=form.password.data or "",
                now=now(),
                actor=staff().actor,
                display_name=form.display_name.data or None,
                phone=form.phone.data or None,
                default_region=runtime().settings.default_region,
            )
        except ValidationFailed as exc:
            errors = exc.errors
        else:
            flash(f"Created {user.role} {user.email}.", "info")
            return redirect(url_for("dashboard.staff_list"))
    return _staff_page(form, errors)


def _staff_page(
    form: StaffForm, errors: dict[str, str], phone_errors: dict[int, str] | None = None
) -> ResponseReturnValue:
    status = 422 if errors or phone_errors else 200
    return render_template(
        "staff.html",
        form=form,
        errors=errors,
        phone_errors=phone_errors or {},
        users=staff_accounts(read_db()),
        action_form=ActionForm(),
        role_form=RoleForm(),
        status=status,
    ), status


@bp.post("/staff/<int:user_id>/phone")
@roles_required(Role.ADMIN)
def staff_phone(user_id: int) -> ResponseReturnValue:
    """The mobile on-call pages go to and ACKs are accepted from; empty removes it."""
    if not ActionForm().validate_on_submit():
        return ("not found", 404)
    try:
        user = set_staff_phone(
            write_sessions(),
            user_id,
            request.form.get("phone", "")[:40],
            default_region=runtime().settings.default_region,
            now=now(),
            actor=staff().actor,
        )
    except ValidationFailed as exc:
        return _staff_page(StaffForm(formdata=None), {}, {user_id: exc.errors["phone"]})
    if user is None:
        return ("not found", 404)
    flash(f"Mobile of {user.email} saved.", "info")
    return redirect(url_for("dashboard.staff_list"))


@bp.post("/staff/<int:user_id>/active")
@roles_required(Role.ADMIN)
def staff_toggle_active(user_id: int) -> ResponseReturnValue:
    if not ActionForm().validate_on_submit():
        return ("not found", 404)
    try:
        user = toggle_active(
            write_sessions(), user_id, admin_id=staff().user_id, now=now(), actor=staff().actor
        )
    except SelfChangeRefused as exc:
        flash(str(exc), "error")
        return redirect(url_for("dashboard.staff_list"))
    if user is None:
        return ("not found", 404)
    flash(f"{user.email} is now {'active' if user.is_active else 'deactivated'}.", "info")
    return redirect(url_for("dashboard.staff_list"))


@bp.post("/staff/<int:user_id>/role")
@roles_required(Role.ADMIN)
def staff_role(user_id: int) -> ResponseReturnValue:
    form = RoleForm()
    if not form.validate_on_submit():
        return ("not found", 404)
    try:
        user = change_role(
            write_sessions(),
            user_id,
            form.role.data or "",
            admin_id=staff().user_id,
            now=now(),
            actor=staff().actor,
        )
    except SelfChangeRefused as exc:
        flash(str(exc), "error")
        return redirect(url_for("dashboard.staff_list"))
    if user is None:
        return ("not found", 404)
    flash(f"{user.email} is now {user.role}.", "info")
    return redirect(url_for("dashboard.staff_list"))
