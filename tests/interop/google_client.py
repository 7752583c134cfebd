#!/usr/bin/env python3
"""Google's own Python client against a running `contact-sync emulator`.

Both APIs are built with googleapiclient.discovery.build_from_document from the
discovery documents vendored in discovery/, tokens are fetched from the
emulator's /token by google.oauth2.service_account.Credentials (the tests'
throwaway key, token_uri pointed at the emulator), and the script lists users,
group members, contact groups and connections, following every page. It then
reads /_emulator/stats: the emulator (started with --check-responses) must have
refused no request and given no answer its response schema does not allow.

    contact-sync emulator --data WORKSPACE.yaml --listen 127.0.0.1:PORT \\
        --trust-key tests/fixtures/service-account.json --check-responses &
    python3 tests/interop/google_client.py http://127.0.0.1:PORT

Exits 0 when everything listed is what the tenant holds and the stats are clean.
"""

import json
import pathlib
import sys
import urllib.request

from google.oauth2 import service_account
from googleapiclient.discovery import build_from_document

ROOT = pathlib.Path(__file__).resolve().parents[2]
KEY = ROOT / "tests" / "fixtures" / "service-account.json"
ADMIN = "admin@example.com"
SAM = "salesuser@example.com"
DIRECTORY_SCOPES = [
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
]
CONTACTS_SCOPES = ["https://www.googleapis.com/auth/contacts.readonly"]


def service(document, base, subject, scopes):
    """A client of one API, built from its vendored document, acting as subject."""
    info = json.loads(KEY.read_text())
    info["token_uri"] = f"{base}/token"
    creds = service_account.Credentials.from_service_account_info(
        info, scopes=scopes, subject=subject
    )
    text = (ROOT / "discovery" / document).read_text()
    return build_from_document(
        text, credentials=creds, client_options={"api_endpoint": f"{base}/"}
    )


def every_page(method, key, **params):
    """Every item of a list method, following nextPageToken."""
    items, token = [], None
    while True:
        page = method(**params, **({"pageToken": token} if token else {})).execute()
        items.extend(page.get(key, []))
        token = page.get("nextPageToken")
        if not token:
            return items


def main(base):
    base = base.rstrip("/")
    directory = service("admin.directory_v1.json", base, ADMIN, DIRECTORY_SCOPES)
    people = service("people.v1.json", base, SAM, CONTACTS_SCOPES)

    users = every_page(
        directory.users().list, "users", customer="my_customer", maxResults=2,
        viewType="admin_view",
    )
    renamed = directory.users().get(userKey="carol@example.com").execute()
    members = every_page(
        directory.members().list, "members", groupKey="accounting@example.com",
        includeDerivedMembership=True,
    )
    groups = every_page(
        people.contactGroups().list, "contactGroups", pageSize=1,
        groupFields="clientData,groupType,memberCount,metadata,name",
    )
    connections = every_page(
        people.people().connections().list, "connections", resourceName="people/me",
        pageSize=3, personFields="names,emailAddresses,phoneNumbers,memberships,metadata",
    )
    print(f"users: {len(users)}, members of accounting@: {len(members)}, contact groups "
          f"of {SAM}: {len(groups)}, connections: {len(connections)}")

    problems = []
    if len(users) != 9:
        problems.append(f"expected the example's 9 users, got {len(users)}")
    if renamed.get("primaryEmail") != "caroline@example.com":
        problems.append(f"carol@ should find caroline@, got {renamed.get('primaryEmail')}")
    if len(connections) != 8:
        problems.append(f"expected {SAM}'s 8 contacts, got {len(connections)}")
    if not any(g.get("name") == "Sales Contacts" for g in groups):
        problems.append("no contact group \"Sales Contacts\"")
    with urllib.request.urlopen(f"{base}/_emulator/stats") as answer:
        stats = json.load(answer)
    if stats.get("invalid") != 0:
        problems.append(f"the emulator refused requests: {stats.get('refusals')}")
    if stats.get("invalidResponses") != 0:
        problems.append(f"answers unlike Google's: {stats.get('responseProblems')}")
    if not stats.get("checkedResponses"):
        problems.append("no answer was checked: start the emulator with --check-responses")
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
