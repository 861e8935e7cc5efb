"""The risk service's HTTP API (`tally bank risk serve`), with the monitor in a thread.

Routes (JSON, `Authorization: Bearer <bank API key>` except `/health`):

- `POST /risk/screening` `{"raw_transaction": "0x..."}` (customer: its own payments; staff):
  200 `{"decision": allow|hold|deny, "score", "reasons", "config_version", "tx_hash"}`
  (hold: it will be held for review if sent, by the chain itself when a party is flagged or
  the amount is over the payer's review threshold; deny: do not send), 400 not a signed
  WalletToken payment, 503 the node did not answer;
- `GET /risk/decisions?account=&limit=` (analyst, compliance): the latest decisions;
- `GET /risk/cases?state=&limit=` (analyst, compliance): the queue, highest score first;
  `GET /risk/cases/{id}` with its notes; `POST /risk/cases/{id}/assign` `{"assignee"}`,
  `/note` `{"text"}`, `/escalate` `{"text"}`; `POST /risk/cases/{id}/close`
  `{"resolution": release|reject|flag|no_action, "reason"}` (compliance only: it signs);
- `POST /risk/accounts/{address}/flag` `{"reason"}` and `/unflag` (compliance only).

401 no or unknown key, 403 the role may not, 404 no such case, 409 the case is closed or the
chain refused the action. `cors_origins` (`--cors-origins`) may call `/risk/cases...`
cross-origin: the explorer's compliance page (`bank.cors`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import or_, select

from bank.auth import GatewayRole, authenticate
from bank.chain import reason_bytes
from bank.cors import PrefixCors
from bank.models import ApiKey
from bank.risk.cases import CaseError, Cases, Resolution, decision_view
from bank.risk.engine import Engine
from bank.risk.models import CaseState, Decision
from bank.risk.monitor import Monitor
from bank.risk.screening import Decoder, NotAPayment, chain_hold
from client.errors import TallyClientError

ADDRESS = r"^0x[0-9a-fA-F]{40}$"
STAFF = (GatewayRole.ANALYST.value, GatewayRole.COMPLIANCE.value)


class ScreeningIn(BaseModel):
    raw_transaction: str = Field(pattern=r"^0x(?:[0-9a-fA-F]{2})+$", max_length=262144)


class AssignIn(BaseModel):
    assignee: str | None = Field(default=None, max_length=64)


class NoteIn(BaseModel):
    text: str = Field(default="", max_length=2000)


class CloseIn(BaseModel):
    resolution: Literal["release", "reject", "flag", "no_action"]
    reason: str = Field(default="", max_length=200)


class FlagIn(BaseModel):
    reason: str = Field(default="risk", max_length=32)


def caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> ApiKey:
    with request.app.state.engine.sessions() as session:
        key = authenticate(session, authorization)
    if key is None:
        raise HTTPException(401, "missing or unknown API key")
    return key


def needs(*roles: str) -> Callable[[ApiKey], ApiKey]:
    def check(key: Annotated[ApiKey, Depends(caller)]) -> ApiKey:
        if key.role not in roles:
            raise HTTPException(403, f"this needs the {' or '.join(roles)} role")
        return key

    return check


def create_app(
    engine: Engine,
    monitor: Monitor | None,
    cases: Cases,
    decoder: Decoder,
    cors_origins: tuple[str, ...] = (),
) -> FastAPI:
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker = None
        if monitor is not None:
            worker = threading.Thread(target=monitor.run, args=(stop,), daemon=True)
            worker.start()
        yield
        stop.set()
        if worker is not None:
            worker.join(timeout=10)

    app = FastAPI(title="Tally bank risk", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.engine = engine
    if cors_origins:
        app.add_middleware(
            PrefixCors, origins=cors_origins, prefixes=("/risk/cases",), methods=("GET", "POST")
        )
    staff = Depends(needs(*STAFF))
    officer = Depends(needs(GatewayRole.COMPLIANCE.value))

    @app.exception_handler(CaseError)
    def case_error(_request: Request, exc: CaseError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.get("/health")
    def health() -> dict[str, Any]:
        connected = monitor is not None and monitor.connected.is_set()
        return {"status": "ok", "monitor": "following" if connected else "connecting"}

    @app.post("/risk/screening")
    def screening(body: ScreeningIn, key: Annotated[ApiKey, Depends(caller)]) -> dict[str, Any]:
        try:
            screened = decoder.decode(body.raw_transaction)
        except NotAPayment as exc:
            raise HTTPException(400, str(exc)) from None
        payer = screened.payment.payer
        if key.role == GatewayRole.CUSTOMER.value and (key.account or "").lower() != payer.lower():
            raise HTTPException(403, "a customer screens its own payments only")
        try:
            chain = chain_hold(cases.compliance.token, screened.payment)
        except TallyClientError as exc:
            raise HTTPException(503, f"the node did not answer: {exc}") from None
        decision = engine.screen(screened.tx_hash, screened.payment, chain)
        return {
            "decision": decision.outcome.value,
            "score": decision.score,
            "reasons": decision.reasons,
            "config_version": decision.config_version,
            "tx_hash": decision.tx_hash,
        }

    @app.get("/risk/decisions", dependencies=[staff])
    def decisions(
        account: Annotated[str | None, Query(pattern=ADDRESS)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[dict[str, Any]]:
        with engine.sessions() as session:
            query = select(Decision).order_by(Decision.id.desc()).limit(limit)
            if account is not None:
                query = query.where(or_(Decision.payer == account, Decision.payee == account))
            return [decision_view(d) for d in session.scalars(query)]

    @app.get("/risk/cases", dependencies=[staff])
    def queue(
        state: CaseState | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 100
    ) -> list[dict[str, Any]]:
        return cases.queue(state, limit)

    @app.get("/risk/cases/{case_id}", dependencies=[staff])
    def get_case(case_id: int) -> dict[str, Any]:
        return cases.get(case_id)

    @app.post("/risk/cases/{case_id}/assign")
    def assign(
        case_id: int, body: AssignIn, key: Annotated[ApiKey, Depends(needs(*STAFF))]
    ) -> dict[str, Any]:
        return cases.step(case_id, key.name, "assign", "", body.assignee)

    @app.post("/risk/cases/{case_id}/note")
    def note(
        case_id: int, body: NoteIn, key: Annotated[ApiKey, Depends(needs(*STAFF))]
    ) -> dict[str, Any]:
        if not body.text.strip():
            raise HTTPException(400, "a note needs text")
        return cases.step(case_id, key.name, "note", body.text)

    @app.post("/risk/cases/{case_id}/escalate")
    def escalate(
        case_id: int, body: NoteIn, key: Annotated[ApiKey, Depends(needs(*STAFF))]
    ) -> dict[str, Any]:
        return cases.step(case_id, key.name, "escalate", body.text or "escalated")

    @app.post("/risk/cases/{case_id}/close")
    def close(
        case_id: int,
        body: CloseIn,
        key: Annotated[ApiKey, Depends(needs(GatewayRole.COMPLIANCE.value))],
    ) -> dict[str, Any]:
        resolution: Resolution = body.resolution
        return cases.close(case_id, key.name, resolution, body.reason)

    @app.post("/risk/accounts/{address}/{action}", dependencies=[officer])
    def flag(address: str, action: Literal["flag", "unflag"], body: FlagIn) -> dict[str, Any]:
        if not re.fullmatch(ADDRESS, address):
            raise HTTPException(400, f"{address!r} is not an address")
        token = cases.compliance.token
        try:
            if action == "flag":
                tx = token.flag(address, reason_bytes(body.reason)).tx_hash
            else:
                tx = token.unflag(address).tx_hash
        except TallyClientError as exc:
            raise HTTPException(409, f"the chain refused {action}: {exc}") from None
        return {"account": address, "action": action, "tx_hash": tx}

    return app
