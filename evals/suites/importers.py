"""Turn files people already have into suites.

* :func:`import_questions`: questions as CSV or JSONL against a folder or a ``.zip`` of documents
  (``.txt``, ``.md``, ``.html``/``.htm``, ``.pdf``); a document's id is its path relative to the folder.
* :func:`import_longbench`: LongBench / LongBench v2 / InfiniteBench style JSONL, where every record
  carries its own ``context``; identical contexts become one shared document.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from evals.domain import Document, Evidence, Question, Suite
from evals.errors import UserInputError
from evals.limits import loads_json
from evals.suites.io import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DOCUMENTS,
    DEFAULT_MAX_QUESTIONS,
    decode_utf8,
    did_you_mean,
    read_text_file,
)

DOCUMENT_EXTENSIONS = (".txt", ".md", ".html", ".htm", ".pdf")
_QUESTION_FIELDS = ("id", "question", "answers", "evidence")


# ------------------------------------------------------------------------------------------ documents
class _TextExtractor(HTMLParser):
    """Visible text of an HTML page: scripts and styles dropped, blocks on their own lines."""

    _SKIP = {"script", "style", "noscript", "template", "head"}
    _BLOCK = {"p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "header", "footer",
              "h1", "h2", "h3", "h4", "h5", "h6", "pre", "blockquote", "dt", "dd", "hr", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skip += 1
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP and self._skip:
            self._skip -= 1
        if tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(data)

    def text(self) -> str:
        lines = (" ".join(line.split()) for line in "".join(self.parts).splitlines())
        return "\n".join(line for line in lines if line)


def html_to_text(html: str) -> tuple[str, str]:
    """(title, visible text) of an HTML page, with the standard library's parser."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return " ".join(parser.title.split()), parser.text()


def pdf_to_text(raw: bytes, source: str) -> tuple[str, str]:
    """(title, text) of a PDF, page texts separated by blank lines."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise UserInputError("the PDF is encrypted; save an unencrypted copy", source=source)
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        info: Any = reader.metadata or {}
        title = str(info.get("/Title") or "")
    except UserInputError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as e:
        raise UserInputError(f"cannot read the PDF: {e}", source=source) from None
    text = "\n\n".join(p for p in pages if p)
    if not text:
        raise UserInputError("the PDF has no extractable text (a scanned PDF needs OCR first)", source=source)
    return title.strip(), text


def _document(rel: str, raw: bytes, source: str) -> Document:
    suffix = PurePosixPath(rel).suffix.lower()
    title = PurePosixPath(rel).stem
    if suffix == ".pdf":
        pdf_title, text = pdf_to_text(raw, source)
        title = pdf_title or title
    else:
        text = decode_utf8(raw, source)
        if suffix in (".html", ".htm"):
            html_title, text = html_to_text(text)
            title = html_title or title
        elif suffix == ".md":
            heading = next((ln.lstrip("#").strip() for ln in text.splitlines() if ln.startswith("# ")), "")
            title = heading or title
    return Document(id=rel, title=title, text=text.strip(), metadata={"source": rel, "format": suffix[1:]})


def _wanted(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    return (PurePosixPath(rel).suffix.lower() in DOCUMENT_EXTENSIONS
            and not any(p.startswith(".") or p == "__MACOSX" for p in parts))


def _folder_files(root: Path) -> Iterator[tuple[str, int, Any]]:
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and _wanted(rel):
            yield rel, p.stat().st_size, p.read_bytes


def _zip_files(zf: zipfile.ZipFile) -> Iterator[tuple[str, int, Any]]:
    for info in sorted(zf.infolist(), key=lambda i: i.filename):
        if not info.is_dir() and _wanted(info.filename):
            yield info.filename, info.file_size, (lambda info=info: zf.read(info))


def load_documents(path: str | Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
                   max_documents: int = DEFAULT_MAX_DOCUMENTS) -> list[Document]:
    """Every supported file under a folder or inside a ``.zip``, id = its relative path, sorted."""
    p = Path(path)
    if p.is_dir():
        return _collect(_folder_files(p), str(p), max_bytes, max_documents)
    if p.is_file() and p.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(p) as zf:
                return _collect(_zip_files(zf), str(p), max_bytes, max_documents)
        except zipfile.BadZipFile as e:
            raise UserInputError(f"not a valid zip file: {e}", source=str(p)) from None
    if p.exists():
        raise UserInputError("documents must be a folder or a .zip file", source=str(p))
    raise UserInputError("folder or .zip not found", source=str(p))


def _collect(files: Iterator[tuple[str, int, Any]], where: str, max_bytes: int,
             max_documents: int) -> list[Document]:
    docs: list[Document] = []
    total = 0
    for rel, size, read in files:
        total += size
        if total > max_bytes:
            raise UserInputError(f"documents add up to more than the limit of {max_bytes:,} bytes",
                                 source=where)
        if len(docs) >= max_documents:
            raise UserInputError(f"more than {max_documents:,} documents, over the limit", source=where)
        docs.append(_document(rel, read(), f"{where}:{rel}"))
    if not docs:
        raise UserInputError(f"no documents found (looked for {', '.join(DOCUMENT_EXTENSIONS)})",
                             source=where)
    return docs


# ------------------------------------------------------------------------------------------ questions
def _split_list(value: Any) -> list[Any]:
    """A JSON list, or a ``|``-separated string, or a single value."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    text = str(value).strip()
    if not text:
        return []
    if text.startswith("["):
        try:
            parsed = loads_json(text)
        except UserInputError as e:
            raise ValueError(f"looks like a JSON list but is not accepted: {e.detail}") from None
        if not isinstance(parsed, list):
            raise ValueError("must be a JSON list")
        return parsed
    return [part.strip() for part in text.split("|") if part.strip()]


def _question_rows(path: Path, max_bytes: int) -> Iterator[tuple[int, dict[str, Any]]]:
    text = read_text_file(path, max_bytes=max_bytes)
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        header = reader.fieldnames or []
        if "question" not in header:
            raise UserInputError(f"the CSV needs a 'question' column (found: {', '.join(header) or 'none'})",
                                 source=str(path), line=1)
        for row in reader:
            if None in row:
                raise UserInputError("more cells than header columns", source=str(path), line=reader.line_num)
            yield reader.line_num, {k: v for k, v in row.items() if v is not None}
        return
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        record = loads_json(line, source=str(path), line=lineno)
        if not isinstance(record, dict):
            raise UserInputError("each line must be a JSON object", source=str(path), line=lineno)
        yield lineno, record


def _question(row: dict[str, Any], n: int, known: set[str], source: str, line: int) -> Question:
    def fail(msg: str, field: str) -> UserInputError:
        return UserInputError(msg, source=source, line=line, field=field)

    qid = str(row.get("id") or "").strip() or f"q{n}"
    try:
        answers = [str(a) for a in _split_list(row.get("answers"))]
    except ValueError as e:
        raise fail(str(e), "answers") from None
    try:
        raw_evidence = _split_list(row.get("evidence"))
    except ValueError as e:
        raise fail(str(e), "evidence") from None
    evidence: list[Evidence] = []
    for i, ev in enumerate(raw_evidence):
        try:
            item = Evidence.model_validate(ev if isinstance(ev, dict) else {"doc_id": str(ev)})
        except ValidationError as e:
            raise fail(e.errors()[0]["msg"], f"evidence[{i}]") from None
        if item.doc_id not in known:
            raise fail(f"unknown document '{item.doc_id}'{did_you_mean(item.doc_id, known)}",
                       f"evidence[{i}]")
        evidence.append(item)
    raw_meta = row.get("metadata")
    metadata: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    extra = {k: v for k, v in row.items() if k not in (*_QUESTION_FIELDS, "metadata") and v not in ("", None)}
    try:
        return Question(id=qid, question=str(row.get("question") or "").strip(), answers=answers,
                        evidence=evidence, metadata={**extra, **metadata})
    except ValidationError as e:
        err = e.errors()[0]
        raise fail(err["msg"], ".".join(str(p) for p in err["loc"])) from None


def import_questions(questions: str | Path, documents: str | Path, *, name: str | None = None,
                     max_bytes: int = DEFAULT_MAX_BYTES, max_documents: int = DEFAULT_MAX_DOCUMENTS,
                     max_questions: int = DEFAULT_MAX_QUESTIONS) -> Suite:
    """A suite from a questions file (``.csv`` or ``.jsonl``) and a folder or ``.zip`` of documents.

    Columns / fields: ``question`` (required), ``id`` (default ``q<n>``), ``answers`` and ``evidence``
    (document ids), each a JSON list or ``|``-separated; other columns go to the question's metadata.
    """
    qpath = Path(questions)
    if qpath.suffix.lower() not in (".csv", ".jsonl"):
        raise UserInputError("questions must be a .csv or .jsonl file", source=str(qpath))
    docs = load_documents(documents, max_bytes=max_bytes, max_documents=max_documents)
    known = {d.id for d in docs}
    out: list[Question] = []
    seen: dict[str, int] = {}
    for line, row in _question_rows(qpath, max_bytes):
        if len(out) >= max_questions:
            raise UserInputError(f"more than {max_questions:,} questions, over the limit",
                                 source=str(qpath), line=line)
        q = _question(row, len(out) + 1, known, str(qpath), line)
        if q.id in seen:
            raise UserInputError(f"duplicate question id '{q.id}' (first at line {seen[q.id]})",
                                 source=str(qpath), line=line, field="id")
        seen[q.id] = line
        out.append(q)
    if not out:
        raise UserInputError("no questions in the file", source=str(qpath))
    return Suite(name=name or qpath.stem, documents=docs, questions=out,
                 metadata={"imported_from": {"questions": qpath.name, "documents": Path(documents).name}})


# ----------------------------------------------------------------------------------------- LongBench
_LB_KNOWN = ("context", "input", "question", "answers", "answer", "_id", "id", "options")
_CHOICES = ("A", "B", "C", "D")


def _longbench_question(rec: dict[str, Any], default_question: str | None,
                        fail: Any) -> tuple[str, list[str], list[str]]:
    text = rec.get("input")
    if text is None:
        text = rec.get("question")
    text = str(text or "").strip()
    if not text:
        if default_question is None:
            raise fail("the record has no question ('input' is empty); pass a default question "
                       "(--default-question) for tasks such as summarisation", "input")
        text = default_question
    raw = rec.get("answers", rec.get("answer"))
    answers = [str(a) for a in (raw if isinstance(raw, list) else [] if raw is None else [raw])]
    options = rec.get("options")
    choices: list[str] = []
    if all(f"choice_{c}" in rec for c in _CHOICES):  # LongBench v2 multiple choice
        choices = [str(rec[f"choice_{c}"]) for c in _CHOICES]
    elif isinstance(options, list) and options:  # InfiniteBench multiple choice
        choices = [str(o) for o in options]
    if choices:
        text += "\n" + "\n".join(f"({chr(65 + i)}) {o}" for i, o in enumerate(choices))
    return text, answers, choices


def _source_of(rec: dict[str, Any], task: str | None) -> str:
    """Which benchmark a record comes from: ``longbench_v2`` (choice_A…D), ``longbench`` (a LongBench
    dataset name), ``infinitebench`` (an InfiniteBench task, from ``task`` or the file name), else ``ctxeval``."""
    from evals.benchmark_metrics import DATASET2METRIC, INFINITEBENCH_METRICS, longbench_dataset

    if all(f"choice_{c}" in rec for c in _CHOICES):
        return "longbench_v2"
    dataset = rec.get("dataset")
    if isinstance(dataset, str) and longbench_dataset(dataset) in DATASET2METRIC:
        return "longbench"
    if task is not None and task in INFINITEBENCH_METRICS:  # not longbook_sum_eng, math_calc: no ported metric
        return "infinitebench"
    return "ctxeval"



def _infinitebench_vars(rec: dict[str, Any], task: str, fail: Any) -> tuple[dict[str, Any], list[str]]:
    """Template values and references as InfiniteBench's ``create_prompt`` and ``get_answer`` make them."""
    import re as _re

    inp = str(rec.get("input") or "")
    values: dict[str, Any] = {"input": inp, "question": inp}
    options = rec.get("options") or []
    raw = rec.get("answer", rec.get("answers"))
    answers = [str(a) for a in (raw if isinstance(raw, list) else [] if raw is None else [raw])]
    if task in ("longbook_choice_eng", "code_debug"):
        if not isinstance(options, list) or len(options) < 4:
            raise fail(f"{task} needs four 'options'", "options")
        values.update({f"OPTION_{c}": options[i] for i, c in enumerate("ABCD")})
        gold = answers[0] if answers else ""
        if len(answers) == 2 and answers[1] in "ABCD":
            pass
        elif gold in options:
            answers = [gold, "ABCD"[options.index(gold)]]  # get_answer: [option text, letter]
        else:
            raise fail(f"the answer {gold!r} is not one of the options", "answer")
    elif task == "code_run":
        calls = _re.findall(r"func_[0-9]+\(\-?[0-9]+\)", inp)
        if not calls:
            raise fail("code_run needs a call like func_1(3) in 'input'", "input")
        values.update({"func_call": calls[0], "func": calls[0].split("(")[0]})
    elif task == "math_find":
        found = _re.findall(r"The .+ of", inp)
        if not found:
            raise fail("math_find needs 'The … of' in 'input'", "input")
        values["prefix"] = f"What is {found[0].lower()[:-3]} in the following list?"
    return values, answers


def import_longbench(path: str | Path, *, name: str | None = None, default_question: str | None = None,
                     max_bytes: int = DEFAULT_MAX_BYTES, max_questions: int = DEFAULT_MAX_QUESTIONS,
                     task: str | None = None) -> Suite:
    """A suite from LongBench v1, LongBench v2 or InfiniteBench JSONL (one record per question with its
    context), with the benchmark's preset.

    Each record: ``context``, ``input`` (or ``question``), ``answers`` (or ``answer``), optional
    ``_id``/``id``; every other field (``all_classes``, ``length``, ``dataset``, ...) goes to the
    question's metadata. Records with the same context share one document; ``doc_ids`` and
    ``evidence`` point at it. The preset follows the records: ``longbench_v2`` for ``choice_A``…``D``,
    ``longbench`` for a LongBench ``dataset``, ``infinitebench`` for an InfiniteBench task (``task``, else
    the file name, e.g. ``kv_retrieval.jsonl``); other records keep ctxeval's frame.
    """
    src = str(path)
    stem = Path(path).stem
    task = task or stem
    text = read_text_file(path, max_bytes=max_bytes)
    docs: dict[str, Document] = {}
    questions: list[Question] = []
    seen: dict[str, int] = {}
    sources: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue

        def fail(msg: str, field: str | None = None, n: int = lineno) -> UserInputError:
            return UserInputError(msg, source=src, line=n, field=field)

        rec = loads_json(line, source=src, line=lineno)
        if not isinstance(rec, dict):
            raise fail("each line must be a JSON object")
        context = rec.get("context")
        if not isinstance(context, str) or not context.strip():
            raise fail("missing or empty 'context' (the text the question is about)", "context")
        if len(questions) >= max_questions:
            raise fail(f"more than {max_questions:,} questions, over the limit")
        source = _source_of(rec, task)
        sources.add(source)
        if len(sources) > 1:
            raise fail(f"records from different benchmarks in one file ({', '.join(sorted(sources))})")
        if source == "longbench" and not str(rec.get("input") or "").strip() and default_question is None:
            from evals.presets import get_preset

            ds = str(rec["dataset"])
            tail = get_preset("longbench").tasks[ds].template.split("{context}")[-1].strip()
            qtext, answers, choices = _longbench_question(rec, tail or ds, fail)  # the prompt's closing words
        else:
            qtext, answers, choices = _longbench_question(rec, default_question, fail)
        raw_id = rec.get("_id", rec.get("id"))
        qid = str(raw_id) if raw_id not in (None, "") else f"q{len(questions) + 1}"
        if qid in seen:
            raise fail(f"duplicate question id '{qid}' (first at line {seen[qid]})",
                       "_id" if "_id" in rec else "id")
        seen[qid] = lineno
        doc_id = "ctx-" + hashlib.sha256(context.encode("utf-8")).hexdigest()[:16]
        if doc_id not in docs:
            docs[doc_id] = Document(id=doc_id, title=f"context of {qid}", text=context)
        metadata = {k: v for k, v in rec.items() if k not in _LB_KNOWN and not k.startswith("choice_")}
        metadata.setdefault("task", metadata.get("dataset", "longbench"))
        if choices:
            metadata["choices"] = choices  # the `choice` scorer reads them
        if source == "longbench":
            metadata["template_vars"] = {"input": str(rec.get("input") or "")}
        elif source == "longbench_v2":
            metadata["task"] = "longbench_v2"
            metadata["template_vars"] = {"question": str(rec.get("question") or ""),
                                         **{f"choice_{c}": str(rec[f"choice_{c}"]) for c in _CHOICES}}
        elif source == "infinitebench":
            metadata["task"] = task
            metadata["template_vars"], answers = _infinitebench_vars(rec, task, fail)
        try:
            questions.append(Question(id=qid, question=qtext, answers=answers, doc_ids=[doc_id],
                                      evidence=[Evidence(doc_id=doc_id)], metadata=metadata))
        except ValidationError as e:
            err = e.errors()[0]
            raise fail(err["msg"], ".".join(str(p) for p in err["loc"])) from None
    if not questions:
        raise UserInputError("no records in the file", source=src)
    source = sources.pop()
    suite_meta: dict[str, Any] = {"imported_from": {"longbench": Path(path).name}}
    # multiple-choice data are scored by the option letter chosen, never by SQuAD matching of "A"
    scorers: list[str] = ["choice"] if all("choices" in q.metadata for q in questions) else []
    if source != "ctxeval":  # the benchmark's own metric
        suite_meta["preset"] = source
        scorers = {"longbench": ["longbench"], "longbench_v2": ["choice"],
                   "infinitebench": ["infinitebench"]}[source]
    return Suite(name=name or Path(path).stem, documents=list(docs.values()), questions=questions,
                 default_scorers=scorers, metadata=suite_meta)
