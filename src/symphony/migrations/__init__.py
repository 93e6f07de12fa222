"""Zero-downtime PostgreSQL schema migrations in pgroll's file format: expand, roll out, contract."""
