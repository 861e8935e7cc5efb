"""The gateway's credit routes: consent, and evaluations for the credit officer.

- `PUT /credit/consents/{account}` `{"source"}`: record consent (the customer for their own
  account, or a credit officer recording one given elsewhere); 201, or 200 if already recorded.
- `DELETE /credit/consents/{account}`: revoke it (the same callers); 204, 404 if none.
- `GET /credit/consents/{account}`: the record (credit officer, or the customer's own).
- `GET /credit/evaluations/{account}[?as_of=<unix seconds>]` (credit officer only): the
  scorecard (`bank.credit`) over the customer's on-chain history up to `as_of` (default the
  head block's time; 400 if after it), so an evaluation can be re-run as it was; 403 when no
  consent is recorded (nothing is read from the chain then), 503 when the node cannot be read
  or no node API key is configured. Every evaluation run is logged (`CreditEvaluation`) with
  the model version.

No `from __future__ import annotations` here: FastAPI must evaluate the routes' annotations
where they are defined, as they name the `caller` dependency the gateway passes in.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from bank.auth import GatewayRole
from bank.credit import Model, evaluate
from bank.credit_history import AsOfAfterHead, HistoryUnavailable, NodeHistory
from bank.models import ApiKey, CreditConsent, CreditEvaluation, utcnow

Address = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]


class ConsentIn(BaseModel):
    source: str = Field(
        min_length=1, max_length=64, description="where consent was given; no personal data"
    )


def consent_view(consent: CreditConsent) -> dict[str, Any]:
    return {
        "account": consent.account,
        "source": consent.source,
        "granted_at": consent.granted_at.isoformat(),
        "revoked_at": consent.revoked_at.isoformat() if consent.revoked_at else None,
        "active": consent.revoked_at is None,
    }


def add_credit_routes(
    app: FastAPI,
    sessions: sessionmaker[Session],
    caller: Callable[..., ApiKey],
    history: NodeHistory | None,
    model: Model,
) -> None:
    """Mount the credit routes; `history` None: evaluations answer 503 (no node API key)."""

    def officer(key: Annotated[ApiKey, Depends(caller)]) -> ApiKey:
        if key.role != GatewayRole.CREDIT_OFFICER.value:
            raise HTTPException(403, "this needs the credit_officer role")
        return key

    def officer_or_owner(key: ApiKey, account: str) -> None:
        if key.role == GatewayRole.CREDIT_OFFICER.value:
            return
        if key.role == GatewayRole.CUSTOMER.value and (key.account or "").lower() == account:
            return
        raise HTTPException(403, "only the customer or a credit officer may do this")

    @app.put("/credit/consents/{account}")
    def grant(
        account: Address, body: ConsentIn, key: Annotated[ApiKey, Depends(caller)]
    ) -> Response:
        account = account.lower()
        officer_or_owner(key, account)
        with sessions() as session:
            consent = session.get(CreditConsent, account)
            if consent is not None and consent.revoked_at is None:
                return JSONResponse(consent_view(consent), status_code=200)
            if consent is None:
                consent = CreditConsent(account=account)
                session.add(consent)
            consent.source, consent.granted_by_key = body.source, key.id
            consent.granted_at, consent.revoked_at = utcnow(), None
            session.commit()
            return JSONResponse(consent_view(consent), status_code=201)

    @app.delete("/credit/consents/{account}", status_code=204)
    def revoke(account: Address, key: Annotated[ApiKey, Depends(caller)]) -> Response:
        account = account.lower()
        officer_or_owner(key, account)
        with sessions() as session:
            consent = session.get(CreditConsent, account)
            if consent is None or consent.revoked_at is not None:
                raise HTTPException(404, "no consent recorded for this account")
            consent.revoked_at = utcnow()
            session.commit()
        return Response(status_code=204)

    @app.get("/credit/consents/{account}")
    def consent(account: Address, key: Annotated[ApiKey, Depends(caller)]) -> dict[str, Any]:
        account = account.lower()
        officer_or_owner(key, account)
        with sessions() as session:
            found = session.get(CreditConsent, account)
        if found is None:
            raise HTTPException(404, "no consent recorded for this account")
        return consent_view(found)

    @app.get("/credit/evaluations/{account}")
    async def evaluation(
        account: Address,
        key: Annotated[ApiKey, Depends(officer)],
        as_of: Annotated[int | None, Query(ge=0, le=2**40)] = None,
    ) -> dict[str, Any]:
        account = account.lower()
        with sessions() as session:
            found = session.get(CreditConsent, account)
        if found is None or found.revoked_at is not None:
            raise HTTPException(
                403, "no credit-evaluation consent is recorded for this customer: not evaluated"
            )
        if history is None:
            raise HTTPException(503, "credit evaluation needs a node API key (not configured)")
        try:
            read = await run_in_threadpool(history.history, account, model, as_of)
        except AsOfAfterHead as exc:
            raise HTTPException(400, str(exc)) from None
        except HistoryUnavailable as exc:
            raise HTTPException(503, f"cannot read the customer's history: {exc}") from None
        result = evaluate(model, read)
        with sessions() as session:
            session.add(
                CreditEvaluation(
                    account=account,
                    officer_key=key.id,
                    model_version=result["model_version"],
                    score=result["score"],
                    as_of=result["as_of"],
                )
            )
            session.commit()
        return result
