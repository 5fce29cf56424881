"""The standard objects the sandbox serves: a useful subset of their real fields, in order.

Case and Contact also carry the custom external id ``Deskstream_Link_Id__c``, which is how
Deskstream links its records to Salesforce ones, and Case the custom text field
``AI_Handoff_Reason__c`` (why the AI agent handed the conversation to a person): the custom
fields a customer org creates for Deskstream (Setup → Object Manager → Fields & Relationships),
seeded here as such an org has them. Field order matters: it is the order of the
REST record shape, of ``describe`` and of the change event (Avro) schemas.

Which objects publish change events is decided here and nowhere else:
:data:`CHANGE_EVENT_OBJECTS` is (a subset of) the standard objects listed on
"Change Event Object Support" in the Change Data Capture Developer Guide
(https://developer.salesforce.com/docs/atlas.en-us.change_data_capture.meta/change_data_capture/cdc_object_support.htm,
which points to "StandardObjectNameChangeEvent" in the Object Reference,
https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/api/sforce_api_associated_objects_change_event.htm).
``CaseComment``, ``FeedItem`` and the ``Content*`` file objects are not on that list: writes
to them succeed over REST but publish nothing, and their channels do not exist.
"""

from __future__ import annotations

from typing import TypedDict

from sandboxes.salesforce.objects import FieldSpec, SObjectSpec

__all__ = [
    "CDC_ENTITIES",
    "CHANGE_EVENT_OBJECTS",
    "HANDOFF_REASON_FIELD",
    "LINK_FIELD",
    "OBJECTS",
]

LINK_FIELD = "Deskstream_Link_Id__c"
HANDOFF_REASON_FIELD = "AI_Handoff_Reason__c"


# The tables below read best aligned, one field per line.
# fmt: off
class _ReadOnly(TypedDict):
    createable: bool
    updateable: bool
    system: bool


_RO: _ReadOnly = {"createable": False, "updateable": False, "system": True}


def _picklist(name: str, label: str, values: tuple[str, ...], default: str | None = None,
              *, compound: str | None = None) -> FieldSpec:
    return FieldSpec(name, label, "picklist", length=255, picklist=values,
                     picklist_default=default, restricted=True, compound=compound)


def _head() -> tuple[FieldSpec, ...]:
    return (
        FieldSpec("Id", "Record ID", "id", length=18, nillable=False, in_cdc=False, **_RO),
        FieldSpec("IsDeleted", "Deleted", "boolean", nillable=False, in_cdc=False, **_RO),
    )


def _audit(*, owner: bool, owners: tuple[str, ...] = ("User",)) -> tuple[FieldSpec, ...]:
    user = ("User",)
    fields = (
        FieldSpec("CreatedDate", "Created Date", "datetime", nillable=False, **_RO),
        FieldSpec("CreatedById", "Created By ID", "reference", length=18, nillable=False,
                  reference_to=user, relationship_name="CreatedBy", **_RO),
        FieldSpec("LastModifiedDate", "Last Modified Date", "datetime", nillable=False, **_RO),
        FieldSpec("LastModifiedById", "Last Modified By ID", "reference", length=18,
                  nillable=False, reference_to=user, relationship_name="LastModifiedBy", **_RO),
        FieldSpec("SystemModstamp", "System Modstamp", "datetime", nillable=False,
                  in_cdc=False, **_RO),
    )
    if not owner:
        return fields
    return (FieldSpec("OwnerId", "Owner ID", "reference", length=18, nillable=False,
                      reference_to=owners, relationship_name="Owner"), *fields)


_LINK = FieldSpec(LINK_FIELD, "Deskstream Link ID", "string", length=255, external_id=True,
                  custom=True)

CASE = SObjectSpec("Case", "Case", "Cases", fields=(
    *_head(),
    FieldSpec("CaseNumber", "Case Number", "string", length=30, nillable=False,
              auto_number=True, **_RO),
    FieldSpec("ContactId", "Contact ID", "reference", length=18, reference_to=("Contact",),
              relationship_name="Contact"),
    FieldSpec("AccountId", "Account ID", "reference", length=18, reference_to=("Account",),
              relationship_name="Account"),
    FieldSpec("SuppliedName", "Name", "string", length=80),
    FieldSpec("SuppliedEmail", "Email Address", "email", length=80),
    FieldSpec("SuppliedPhone", "Phone", "string", length=40),
    _picklist("Type", "Case Type", ("Mechanical", "Electrical", "Electronic", "Structural",
                                    "Other")),
    _picklist("Status", "Status", ("New", "Working", "Escalated", "Closed"), "New"),
    _picklist("Reason", "Case Reason", ("Installation", "Equipment Complexity", "Performance",
                                        "Breakdown", "Equipment Design", "Feedback", "Other")),
    _picklist("Origin", "Case Origin", ("Phone", "Email", "Web")),
    FieldSpec("Subject", "Subject", "string", length=255),
    _picklist("Priority", "Priority", ("High", "Medium", "Low"), "Medium"),
    FieldSpec("Description", "Description", "textarea", length=32000),
    FieldSpec("IsClosed", "Closed", "boolean", nillable=False, calculated=True, **_RO),
    FieldSpec("ClosedDate", "Closed Date", "datetime", **_RO),
    FieldSpec("IsEscalated", "Escalated", "boolean", nillable=False),
    # A Case is owned by a user or by a queue (a Group of type Queue: nobody picked it up).
    *_audit(owner=True, owners=("Group", "User")),
    _LINK,
    FieldSpec(HANDOFF_REASON_FIELD, "AI Handoff Reason", "string", length=255, custom=True),
))

CONTACT = SObjectSpec("Contact", "Contact", "Contacts",
                      compound_types={"Name": "Switchable_PersonName"}, fields=(
    *_head(),
    FieldSpec("AccountId", "Account ID", "reference", length=18, reference_to=("Account",),
              relationship_name="Account"),
    _picklist("Salutation", "Salutation", ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof."),
              compound="Name"),
    FieldSpec("FirstName", "First Name", "string", length=40, compound="Name"),
    FieldSpec("LastName", "Last Name", "string", length=80, nillable=False, required=True,
              compound="Name"),
    FieldSpec("Name", "Full Name", "string", length=121, nillable=False, calculated=True,
              in_cdc=False, **_RO),
    FieldSpec("Email", "Email", "email", length=80),
    FieldSpec("Phone", "Business Phone", "phone", length=40),
    FieldSpec("MobilePhone", "Mobile Phone", "phone", length=40),
    FieldSpec("Title", "Title", "string", length=128),
    FieldSpec("Description", "Contact Description", "textarea", length=32000),
    *_audit(owner=True),
    _LINK,
))

CASE_COMMENT = SObjectSpec("CaseComment", "Case Comment", "Case Comments", fields=(
    *_head(),
    FieldSpec("ParentId", "Parent Case ID", "reference", length=18, nillable=False,
              required=True, updateable=False, reference_to=("Case",),
              relationship_name="Parent"),
    FieldSpec("IsPublished", "Published", "boolean", nillable=False),
    FieldSpec("CommentBody", "Body", "textarea", length=4000, length_in_bytes=True),
    *_audit(owner=False),
))

_FILE_OWNERS = ("Case", "Contact", "User")

CONTENT_VERSION = SObjectSpec("ContentVersion", "Content Version", "Content Versions", fields=(
    FieldSpec("Id", "Content Version ID", "id", length=18, nillable=False, **_RO),
    FieldSpec("ContentDocumentId", "Content Document ID", "reference", length=18,
              updateable=False, reference_to=("ContentDocument",),
              relationship_name="ContentDocument"),
    FieldSpec("IsLatest", "Is Latest", "boolean", nillable=False, **_RO),
    FieldSpec("VersionNumber", "Version Number", "string", length=20, **_RO),
    FieldSpec("Title", "Title", "string", length=255, nillable=False),
    FieldSpec("Description", "Description", "textarea", length=1000),
    FieldSpec("PathOnClient", "Path On Client", "string", length=500, required=True,
              updateable=False),
    FieldSpec("VersionData", "Version Data", "base64", required=True, updateable=False),
    FieldSpec("FirstPublishLocationId", "First Publish Location ID", "reference", length=18,
              updateable=False, reference_to=_FILE_OWNERS,
              relationship_name="FirstPublishLocation"),
    FieldSpec("ContentSize", "Size", "int", **_RO),
    FieldSpec("FileType", "File Type", "string", length=20, **_RO),
    FieldSpec("FileExtension", "File Extension", "string", length=40, **_RO),
    FieldSpec("Checksum", "Checksum", "string", length=50, **_RO),
    FieldSpec("ContentLocation", "Content Location", "picklist", length=255,
              picklist=("S", "E", "L"), picklist_default="S", updateable=False),
    *_audit(owner=True),
))

CONTENT_DOCUMENT = SObjectSpec("ContentDocument", "Content Document", "Content Documents",
                               fields=(
    *_head(),
    FieldSpec("Title", "Title", "string", length=255, nillable=False, createable=False),
    FieldSpec("LatestPublishedVersionId", "Latest Published Version ID", "reference",
              length=18, reference_to=("ContentVersion",), **_RO),
    FieldSpec("FileType", "File Type", "string", length=20, **_RO),
    FieldSpec("FileExtension", "File Extension", "string", length=40, **_RO),
    FieldSpec("ContentSize", "Size", "int", **_RO),
    *_audit(owner=True),
))

CONTENT_DOCUMENT_LINK = SObjectSpec("ContentDocumentLink", "Content Document Link",
                                    "Content Document Links", fields=(
    *_head(),
    FieldSpec("LinkedEntityId", "Linked Entity ID", "reference", length=18, nillable=False,
              required=True, updateable=False, reference_to=_FILE_OWNERS,
              relationship_name="LinkedEntity"),
    FieldSpec("ContentDocumentId", "ContentDocument ID", "reference", length=18,
              nillable=False, required=True, updateable=False,
              reference_to=("ContentDocument",), relationship_name="ContentDocument"),
    FieldSpec("ShareType", "Share Type", "picklist", length=40, picklist=("V", "C", "I"),
              picklist_default="V", restricted=True),
    FieldSpec("Visibility", "Visibility", "picklist", length=40,
              picklist=("AllUsers", "InternalUsers", "SharedUsers"),
              picklist_default="AllUsers", restricted=True),
    FieldSpec("SystemModstamp", "System Modstamp", "datetime", nillable=False, **_RO),
))
# Users and queues are the org's people and work queues: seeded (``state.Org``), read by SOQL
# (``SELECT Id, Email FROM User WHERE Email = '...' AND IsActive = true``). A User has no
# IsDeleted: users are deactivated (IsActive false), never deleted.
USER = SObjectSpec("User", "User", "Users", fields=(
    FieldSpec("Id", "User ID", "id", length=18, nillable=False, in_cdc=False, **_RO),
    FieldSpec("Username", "Username", "string", length=80, nillable=False, required=True),
    FieldSpec("FirstName", "First Name", "string", length=40),
    FieldSpec("LastName", "Last Name", "string", length=80, nillable=False, required=True),
    FieldSpec("Name", "Full Name", "string", length=121, nillable=False, calculated=True,
              in_cdc=False, **_RO),
    FieldSpec("Email", "Email", "email", length=128, nillable=False, required=True),
    FieldSpec("IsActive", "Active", "boolean", nillable=False),
    _picklist("UserType", "User Type", ("Standard", "PowerPartner", "CspLitePortal",
                                        "CustomerSuccess", "PowerCustomerSuccess",
                                        "CsnOnly", "AutomatedProcess"), "Standard"),
    FieldSpec("CreatedDate", "Created Date", "datetime", nillable=False, **_RO),
    FieldSpec("LastModifiedDate", "Last Modified Date", "datetime", nillable=False, **_RO),
    FieldSpec("SystemModstamp", "System Modstamp", "datetime", nillable=False,
              in_cdc=False, **_RO),
))

GROUP = SObjectSpec("Group", "Group", "Groups", fields=(
    FieldSpec("Id", "Group ID", "id", length=18, nillable=False, in_cdc=False, **_RO),
    FieldSpec("Name", "Name", "string", length=40, nillable=False, required=True),
    FieldSpec("DeveloperName", "Developer Name", "string", length=80, nillable=False),
    _picklist("Type", "Type", ("Regular", "Queue"), "Regular"),
    FieldSpec("Email", "Email", "email", length=255),
    FieldSpec("CreatedDate", "Created Date", "datetime", nillable=False, **_RO),
    FieldSpec("SystemModstamp", "System Modstamp", "datetime", nillable=False,
              in_cdc=False, **_RO),
))
# fmt: on

OBJECTS: dict[str, SObjectSpec] = {
    spec.name: spec
    for spec in (
        CASE,
        CONTACT,
        CASE_COMMENT,
        CONTENT_VERSION,
        CONTENT_DOCUMENT,
        CONTENT_DOCUMENT_LINK,
        USER,
        GROUP,
    )
}

#: Standard objects that support change events ("Change Event Object Support"; the service
#: desk ones and a few neighbours, not the whole list). Everything else publishes nothing.
CHANGE_EVENT_OBJECTS: frozenset[str] = frozenset(
    {
        "Account",
        "AccountContactRole",
        "Asset",
        "Case",
        "Contact",
        "EmailMessage",
        "Entitlement",
        "Event",
        "Lead",
        "LiveChatTranscript",
        "Opportunity",
        "Task",
        "User",
    }
)

#: The objects this sandbox serves that publish change events, in channel order.
CDC_ENTITIES: tuple[str, ...] = tuple(name for name in OBJECTS if name in CHANGE_EVENT_OBJECTS)
