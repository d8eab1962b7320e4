"""StarPunk's database schema as SQLAlchemy models and an Alembic history that adopts every
StarPunk database found in the wild.

The start-up API: `ensure_schema(path)` brings the database to head (raising `UpgradeRefused`,
the file untouched, when that cannot be done safely). The models are in
`starpunk_migrations.models`; Flask applications call `starpunk_migrations.flask.init_app`.
"""

from .foundation.errors import UpgradeRefused
from .start_up import ensure_schema

__all__ = ["UpgradeRefused", "ensure_schema"]
