"""A plugin whose entry point is a function that registers a scorer."""

from evals import registry
from evals.scorers import Scorer


class Always(Scorer):
    name = "always_one_fixture"

    def score(self, case, question):
        return 1.0


def register() -> None:
    registry.register("scorer", "always_one_fixture", Always, description="always 1")
