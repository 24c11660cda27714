"""Registers Placement in a freshly bootstrapped Keystone and creates the test users.

Run with the keystone venv's python (it has `requests`). Idempotent: everything is looked up
before it is created. Prints shell `export` lines for the env file on stdout.

Usage: python bootstrap.py <keystone v3 url> <admin password> <placement url> [<placement2 url>]
  placement url:  registered in RegionOne (public, internal, admin)
  placement2 url: optional second Placement, registered in RegionTwo (same database)

Users (all in project "service", domain "default"):
  placement    roles admin + service (the service user Placement validates tokens with)
  exporter     role service (enough for Placement's admin_or_service_api rules), plus an
               application credential "prometheus-exporter"
  reader-user  role reader only (Placement answers 403 to it)
"""
import json
import sys

import requests

KS, ADMIN_PASSWORD, PLACEMENT_URL = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
PLACEMENT2_URL = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None

PASSWORDS = {
    "placement": "placement-secret",
    "exporter": "exporter-secret",
    "reader-user": "reader-secret",
}
APP_CRED_NAME = "prometheus-exporter"
APP_CRED_SECRET = "exporter-ac-secret"


def token(user, password, project):
    body = {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    resp = requests.post(KS + "/auth/tokens", json=body, timeout=30)
    resp.raise_for_status()
    return resp.headers["X-Subject-Token"]


ADMIN = {"X-Auth-Token": token("admin", ADMIN_PASSWORD, "admin")}


def call(method, path, body=None, headers=ADMIN):
    resp = requests.request(method, KS + path, json=body, headers=headers, timeout=30)
    if resp.status_code >= 400:
        sys.exit("%s %s -> %s: %s" % (method, path, resp.status_code, resp.text))
    return resp.json() if resp.content else {}


def first(path, key):
    items = call("GET", path)[key]
    return items[0]["id"] if items else None


def ensure_region(region):
    if region not in [r["id"] for r in call("GET", "/regions")["regions"]]:
        call("POST", "/regions", {"region": {"id": region}})


service = first("/services?type=placement", "services")
if service is None:
    service = call("POST", "/services", {"service": {
        "type": "placement", "name": "placement", "description": "Placement API"}})["service"]["id"]
endpoints = call("GET", "/endpoints?service_id=%s" % service)["endpoints"]
for region, url in (("RegionOne", PLACEMENT_URL), ("RegionTwo", PLACEMENT2_URL)):
    if url is None:
        continue
    ensure_region(region)
    for interface in ("public", "internal", "admin"):
        if not any(e["region_id"] == region and e["interface"] == interface for e in endpoints):
            call("POST", "/endpoints", {"endpoint": {
                "service_id": service, "interface": interface, "region_id": region, "url": url}})

project = first("/projects?name=service", "projects")
if project is None:
    project = call("POST", "/projects", {"project": {
        "name": "service", "domain_id": "default"}})["project"]["id"]


def ensure_user(name, *roles):
    uid = first("/users?name=%s" % name, "users")
    if uid is None:
        uid = call("POST", "/users", {"user": {
            "name": name, "password": PASSWORDS[name], "domain_id": "default",
            "default_project_id": project}})["user"]["id"]
    for role in roles:
        rid = first("/roles?name=%s" % role, "roles")
        call("PUT", "/projects/%s/users/%s/roles/%s" % (project, uid, rid))
    return uid


ensure_user("placement", "admin", "service")
exporter = ensure_user("exporter", "service")
ensure_user("reader-user", "reader")

exporter_headers = {"X-Auth-Token": token("exporter", PASSWORDS["exporter"], "service")}
creds = call("GET", "/users/%s/application_credentials?name=%s" % (exporter, APP_CRED_NAME),
             headers=exporter_headers)["application_credentials"]
if creds:
    app_cred = creds[0]["id"]
else:
    app_cred = call("POST", "/users/%s/application_credentials" % exporter, {
        "application_credential": {"name": APP_CRED_NAME, "secret": APP_CRED_SECRET}},
        headers=exporter_headers)["application_credential"]["id"]

values = {
    "OS_AUTH_URL": KS,
    "ADMIN_PASSWORD": ADMIN_PASSWORD,
    "EXPORTER_USER_ID": exporter,
    "EXPORTER_PASSWORD": PASSWORDS["exporter"],
    "READER_PASSWORD": PASSWORDS["reader-user"],
    "APP_CRED_ID": app_cred,
    "APP_CRED_NAME": APP_CRED_NAME,
    "APP_CRED_SECRET": APP_CRED_SECRET,
    "SERVICE_PROJECT_ID": project,
}
for key, value in values.items():
    print("export %s=%s" % (key, json.dumps(value)))
