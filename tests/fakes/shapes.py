"""How each server family shapes its context-overflow errors and its usage (see
``openai-compatible-servers.md``): the fake server answers in the shape its config names."""

from __future__ import annotations

from typing import Any, Literal

OverflowShape = Literal["openai", "vllm", "vllm_old", "sglang", "llamacpp", "tgi"]
UsageShape = Literal["openai", "deepseek", "llamacpp", "none"]


def overflow_error(shape: OverflowShape, *, prompt: int, max_tokens: int, window: int) -> tuple[int, Any]:
    """``(status, body)`` of the error a server of ``shape`` sends for a prompt that does not fit."""
    vllm_msg = (f"This model's maximum context length is {window} tokens. However, your request has "
                f"{prompt} input tokens. Please reduce the length of the input messages.")
    if shape == "openai":
        return 400, {"error": {
            "message": f"This model's maximum context length is {window} tokens. However, your messages "
                       f"resulted in {prompt + max_tokens} tokens. Please reduce the length of the messages.",
            "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}
    if shape == "vllm":
        return 400, {"error": {"message": vllm_msg, "type": "BadRequestError", "param": None, "code": 400}}
    if shape == "vllm_old":
        return 400, {"object": "error", "message": vllm_msg, "type": "BadRequestError", "param": None,
                     "code": 400}
    if shape == "sglang":
        return 400, {"object": "error", "type": "BadRequestError", "param": None, "code": 400,
                     "message": f"The input ({prompt} tokens) is longer than the model's context length "
                                f"({window} tokens)."}
    if shape == "llamacpp":
        return 400, {"error": {
            "code": 400, "type": "exceed_context_size_error", "n_prompt_tokens": prompt, "n_ctx": window,
            "message": f"request ({prompt} tokens) exceeds the available context size ({window} tokens), "
                       "try increasing it"}}
    if shape == "tgi":
        return 422, {"error": f"Input validation error: `inputs` tokens + `max_new_tokens` must be <= "
                              f"{window}. Given: {prompt} `inputs` tokens and {max_tokens} `max_new_tokens`",
                     "error_type": "validation"}
    raise ValueError(f"unknown overflow shape '{shape}'")


def usage_fields(shape: UsageShape, *, prompt: int, completion: int, cached: int,
                 reasoning: int) -> dict[str, Any]:
    """Top-level response fields carrying usage in ``shape``: ``usage`` and, for llama.cpp, ``timings``.

    An empty dict for ``none`` (the server reports nothing).
    """
    base = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    if shape == "openai":
        return {"usage": {**base, "prompt_tokens_details": {"cached_tokens": cached},
                          "completion_tokens_details": {"reasoning_tokens": reasoning}}}
    if shape == "deepseek":
        return {"usage": {**base, "prompt_cache_hit_tokens": cached,
                          "prompt_cache_miss_tokens": prompt - cached,
                          "completion_tokens_details": {"reasoning_tokens": reasoning}}}
    if shape == "llamacpp":
        return {"usage": base, "timings": {
            "cache_n": cached, "prompt_n": prompt - cached, "prompt_ms": 1.0 + 0.01 * (prompt - cached),
            "predicted_n": completion, "predicted_ms": 1.0 * completion, "predicted_per_second": 1000.0}}
    if shape == "none":
        return {}
    raise ValueError(f"unknown usage shape '{shape}'")
