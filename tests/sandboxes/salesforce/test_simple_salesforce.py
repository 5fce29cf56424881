"""The real, unmodified simple-salesforce client against the sandbox REST API.

simple-salesforce always speaks https, so this test serves the sandbox app over TLS on
loopback with a certificate made here for 127.0.0.1, and trusts it through
``REQUESTS_CA_BUNDLE``. The client is synchronous (requests): it runs in a worker thread while
the sandbox serves on the event loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from simple_salesforce.api import Salesforce, SFType
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceResourceNotFound,
)

from sandboxes.base import ManualClock, SandboxContext, build_app
from sandboxes.salesforce import SalesforceSandbox, SalesforceSandboxConfig


def _tls_files(directory: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "sandbox.crt", directory / "sandbox.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class TlsSandbox:
    sandbox: SalesforceSandbox
    url: str
    token: str


@pytest.fixture
async def tls_sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TlsSandbox]:
    cert_path, key_path = _tls_files(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert_path))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_path, key_path)
    context = SandboxContext(clock=ManualClock(), rng=random.Random(3), seed=3)
    sandbox = SalesforceSandbox(context=context, config=SalesforceSandboxConfig())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    context.base_url = f"https://127.0.0.1:{sock.getsockname()[1]}"
    runner = web.AppRunner(build_app(sandbox), access_log=None)
    await runner.setup()
    try:
        await web.SockSite(runner, sock, ssl_context=tls).start()
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=cert_path)) as http:
            grant = await http.post(
                f"{context.base_url}/services/oauth2/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": sandbox.config.refresh_token,
                    "client_id": sandbox.config.consumer_key,
                    "client_secret": sandbox.config.consumer_secret,
                },
            )
        yield TlsSandbox(sandbox, context.base_url, grant.json()["access_token"])
    finally:
        await runner.cleanup()


def _drive_simple_salesforce(env: TlsSandbox) -> dict[str, Any]:
    sf = Salesforce(instance_url=env.url, session_id=env.token, version="59.0")
    cases, contacts = sf.Case, sf.Contact  # one SFType each: it keeps the last limits header
    assert isinstance(cases, SFType)
    assert isinstance(contacts, SFType)
    seen: dict[str, Any] = {}
    created = cases.create({"Subject": "From simple-salesforce", "Origin": "Web"})
    case_id = created["id"]
    seen["created"] = created
    seen["status_after_update"] = cases.update(case_id, {"Status": "Working"})
    seen["record"] = cases.get(case_id)
    seen["upsert_created"] = cases.upsert("Deskstream_Link_Id__c/ds-1", {"Subject": "linked"})
    seen["upsert_updated"] = cases.upsert("Deskstream_Link_Id__c/ds-1", {"Subject": "again"})
    seen["by_link"] = cases.get_by_custom_id("Deskstream_Link_Id__c", "ds-1")
    seen["describe"] = cases.describe()
    seen["usage"] = cases.api_usage["api-usage"]
    try:
        contacts.create({"FirstName": "No last name"})
    except SalesforceMalformedRequest as exc:
        seen["malformed"] = exc.content
    try:
        cases.get("500000000000000AAA")
    except SalesforceResourceNotFound as exc:
        seen["not_found"] = exc.content
    cases.create({"Subject": "twin", "Deskstream_Link_Id__c": "ds-1"})
    try:
        cases.upsert("Deskstream_Link_Id__c/ds-1", {"Subject": "which?"})
    except SalesforceMoreThanOneRecord as exc:
        seen["multiple"] = exc.content
    return seen


async def test_simple_salesforce_crud_upsert_and_errors(tls_sandbox: TlsSandbox) -> None:
    seen = await asyncio.to_thread(_drive_simple_salesforce, tls_sandbox)

    case_id = seen["created"]["id"]
    assert seen["created"]["success"] is True
    assert case_id.startswith("500")
    assert seen["status_after_update"] == 204
    assert seen["record"]["Status"] == "Working"
    assert seen["upsert_created"] == 201
    assert seen["upsert_updated"] == 200
    assert seen["by_link"]["Subject"] == "again"
    assert seen["describe"]["name"] == "Case"
    assert seen["usage"].used == 7
    assert seen["usage"].total == tls_sandbox.sandbox.config.daily_api_limit
    assert seen["malformed"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert seen["not_found"][0]["errorCode"] == "NOT_FOUND"
    assert len(seen["multiple"]) == 2


def _drive_queries(env: TlsSandbox) -> dict[str, Any]:
    sf = Salesforce(instance_url=env.url, session_id=env.token, version="59.0")
    cases, comments = sf.Case, sf.CaseComment
    assert isinstance(cases, SFType)
    assert isinstance(comments, SFType)
    case_id = cases.create({"Subject": "Queried"})["id"]
    gone_id = cases.create({"Subject": "Deleted"})["id"]
    created = {
        comments.create({"ParentId": case_id, "CommentBody": f"c{i}"})["id"] for i in range(3)
    }
    cases.delete(gone_id)
    small = {"Sforce-Query-Options": "batchSize=200"}
    seen: dict[str, Any] = {"case_id": case_id, "gone_id": gone_id, "comments": created}
    by_id = f"SELECT Id, Subject FROM Case WHERE Id = '{case_id}'"  # noqa: S608 - an id we minted
    seen["query"] = sf.query(by_id)
    seen["query_all"] = sf.query_all(
        "SELECT Id, IsDeleted FROM Case ORDER BY Subject", include_deleted=True
    )
    # More rows than one batch: query_all follows nextRecordsUrl itself.
    bulk = [{"attributes": {"type": "CaseComment"}, "ParentId": case_id} for _ in range(200)]
    for _ in range(2):
        sf.restful("composite/sobjects", method="POST", json={"records": bulk})
    seen["paged"] = sf.query_all("SELECT Id FROM CaseComment", headers=small)
    seen["first_page"] = sf.query("SELECT Id FROM CaseComment", headers=small)
    try:
        sf.query("SELECT Id FROM Case WHERE")
    except SalesforceMalformedRequest as exc:
        seen["malformed"] = exc.content
    return seen


async def test_simple_salesforce_query_and_query_all(tls_sandbox: TlsSandbox) -> None:
    seen = await asyncio.to_thread(_drive_queries, tls_sandbox)

    assert seen["query"]["totalSize"] == 1
    assert seen["query"]["records"][0]["Subject"] == "Queried"
    assert [(r["Id"], r["IsDeleted"]) for r in seen["query_all"]["records"]] == [
        (seen["gone_id"], True),
        (seen["case_id"], False),
    ]
    paged_ids = [r["Id"] for r in seen["paged"]["records"]]
    assert len(paged_ids) == len(set(paged_ids)) == 403
    assert seen["comments"] <= set(paged_ids)
    assert seen["first_page"]["done"] is False
    assert len(seen["first_page"]["records"]) == 200
    assert seen["malformed"][0]["errorCode"] == "MALFORMED_QUERY"


def _drive_owners(env: TlsSandbox) -> dict[str, Any]:
    sf = Salesforce(instance_url=env.url, session_id=env.token, version="59.0")
    cases, users = sf.Case, sf.User
    assert isinstance(cases, SFType)
    assert isinstance(users, SFType)
    seen: dict[str, Any] = {}
    seen["ada"] = sf.query(
        "SELECT Id, Email, Name FROM User WHERE Email = 'ADA@sandbox.example' AND IsActive = true"
    )
    seen["queue"] = sf.query("SELECT Id, Name FROM Group WHERE Type = 'Queue'")
    ada_id = seen["ada"]["records"][0]["Id"]
    queue_id = seen["queue"]["records"][0]["Id"]
    case_id = cases.create({"Subject": "Owned"})["id"]
    seen["default_owner"] = cases.get(case_id)["OwnerId"]
    cases.update(case_id, {"OwnerId": ada_id})
    seen["owned_by_ada"] = cases.get(case_id)["OwnerId"]
    cases.update(case_id, {"OwnerId": queue_id})
    seen["owned_by_queue"] = cases.get(case_id)["OwnerId"]
    users.update(ada_id, {"IsActive": False})
    try:
        cases.update(case_id, {"OwnerId": ada_id})
    except SalesforceMalformedRequest as exc:
        seen["inactive"] = exc.content
    seen["ada_after"] = sf.query(
        "SELECT Id FROM User WHERE Email = 'ada@sandbox.example' AND IsActive = true"
    )
    seen["case_id"] = case_id
    return seen


async def test_users_and_queues_own_cases_and_cdc_names_the_owner(
    tls_sandbox: TlsSandbox,
) -> None:
    """ "User" and "Group" (Object Reference): users are read by SOQL, a Case's OwnerId takes
    an active user or a queue, and an owner change is a change event naming OwnerId."""
    seen = await asyncio.to_thread(_drive_owners, tls_sandbox)
    org = tls_sandbox.sandbox.org
    [ada] = seen["ada"]["records"]
    assert (ada["Email"], ada["Name"], ada["Id"][:3]) == ("ada@sandbox.example", "Ada Agent", "005")
    assert seen["queue"]["records"][0]["Name"] == "Support Queue"
    assert seen["default_owner"] == org.user_id  # the creating user owns a new Case
    assert seen["owned_by_ada"] == ada["Id"]
    assert seen["owned_by_queue"] == org.queue_id
    assert seen["inactive"][0]["errorCode"] == "INACTIVE_OWNER_OR_USER"
    assert seen["ada_after"]["totalSize"] == 0
    owner_changes = [
        e
        for e in org.bus.events
        if e.entity == "Case"
        and e.header["changeType"] == "UPDATE"
        and "OwnerId" in e.header["changedFields"]
    ]
    assert [e.values["OwnerId"] for e in owner_changes] == [ada["Id"], org.queue_id]
    assert all(e.header["recordIds"] == [seen["case_id"]] for e in owner_changes)
