"""Storage: durable data (SQLAlchemy + Alembic) and ephemeral data (Redis or embedded SQLite)."""
