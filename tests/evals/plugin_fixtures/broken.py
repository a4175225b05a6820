"""A plugin module that fails at import."""

import no_such_module_for_a_ctxeval_plugin  # noqa: F401
