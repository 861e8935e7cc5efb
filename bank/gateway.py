"""The gateway's HTTP API and its background worker (`tally bank gateway`).

Routes (JSON; `Authorization: Bearer <api key>` except the rail's callbacks and `/health`):

- `POST /topups` (customer: own account; operations: any), `Idempotency-Key` header required:
  201 captured (the mint follows), 200 the same top-up again for a retry, 202 still in progress
  (the rail did not answer: it resumes), 402 declined, 409 the key was used for another body;
- `GET /topups/{id}`, `GET /withdrawals/{id}` (customer: own), `GET /topups`,
  `GET /withdrawals`, `GET /totals`, `GET /reconciliation/{day}[?format=csv]` (operations;
  the one route other origins may call, those of `--cors-origins`: `bank.cors`);
- `POST /rail/callbacks`: the rail's signed notifications (400 if the signature fails);
- `/credit/...` (consents, evaluations: `bank.credit_api`) and `/catalog/...` (points offers
  and their events: `bank.catalog`).

The worker thread pays out recorded withdrawals, resumes interrupted top-ups and runs the
outbox; it wakes at once when a withdrawal is recorded or a mint or burn is queued, else every
`poll` seconds. A second thread reads withdrawal requests from the node's event stream
(`bank.stream`).
"""

from __future__ import annotations

import datetime
import logging
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from bank.auth import GatewayRole, authenticate
from bank.catalog import Catalog, add_catalog_routes
from bank.chain import Issuer
from bank.cors import PrefixCors
from bank.credit import Model
from bank.credit_api import add_credit_routes
from bank.credit_history import NodeHistory
from bank.models import (
    ApiKey,
    OutboxEntry,
    OutboxKind,
    OutboxState,
    TopUp,
    TopUpState,
    Withdrawal,
    WithdrawalState,
)
from bank.outbox import Outbox
from bank.rails.base import BadCallback, Card, CardRail
from bank.reconcile import reconcile
from bank.stream import WithdrawalStream
from bank.topups import Conflict, TopUpRequest, TopUps
from bank.withdrawals import Withdrawals

log = logging.getLogger("bank.gateway")
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


class CardIn(BaseModel):
    number: str = Field(pattern=r"^[0-9]{12,19}$")
    expiry: str = Field(pattern=r"^(0[1-9]|1[0-2])/[0-9]{2}$")
    cvc: str = Field(pattern=r"^[0-9]{3,4}$")


class TopUpIn(BaseModel):
    account: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    amount: int = Field(gt=0, le=10**15, description="minor units (cents)")
    card: CardIn


def topup_view(topup: TopUp) -> dict[str, Any]:
    return {
        "id": topup.id,
        "status": topup.state.value,
        "account": topup.account,
        "amount": topup.amount,
        "currency": topup.currency,
        "reference": "0x" + topup.reference,
        "card_last4": topup.card_last4,
        "reason": topup.reason,
        "mint_tx": topup.mint_tx,
    }


def withdrawal_view(withdrawal: Withdrawal) -> dict[str, Any]:
    return {
        "id": withdrawal.id,
        "status": withdrawal.state.value,
        "holder": withdrawal.holder,
        "amount": withdrawal.amount,
        "reason": withdrawal.reason,
        "payout_id": withdrawal.payout_id,
        "chain_tx": withdrawal.chain_tx,
    }


STATUS_CODES = {
    TopUpState.RECEIVED: 202,
    TopUpState.AUTHORIZED: 202,
    TopUpState.CAPTURED: 201,
    TopUpState.MINTED: 201,
    TopUpState.REFUNDED: 201,
    TopUpState.DECLINED: 402,
    TopUpState.FAILED: 402,
}


@dataclass
class Services:
    sessions: sessionmaker[Session]
    rail: CardRail
    issuer: Issuer
    topups: TopUps
    withdrawals: Withdrawals
    stream: WithdrawalStream
    outbox: Outbox
    wake: threading.Event
    currency: str = "EUR"
    poll: float = 0.5
    credit_history: NodeHistory | None = None  # None: no node API key, no evaluations
    credit_model: Model = field(default_factory=Model)
    catalog: Catalog | None = None

    def work_once(self) -> None:
        """One pass of each job; one failing (the node or the rail away) stops no other."""
        for job in (
            self.withdrawals.pay_pending,
            self.topups.recover,
            self.outbox.run_once,
        ):
            try:
                job()
            except Exception:  # the worker outlives a bad pass: log it and try again
                log.exception("worker: %s failed", job.__name__)

    def run_worker(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.wake.clear()
            self.work_once()
            self.wake.wait(self.poll)


def caller(request: Request, authorization: Annotated[str | None, Header()] = None) -> ApiKey:
    """The API key of the request (401 without a known one)."""
    with request.app.state.services.sessions() as session:
        key = authenticate(session, authorization)
    if key is None:
        raise HTTPException(401, "missing or unknown API key")
    return key


def operations(key: Annotated[ApiKey, Depends(caller)]) -> ApiKey:
    if key.role != GatewayRole.OPERATIONS.value:
        raise HTTPException(403, "this needs the operations role")
    return key


def create_app(services: Services, cors_origins: tuple[str, ...] = ()) -> FastAPI:
    """The gateway's app; `cors_origins` may read the reconciliation report (`bank.cors`)."""
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        threads = [
            threading.Thread(target=run, args=(stop,), daemon=True)
            for run in (services.run_worker, services.stream.run)
        ]
        for thread in threads:
            thread.start()
        yield
        stop.set()
        services.wake.set()
        for thread in threads:
            thread.join(timeout=10)

    app = FastAPI(title="Tally bank gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.services = services
    if cors_origins:
        app.add_middleware(PrefixCors, origins=cors_origins, prefixes=("/reconciliation/",))
    sessions = services.sessions
    add_credit_routes(app, sessions, caller, services.credit_history, services.credit_model)
    add_catalog_routes(app, caller, services.catalog)

    def own(key: ApiKey, account: str) -> None:
        if (
            key.role == GatewayRole.CUSTOMER.value
            and (key.account or "").lower() != account.lower()
        ):
            raise HTTPException(404, "no such record")  # a customer never learns others' ids

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/topups")
    def create_topup(
        body: TopUpIn,
        key: Annotated[ApiKey, Depends(caller)],
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        if idempotency_key is None or not IDEMPOTENCY_KEY.match(idempotency_key):
            raise HTTPException(400, "an Idempotency-Key header of 8-128 [A-Za-z0-9._:-] is needed")
        if (
            key.role == GatewayRole.CUSTOMER.value
            and (key.account or "").lower() != body.account.lower()
        ):
            raise HTTPException(403, "a customer tops up their own account only")
        card = Card(body.card.number, body.card.expiry, body.card.cvc)
        request = TopUpRequest(body.account, body.amount, services.currency, card)
        try:
            topup, created = services.topups.submit(key.id, idempotency_key, request)
        except Conflict:
            raise HTTPException(
                409, "this Idempotency-Key was already used for a different request"
            ) from None
        code = STATUS_CODES[topup.state]
        if not created and code == 201:
            code = 200
        return JSONResponse(topup_view(topup), status_code=code)

    @app.get("/topups/{topup_id}")
    def get_topup(topup_id: int, key: Annotated[ApiKey, Depends(caller)]) -> dict[str, Any]:
        topup = services.topups.get(topup_id)
        if topup is None:
            raise HTTPException(404, "no such record")
        own(key, topup.account)
        return topup_view(topup)

    @app.get("/topups")
    def list_topups(
        _key: Annotated[ApiKey, Depends(operations)],
        status: TopUpState | None = None,
    ) -> list[dict[str, Any]]:
        with sessions() as session:
            query = select(TopUp).order_by(TopUp.id)
            if status is not None:
                query = query.where(TopUp.state == status)
            return [topup_view(t) for t in session.scalars(query)]

    @app.get("/withdrawals/{withdrawal_id}")
    def get_withdrawal(
        withdrawal_id: int, key: Annotated[ApiKey, Depends(caller)]
    ) -> dict[str, Any]:
        with sessions() as session:
            withdrawal = session.get(Withdrawal, withdrawal_id)
        if withdrawal is None:
            raise HTTPException(404, "no such record")
        own(key, withdrawal.holder)
        return withdrawal_view(withdrawal)

    @app.get("/withdrawals")
    def list_withdrawals(
        _key: Annotated[ApiKey, Depends(operations)],
    ) -> list[dict[str, Any]]:
        with sessions() as session:
            rows = session.scalars(select(Withdrawal).order_by(Withdrawal.id))
            return [withdrawal_view(w) for w in rows]

    @app.get("/totals")
    def totals(_key: Annotated[ApiKey, Depends(operations)]) -> dict[str, int]:
        """What the gateway recorded, in minor units: captured vs minted, paid vs burned."""
        with sessions() as session:

            def total(model: Any, *conditions: Any) -> int:
                return int(
                    session.scalar(
                        select(func.coalesce(func.sum(model.amount), 0)).where(*conditions)
                    )
                    or 0
                )

            captured = (TopUpState.CAPTURED, TopUpState.MINTED, TopUpState.REFUNDED)
            return {
                "captured": total(TopUp, TopUp.state.in_(captured)),
                "minted": total(TopUp, TopUp.state == TopUpState.MINTED),
                "refunded": total(TopUp, TopUp.state == TopUpState.REFUNDED),
                "paid_out": total(
                    Withdrawal, Withdrawal.state.in_((WithdrawalState.PAID, WithdrawalState.BURNED))
                ),
                "burned": total(Withdrawal, Withdrawal.state == WithdrawalState.BURNED),
                "rejected": total(Withdrawal, Withdrawal.state == WithdrawalState.REJECTED),
                "outbox_open": int(
                    session.scalar(
                        select(func.count())
                        .select_from(OutboxEntry)
                        .where(OutboxEntry.state.in_((OutboxState.PENDING, OutboxState.SENT)))
                    )
                    or 0
                ),
                "outbox_failed_mints": int(
                    session.scalar(
                        select(func.count())
                        .select_from(OutboxEntry)
                        .where(
                            OutboxEntry.state == OutboxState.FAILED,
                            OutboxEntry.kind == OutboxKind.MINT,
                        )
                    )
                    or 0
                ),
            }

    @app.get("/reconciliation/{day}", response_model=None)
    def reconciliation(
        day: datetime.date,
        _key: Annotated[ApiKey, Depends(operations)],
        format: Literal["json", "csv"] = "json",
    ) -> dict[str, object] | PlainTextResponse:
        """The day's reconciliation (`bank.reconcile`): matched totals and each break."""
        report = reconcile(day, sessions, services.rail, services.issuer)
        if format == "csv":
            return PlainTextResponse(report.to_csv(), media_type="text/csv")
        return report.as_dict()

    @app.post("/rail/callbacks")
    async def rail_callback(request: Request) -> dict[str, str]:
        body = await request.body()
        try:
            event = services.rail.verify_callback(body, request.headers)
        except BadCallback as exc:
            raise HTTPException(400, str(exc)) from None
        await run_in_threadpool(
            services.topups.on_rail_event, event.kind, event.reference, event.rail_id
        )
        return {"status": "accepted"}

    return app
