"""What a file Alembic has never seen is: detection from its schema, the repairs that bring it
in step, and whether an `alembic_version` tells the truth."""
