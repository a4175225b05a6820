"""Question templates of the ``multihop`` suite, each reading facts from the organisation's index."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evals.suites.orgworld import (
    POLICY_TOPICS,
    Entity,
    Meeting,
    Memo,
    Office,
    Person,
    Project,
    Team,
    long_date,
    money,
    month_year,
)

_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                 "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
                 "nineteen", "twenty")


@dataclass
class QSpec:
    qtype: str
    template: str
    text: str
    answers: list[str]
    evidence: list[str]
    facts: list[tuple[str, str]]
    absent: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"task": "multihop", "qtype": self.qtype, "hops": len(self.evidence),
                                "template": self.template, "facts": [list(f) for f in self.facts]}
        if self.qtype == "unanswerable":
            meta.update(unanswerable=True, hops=0, absent_terms=self.absent)
        return {**meta, **self.extra}


@dataclass
class World:
    """What was written, indexed for questions."""

    offices: list[Office]
    teams: list[Team]
    people: list[Person]
    projects: list[Project]
    meetings: list[Meeting]
    memos: list[Memo]
    members: dict[str, list[Person]]
    team_projects: dict[str, list[Project]]
    city_teams: dict[str, list[Team]]
    lead: dict[str, Person]
    meeting_of: dict[str, Meeting]
    office_ids: set[str]

    @classmethod
    def build(cls, entities: list[Entity]) -> World:
        def of(kind: type) -> list[Any]:
            return [e for e in entities if isinstance(e, kind)]

        teams, people, projects = of(Team), of(Person), of(Project)
        w = cls(of(Office), teams, people, projects, of(Meeting), of(Memo), {t.name: [] for t in teams},
                {t.name: [] for t in teams}, {}, {}, {}, set())
        for p in people:
            w.members[p.team.name].append(p)
            if p.lead:
                w.lead[p.team.name] = p
        for pr in projects:
            w.team_projects[pr.team.name].append(pr)
        for t in teams:
            w.city_teams.setdefault(t.office.city, []).append(t)
        w.meeting_of = {m.project.word: m for m in w.meetings}
        w.office_ids = {o.doc_id for o in w.offices}
        return w


def _count(n: int) -> list[str]:
    return [str(n), _NUMBER_WORDS[n]] if n < len(_NUMBER_WORDS) else [str(n)]


def _money_answers(amount: int) -> list[str]:
    out = [money(amount), f"{amount:,}", str(amount)]
    if amount >= 1_000_000:
        out.append(f"${amount / 1e6:.2f} million".replace(".00 ", " "))
    return list(dict.fromkeys(out))


def _team_answers(t: Team) -> list[str]:
    return [t.name, f"the {t.name} team", f"{t.name} team"]


def _project_answers(p: Project) -> list[str]:
    return [p.name, p.word]


def _pick(rng: random.Random, items: list[Any]) -> Any:
    return rng.choice(items) if items else None


Maker = Callable[[World, random.Random], QSpec | None]


# --------------------------------------------------------------------------------------- single-hop
def s_budget(w: World, r: random.Random) -> QSpec | None:
    p = _pick(r, w.projects)
    if p is None:
        return None
    q = r.choice((f"What is the budget of {p.name}?", f"How much funding has been approved for {p.name}?",
                  f"What budget does {p.name} have?"))
    return QSpec("single_hop", "budget", q, _money_answers(p.budget), [p.doc_id], [(p.name, money(p.budget))])


def s_owner(w: World, r: random.Random) -> QSpec | None:
    p = _pick(r, w.projects)
    if p is None:
        return None
    q = r.choice((f"Which team runs {p.name}?", f"{p.name} belongs to which team?",
                  f"Which team is responsible for {p.name}?"))
    return QSpec("single_hop", "owner", q, _team_answers(p.team), [p.doc_id], [(p.name, p.team.name)])


def s_joined(w: World, r: random.Random) -> QSpec | None:
    x = _pick(r, w.people)
    if x is None:
        return None
    q = r.choice((f"When did {x.name} join the company?", f"Since when has {x.name} been with the company?",
                  f"In which month and year did {x.name} start at the company?"))
    my = month_year(x.joined)
    return QSpec("single_hop", "joined", q, [my, x.joined.strftime("%Y-%m"), x.joined.strftime("%m/%Y")],
                 [x.doc_id], [(x.name, my)])


def s_role(w: World, r: random.Random) -> QSpec | None:
    x = _pick(r, [p for p in w.people if not p.lead])
    if x is None:
        return None
    q = r.choice((f"What is {x.name}'s role?", f"What job does {x.name} do?",
                  f"What does {x.name} work as?"))
    return QSpec("single_hop", "role", q, [x.role], [x.doc_id], [(x.name, x.role)])


def s_lead(w: World, r: random.Random) -> QSpec | None:
    t = _pick(r, [t for t in w.teams if t.name in w.lead])
    if t is None:
        return None
    x = w.lead[t.name]
    q = r.choice((f"Who leads the {t.name} team?", f"Who is the head of the {t.name} team?"))
    return QSpec("single_hop", "lead", q, [x.name], [x.doc_id], [(x.name, t.name)])


def s_city(w: World, r: random.Random) -> QSpec | None:
    t = _pick(r, w.teams)
    if t is None:
        return None
    q = r.choice((f"In which city is the {t.name} team based?", f"Where does the {t.name} team work from?",
                  f"Which city is home to the {t.name} team?"))
    return QSpec("single_hop", "city", q, [t.office.city], [t.doc_id], [(t.name, t.office.city)])


def s_opened(w: World, r: random.Random) -> QSpec | None:
    o = _pick(r, w.offices)
    if o is None:
        return None
    q = r.choice((f"When did the {o.city} office open?", f"In what year was the {o.city} office opened?"))
    return QSpec("single_hop", "opened", q, [str(o.opened)], [o.doc_id], [(o.city, str(o.opened))])


def s_capacity(w: World, r: random.Random) -> QSpec | None:
    o = _pick(r, w.offices)
    if o is None:
        return None
    q = r.choice((f"How many people can the {o.city} office seat?",
                  f"How many desks does the {o.city} office have?"))
    return QSpec("single_hop", "capacity", q, _count(o.capacity), [o.doc_id], [(o.city, str(o.capacity))])


def s_launch(w: World, r: random.Random) -> QSpec | None:
    m = _pick(r, w.meetings)
    if m is None:
        return None
    n, d = m.project.name, m.launch
    q = r.choice((f"When is {n} set to launch?", f"What launch date was agreed for {n}?"))
    return QSpec("single_hop", "launch", q, [long_date(d), d.isoformat(), f"{d:%B} {d.day}, {d.year}"],
                 [m.doc_id], [(n, long_date(d))])


def s_vendor(w: World, r: random.Random) -> QSpec | None:
    m = _pick(r, [m for m in w.meetings if m.vendor])
    if m is None:
        return None
    n = m.project.name
    q = r.choice((f"Which vendor was selected for {n}?", f"Which supplier will {n} use?"))
    return QSpec("single_hop", "vendor", q, [str(m.vendor)], [m.doc_id], [(n, str(m.vendor))])


def s_policy(w: World, r: random.Random) -> QSpec | None:
    m = _pick(r, w.memos)
    if m is None:
        return None
    ask = POLICY_TOPICS[m.topic][2]
    q = r.choice((f"Under memo {m.code}, {ask}?", f"According to memo {m.code}, {ask}?"))
    answers = _count(int(m.value)) if m.topic == "remote" else _money_answers(int(m.value[1:].replace(",", "")))
    return QSpec("single_hop", "policy", q, answers, [m.doc_id], [(m.code, m.value)])


def s_author(w: World, r: random.Random) -> QSpec | None:
    m = _pick(r, w.memos)
    if m is None:
        return None
    q = r.choice((f"Who issued memo {m.code}?", f"Who is the author of memo {m.code}?"))
    return QSpec("single_hop", "author", q, [m.author.name], [m.doc_id], [(m.code, m.author.name)])


# ------------------------------------------------------------------------------------------ two-hop
def t_project_city(w: World, r: random.Random) -> QSpec | None:
    p = _pick(r, w.projects)
    if p is None:
        return None
    t = p.team
    q = r.choice((f"Which city is the office of the team that runs {p.name} in?",
                  f"In which city does the team behind {p.name} work?"))
    return QSpec("two_hop", "project_city", q, [t.office.city], [p.doc_id, t.doc_id],
                 [(p.name, t.name), (t.name, t.office.city)])


def t_project_lead(w: World, r: random.Random) -> QSpec | None:
    p = _pick(r, [p for p in w.projects if p.team.name in w.lead])
    if p is None:
        return None
    x = w.lead[p.team.name]
    q = r.choice((f"Who leads the team that runs {p.name}?", f"Who heads the team responsible for {p.name}?"))
    return QSpec("two_hop", "project_lead", q, [x.name], [p.doc_id, x.doc_id],
                 [(p.name, p.team.name), (x.name, p.team.name)])


def t_person_city(w: World, r: random.Random) -> QSpec | None:
    x = _pick(r, w.people)
    if x is None:
        return None
    t = x.team
    q = r.choice((f"In which city does {x.name} work?", f"Which city is {x.name}'s team based in?"))
    return QSpec("two_hop", "person_city", q, [t.office.city], [x.doc_id, t.doc_id],
                 [(x.name, t.name), (t.name, t.office.city)])


def t_team_opened(w: World, r: random.Random) -> QSpec | None:
    t = _pick(r, [t for t in w.teams if t.office.doc_id in w.office_ids])
    if t is None:
        return None
    o = t.office
    q = r.choice((f"In what year did the office of the {t.name} team open?",
                  f"When was the office that the {t.name} team works from opened?"))
    return QSpec("two_hop", "team_office_opened", q, [str(o.opened)], [t.doc_id, o.doc_id],
                 [(t.name, o.city), (o.city, str(o.opened))])


def t_author_team(w: World, r: random.Random) -> QSpec | None:
    m = _pick(r, w.memos)
    if m is None:
        return None
    x = m.author
    q = r.choice((f"On which team is the author of memo {m.code}?",
                  f"Which team does the person who issued memo {m.code} belong to?"))
    return QSpec("two_hop", "author_team", q, _team_answers(x.team), [m.doc_id, x.doc_id],
                 [(m.code, x.name), (x.name, x.team.name)])


def t_vendor_budget(w: World, r: random.Random) -> QSpec | None:
    m = _pick(r, [m for m in w.meetings if m.vendor])
    if m is None:
        return None
    p = m.project
    q = r.choice((f"What is the budget of the project that selected {m.vendor} as its vendor?",
                  f"How much funding does the project supplied by {m.vendor} have?"))
    return QSpec("two_hop", "vendor_budget", q, _money_answers(p.budget), [m.doc_id, p.doc_id],
                 [(str(m.vendor), p.name), (p.name, money(p.budget))])


# ---------------------------------------------------------------------------------------- three-hop
def th_project_opened(w: World, r: random.Random) -> QSpec | None:
    p = _pick(r, [p for p in w.projects if p.team.office.doc_id in w.office_ids])
    if p is None:
        return None
    t, o = p.team, p.team.office
    q = f"In what year did the office of the team that runs {p.name} open?"
    return QSpec("three_hop", "project_office_opened", q, [str(o.opened)], [p.doc_id, t.doc_id, o.doc_id],
                 [(p.name, t.name), (t.name, o.city), (o.city, str(o.opened))])


def th_author_city(w: World, r: random.Random) -> QSpec | None:
    m = _pick(r, w.memos)
    if m is None:
        return None
    x, t = m.author, m.author.team
    q = f"In which city does the author of memo {m.code} work?"
    return QSpec("three_hop", "author_city", q, [t.office.city], [m.doc_id, x.doc_id, t.doc_id],
                 [(m.code, x.name), (x.name, t.name), (t.name, t.office.city)])


# -------------------------------------------------------------------------------------- aggregation
def a_joined_before(w: World, r: random.Random) -> QSpec | None:
    t = _pick(r, [t for t in w.teams if len({p.joined.year for p in w.members[t.name]}) >= 2])
    if t is None:
        return None
    members = w.members[t.name]
    years = sorted({p.joined.year for p in members})
    year = r.choice(years[1:])
    counted = [p for p in members if p.joined.year < year]
    q = r.choice((f"How many people on the {t.name} team joined the company before {year}?",
                  f"How many members of the {t.name} team started before {year}?"))
    return QSpec("aggregation", "joined_before", q, _count(len(counted)), [p.doc_id for p in members],
                 [(p.name, t.name) for p in members],
                 extra={"threshold_year": year, "counted": [p.doc_id for p in counted]})


def a_team_size(w: World, r: random.Random) -> QSpec | None:
    t = _pick(r, [t for t in w.teams if w.members[t.name]])
    if t is None:
        return None
    members = w.members[t.name]
    q = r.choice((f"How many people are on the {t.name} team?", f"How many members does the {t.name} team have?"))
    return QSpec("aggregation", "team_size", q, _count(len(members)), [p.doc_id for p in members],
                 [(p.name, t.name) for p in members], extra={"counted": [p.doc_id for p in members]})


def a_team_projects(w: World, r: random.Random) -> QSpec | None:
    t = _pick(r, [t for t in w.teams if w.team_projects[t.name]])
    if t is None:
        return None
    ps = w.team_projects[t.name]
    q = r.choice((f"How many projects does the {t.name} team run?",
                  f"How many projects is the {t.name} team responsible for?"))
    return QSpec("aggregation", "team_projects", q, _count(len(ps)), [p.doc_id for p in ps],
                 [(p.name, t.name) for p in ps], extra={"counted": [p.doc_id for p in ps]})


def a_city_teams(w: World, r: random.Random) -> QSpec | None:
    city = _pick(r, sorted(w.city_teams))
    if city is None:
        return None
    ts = w.city_teams[city]
    q = r.choice((f"How many teams work from the {city} office?", f"How many teams are based in {city}?"))
    return QSpec("aggregation", "city_teams", q, _count(len(ts)), [t.doc_id for t in ts],
                 [(t.name, city) for t in ts], extra={"counted": [t.doc_id for t in ts]})


# --------------------------------------------------------------------------------------- comparison
def _two(r: random.Random, items: list[Any], key: Callable[[Any], Any]) -> tuple[Any, Any] | None:
    for _ in range(20):
        if len(items) < 2:
            return None
        a, b = r.sample(items, 2)
        if key(a) != key(b):
            return a, b
    return None


def c_budget(w: World, r: random.Random) -> QSpec | None:
    pair = _two(r, w.projects, lambda p: p.budget)
    if pair is None:
        return None
    a, b = pair
    larger = r.random() < 0.5
    win = max(pair, key=lambda p: p.budget) if larger else min(pair, key=lambda p: p.budget)
    q = (f"Which project has the larger budget, {a.name} or {b.name}?" if larger
         else f"Which project received less funding, {a.name} or {b.name}?")
    return QSpec("comparison", "compare_budget", q, _project_answers(win), [a.doc_id, b.doc_id],
                 [(a.name, money(a.budget)), (b.name, money(b.budget))])


def c_joined(w: World, r: random.Random) -> QSpec | None:
    pair = _two(r, w.people, lambda p: p.joined)
    if pair is None:
        return None
    a, b = pair
    win = min(pair, key=lambda p: p.joined)
    q = r.choice((f"Who joined the company first, {a.name} or {b.name}?",
                  f"Who has been with the company longer, {a.name} or {b.name}?"))
    return QSpec("comparison", "compare_joined", q, [win.name], [a.doc_id, b.doc_id],
                 [(a.name, month_year(a.joined)), (b.name, month_year(b.joined))])


def c_opened(w: World, r: random.Random) -> QSpec | None:
    pair = _two(r, w.offices, lambda o: o.opened)
    if pair is None:
        return None
    a, b = pair
    win = min(pair, key=lambda o: o.opened)
    q = f"Which office opened earlier, the {a.city} office or the {b.city} office?"
    return QSpec("comparison", "compare_opened", q, [win.city, f"the {win.city} office", f"{win.city} office"],
                 [a.doc_id, b.doc_id], [(a.city, str(a.opened)), (b.city, str(b.opened))])


def c_capacity(w: World, r: random.Random) -> QSpec | None:
    pair = _two(r, w.offices, lambda o: o.capacity)
    if pair is None:
        return None
    a, b = pair
    win = max(pair, key=lambda o: o.capacity)
    q = f"Which office seats more people, the {a.city} office or the {b.city} office?"
    return QSpec("comparison", "compare_capacity", q, [win.city, f"the {win.city} office", f"{win.city} office"],
                 [a.doc_id, b.doc_id], [(a.city, str(a.capacity)), (b.city, str(b.capacity))])


# ------------------------------------------------------------------------------------- unanswerable
def _unanswerable(template: str, text: str, doc_id: str, absent: list[str]) -> QSpec:
    return QSpec("unanswerable", template, text, ["unanswerable"], [doc_id], [], absent=absent)


def u_extension(w: World, r: random.Random) -> QSpec | None:
    x = _pick(r, w.people)
    return None if x is None else _unanswerable(
        "phone_extension", r.choice((f"What is {x.name}'s phone extension?",
                                     f"Which phone extension does {x.name} have?")), x.doc_id, ["extension"])


def u_university(w: World, r: random.Random) -> QSpec | None:
    x = _pick(r, w.people)
    return None if x is None else _unanswerable(
        "university", f"Which university did {x.name} graduate from?", x.doc_id, ["university"])


def u_auditor(w: World, r: random.Random) -> QSpec | None:
    p = _pick(r, w.projects)
    return None if p is None else _unanswerable(
        "auditor", f"Which external auditor reviewed {p.name}?", p.doc_id, ["auditor"])


def u_rent(w: World, r: random.Random) -> QSpec | None:
    o = _pick(r, w.offices)
    return None if o is None else _unanswerable(
        "rent", f"What is the monthly rent of the {o.city} office?", o.doc_id, ["rent"])


def u_law_firm(w: World, r: random.Random) -> QSpec | None:
    m = _pick(r, w.memos)
    return None if m is None else _unanswerable(
        "law_firm", f"Which law firm reviewed memo {m.code}?", m.doc_id, ["law firm"])


TEMPLATES: dict[str, list[Maker]] = {
    "single_hop": [s_budget, s_owner, s_joined, s_role, s_lead, s_city, s_opened, s_capacity, s_launch,
                   s_vendor, s_policy, s_author],
    "two_hop": [t_project_city, t_project_lead, t_person_city, t_team_opened, t_author_team, t_vendor_budget],
    "three_hop": [th_project_opened, th_author_city],
    "aggregation": [a_joined_before, a_team_size, a_team_projects, a_city_teams],
    "comparison": [c_budget, c_joined, c_opened, c_capacity],
    "unanswerable": [u_extension, u_university, u_auditor, u_rent, u_law_firm],
}
