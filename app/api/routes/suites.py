from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Query, Response, UploadFile, status

from app.api.deps import IdPath, Limit, Offset, SessionDep
from app.schemas import ERROR_RESPONSES, DocumentsPublic, QuestionsPublic, SuitePublic, SuitesPublic
from app.services import imports
from app.services import suites as service
from evals import Suite, UserInputError

router = APIRouter(prefix="/suites", tags=["suites"], responses=ERROR_RESPONSES)

SUITE_EXAMPLE = {
    "name": "capitals",
    "documents": [{"id": "d1", "title": "Norway", "text": "The capital of Norway is Oslo."}],
    "questions": [{"id": "q1", "question": "What is the capital of Norway?", "answers": ["Oslo"],
                   "evidence": [{"doc_id": "d1"}]}],
    "default_scorers": ["exact_match", "f1"],
}
_STORED: dict[int | str, dict[str, Any]] = {200: {"model": SuitePublic, "description": "Identical content was stored before: that version"}}


@router.post("", response_model=SuitePublic, status_code=status.HTTP_201_CREATED, responses=_STORED,
             summary="Store a suite given as JSON")
def create_suite(session: SessionDep, body: Annotated[Suite, Body(examples=[SUITE_EXAMPLE])],
                 response: Response) -> SuitePublic:
    stored = service.store(session, body)
    if not stored.created:
        response.status_code = status.HTTP_200_OK
    return stored


@router.post("/upload", response_model=SuitePublic, status_code=status.HTTP_201_CREATED, responses=_STORED,
             summary="Upload a suite file (JSON, JSONL or YAML)")
def upload_suite(session: SessionDep, response: Response,
                 file: UploadFile = File(description="a suite file")) -> SuitePublic:
    """Errors name the uploaded file, and the line and field to fix."""
    suite = service.parse_upload(file.filename or "suite", file.file.read())
    stored = service.store(session, suite)
    if not stored.created:
        response.status_code = status.HTTP_200_OK
    return stored


@router.post("/import", response_model=SuitePublic, status_code=status.HTTP_201_CREATED, responses=_STORED,
             summary="Import your own documents and questions, or a LongBench-style file, as a suite")
def import_suite(session: SessionDep, response: Response,
                 name: str = Form(description="the suite's name (never taken from a file name)", max_length=200),
                 questions: UploadFile | None = File(None, description="questions as .csv or .jsonl: "
                                                     "question, id, answers, evidence (document ids)"),
                 documents: list[UploadFile] | None = File(None, description="one .zip, or several .txt, "
                                                           ".md, .html, .pdf files; a document's id is its "
                                                           "file name (its path inside the zip)"),
                 longbench: UploadFile | None = File(None, description="instead of the two above: "
                                                     "LongBench / InfiniteBench style .jsonl"),
                 default_question: str | None = Form(None, description="LongBench: the question for "
                                                     "records whose 'input' is empty")) -> SuitePublic:
    """The same importers, validation and messages as ``ctxeval suite import``; errors name the
    uploaded file, line and field."""
    if longbench is not None and longbench.filename:
        if (questions is not None and questions.filename) or any(d.filename for d in documents or []):
            raise UserInputError("upload either a LongBench file or questions with documents, not both",
                                 field="longbench")
        suite = imports.import_longbench_file(name=name, upload=(longbench.filename, longbench.file.read()),
                                              default_question=default_question)
    else:
        suite = imports.import_documents_and_questions(
            name=name, questions=(questions.filename or "", questions.file.read()) if questions else None,
            documents=[(d.filename or "", d.file.read()) for d in documents or []])
    stored = service.store(session, suite)
    if not stored.created:
        response.status_code = status.HTTP_200_OK
    return stored


@router.get("", response_model=SuitesPublic, summary="List suites (every version)")
def list_suites(session: SessionDep, offset: Offset = 0, limit: Limit = 100,
                name: str | None = Query(None, description="only versions of this suite")) -> SuitesPublic:
    data, count = service.list_public(session, offset=offset, limit=limit, name=name)
    return SuitesPublic(data=data, count=count)


@router.get("/{suite_id}", response_model=SuitePublic, summary="One suite version with its counts")
def get_suite(session: SessionDep, suite_id: IdPath) -> SuitePublic:
    return service.get(session, suite_id)


@router.get("/{suite_id}/questions", response_model=QuestionsPublic, summary="A suite's questions, paginated")
def list_questions(session: SessionDep, suite_id: IdPath, offset: Offset = 0, limit: Limit = 100,
                   search: str | None = Query(None, max_length=200, description="only questions whose id, "
                                              "text or answers contain this (case-insensitive)"),
                   ) -> QuestionsPublic:
    return service.questions(session, suite_id, offset=offset, limit=limit, search=search)


@router.get("/{suite_id}/documents", response_model=DocumentsPublic, summary="A suite's documents, paginated")
def list_documents(session: SessionDep, suite_id: IdPath, offset: Offset = 0, limit: Limit = 100,
                   search: str | None = Query(None, max_length=200, description="only documents whose id, "
                                              "title or text contain this (case-insensitive)"),
                   ) -> DocumentsPublic:
    return service.documents(session, suite_id, offset=offset, limit=limit, search=search)


@router.delete("/{suite_id}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Delete a suite version (409 while a run uses it)")
def delete_suite(session: SessionDep, suite_id: IdPath) -> None:
    service.delete(session, suite_id)
