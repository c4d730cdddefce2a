"""Repositories: the only code that queries tables. Each is sized to what its callers need."""
