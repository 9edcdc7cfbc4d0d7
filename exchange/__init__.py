"""Exchange with the systems trial teams already use: CDISC ODM 1.3.2 out and in, FHIR R5 out, SDTM trial design and
protocol deviations (DV).

Every export is a read-only projection of the store's events and the protocol model. The ODM import
maps ClinicalData onto the same record kinds as the CSV import, in one transaction. Needs the
``exchange`` extra: ``pip install 'trialflow[exchange]'``.
"""

from ._fhir import LOINC_TG, LOINC_TGAB, FhirExport, export_fhir, fhir_resources
from ._odm_export import OdmExport, export_odm
from ._odm_import import OdmImport, import_odm
from ._odm_schema import OdmSchemaError, validate_odm_file
from ._sdtm import SdtmDesign, design_domains, export_sdtm_design
from ._sdtm_dv import SdtmDeviations, deviation_rows, export_sdtm_dv

__all__ = [
    "LOINC_TG",
    "LOINC_TGAB",
    "FhirExport",
    "OdmExport",
    "OdmImport",
    "OdmSchemaError",
    "SdtmDesign",
    "SdtmDeviations",
    "design_domains",
    "deviation_rows",
    "export_fhir",
    "export_odm",
    "export_sdtm_design",
    "export_sdtm_dv",
    "fhir_resources",
    "import_odm",
    "validate_odm_file",
]
