"""Raw material for the synthetic haystacks: word pools, RULER's noise, an essay-like text, random values.

Everything is drawn from a ``random.Random`` the caller seeds, so the same seed gives the same text.
Word pools come from the lists shipped inside the ``wonderwords`` package (the ones RULER uses),
keeping plain lowercase words and dropping the package's own profanity list.
"""

from __future__ import annotations

import functools
import random
import re
import string
import uuid
from importlib.resources import files

NOISE_SENTENCES = (
    "The grass is green.",
    "The sky is blue.",
    "The sun is yellow.",
    "Here we go.",
    "There and back again.",
)
"""RULER's noise haystack, one sentence per item; the five together form one line of noise."""

_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")
_WORD_END = re.compile(r"[.!?][\"')\]]*$")


@functools.cache
def _wordlist(name: str) -> tuple[str, ...]:
    from wonderwords import is_profanity

    raw = files("wonderwords.assets").joinpath(name).read_text(encoding="utf-8")
    words = {w.strip() for w in raw.splitlines()}
    return tuple(sorted(w for w in words if re.fullmatch(r"[a-z]{3,}", w) and not is_profanity(w)))


def nouns() -> tuple[str, ...]:
    return _wordlist("nounlist.txt")


def adjectives() -> tuple[str, ...]:
    return _wordlist("adjectivelist.txt")


def verbs() -> tuple[str, ...]:
    return _wordlist("verblist.txt")


@functools.cache
def common_word_pool() -> tuple[str, ...]:
    """Nouns, adjectives and verbs together, sorted and unique (RULER's pool for common words)."""
    return tuple(sorted(set(nouns()) | set(adjectives()) | set(verbs())))


def random_number(rng: random.Random, digits: int = 7) -> str:
    return str(rng.randint(10 ** (digits - 1), 10**digits - 1))


def random_word(rng: random.Random) -> str:
    """An adjective-noun pair such as ``quizzical-lantern`` (RULER's word keys and values)."""
    return f"{rng.choice(adjectives())}-{rng.choice(nouns())}"


def random_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def random_value(kind: str, rng: random.Random) -> str:
    if kind == "number":
        return random_number(rng)
    if kind == "word":
        return random_word(rng)
    if kind == "uuid":
        return random_uuid(rng)
    raise ValueError(f"unknown value type '{kind}'")


def random_code(rng: random.Random, length: int) -> str:
    return "".join(rng.choices(string.ascii_lowercase, k=length))


# ------------------------------------------------------------------------------------------ essay
_TEMPLATES = (
    "The {a} {n} is rarely what it seems at first.",
    "Most people who {v} {an} never ask why.",
    "If you want to {v} the {n}, start with {aan}.",
    "{Aan} can {v} almost anything, given enough time.",
    "It took me years to notice that the {n} and the {n2} are connected.",
    "What matters is not the {n} but how you {v} it.",
    "When I first tried to {v} {an}, I failed.",
    "There is something {a} about {an} that nobody wants to {v}.",
    "The best way to {v} {an} is to be {a} about it.",
    "In the end, every {n} has to {v} something.",
    "Why do so many of us {v} the {n}?",
    "A friend once told me that the {n} was {a}.",
    "You can {v} the {n} without ever seeing the {n2}.",
    "Nobody plans to {v} {an}; it just happens.",
    "The {n} taught me more than any {n2} ever did.",
    "It is easy to {v} the {a} {n} and hard to {v2} it.",
    "Some will say the {n} is {a}, and they are not wrong.",
    "Consider the {n}.",
    "That is how the {a} {n} came to {v} the {n2}.",
    "Think of {aan} that nobody bothered to {v}.",
    "The question is whether the {n} can {v} the {n2} at all.",
    "I suspect the {n} will {v} long after the {n2} is forgotten.",
    "Every {a} {n} starts as {aan2}.",
    "This is why the {n} seems so {a} to outsiders.",
)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _sentence(rng: random.Random) -> str:
    ns, adj, vs = nouns(), adjectives(), verbs()
    n, n2, a, a2, v, v2 = (rng.choice(ns), rng.choice(ns), rng.choice(adj), rng.choice(adj),
                           rng.choice(vs), rng.choice(vs))
    aan = f"{_article(a)} {a} {n}"
    text = rng.choice(_TEMPLATES).format(
        n=n, n2=n2, a=a, v=v, v2=v2, an=f"{_article(n)} {n}", aan=aan,
        aan2=f"{_article(a2)} {a2} {n2}", Aan=aan[0].upper() + aan[1:])
    return text


def essay_text(seed: int, min_words: int) -> str:
    """Essay-like prose of at least ``min_words`` words: paragraphs of 4 to 8 short sentences."""
    rng = random.Random(f"essay:{seed}")
    paragraphs: list[str] = []
    words = 0
    while words < min_words:
        sentences = [_sentence(rng) for _ in range(rng.randint(4, 8))]
        para = " ".join(sentences)
        words += len(para.split())
        paragraphs.append(para)
    return "\n\n".join(paragraphs)


def sentence_ends(text: str) -> list[int]:
    """Character offsets just after each sentence end (., ! or ?, closing quotes, then whitespace or end)."""
    return [m.end() for m in _SENTENCE_END.finditer(text)]


def ends_sentence(word: str) -> bool:
    """Whether a whitespace-free word closes a sentence (``end.``, ``why?``, ``said."``)."""
    return _WORD_END.search(word) is not None
