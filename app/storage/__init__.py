"""Storage: SQLAlchemy models, the engine, tenant scoping and migrations."""
