"""Audit: a closed catalogue of security events, recorded append-only in the database."""
