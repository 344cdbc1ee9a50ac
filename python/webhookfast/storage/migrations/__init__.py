"""Versioned schema migrations: ``<dialect>/NNNN_name.sql``, applied in order, recorded in
``schema_migrations``. A file is applied in one transaction and never edited once released."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load(dialect: str) -> list[Migration]:
    out = []
    for entry in resources.files(__package__).joinpath(dialect).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        version, _, rest = entry.name.partition("_")
        out.append(Migration(int(version), rest.removesuffix(".sql"), entry.read_text("utf-8")))
    out.sort(key=lambda m: m.version)
    return out
