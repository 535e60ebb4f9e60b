"""Keys, health endpoints and the shape of errors at the HTTP edge."""

from __future__ import annotations

import uuid

import httpx

from api.app import create_app
from api.ids import to_global_id
from domain.access.keys import Role, create_api_key, list_api_keys
from service.settings import Settings
from tests.conftest import Api

QUERY = "{ customers { totalCount } }"


async def test_no_key_is_401_with_a_json_error(api: Api) -> None:
    response = await api.post(QUERY, role=None)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert response.headers["www-authenticate"] == "Bearer"


async def test_wrong_key_is_401(api: Api) -> None:
    response = await api.client.post(
        "/graphql", json={"query": QUERY}, headers={"Authorization": "Bearer c360_nope"}
    )
    assert response.status_code == 401
    response = await api.client.post(
        "/graphql", json={"query": QUERY}, headers={"Authorization": "Basic abc"}
    )
    assert response.status_code == 401


async def test_refused_keys_give_back_every_connection(db, settings: Settings) -> None:
    """The key lookup reads on the request's own connection (on PostgreSQL): a 401 must give it
    back to the pool as a served request does, or unknown keys drain the pool."""
    app = create_app(settings)
    pool = app.state.c360.db.engine.pool
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        for n in range(30):
            headers = {"Authorization": f"Bearer c360_unknown_{n}"}
            response = await client.post("/graphql", json={"query": QUERY}, headers=headers)
            assert response.status_code == 401
            assert pool.checkedout() == 0, f"after {n + 1} refused requests"
    await app.state.c360.close()


async def test_every_role_reads_with_its_key(api: Api) -> None:
    for role in Role:
        assert (await api.query(QUERY, role=role))["customers"]["totalCount"] == 0


async def test_revoked_key_stops_working_at_once(api: Api, db) -> None:
    key = next(k for k in await list_api_keys(db) if k.role is Role.PARTNER)
    revoke = "mutation($id: ID!) { revokeApiKey(id: $id) { errors { code } } }"
    await api.query(revoke, {"id": to_global_id("ApiKey", key.id)})
    assert (await api.post(QUERY, role=Role.PARTNER)).status_code == 401


async def test_keys_are_stored_hashed(db) -> None:
    new = await create_api_key(db, "ci", Role.FRONTEND)
    async with db.read() as session:
        from sqlalchemy import text

        stored = (await session.execute(text("SELECT secret_hash FROM api_keys"))).scalars().all()
    assert new.secret not in stored and all(len(h) == 64 for h in stored)


async def test_graphiql_page_opens_without_a_key(api: Api) -> None:
    response = await api.client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200 and "graphiql" in response.text.lower()


async def test_healthz_and_readyz(api: Api, settings: Settings) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    ready = await api.client.get("/readyz")
    assert ready.status_code == 200
    expected_redis = "ok" if settings.redis_url else "not configured"
    idle = {
        "derivedState": {"profiles": 0, "seconds": 0.0},
        "outbox": {"events": 0, "seconds": 0.0},
    }
    assert ready.json() == {
        "status": "ready",
        "database": "ok",
        "redis": expected_redis,
        "lag": idle,
    }


async def test_readyz_is_degraded_when_redis_is_configured_but_unreachable(
    settings: Settings, db
) -> None:
    broken = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    app = create_app(broken)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        response = await client.get("/readyz")
    await app.state.c360.close()
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["redis"] == "unreachable"


async def test_unexpected_errors_are_masked_with_a_request_id(api: Api, db) -> None:
    from sqlalchemy import text

    # A row the code cannot map (a status outside the enum) stands for any bug.
    async with db.write() as session:
        await session.execute(
            text(
                "INSERT INTO customers (id, status, attributes, field_times, created_at, updated_at, version) "
                "VALUES ('00000000000000000000000000000001', 'BOGUS', '{}', '{}', '2024-01-01 00:00:00', '2024-01-01 00:00:00', 1)"
                if db.dialect == "sqlite"
                else "INSERT INTO customers (id, status, attributes, field_times, created_at, updated_at, version) "
                "VALUES ('00000000-0000-0000-0000-000000000001', 'BOGUS', '{}', '{}', now(), now(), 1)"
            )
        )
    ghost = to_global_id("Customer", uuid.UUID(int=1))
    body = (
        await api.post("query($id: ID!) { customer(id: $id) { status } }", {"id": ghost})
    ).json()
    assert "errors" in body, body
    error = body["errors"][0]
    assert error["message"] == "Internal error"
    assert error["extensions"]["code"] == "INTERNAL_ERROR" and error["extensions"]["requestId"]
    assert "BOGUS" not in str(body) and "Traceback" not in str(body)
