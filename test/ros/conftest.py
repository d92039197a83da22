"""Fixtures of the node tests: the emotion model (shipped, else an untrained stand-in) and the node
process with its test client."""

from test.support.models import emotion_models  # noqa: F401  (registers the fixture)
