"""Shared test helpers (real photographs, faces, frame composition, models). Plain modules, no fixtures
are registered from here unless a conftest imports them."""
