"""Native API: contacts, contact types and segments."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from herald.api.deps import ActorDep, ContainerDep, SessionDep
from herald.api.pagination import page
from herald.contacts.models import CONTACT_FIELDS, Contact, ContactType, Segment
from herald.contacts.schemas import (
    ContactIn,
    ContactOut,
    ContactPage,
    ContactPatch,
    ContactTypeIn,
    ContactTypeOut,
    ContactTypePage,
    SegmentIn,
    SegmentOut,
    SegmentPage,
)
from herald.contacts.service import ContactService

router = APIRouter(tags=["contacts"])

Limit = Annotated[int, Query()]
Cursor = Annotated[str | None, Query()]


def _contact_out(c: Contact) -> dict[str, Any]:
    data = {name: getattr(c, name) for name in CONTACT_FIELDS}
    return ContactOut(
        id=c.id,
        email=c.email,
        contact_type_id=c.contact_type_id,
        fields=c.fields or {},
        created_at=c.created_at,
        updated_at=c.updated_at,
        **data,
    ).model_dump(mode="json")


def _type_out(t: ContactType) -> dict[str, Any]:
    return ContactTypeOut(id=t.id, name=t.name, created_at=t.created_at).model_dump(mode="json")


def _segment_out(s: Segment) -> dict[str, Any]:
    return SegmentOut(id=s.id, name=s.name, rules=s.rules, created_at=s.created_at).model_dump(mode="json")


def _service(session: SessionDep, actor: ActorDep, container: ContainerDep) -> ContactService:
    return ContactService(session, actor, hash_key=container.hash_key)


@router.post("/contacts", response_model=ContactOut, status_code=201, summary="Create a contact")
def create_contact(body: ContactIn, session: SessionDep, actor: ActorDep, container: ContainerDep) -> dict[str, Any]:
    """A new contact; its email becomes a known address of the account (status unknown unless known)."""
    values = body.model_dump(exclude_unset=True)
    email = values.pop("email")
    return _contact_out(_service(session, actor, container).create(email, values))


@router.get("/contacts", response_model=ContactPage, summary="List contacts")
def list_contacts(
    session: SessionDep,
    actor: ActorDep,
    container: ContainerDep,
    email: Annotated[str | None, Query(description="Only the contact with this email.")] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The account's contacts by id (or the one with `email`)."""
    stmt = _service(session, actor, container).query(email=email)
    return page(session, stmt, Contact.id, limit=limit, cursor=cursor, render=_contact_out)


@router.get("/contacts/{contact_id}", response_model=ContactOut, summary="Get a contact")
def get_contact(contact_id: int, session: SessionDep, actor: ActorDep, container: ContainerDep) -> dict[str, Any]:
    """One contact of the account."""
    return _contact_out(_service(session, actor, container).get(contact_id))


@router.patch("/contacts/{contact_id}", response_model=ContactOut, summary="Change a contact")
def patch_contact(
    contact_id: int, body: ContactPatch, session: SessionDep, actor: ActorDep, container: ContainerDep
) -> dict[str, Any]:
    """Change only the given fields; custom fields merge (a null value removes a key)."""
    values = body.model_dump(exclude_unset=True)
    return _contact_out(_service(session, actor, container).update(contact_id, values))


@router.delete("/contacts/{contact_id}", status_code=204, summary="Delete a contact")
def delete_contact(contact_id: int, session: SessionDep, actor: ActorDep, container: ContainerDep) -> Response:
    """Remove the contact profile; the address and its consent ledger stay."""
    _service(session, actor, container).delete(contact_id)
    return Response(status_code=204)


@router.post("/contact-types", response_model=ContactTypeOut, status_code=201, summary="Create a contact type")
def create_contact_type(
    body: ContactTypeIn, session: SessionDep, actor: ActorDep, container: ContainerDep
) -> dict[str, Any]:
    """A kind of contact; a send to `contacts_{id}` reaches every contact of that type."""
    return _type_out(_service(session, actor, container).create_type(body.name))


@router.get("/contact-types", response_model=ContactTypePage, summary="List contact types")
def list_contact_types(
    session: SessionDep, actor: ActorDep, container: ContainerDep, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    """The account's contact types by id."""
    stmt = _service(session, actor, container).types_query()
    return page(session, stmt, ContactType.id, limit=limit, cursor=cursor, render=_type_out)


@router.post("/segments", response_model=SegmentOut, status_code=201, summary="Create a segment")
def create_segment(body: SegmentIn, session: SessionDep, actor: ActorDep, container: ContainerDep) -> dict[str, Any]:
    """A saved rule over contact fields; bad rules are refused naming the exact path (rules.all[1].op)."""
    return _segment_out(_service(session, actor, container).create_segment(body.name, body.rules))


@router.get("/segments", response_model=SegmentPage, summary="List segments")
def list_segments(
    session: SessionDep, actor: ActorDep, container: ContainerDep, limit: Limit = 100, cursor: Cursor = None
) -> dict[str, Any]:
    """The account's segments by id."""
    stmt = _service(session, actor, container).segments_query()
    return page(session, stmt, Segment.id, limit=limit, cursor=cursor, render=_segment_out)


@router.get("/segments/{segment_id}/contacts", response_model=ContactPage, summary="Contacts of a segment")
def segment_contacts(
    segment_id: int,
    session: SessionDep,
    actor: ActorDep,
    container: ContainerDep,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The contacts the segment's rules match now, by id."""
    stmt = _service(session, actor, container).segment_contacts_query(segment_id)
    return page(session, stmt, Contact.id, limit=limit, cursor=cursor, render=_contact_out)
