"""The Data Validation agent's action kinds: repairs (repair.py) and schema changes (migrate.py)."""
