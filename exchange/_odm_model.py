"""trialflow's vendor extension of ODM 1.3.2, as odmlib model classes.

ODM 1.3.2 has no element for a visit's study day or window, nor for the content hash that pins a
protocol version. The extension adds them as attributes in trialflow's own namespace, the way CDISC's
Define-XML extends ODM: the schema ``trialflow-odm-extension.xsd`` redefines the foundation's
empty ``...AttributeExtension`` groups, so a validator that knows the extension checks them and an
ODM reader that does not simply ignores a foreign-namespace attribute.

The namespace is under the reserved ``.invalid`` domain (RFC 2606): a name, never fetched.
"""

from __future__ import annotations

import odmlib.ns_registry as NS
import odmlib.odm_1_3_2.model as ODM
import odmlib.typed as T

__all__ = ["ODM", "ODM_NS", "TF_NS", "MetaDataVersion", "StudyEventDef", "register_namespaces"]

ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"
TF_NS = "https://trialflow.invalid/ns/odm/v1"


def register_namespaces() -> None:
    """odmlib keeps one process-wide registry; set it for a trialflow document before writing."""
    NS.NamespaceRegistry(prefix="odm", uri=ODM_NS, is_default=True, is_reset=True)
    NS.NamespaceRegistry(prefix="tf", uri=TF_NS)


register_namespaces()


class StudyEventDef(ODM.StudyEventDef):
    """A visit: ODM's StudyEventDef plus where it sits in the protocol's time."""

    OID = ODM.StudyEventDef.OID
    Name = ODM.StudyEventDef.Name
    Repeating = ODM.StudyEventDef.Repeating
    Type = ODM.StudyEventDef.Type
    Category = ODM.StudyEventDef.Category
    Phase = T.String(namespace="tf")  # the protocol phase holding the visit
    Anchor = T.String(namespace="tf")  # what day 0 of the phase is: enrolment, day0 (first dose), phase_entry
    StudyDay = T.Integer(namespace="tf")  # target day, counted from the anchor
    WindowBefore = T.NonNegativeInteger(namespace="tf")  # days the window opens before the target
    WindowAfter = T.NonNegativeInteger(namespace="tf")  # days it stays open after
    Description = ODM.StudyEventDef.Description
    FormRef = ODM.StudyEventDef.FormRef
    Alias = ODM.StudyEventDef.Alias


class MetaDataVersion(ODM.MetaDataVersion):
    """A registered protocol version: ODM's MetaDataVersion plus the hash that identifies it."""

    OID = ODM.MetaDataVersion.OID
    Name = ODM.MetaDataVersion.Name
    Description = ODM.MetaDataVersion.Description
    ProtocolVersion = T.String(namespace="tf")
    ContentHash = T.String(namespace="tf")  # sha256 of the protocol YAML as registered
    Include = ODM.MetaDataVersion.Include
    Protocol = ODM.MetaDataVersion.Protocol
    StudyEventDef = T.ODMListObject(element_class=StudyEventDef)
    FormDef = ODM.MetaDataVersion.FormDef
    ItemGroupDef = ODM.MetaDataVersion.ItemGroupDef
    ItemDef = ODM.MetaDataVersion.ItemDef
    CodeList = ODM.MetaDataVersion.CodeList
    Presentation = ODM.MetaDataVersion.Presentation
    ConditionDef = ODM.MetaDataVersion.ConditionDef
    MethodDef = ODM.MetaDataVersion.MethodDef
