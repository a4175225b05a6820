"""Suites from uploaded files, through the same engine importers as ``ctxeval suite import``.

The uploads are written to a private temporary folder under their own (base) names, exactly the layout
the CLI reads: the documents as a folder of files, or the one ``.zip`` uploaded; the questions file
next to it. :func:`evals.suites.importers.import_questions` / ``import_longbench`` then validate them
with the CLI's rules and messages; an error names the uploaded file (and the file inside a zip), the
line and the field, with the temporary folder taken out.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from evals import DOCUMENT_EXTENSIONS, Suite, UserInputError, import_longbench, import_questions

Upload = tuple[str, bytes]  # (file name as sent, content)


def _safe_name(name: str, field: str) -> str:
    base = PurePosixPath((name or "").replace("\\", "/")).name.strip()
    if not base or base in (".", "..") or base.startswith("."):
        raise UserInputError(f"the uploaded file name '{name}' cannot be used; rename the file", field=field)
    return base


def _suite_name(name: str | None) -> str:
    value = (name or "").strip()
    if not value:
        raise UserInputError("give the suite a name", field="name")
    return value


def _relabel(error: UserInputError, root: Path) -> UserInputError:
    """The same error with the temporary folder removed from its source."""
    source = error.source
    if source:
        for prefix in (f"{root / 'documents'}:", f"{root}/"):
            source = source.replace(prefix, "")
        if source == str(root / "documents"):
            source = "the uploaded documents"
    return UserInputError(error.detail, source=source, line=error.line, field=error.field)


def import_documents_and_questions(*, name: str | None, questions: Upload | None,
                                   documents: Sequence[Upload]) -> Suite:
    """A suite from a questions file (``.csv``/``.jsonl``) and documents: one ``.zip``, or several
    ``.txt``/``.md``/``.html``/``.pdf`` files (their ids are their file names)."""
    suite_name = _suite_name(name)
    if questions is None or not questions[0]:
        raise UserInputError("choose a questions file (.csv or .jsonl)", field="questions")
    docs = [d for d in documents if d[0]]
    if not docs:
        raise UserInputError(f"choose the documents: a .zip, or files ({', '.join(DOCUMENT_EXTENSIONS)})",
                             field="documents")
    with tempfile.TemporaryDirectory(prefix="ctxeval-import-") as tmp:
        root = Path(tmp)
        qpath = root / _safe_name(questions[0], "questions")
        qpath.write_bytes(questions[1])
        names = [_safe_name(n, "documents") for n, _ in docs]
        if len(docs) == 1 and names[0].lower().endswith(".zip"):
            doc_path = root / "zip" / names[0]
            doc_path.parent.mkdir()
            doc_path.write_bytes(docs[0][1])
        else:
            doc_path = root / "documents"
            doc_path.mkdir()
            for n, (_, data) in zip(names, docs, strict=True):
                if n.lower().endswith(".zip"):
                    raise UserInputError(f"{n}: upload a .zip on its own, or the document files without it",
                                         field="documents")
                if (doc_path / n).exists():
                    raise UserInputError(f"two documents are named '{n}'", field="documents")
                (doc_path / n).write_bytes(data)
        try:
            suite = import_questions(qpath, doc_path, name=suite_name)
        except UserInputError as e:
            raise _relabel(_relabel(e, root / "zip"), root) from None
    shown = names[0] if len(names) == 1 else f"{len(names)} files"
    return suite.model_copy(update={"metadata": {**suite.metadata, "imported_from": {
        "questions": qpath.name, "documents": shown}}})


def import_longbench_file(*, name: str | None, upload: Upload | None, default_question: str | None = None) -> Suite:
    """A suite from a LongBench / InfiniteBench style ``.jsonl`` upload."""
    suite_name = _suite_name(name)
    if upload is None or not upload[0]:
        raise UserInputError("choose a LongBench-style .jsonl file", field="longbench")
    with tempfile.TemporaryDirectory(prefix="ctxeval-import-") as tmp:
        root = Path(tmp)
        path = root / _safe_name(upload[0], "longbench")
        path.write_bytes(upload[1])
        try:
            return import_longbench(path, name=suite_name, default_question=(default_question or "").strip() or None)
        except UserInputError as e:
            raise _relabel(e, root) from None
