"""Validating an ODM document with odmlib's schema validator, against the ODM 1.3.2 XSD odmlib ships.

odmlib 0.2.1 bundles the official CDISC ODM 1.3.2 schema (``odmlib/schemas/odm/1.3.2``), so nothing
is downloaded. A trialflow export carries the tf: vendor attributes, so it is checked against the
ODM 1.3.2 foundation redefined by trialflow's extension schema (shipped beside this module); a file
without them is checked against the plain ODM 1.3.2 schema.
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from importlib import resources
from pathlib import Path

__all__ = ["OdmSchemaError", "extension_schema_path", "validate_odm_file"]


class OdmSchemaError(Exception):
    """The document does not conform to the ODM 1.3.2 schema; ``problems`` says where and why."""

    def __init__(self, file: str, problems: list[str]):
        self.file = file
        self.problems = problems
        super().__init__(f"{file}: " + "; ".join(problems))


@lru_cache(maxsize=1)
def extension_schema_path() -> str:
    """The extension schema with its schemaLocations pointing at odmlib's ODM 1.3.2 folder."""
    import odmlib.schema_manager as schemas

    odm_dir = Path(schemas.get_schema_path("odm", "1.3.2", "ODM1-3-2-foundation.xsd")).parent
    tf_dir = Path(str(resources.files("trialflow.exchange")))
    template = (tf_dir / "trialflow-odm-extension.xsd").read_text(encoding="utf-8")
    text = template.replace("{ODM_DIR}", odm_dir.as_posix()).replace("{TF_DIR}", tf_dir.as_posix())
    folder = Path(tempfile.mkdtemp(prefix="trialflow-odm-xsd-"))
    target = folder / "trialflow-odm-1-3-2.xsd"
    target.write_text(text, encoding="utf-8")
    return str(target)


def validate_odm_file(path: str | Path, *, extension: bool = True, max_problems: int = 20) -> None:
    """Raise :class:`OdmSchemaError` listing the schema violations (with their XPath) of ``path``."""
    import xmlschema
    from odmlib.odm_parser import ODMSchemaValidator

    validator = (ODMSchemaValidator(xsd_file=extension_schema_path()) if extension
                 else ODMSchemaValidator(standard="odm", version="1.3.2"))
    problems = []
    for error in validator.xsd.iter_errors(str(path)):
        assert isinstance(error, xmlschema.XMLSchemaValidationError)
        problems.append(f"{error.path}: {error.reason}")
        if len(problems) >= max_problems:
            break
    if problems:
        raise OdmSchemaError(str(path), problems)
