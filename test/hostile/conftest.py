"""Fixtures of the hostile-input suite: the emotion model (shipped, else an untrained stand-in)."""

from test.support.models import emotion_models  # noqa: F401  (registers the fixture)
