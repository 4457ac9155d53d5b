"""Who is in the demo clinic and how each of them behaves: a declarative table that
`coachbot.services.demo_history` plays through the real pipeline.

Every phone number is in the 555-01xx range, which North American numbering keeps for
fiction, so a demo text can never reach a real person even on a misconfigured backend.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
from dataclasses import dataclass, field

from coachbot.domain.program import TRACK_POLICIES
from coachbot.domain.replies import Expectation

CLINIC_ZONE = "America/New_York"


class Behaviour(enum.Enum):
    ADHERENT = "adherent"  # answers nearly every nudge
    DRIFTING = "drifting"  # answered well, fading over the last five weeks
    SILENT = "silent"  # answered, then stopped some days ago
    RED_FLAG = "red_flag"  # answers, and once texts a warning sign
    PENDING = "pending"  # enrolled lately, has not replied YES yet


@dataclass(frozen=True)
class RedFlagText:
    text: str
    days_ago: float  # when it was texted, counted back from the end of the seed
    acknowledged_by_sms: bool  # the on-call replied ACK from their mobile
    resolved_note: str | None = None  # the clinician closed it with this note


@dataclass(frozen=True)
class Persona:
    first_name: str
    phone: str
    behaviour: Behaviour
    tracks: str
    enrolled_days_ago: int = 90
    language: str = "en"
    timezone: str = CLINIC_ZONE
    checkin: bool = False
    silent_days: int = 0  # SILENT: no answer at all in the last this many days
    red_flags: tuple[RedFlagText, ...] = ()
    # Questions for a person, texted on that many days ago: they land in the "To read" inbox.
    free_texts: tuple[tuple[float, str], ...] = ()
    homework: tuple[str, ...] = ()
    times: tuple[tuple[str, str], ...] = ()  # (track, "HH:MM") where not the programme's
    # A caregiver who said YES, and the close-watch weeks that started this many days ago:
    # the caregiver answers every daily check, with WORRIED on `worried_days_ago`.
    caregiver: tuple[str, int] | None = None  # (first name, last four digits)
    close_watch_days_ago: int | None = None
    worried_days_ago: int | None = None


def _p(first_name: str, last4: int, behaviour: Behaviour, tracks: str, **kw: object) -> Persona:
    return Persona(first_name, f"+1617555{last4:04d}", behaviour, tracks, **kw)  # type: ignore[arg-type]


A, D, S, R, P = (
    Behaviour.ADHERENT,
    Behaviour.DRIFTING,
    Behaviour.SILENT,
    Behaviour.RED_FLAG,
    Behaviour.PENDING,
)

CAST: tuple[Persona, ...] = (
    # Adherent
    _p(
        "Maya", 101, A, "sleep,exercise,mindfulness", homework=("10 minutes of word-finding cards",)
    ),
    _p(
        "Tom",
        103,
        A,
        "sleep,diet,rehab",
        checkin=True,
        enrolled_days_ago=40,
        homework=("the attention worksheet",),
    ),
    _p("Priya", 104, A, "exercise,rehab", enrolled_days_ago=75),
    _p("Grace", 105, A, "sleep,mindfulness", enrolled_days_ago=55),
    _p("Samuel", 106, A, "diet,exercise", enrolled_days_ago=30, times=(("exercise", "17:00"),)),
    _p("Hannah", 107, A, "rehab,mindfulness,sleep", enrolled_days_ago=60),
    # Drifting
    _p("Owen", 108, D, "sleep,exercise,diet"),
    _p("Leah", 109, D, "exercise,rehab", checkin=True, enrolled_days_ago=70),
    _p("Marcus", 110, D, "sleep,mindfulness", enrolled_days_ago=50),
    _p("Ruth", 111, D, "diet,rehab", enrolled_days_ago=80),
    # Silent
    _p("Daniel", 112, S, "sleep,exercise", silent_days=4, enrolled_days_ago=35),
    _p("Irene", 113, S, "rehab,diet", silent_days=7, checkin=True),
    _p("Victor", 114, S, "exercise,mindfulness", silent_days=11, enrolled_days_ago=60),
    # Red flags: two open urgent, one open high, one long resolved
    _p(
        "Nora",
        115,
        R,
        "sleep,exercise,rehab",
        red_flags=(RedFlagText("cant find my words today", 0.1, acknowledged_by_sms=False),),
    ),
    _p(
        "Elliot",
        116,
        R,
        "exercise,diet",
        red_flags=(RedFlagText("vomiting since this morning", 0.8, acknowledged_by_sms=True),),
    ),
    _p(
        "Ada",
        117,
        R,
        "sleep,rehab",
        checkin=True,
        red_flags=(
            RedFlagText(
                "fever 38.1 since noon",
                41,
                acknowledged_by_sms=True,
                resolved_note="Called back the same hour; seen in clinic, treated, recovered.",
            ),
        ),
    ),
    # Spanish-speaking, each behaviour
    _p("Lucia", 102, A, "exercise,diet,rehab", language="es"),
    _p("Mateo", 118, A, "sleep,exercise", language="es", enrolled_days_ago=25),
    _p("Carmen", 119, D, "diet,mindfulness", language="es"),
    _p("Jorge", 120, S, "sleep,rehab", language="es", silent_days=5, enrolled_days_ago=40),
    _p(
        "Rosa",
        121,
        R,
        "exercise,rehab",
        language="es",
        red_flags=(RedFlagText("estoy muy desorientado hoy", 1.2, acknowledged_by_sms=True),),
    ),
    _p(
        "Valentina",
        122,
        A,
        "sleep,mindfulness",
        language="es",
        free_texts=((2.3, "¿Puedo cambiar la hora de los mensajes a la tarde?"),),
    ),
    # Free text for the inbox, and two who have not said YES yet
    _p(
        "Ben",
        123,
        A,
        "exercise,sleep",
        enrolled_days_ago=45,
        free_texts=((1.4, "Can I do my walk in the evening instead of the morning?"),),
    ),
    # In the close-watch weeks, with a caregiver who answers the daily check
    _p(
        "Clara",
        126,
        A,
        "sleep,rehab",
        checkin=True,
        enrolled_days_ago=9,
        caregiver=("Jon", 127),
        close_watch_days_ago=8,
        worried_days_ago=2,
    ),
    _p("Iris", 124, P, "sleep,exercise", enrolled_days_ago=2),
    _p("Pablo", 125, P, "diet,rehab", language="es", enrolled_days_ago=1),
)


@dataclass(frozen=True)
class Answer:
    body: str
    delay: dt.timedelta  # after the nudge was sent


@dataclass
class Behaviourist:
    """Decides, reproducibly, whether and how a persona answers a nudge."""

    persona: Persona
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        # One stream per persona: a change to one person's story leaves the others' intact.
        self.rng = random.Random(f"coachbot-demo:{self.persona.phone}")  # noqa: S311  (a story, not a secret)

    def answer(self, track: str, days_ago: float) -> Answer | None:
        chance = self._answer_chance(days_ago)
        if self.rng.random() >= chance:
            return None
        # Before the next nudge can go (the closest two are 30 minutes apart): an answer that
        # arrives after a newer question is, rightly, read by a person, not guessed at.
        delay = dt.timedelta(minutes=self.rng.randint(3, 25))
        declined = self.rng.random() < self._decline_chance(days_ago)
        return Answer(self._body(track, declined), delay)

    def _answer_chance(self, days_ago: float) -> float:
        b = self.persona.behaviour
        if b is Behaviour.SILENT and days_ago < self.persona.silent_days:
            return 0.0
        if b is Behaviour.DRIFTING and days_ago < 35:
            return 0.25 + 0.6 * days_ago / 35  # from about 85% five weeks ago to a quarter now
        return {Behaviour.ADHERENT: 0.93, Behaviour.RED_FLAG: 0.85}.get(b, 0.8)

    def _decline_chance(self, days_ago: float) -> float:
        if self.persona.behaviour is Behaviour.DRIFTING and days_ago < 35:
            return 0.45
        return 0.08

    def _body(self, track: str, declined: bool) -> str:
        spanish = self.persona.language == "es"
        expectation = TRACK_POLICIES[track].expectation
        if expectation is Expectation.CHECKIN:
            return "0"  # no symptoms; the check-in is never declined
        if declined:
            return self.rng.choice(("no pude", "hoy no") if spanish else ("skip", "not today"))
        rng = self.rng
        if expectation is Expectation.SLEEP_HOURS:
            hours = rng.choice((5.5, 6, 6.5, 7, 7, 7.5, 8, 8.5))
            return f"{hours:g} horas" if spanish else f"{hours:g} hours"
        if expectation is Expectation.MINUTES:
            minutes = rng.choice((10, 15, 20, 20, 25, 30, 40))
            return f"{minutes} minutos" if spanish else f"{minutes} min"
        if expectation is Expectation.RATING:
            return str(rng.choice((2, 3, 3, 4, 4, 4, 5)))
        if rng.random() < 0.1:
            return "la mitad" if spanish else "half"
        return rng.choice(("listo", "hecho") if spanish else ("DONE", "done", "did it"))
