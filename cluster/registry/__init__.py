"""The registry of enrolled voices and the naming of speakers from it.

- store.py: the SQLite store (`Registry`: voices, their embeddings and centroids), with directions.py (the
  attribute directions stored beside them) and exchange.py (export and import) as parts of the same class;
  values.py: the stored value types and their checks; export.py: the export file format; sqlite_edge.py:
  sqlite3 errors as one line naming the file
- match.py: naming a recording's speakers (one name per speaker, abstention as `unknown_k`);
  score_norm.py: scores normalised against impostors (AS-norm) with the shipped cohort in cohort/;
  calibration.py: the raw naming threshold from genuine and impostor scores
- voice_separation.py: how far each enrolled voice sits from its nearest neighbour
"""

from .sqlite_edge import describe_sqlite_error
from .store import (ENV_VAR, Registry, check_can_create, default_registry_path, file_sha256, open_registry,
                    resolve_registry_path)
from .values import RegistryError, check_name, check_voice_name

__all__ = ["ENV_VAR", "Registry", "RegistryError", "check_can_create", "check_name", "check_voice_name",
           "default_registry_path", "describe_sqlite_error", "file_sha256", "open_registry", "resolve_registry_path"]
