"""Flask-WTF forms: each carries a CSRF token; the services do the domain validation."""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    EmailField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # stubs predate 3.3
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from coachbot.domain.program import COACHING_TRACKS, LANGUAGES, TRACK_POLICIES

# Plain strings as choices (WTForms 3.3 deprecates tuples); the stubs still expect tuples.
_LANGUAGE_CHOICES: Any = list(LANGUAGES)
_ROLE_CHOICES: Any = ["clinician", "operator", "admin"]
# Blank: the caregiver is texted in the patient's language.
_CAREGIVER_LANGUAGE_CHOICES: Any = [
    SelectChoice("", "Same as the patient"),
    *(SelectChoice(c, c) for c in LANGUAGES),
]


def _no_nul(_form: Any, field: Any) -> None:
    """PostgreSQL text cannot hold NUL and nobody types one: the field is refused, rather
    than the save failing later."""
    if isinstance(field.data, str) and "\x00" in field.data:
        raise ValidationError("this field holds a NUL character")


class CoachbotForm(FlaskForm):  # type: ignore[misc]
    """The base of every staff form: each field also refuses NUL."""

    class Meta:
        def bind_field(self, form: Any, unbound_field: Any, options: dict[str, Any]) -> Any:
            validators = [*unbound_field.kwargs.get("validators", ()), _no_nul]
            return unbound_field.bind(form=form, validators=validators, **options)


class LoginForm(CoachbotForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class ActionForm(CoachbotForm):
    """A button that changes something: only the CSRF token."""


class NoteForm(CoachbotForm):
    note = TextAreaField("Note", validators=[Optional(), Length(max=2000)])


def _default_times(track: str) -> str:
    return ",".join(t.strftime("%H:%M") for t in TRACK_POLICIES[track].default_times)


class EnrolForm(CoachbotForm):
    first_name = StringField("First name")
    phone = StringField("Mobile number")
    timezone = StringField("Time zone", default="America/New_York")
    language = SelectField("Language", choices=_LANGUAGE_CHOICES, default="en")
    quiet_hours = StringField("Quiet hours (e.g. 21:00-07:30)")
    checkin = BooleanField("Daily symptom check-in")
    homework = TextAreaField("Homework (one per line)")
    consent_how = StringField("How consent was given", default="verbal consent in clinic")
    # The patient's local wall time, read in the time zone given above.
    consent_when = DateTimeLocalField(
        "When consent was given", format="%Y-%m-%dT%H:%M", validators=[Optional()]
    )


class EditPatientForm(CoachbotForm):
    # Shown only for a caregiver never invited (a number given before caregivers could be
    # texted): saving with it ticked asks them for their YES.
    caregiver_invite = BooleanField("Send the caregiver the invitation to reply YES")
    first_name = StringField("First name")
    phone = StringField("Mobile number")
    timezone = StringField("Time zone")
    language = SelectField("Language", choices=_LANGUAGE_CHOICES)
    quiet_hours = StringField("Quiet hours (e.g. 21:00-07:30)")
    checkin = BooleanField("Daily symptom check-in")
    homework = TextAreaField("Homework (one per line)")


class _CaregiverFields:
    """The caregiver and the close-watch weeks, on the enrol and edit forms alike (the
    services check them: a number, a name with it, a date, 1 to 90 days)."""

    caregiver_phone = StringField("Caregiver's mobile number (optional)")
    caregiver_name = StringField("Caregiver's first name")
    caregiver_language = SelectField(
        "Caregiver's language", choices=_CAREGIVER_LANGUAGE_CHOICES, default=""
    )
    # A date the browser may not parse comes back as this field's own error.
    close_watch_from = DateField(
        "First day of the close watch", validators=[Optional()], format="%Y-%m-%d"
    )
    close_watch_days = StringField("Close-watch length in days (blank: the programme's)")


# One checkbox and one times box per track, added as class attributes so WTForms binds them.
for _form in (EnrolForm, EditPatientForm):
    for _name, _field in vars(_CaregiverFields).items():
        if not _name.startswith("_"):
            setattr(_form, _name, _field)
    for _track in COACHING_TRACKS:
        setattr(_form, f"track_{_track}", BooleanField(_track.capitalize()))
        setattr(
            _form, f"times_{_track}", StringField(f"{_track} times", default=_default_times(_track))
        )


class BulkEnrolForm(CoachbotForm):
    csv_file = FileField("CSV file", validators=[FileRequired()])


class StaffForm(CoachbotForm):
    email = EmailField("Email")
    display_name = StringField("Name")
    role = SelectField("Role", choices=_ROLE_CHOICES)
    password = PasswordField("Initial password")
    phone = StringField("Mobile for on-call pages", validators=[Optional(), Length(max=40)])


class RoleForm(CoachbotForm):
    role = SelectField("Role", choices=_ROLE_CHOICES)


class TokenForm(CoachbotForm):
    name = StringField("Token name", validators=[DataRequired(), Length(max=80)])


class ReplyForm(CoachbotForm):
    body = StringField("Reply", validators=[DataRequired(), Length(max=1600)])
