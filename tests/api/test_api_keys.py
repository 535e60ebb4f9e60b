"""API keys administered over GraphQL: the secret is shown once and stored hashed, and a
revoked key stops working at once, in every app instance."""

from __future__ import annotations

from domain.access.keys import Role, hash_secret
from service.settings import Settings
from tests.api.test_limits import client_of, post
from tests.conftest import Api

CREATE = """mutation($name: String!, $role: ApiKeyRole!) {
  createApiKey(name: $name, role: $role) { key { id name role prefix revokedAt } secret errors { code } }
}"""
REVOKE = "mutation($id: ID!) { revokeApiKey(id: $id) { key { revokedAt } errors { code } } }"
KEYS = "{ apiKeys { id name role prefix createdAt revokedAt } }"


async def test_a_created_key_works_and_its_secret_is_shown_once(api: Api) -> None:
    created = (await api.query(CREATE, {"name": "crm sync", "role": "INTEGRATION"}))["createApiKey"]
    secret = created["secret"]
    assert created["errors"] == [] and created["key"]["role"] == "INTEGRATION"
    assert secret.split("_")[1] == created["key"]["prefix"]
    response = await api.client.post(
        "/graphql",
        json={"query": "{ identityTypes { key } }"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 200 and not response.json().get("errors")

    listed = (await api.query(KEYS))["apiKeys"]
    assert "crm sync" in {k["name"] for k in listed}
    assert secret not in str(listed) and hash_secret(secret) not in str(listed)


async def test_a_key_needs_a_name(api: Api) -> None:
    refused = (await api.query(CREATE, {"name": " ", "role": "PARTNER"}))["createApiKey"]
    assert refused == {"key": None, "secret": None, "errors": [{"code": "INVALID_INPUT"}]}


async def test_a_revoked_key_stops_working_at_once_in_every_instance(
    api: Api, settings: Settings
) -> None:
    created = (await api.query(CREATE, {"name": "partner x", "role": "PARTNER"}))["createApiKey"]
    secret = created["secret"]
    async with client_of(settings) as other_instance:
        assert (await post(other_instance, secret, "{ __typename }")).status_code == 200
        revoked = (await api.query(REVOKE, {"id": created["key"]["id"]}))["revokeApiKey"]
        assert revoked["errors"] == [] and revoked["key"]["revokedAt"]
        assert (await post(other_instance, secret, "{ __typename }")).status_code == 401
    assert (await api.post("{ __typename }", role=Role.ADMIN)).status_code == 200
