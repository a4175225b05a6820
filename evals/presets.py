"""Presets: a benchmark's prompt template, answer prefix, output limit, stop rules and scorers.

A suite names its preset in ``metadata["preset"]`` (generators and importers set it; a run may
override it with ``RunSpec.preset``); a question picks the preset's task by ``metadata["task"]``
(``metadata["dataset"]`` for LongBench) and brings the values of its template in
``metadata["template_vars"]``. ``ctxeval`` is ctxeval's own frame (system prompt, ``[Document n]``
headers, question last); every other preset renders the benchmark's own text, character for
character, with the documents in place of ``{context}``.

Sources (the file each template was copied from) are listed per task in ``source`` and in
``docs/generators.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from evals import registry
from evals.domain import Document, Question
from evals.errors import UserInputError

CTXEVAL = "ctxeval"
CHAT_RESERVE = 16
"""Tokens a chat template adds around one user turn (and an assistant prefill), reserved when sizing."""


@dataclass(frozen=True)
class TaskPrompt:
    """How one task of a benchmark is asked.

    ``template`` is filled with ``str.format``: ``{context}`` takes the rendered documents,
    ``{input}``/``{question}`` the question text, anything else comes from the question's
    ``template_vars``. ``answer_prefix`` is filled the same way and sent as the start of the
    assistant's reply (see ``docs/endpoints.md``, prefill).
    """

    template: str
    answer_prefix: str = ""
    max_tokens: int | None = None  # the benchmark's output budget; None: the endpoint's
    stop: tuple[str, ...] = ()
    scorers: tuple[str, ...] = ()
    system: str | None = None  # no system message unless the benchmark sends one
    followup: str | None = None  # a second user turn after the one with the context (Kamradt's question)
    then: str | None = None  # a second call whose template takes the first reply as {cot} (LongBench v2 CoT)
    then_max_tokens: int | None = None
    document: str = "{text}"  # one document: {i} (1-based), {id}, {title}, {text}
    joiner: str = "\n\n"
    rag_template: str | None = None  # the benchmark's retrieval prompt, when it has one
    chunk: str | None = None  # one retrieved chunk in rag_template: {i}, {text}, {title}
    chunk_joiner: str | None = None
    no_context_template: str | None = None
    first_line: bool = False  # score the first line of the answer only (LongBench trec/triviaqa/…)
    temperature: float | None = None  # the benchmark's sampling temperature, when it is not greedy
    strip_vars: bool = False  # strip the context and every variable before filling (LongBench v2)
    source: str = ""


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    tasks: Mapping[str, TaskPrompt] = field(default_factory=dict)
    default: TaskPrompt | None = None
    task_keys: tuple[str, ...] = ("task",)
    source: str = ""

    def task_name(self, question: Question) -> str | None:
        for key in self.task_keys:
            value = question.metadata.get(key)
            if isinstance(value, str) and value in self.tasks:
                return value
        return None

    def prompt_for(self, question: Question) -> TaskPrompt | None:
        """The task prompt of ``question``, or None (ctxeval's frame) for the ``ctxeval`` preset."""
        if self.name == CTXEVAL:
            return None
        name = self.task_name(question)
        if name is not None:
            return self.tasks[name]
        if self.default is not None:
            return self.default
        raise UserInputError(
            f"preset '{self.name}' has no prompt for question '{question.id}' (task "
            f"{question.metadata.get('task')!r}); its tasks: {', '.join(sorted(self.tasks))}", field="preset")


# ------------------------------------------------------------------------------------------ rendering
@dataclass
class Rendered:
    """A filled prompt: the user turn, the answer prefix and the request settings."""

    system: str | None
    user: str
    answer_prefix: str
    max_tokens: int | None
    stop: list[str]
    temperature: float | None
    followup: str | None = None
    then: str | None = None  # the second call's prompt, with "{cot}" left to fill with the first reply
    then_max_tokens: int | None = None

    def messages(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.system is not None:
            out.append({"role": "system", "content": self.system})
        out.append({"role": "user", "content": self.user})
        if self.followup is not None:
            out.append({"role": "user", "content": self.followup})
        return out

    def text(self) -> str:
        """Everything the model reads, for counting."""
        return (self.system or "") + self.user + (self.followup or "") + self.answer_prefix


def template_values(question: Question, prompt: TaskPrompt) -> dict[str, Any]:
    values: dict[str, Any] = {"input": question.question, "question": question.question, "query": question.question}
    values.update(question.metadata.get("template_vars") or {})
    if prompt.strip_vars:
        values = {k: v.strip() if isinstance(v, str) else v for k, v in values.items()}
    return values


def _fill(template: str, values: Mapping[str, Any], question: Question) -> str:
    try:
        return template.format_map(values)
    except KeyError as e:
        raise UserInputError(f"question '{question.id}' has no value for {{{e.args[0]}}} of its prompt template "
                             "(metadata.template_vars)", field="template_vars") from None


def render_documents(prompt: TaskPrompt, documents: Sequence[Document]) -> str:
    return prompt.joiner.join(
        prompt.document.format(i=i + 1, id=d.id, title=d.title, text=d.text,
                               title_text=f"{d.title}\n{d.text}" if d.title else d.text)
        for i, d in enumerate(documents))


def render(prompt: TaskPrompt, question: Question, context: str, *, template: str | None = None) -> Rendered:
    values = template_values(question, prompt)
    values["context"] = context.strip() if prompt.strip_vars else context
    # RULER puts its worked example (variable tracking, common words) before the task template
    lead = str(values.get("icl_example") or "")
    return Rendered(system=prompt.system, user=lead + _fill(template or prompt.template, values, question),
                    answer_prefix=_fill(prompt.answer_prefix, values, question), max_tokens=prompt.max_tokens,
                    stop=list(prompt.stop), temperature=prompt.temperature,
                    followup=_fill(prompt.followup, values, question) if prompt.followup is not None else None,
                    then=_fill(prompt.then, {**values, "cot": "{cot}"}, question) if prompt.then is not None else None,
                    then_max_tokens=prompt.then_max_tokens)


def render_chunks(prompt: TaskPrompt, chunks: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """The retrieved chunks (title, text) in the benchmark's retrieval layout, and the template to use."""
    if prompt.rag_template is not None and prompt.chunk is not None:
        joiner = prompt.chunk_joiner if prompt.chunk_joiner is not None else prompt.joiner
        return joiner.join(prompt.chunk.format(i=i + 1, title=t, text=x) for i, (t, x) in enumerate(chunks)), \
            prompt.rag_template
    docs = [Document(id=f"chunk-{i + 1}", title=t, text=x) for i, (t, x) in enumerate(chunks)]
    return render_documents(prompt, docs), prompt.template


def first_line(answer: str) -> str:
    """LongBench's rule for trec, triviaqa, samsum and lsht: ``pred.lstrip('\\n').split('\\n')[0]``."""
    return answer.lstrip("\n").split("\n")[0]


# ----------------------------------------------------------------------------------------------- RULER
# scripts/data/synthetic/constants.py of NVIDIA/RULER (TASKS), with the singular rewrite of
# scripts/data/synthetic/niah.py applied by the generator through template_vars.
RULER_SRC = "NVIDIA/RULER scripts/data/synthetic/constants.py"
RULER_NIAH = TaskPrompt(
    template=("Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. "
              "I will quiz you about the {type_needle_v} afterwards.\n{context}\nWhat are all the special magic "
              "{type_needle_v} for {query} mentioned in the provided text?"),
    answer_prefix=" The special magic {type_needle_v} for {query} mentioned in the provided text are",
    max_tokens=128, source=RULER_SRC + " (niah)", joiner="\n")


def ruler_singular(task: TaskPrompt) -> TaskPrompt:
    """niah.py's rewrite for one expected value (``num_needle_q * num_needle_v == 1``), applied to the
    template with its answer prefix; the generator passes ``type_needle_v`` without its final ``s``."""
    def one(text: str) -> str:
        for old, new in (("Some", "A"), ("are all", "is"), ("are", "is"), ("answers", "answer")):
            text = text.replace(old, new)
        return text
    return replace(task, template=one(task.template), answer_prefix=one(task.answer_prefix))


RULER_NIAH_ONE = ruler_singular(RULER_NIAH)
RULER_VT = TaskPrompt(
    template=("Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\n"
              "Question: Find all variables that are assigned the value {query} in the text above."),
    answer_prefix=(" Answer: According to the chain(s) of variable assignment in the text above, {num_v} variables "
                   "are assigned the value {query}, they are: "),
    max_tokens=30, source=RULER_SRC + " (variable_tracking); example: scripts/data/synthetic/variable_tracking.py",
    joiner="\n")
RULER_CWE = TaskPrompt(
    template=("Below is a numbered list of words. In these words, some appear more often than others. Memorize the "
              "ones that appear most often.\n{context}\nQuestion: What are the 10 most common words in the above "
              "list?"),
    answer_prefix=" Answer: The top 10 words that appear most often in the list are:",
    max_tokens=120, source=RULER_SRC + " (common_words_extraction); example: common_words_extraction.py",
    joiner="\n")
RULER_FWE = TaskPrompt(
    template=("Read the following coded text and track the frequency of each coded word. Find the three most "
              "frequently appeared coded words. {context}\nQuestion: Do not provide any explanation. Please ignore "
              "the dots '....'. What are the three most frequently appeared words in the above coded text?"),
    answer_prefix=" Answer: According to the coded text above, the three most frequently appeared words are:",
    max_tokens=50, source=RULER_SRC + " (freq_words_extraction)", joiner="\n")
RULER_QA = TaskPrompt(
    template=("Answer the question based on the given documents. Only give me the answer and do not output any "
              "other words.\n\nThe following are given documents.\n\n{context}\n\nAnswer the question based on "
              "the given documents. Only give me the answer and do not output any other words.\n\nQuestion: "
              "{query}"),
    answer_prefix=" Answer:", max_tokens=32, scorers=("ruler_part",),
    document="Document {i}:\n{title_text}", joiner="\n\n",
    source=RULER_SRC + " (qa); documents as scripts/data/synthetic/qa.py DOCUMENT_PROMPT")

RULER = Preset(
    name="ruler", description="RULER's task templates, answer prefixes and tokens_to_generate",
    tasks={"ruler_niah_single": RULER_NIAH_ONE, "ruler_niah_multikey": RULER_NIAH_ONE,
           "ruler_niah_multivalue": RULER_NIAH,
           "ruler_niah_multiquery": RULER_NIAH, "ruler_vt": RULER_VT, "ruler_cwe": RULER_CWE,
           "ruler_fwe": RULER_FWE, "qa": RULER_QA},
    default=RULER_QA, source=RULER_SRC)

# ------------------------------------------------------------------------------------------ Kamradt NIAH
# gkamradt/LLMTest_NeedleInAHaystack needlehaystack/providers/openai.py generate_prompt (system message,
# the context as one user message, the question as a second), max_tokens 300 and temperature 0
# (providers/openai.py DEFAULT_MODEL_KWARGS).
KAMRADT_SRC = "gkamradt/LLMTest_NeedleInAHaystack needlehaystack/providers/openai.py"
KAMRADT_SYSTEM = "You are a helpful AI bot that answers questions for a user. Keep your response short and direct"
KAMRADT_QUESTION = "{question} Don't give information outside the document or repeat your findings"
KAMRADT_NIAH = TaskPrompt(template="{context}", followup=KAMRADT_QUESTION.replace("{question}", "{retrieval_question}"),
                          max_tokens=300, system=KAMRADT_SYSTEM, scorers=("subspan_em",), source=KAMRADT_SRC)
KAMRADT = Preset(name="kamradt", description="Kamradt's needle-in-a-haystack prompt (system + context + question)",
                 tasks={"niah": KAMRADT_NIAH}, default=KAMRADT_NIAH, source=KAMRADT_SRC)

# --------------------------------------------------------------------------------------- Lost in the Middle
# nelson-liu/lost-in-the-middle src/lost_in_the_middle/prompts/*.prompt (read with .rstrip("\n")) and
# prompting.py (document and record formats); scripts use --max-new-tokens 100.
LITM_SRC = "nelson-liu/lost-in-the-middle src/lost_in_the_middle/prompts/"
LITM_KV = TaskPrompt(
    template=("Extract the value corresponding to the specified key in the JSON object below.\n\nJSON data:\n"
              "{context}\n\nKey: \"{key}\"\nCorresponding value:"),
    max_tokens=100, scorers=("best_subspan_em",), source=LITM_SRC + "kv_retrieval.prompt")
LITM_QA = TaskPrompt(
    template=("Write a high-quality answer for the given question using only the provided search results (some of "
              "which might be irrelevant).\n\n{context}\n\nQuestion: {question}\nAnswer:"),
    max_tokens=100, scorers=("best_subspan_em",), document="Document [{i}](Title: {title}) {text}", joiner="\n",
    no_context_template="Question: {question}\nAnswer:", source=LITM_SRC + "qa.prompt, prompting.py get_qa_prompt")
LITM = Preset(name="litm", description="Lost in the Middle: KV retrieval and multi-document QA prompts",
              tasks={"lim_kv": LITM_KV, "kv_retrieval": LITM_KV, "qa": LITM_QA}, default=LITM_QA, source=LITM_SRC)

# ------------------------------------------------------------------------------------------- LongBench
# THUDM/LongBench LongBench/config/dataset2prompt.json and dataset2maxlen.json (shipped verbatim in
# evals/data/presets/), LongBench/eval.py (dataset2metric, first line for trec/triviaqa/samsum/lsht) and
# LongBench/pred.py (samsum stops at a newline; no system prompt).
LONGBENCH_SRC = "THUDM/LongBench LongBench/config/dataset2prompt.json, dataset2maxlen.json, eval.py"


def _data(name: str) -> Any:
    import json
    from importlib import resources

    return json.loads(resources.files("evals").joinpath("data", "presets", name).read_text(encoding="utf-8"))


def _longbench() -> Preset:
    from evals.benchmark_metrics import DATASET2METRIC, FIRST_LINE_DATASETS

    prompts, maxlen = _data("longbench_dataset2prompt.json"), _data("longbench_dataset2maxlen.json")
    tasks: dict[str, TaskPrompt] = {}
    for ds, template in prompts.items():
        task = TaskPrompt(template=template, max_tokens=int(maxlen[ds]), scorers=("longbench",),
                          stop=("\n",) if ds == "samsum" else (), first_line=ds in FIRST_LINE_DATASETS,
                          source=f"{LONGBENCH_SRC} ({ds}: {DATASET2METRIC[ds]})")
        tasks[ds] = task
        tasks[ds + "_e"] = task  # LongBench-E
    return Preset(name="longbench", description="LongBench v1: dataset2prompt, dataset2maxlen, its metric per dataset",
                  tasks=tasks, task_keys=("dataset", "task"), source=LONGBENCH_SRC)


# THUDM/LongBench prompts/0shot.txt, 0shot_cot.txt, 0shot_rag.txt, 0shot_no_context.txt and pred.py
# (placeholders $DOC$ $Q$ $C_A$… replaced by stripped values; temperature 0.1; 128 output tokens, 1,024 for
# the chain of thought).
LB2_SRC = "THUDM/LongBench prompts/0shot.txt, pred.py"
_LB2_CHOICES = ("What is the correct answer to this question: {question}\nChoices:\n(A) {choice_A}\n(B) {choice_B}\n"
                "(C) {choice_C}\n(D) {choice_D}\n\n")
_LB2_FORMAT = "Format your response as follows: \"The correct answer is (insert answer here)\"."
LONGBENCH_V2 = TaskPrompt(
    template=("Please read the following text and answer the question below.\n\n<text>\n{context}\n</text>\n\n"
              + _LB2_CHOICES + _LB2_FORMAT),
    rag_template=("Please read the following retrieved text chunks and answer the question below.\n\n<text>\n"
                  "{context}\n</text>\n\n" + _LB2_CHOICES + _LB2_FORMAT),
    chunk="Retrieved chunk {i}: {text}", chunk_joiner="\n\n",
    no_context_template=_LB2_CHOICES + "What is the single, most likely answer choice? " + _LB2_FORMAT,
    max_tokens=128, temperature=0.1, scorers=("choice",), strip_vars=True, source=LB2_SRC)
LONGBENCH_V2_COT = replace(
    LONGBENCH_V2,
    template=("Please read the following text and answer the questions below.\n\n<text>\n{context}\n</text>\n\n"
              + _LB2_CHOICES + "Let\u2019s think step by step:"),
    max_tokens=1024, then=("Please read the following text and answer the questions below.\n\nThe text is too long "
                           "and omitted here.\n\n" + _LB2_CHOICES + "Let\u2019s think step by step: {cot}\n\nBased "
                           "on the above, what is the single, most likely answer choice? " + _LB2_FORMAT),
    then_max_tokens=128, source="THUDM/LongBench prompts/0shot_cot.txt, 0shot_cot_ans.txt, pred.py")


# ------------------------------------------------------------------------------------------ InfiniteBench
# OpenBMB/InfiniteBench src/prompt.py (gpt4_templates), src/eval_utils.py (create_msgs: system "You are a
# helpful assistant", DATA_NAME_TO_MAX_NEW_TOKENS) and src/compute_scores.py (metrics).
IB_SRC = "OpenBMB/InfiniteBench src/prompt.py gpt4_templates, src/eval_utils.py, src/compute_scores.py"
_IB_SYSTEM = "You are a helpful assistant"
_IB_TEMPLATES = {
    "passkey": ("There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. I will "
                "quiz you about the important information there.\n\n{context}\n\n{input}", 6),
    "number_string": ("There is an important info hidden inside a lot of irrelevant text. Find it. I will quiz you "
                      "about the important information there.\n\n{context}\n\n{input}", 12),
    "kv_retrieval": ("Extract the value corresponding to the specified key in the JSON object below.\n\n{context}\n\n"
                     "{input}", 50),
    "longbook_qa_eng": ("Read the book below and answer a question.\n\n{context}\n\nQuestion: {question}\n\nBe very "
                        "concise.", 40),
    "longbook_choice_eng": ("Read the book and answer the question.\n\n{context}\n\nQuestion: {question}\n\nOnly one of "
                            "the following options is correct, tell me the answer using one single letter (A, B, C, "
                            "or D). Don't say anything else.\nA. {OPTION_A}\nB. {OPTION_B}\nC. {OPTION_C}\nD. "
                            "{OPTION_D}", 40),
    "longbook_qa_chn": ("请根据以下书籍回答我的问题。\n\n{context}\n\n问题：{question}\n请尽量简短地回答。", 40),
    "math_find": ("{prefix}\n\n{context}\n\n{input}", 3),
    "code_run": ("Following is a set of Python functions. There is a function called named {func}.\n\n{context}\n\n"
                 "Please give me the exact number of the return value of {func_call}. Be concise. Your response must "
                 "end with the final returned value.", 5),
    "code_debug": ("There is ONLY ONE function in the large project that is deliberately made to include an obvious "
                   "error. Please find the function that contains the most obvious errors. I will give you four "
                   "options to narrow your scope. You can inspect the options and think. Eventually, tell me the "
                   "answer using one single letter (A, B, C, or D).\n\n{context}\n\nWhich funtion has deliberate "
                   "error?\nA. {OPTION_A}\nB. {OPTION_B}\nC. {OPTION_C}\nD. {OPTION_D}\n\nYou should first find the "
                   "functions in the options. Repeat their content, inspect through code, and at last give me your "
                   "answer for the function that has the deliberate and obvious error in A, B, C, or D.", 5),
    "longdialogue_qa_eng": ("Below is a dialogue script where one random occurrence of a character name is replaced "
                            "with \"$$MASK$$\", and you should try to guess who that character is.\n\nThe dialogue:"
                            "\n\n---\n\n{context}\n\n---\n\nEnd of dialogue.\n\nWhich character is most likely "
                            "\"$$MASK$$\"? Just say the name used by the scriptwriter (before the colon marks) of one "
                            "single character and nothing else.", 40),
}
INFINITEBENCH = Preset(
    name="infinitebench", description="InfiniteBench: its GPT-4 prompts, output limits and per-task metrics",
    tasks={t: TaskPrompt(template=tpl, max_tokens=n, system=_IB_SYSTEM, scorers=("infinitebench",),
                         source=f"{IB_SRC} ({t})") for t, (tpl, n) in _IB_TEMPLATES.items()},
    task_keys=("task",), source=IB_SRC)

# ---------------------------------------------------------------------------------------------- registry
CTXEVAL_PRESET = Preset(name=CTXEVAL, description="ctxeval's own frame: system prompt, [Document n] headers, "
                        "question last (prefix-cache friendly); the default for user suites")


@lru_cache(maxsize=1)
def presets() -> dict[str, Preset]:
    lb2 = Preset(name="longbench_v2", description="LongBench v2 multiple choice, without chain of thought",
                 tasks={"longbench_v2": LONGBENCH_V2}, default=LONGBENCH_V2, source=LB2_SRC)
    lb2_cot = Preset(name="longbench_v2_cot", description="LongBench v2 multiple choice with chain of thought "
                     "(two calls)", tasks={"longbench_v2": LONGBENCH_V2_COT}, default=LONGBENCH_V2_COT,
                     source=LONGBENCH_V2_COT.source)
    return {p.name: p for p in (CTXEVAL_PRESET, RULER, KAMRADT, LITM, _longbench(), lb2, lb2_cot, INFINITEBENCH)}


def _register_builtin() -> None:
    """The built-in presets join the component registry (``evals.registry``), beside plugins' presets."""
    for i, p in enumerate(presets().values()):
        registry.register("preset", p.name, p, label=p.name, description=p.description, order=i,
                          origin=p.source)


_register_builtin()


def get_preset(name: str | None) -> Preset:
    if name is None:
        return presets()[CTXEVAL]
    if ":" in name:
        raise UserInputError(f"unknown preset '{name}'; presets: {', '.join(registry.names('preset'))}",
                             field="preset")
    try:
        found: Preset = registry.get("preset", name, field_name="preset").target
    except UserInputError:
        raise UserInputError(f"unknown preset '{name}'; presets: {', '.join(registry.names('preset'))}",
                             field="preset") from None
    return found


def preset_of(suite_metadata: Mapping[str, Any], override: str | None = None) -> Preset:
    """The preset a run uses: the run's override, else the suite's, else ``ctxeval``."""
    return get_preset(override or suite_metadata.get("preset"))
