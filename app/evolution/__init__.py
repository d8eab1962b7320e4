"""How revisions change the schema: StarPunk's operations on `op`, the table rebuild that keeps
what SQLite hides, the chain replayed in memory, autogenerate, and the guard before commit."""
