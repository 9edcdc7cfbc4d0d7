"""Exchange with the systems trial teams already use: CDISC ODM 1.3.2 out and in, FHIR R5 out, SDTM trial design.

Every export is a read-only projection of the store's events and the protocol model. The ODM import
maps ClinicalData onto the same record kinds as the CSV import, in one transaction. Needs the
``exchange`` extra: ``pip install 'trialflow[exchange]'``.
"""

from ._odm_export import OdmExport, export_odm
from ._odm_import import OdmImport, import_odm
from ._odm_schema import OdmSchemaError, validate_odm_file

__all__ = ["OdmExport", "OdmImport", "OdmSchemaError", "export_odm", "import_odm", "validate_odm_file"]
