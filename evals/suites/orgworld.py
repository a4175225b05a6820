"""A made-up organisation written as many short documents, for the ``multihop`` suite.

Every fact is stated in exactly one document: a team's city on its team page, a person's team, role and
start month on their profile, a project's owner and budget on its brief, a launch date and vendor in one
meeting note, a rule and its author in one policy memo, an office's opening year and size on its page.
No proper name occurs inside another (checked word by word), so a fact found by name is never ambiguous.
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date

from faker import Faker
from wonderwords import RandomWord, is_profanity

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "pt_PT", "sv_SE")
_CITY_LOCALES = tuple(loc for loc in _LOCALES if loc != "it_IT")  # it_IT cities depend on PYTHONHASHSEED
_ADJECTIVES = ("Amber", "Azure", "Bright", "Cedar", "Coral", "Crimson", "Golden", "Granite", "Hidden",
               "Indigo", "Ivory", "Jade", "Lunar", "Maple", "Misty", "Northern", "Olive", "Onyx", "Polar",
               "Quiet", "Rapid", "Royal", "Ruby", "Sable", "Scarlet", "Silent", "Silver", "Solar",
               "Southern", "Steady", "Swift", "Teal", "Velvet", "Violet", "Western", "Wild", "Winter",
               "Copper", "Emerald", "Frosty", "Gentle", "Hollow", "Iron", "Lively", "Mellow", "Noble",
               "Patient", "Radiant", "Sunny", "Tidal")
_ROLES = ("software engineer", "senior software engineer", "data analyst", "product designer",
          "product manager", "QA engineer", "site reliability engineer", "data scientist",
          "technical writer", "security engineer", "UX researcher", "frontend developer",
          "backend developer", "machine learning engineer", "business analyst", "solutions architect",
          "support specialist", "programme coordinator", "database administrator", "mobile developer")
_HOBBIES = ("long-distance running", "bird watching", "baking sourdough", "rock climbing", "chess",
            "sea kayaking", "woodworking", "amateur astronomy", "jazz piano", "urban sketching",
            "growing tomatoes", "trail cycling", "pottery", "learning languages", "board games")
_SOMBRE = ("death", "dead", "cemetery", "funeral", "grave", "coffin", "corpse", "disease", "cancer", "murder",
           "kill", "war", "weapon", "gun", "bomb", "religion", "pagan", "sex", "drug", "abuse", "suicide",
           "crime", "prison", "slave", "terror", "victim", "blood", "injury", "racism", "nazi", "rape",
           "poison", "hell", "devil", "tumor", "virus", "illness", "jail", "addict", "porn", "torture",
           "anything", "something", "nothing", "everything", "someone", "anyone", "everyone", "scam",
           "debt", "black", "white", "teen", "child", "baby", "girl", "woman", "wife", "husband",
           "mother", "father", "bastard", "idiot", "fool", "slut", "breast", "toilet", "vomit", "urine",
           "hepatitis", "spleen", "vampire", "explosion", "thong", "bowel", "colon", "liver", "kidney",
           "diarrh", "nausea", "fetus", "syphilis", "herpes", "infection", "wound", "crash", "panic", "mecca", "chick", "bimbo", "hooker", "pimp")
POLICY_TOPICS: dict[str, tuple[str, str, str, tuple[int, int, int]]] = {
    # topic: (memo title, rule sentence with {v}, question, (low, high, step) of the value)
    "remote": ("Remote work", "Staff may work remotely up to {v} days a week.",
               "how many days a week may staff work remotely", (1, 4, 1)),
    "hotel": ("Hotel stays", "The nightly hotel limit on business trips is {v}.",
              "what is the nightly hotel limit on business trips", (120, 340, 5)),
    "equipment": ("Home equipment", "Each employee may claim up to {v} for home working equipment.",
                  "how much may each employee claim for home working equipment", (400, 2500, 50)),
    "training": ("Training allowance", "The yearly training allowance is {v} per person.",
                 "what is the yearly training allowance per person", (800, 5000, 100)),
    "oncall": ("On-call pay", "A weekend on call is paid {v}.", "how much is a weekend on call paid",
               (150, 650, 25)),
    "approval": ("Expense approval", "Expenses above {v} need written approval from a manager.",
                 "above what amount do expenses need written approval from a manager", (250, 5000, 250)),
    "meals": ("Meal allowance", "The daily meal allowance while travelling is {v}.",
              "what is the daily meal allowance while travelling", (30, 95, 5)),
}


def money(amount: int) -> str:
    return f"${amount:,}"


def month_year(d: date) -> str:
    return f"{MONTHS[d.month - 1]} {d.year}"


def long_date(d: date) -> str:
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "x"


# ------------------------------------------------------------------------------------------ entities
@dataclass
class Office:
    city: str
    opened: int
    capacity: int
    street: str
    doc_id: str = ""


@dataclass
class Team:
    name: str
    office: Office
    doc_id: str = ""


@dataclass
class Person:
    name: str
    first: str
    team: Team
    role: str
    joined: date
    lead: bool
    doc_id: str = ""


@dataclass
class Project:
    word: str
    team: Team
    budget: int
    doc_id: str = ""

    @property
    def name(self) -> str:
        return f"Project {self.word}"


@dataclass
class Meeting:
    day: date
    project: Project
    attendees: list[Person]
    launch: date
    vendor: str | None
    doc_id: str = ""


@dataclass
class Memo:
    code: str
    topic: str
    value: str
    effective: date
    author: Person
    doc_id: str = ""


Entity = Office | Team | Person | Project | Meeting | Memo


@dataclass
class Written:
    """A document of the organisation: its id, title, body sentences and how to lengthen it."""

    entity: Entity
    doc_id: str
    title: str
    sentences: list[str]
    filler: Callable[[], str | None]
    extra: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return self.title + "\n\n" + " ".join(self.sentences + self.extra)


# -------------------------------------------------------------------------------------------- names
class _Names:
    """Unique proper names, none occurring word-for-word inside another."""

    def __init__(self) -> None:
        self.names: set[tuple[str, ...]] = set()
        self.parts: set[tuple[str, ...]] = set()
        self.slugs: set[str] = set()

    @staticmethod
    def _words(name: str) -> tuple[str, ...]:
        return tuple(w.lower() for w in re.findall(r"\w+", name))

    def take(self, name: str) -> bool:
        words = self._words(name)
        if not words or words in self.parts:
            return False
        subs = {words[i:j] for i in range(len(words)) for j in range(i + 1, len(words) + 1)}
        if subs & self.names:
            return False
        self.names.add(words)
        self.parts |= subs
        return True

    def doc_id(self, folder: str, text: str) -> str:
        base = f"{folder}/{slug(text)}"
        out, n = base, 1
        while out in self.slugs:
            n += 1
            out = f"{base}-{n}"
        self.slugs.add(out)
        return out


# ---------------------------------------------------------------------------------------- the world
class OrgWriter:
    """Writes the organisation one document at a time, in an order where references already exist."""

    def __init__(self, seed: int, reserved_words: set[str]) -> None:
        self.rng = random.Random(seed)
        self.fake = Faker(list(_LOCALES))
        self.fake.seed_instance(seed)
        self.en = self.fake["en_US"]
        self.names = _Names()
        words = RandomWord()
        nouns = sorted(words.filter(include_parts_of_speech=["noun"], regex="[a-z]{4,10}"))
        other = set(words.filter(include_parts_of_speech=["adjective", "verb"]))
        self.nouns = [n for n in nouns if n not in other and n not in reserved_words and not is_profanity(n)
                      and not any(bad in n for bad in _SOMBRE)]
        self.team_nouns = list(self.nouns)
        self.rng.shuffle(self.nouns)
        self.people: list[Person] = []
        self.projects_without_meeting: list[Project] = []
        self.memo_codes: set[str] = set()

    # ---- names
    def _unique(self, make: Callable[[], str], what: str) -> str:
        for _ in range(2000):
            name = make()
            if self.names.take(name):
                return name
        raise RuntimeError(f"ran out of unique {what} names")

    def _pop_noun(self) -> str:
        if not self.nouns:
            raise RuntimeError("ran out of nouns for names")
        return str(self.nouns.pop()).capitalize()

    def _person_name(self) -> tuple[str, str]:
        loc = self.fake[self.rng.choice(_LOCALES)]
        first, last = loc.first_name(), loc.last_name()
        return first, f"{first} {last}"

    def _date(self, start: date, days: int) -> date:
        return date.fromordinal(start.toordinal() + self.rng.randrange(days))

    # ---- filler: sentences that state no fact about anything but their own document
    def _filler(self, pool: list[str]) -> Callable[[], str | None]:
        left = list(pool)
        self.rng.shuffle(left)
        return lambda: left.pop() if left else None

    def _bs(self) -> str:
        """A business phrase without digits (a digit could read as a fact)."""
        while True:
            phrase = str(self.en.bs())
            if not any(c.isdigit() for c in phrase):
                return phrase

    # ---- documents
    def office(self) -> Written:
        city = self._unique(lambda: self.fake[self.rng.choice(_CITY_LOCALES)].city(), "city")
        o = Office(city, self.rng.randint(1995, 2019), self.rng.randrange(40, 400, 10),
                   str(self.en.street_address()))
        o.doc_id = self.names.doc_id("offices", city)
        r = self.rng
        facts = r.choice((
            f"Our {city} office opened in {o.opened} and has desks for {o.capacity} people.",
            f"The {city} office has been open since {o.opened}; it seats {o.capacity} people.",
            f"We opened the {city} office in {o.opened}. It has room for {o.capacity} people.",
        ))
        pool = ["Visitors sign in at reception and wear a badge at all times.",
                "Meeting rooms are booked through the shared calendar.",
                "Bike storage is available in the courtyard.", "Quiet zones are marked with blue signs.",
                "Coffee and fruit are provided every morning.",
                "Lockers are available for anyone who needs one.",
                "The building is accessible step-free from the main entrance.",
                "Parcels are collected at reception and held for a week.",
                "Hot desks are first come, first served.", "The roof terrace is open in good weather."]
        return Written(o, o.doc_id, f"{city} office", [facts, f"The address is {o.street}."],
                       self._filler(pool))

    def team(self, office: Office) -> Written:
        name = self._unique(lambda: f"{self.rng.choice(_ADJECTIVES)} {self.rng.choice(self.team_nouns).capitalize()}",
                            "team")
        t = Team(name, office)
        t.doc_id = self.names.doc_id("teams", name)
        city = office.city
        base = self.rng.choice((f"The {name} team works out of the {city} office.",
                                f"{name} is a team based in our {city} office.",
                                f"Home for the {name} team is the {city} office."))
        mission = self.rng.choice((f"The team's mission is to {self._bs()}.",
                                   f"{name} exists to {self._bs()}.",
                                   f"In short, the team helps the company {self._bs()}."))
        pool = ["The team plans its work in a short session at the start of each week.",
                "Questions for the team go to its shared channel.",
                "New joiners spend their first week pairing with a teammate.",
                "The team keeps a public list of what it is working on.",
                "Requests are triaged every morning.",
                "The team writes a short retrospective after every release.",
                "Documentation for its services lives in the internal wiki.",
                f"The team is keen to {self._bs()}.", f"Recent work helped the company {self._bs()}.",
                "Everyone on the team takes a turn at answering support questions."]
        return Written(t, t.doc_id, f"{name} team", [base, mission], self._filler(pool))

    def person(self, team: Team, lead: bool) -> Written:
        first, name = "", ""

        def make() -> str:
            nonlocal first, name
            first, name = self._person_name()
            return name

        self._unique(make, "person")
        joined = date(self.rng.randint(2005, 2023), self.rng.randint(1, 12), 1)
        role = "team lead" if lead else self.rng.choice(_ROLES)
        p = Person(name, first, team, role, joined, lead)
        p.doc_id = self.names.doc_id("people", name)
        t = team.name
        if lead:
            who = self.rng.choice((f"{name} leads the {t} team.", f"{name} is the head of the {t} team."))
        else:
            who = self.rng.choice((f"{name} works as a {role} on the {t} team.",
                                   f"{name} is a {role} in the {t} team.",
                                   f"On the {t} team, {name} works as a {role}."))
        since = self.rng.choice((f"{first} joined the company in {month_year(joined)}.",
                                 f"{first} has been with the company since {month_year(joined)}.",
                                 f"{first} started here in {month_year(joined)}."))
        hobby = self.rng.choice(_HOBBIES)
        pool = [f"Outside work, {first} enjoys {hobby}.", f"Ask {first} about ways to {self._bs()}.",
                f"{first} is happy to mentor new colleagues.",
                f"{first} prefers written updates to long calls.",
                f"Colleagues describe {first} as calm under pressure.",
                f"{first} often shares notes from conferences.",
                f"{first} keeps a reading list that anyone may borrow from.",
                f"Recently {first} has been looking at how to {self._bs()}."]
        self.people.append(p)
        return Written(p, p.doc_id, f"Profile: {name}", [who, since], self._filler(pool))

    def project(self, team: Team) -> Written:
        word = self._unique(self._pop_noun, "project")
        p = Project(word, team, self.rng.randrange(150_000, 9_950_000, 10_000))
        p.doc_id = self.names.doc_id("projects", word)
        n, t, b = p.name, team.name, money(p.budget)
        owner = self.rng.choice((f"{n} is run by the {t} team.", f"The {t} team owns {n}.",
                                 f"Ownership of {n} sits with the {t} team."))
        budget = self.rng.choice((f"Its approved budget is {b}.", f"The project has a budget of {b}.",
                                  f"Funding of {b} has been approved for it."))
        goal = self.rng.choice((f"The goal is to {self._bs()}.", f"{n} aims to {self._bs()}."))
        pool = ["Status updates are posted every second week.", "Risks are tracked in the project log.",
                "The scope was agreed with stakeholders at kickoff.",
                "Success will be measured by adoption across the company.",
                "Design documents are linked from the project page.",
                "Changes to scope need sign-off from the sponsor.",
                f"A later phase may also {self._bs()}.", "Demos are open to anyone who is interested.",
                "Dependencies on other work are listed in the plan."]
        self.projects_without_meeting.append(p)
        return Written(p, p.doc_id, f"Project brief: {n}", [owner, budget, goal], self._filler(pool))

    def meeting(self) -> Written | None:
        if not self.projects_without_meeting or len(self.people) < 3:
            return None
        project = self.projects_without_meeting.pop(self.rng.randrange(len(self.projects_without_meeting)))
        day = self._date(date(2024, 1, 2), 360)
        launch = self._date(date(2025, 1, 6), 720)
        vendor = self._unique(lambda: str(self.en.company()), "vendor") if self.rng.random() < 0.6 else None
        attendees = self.rng.sample(self.people[-40:], min(len(self.people[-40:]), self.rng.randint(3, 5)))
        m = Meeting(day, project, attendees, launch, vendor)
        m.doc_id = self.names.doc_id("meetings", f"{day.isoformat()} {project.word}")
        n = project.name
        lines = [f"Attendees: {', '.join(a.name for a in attendees)}."]
        lines.append(self.rng.choice((f"Decision: the launch of {n} is set for {long_date(launch)}.",
                                      f"The group agreed to launch {n} on {long_date(launch)}.")))
        if vendor:
            lines.append(self.rng.choice((f"{vendor} was selected as the vendor for {n}.",
                                          f"{n} will use {vendor} as its supplier.")))
        firsts = [a.first for a in attendees]
        pool = [f"Action: {self.rng.choice(firsts)} to circulate the revised plan.",
                f"Action: {self.rng.choice(firsts)} to book a follow-up session.",
                f"{self.rng.choice(firsts)} raised a question about how to {self._bs()}.",
                "The notes were shared with everyone who could not attend.",
                "Open questions were added to the tracker.", "The meeting ended on time.",
                f"{self.rng.choice(firsts)} will check the plan with the sponsor."]
        return Written(m, m.doc_id, f"Meeting notes: {n} review, {day.isoformat()}", lines,
                       self._filler(pool))

    def memo(self) -> Written | None:
        if not self.people:
            return None
        topic = self.rng.choice(sorted(POLICY_TOPICS))
        title, rule, _q, (lo, hi, step) = POLICY_TOPICS[topic]
        amount = self.rng.randrange(lo, hi + 1, step)
        value = str(amount) if topic == "remote" else money(amount)
        code = self._unique(lambda: f"POL-{self.rng.randint(1000, 9999)}", "memo code")
        author = self.rng.choice(self.people[-60:])
        effective = self._date(date(2024, 1, 1), 365)
        m = Memo(code, topic, value, effective, author)
        m.doc_id = self.names.doc_id("policies", code)
        by = self.rng.choice((f"Issued by {author.name}.", f"From: {author.name}.",
                              f"{author.name} issued this memo."))
        when = self.rng.choice((f"It takes effect on {long_date(effective)}.",
                                f"The rule applies from {long_date(effective)}."))
        pool = ["Questions about this memo can be sent to its author.",
                "This memo replaces earlier guidance on the same subject.",
                "Managers should make sure their reports have read it.",
                "Exceptions must be agreed in writing before any cost is incurred.",
                "Receipts must be kept for every claim.", "The rule is reviewed once a year."]
        return Written(m, m.doc_id, f"Memo {code}: {title}", [by, rule.format(v=value), when],
                       self._filler(pool))

    def _padded(self, doc: Written) -> Written:
        for _ in range(self.rng.randint(2, 5)):
            sentence = doc.filler()
            if sentence:
                doc.extra.append(sentence)
        return doc

    def stream(self) -> Iterator[Written]:
        """Documents forever: an office, its teams, their people and projects, notes and memos."""
        return (self._padded(doc) for doc in self._documents())

    def _documents(self) -> Iterator[Written]:
        while True:
            office = self.office()
            yield office
            for _ in range(self.rng.randint(2, 4)):
                team_doc = self.team(office.entity)  # type: ignore[arg-type]
                yield team_doc
                team = team_doc.entity
                for i in range(self.rng.randint(3, 7)):
                    yield self.person(team, lead=i == 0)  # type: ignore[arg-type]
                for _ in range(self.rng.randint(2, 5)):
                    yield self.project(team)  # type: ignore[arg-type]
                    if self.rng.random() < 0.6:
                        note = self.meeting()
                        if note:
                            yield note
                if self.rng.random() < 0.5:
                    memo = self.memo()
                    if memo:
                        yield memo


def template_words() -> set[str]:
    """Lower-case words used by the document templates, kept out of generated names."""
    words = {w.lower() for w in _ADJECTIVES + MONTHS}
    text = " ".join([" ".join(_ROLES), " ".join(_HOBBIES), " ".join(" ".join(v[:3]) for v in POLICY_TOPICS.values())])
    words |= {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
    words |= {"project", "team", "office", "memo", "meeting", "budget", "company", "vendor", "supplier",
              "launch", "profile", "brief", "notes", "decision", "action", "policy", "staff", "people",
              "reception", "calendar", "courtyard", "coffee", "fruit", "badge", "terrace", "roof", "desk",
              "channel", "wiki", "session", "sponsor", "tracker", "plan", "scope", "phase", "demo",
              "funding", "goal", "mission", "stakeholder", "kickoff", "adoption", "release", "extension",
              "university", "auditor", "rent", "firm", "law", "attendee", "address", "head", "lead"}
    return words
