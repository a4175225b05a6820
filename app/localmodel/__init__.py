"""A real model on this machine: llama.cpp serving a GGUF file (the bundled SmolLM2 by default).

``server`` starts and stops ``python -m app.localmodel.llama_server`` in its own process; the engine
only ever sees the OpenAI-compatible endpoint it serves.
"""
