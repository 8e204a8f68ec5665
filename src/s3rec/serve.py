"""HTTP JSON recommendation service over a finished run (`s3rec serve`): FastAPI on uvicorn.

The run is loaded once at start-up (`Recommender.load`); every request is scored by that model.

    POST /recommend        {"history": ["sku7", "sku12"], "k": 10, "exclude_seen": true}
                           or {"user": "u42", ...}: a user of the run's data, whose whole sequence is the history
                           -> {"items": [...], "scores": [...], "unknown_items": [...], "user": ...}
    POST /recommend/batch  [request, request, ...] (at most MAX_BATCH) -> [response, ...] in order
    GET  /health           {"status": "ok", "model", "dataset", "n_items", "max_len"}
    GET  /openapi.json     the OpenAPI schema (interactive docs at /docs)

Item ids are the run's raw ids (strings or integers, compared as strings; responses give strings).
Unknown items are ignored and echoed in `unknown_items`. With `exclude_seen` the history's items are
not recommended, so fewer than k items come back when fewer remain. A request is rejected with 422
and FastAPI's usual body {"detail": [{"loc", "msg", "type"}, ...]} when: a field is missing or of the
wrong type, `k` is outside 1..n_items, neither or both of history and user are given, the history is
empty, none of its items is known to the model (a decision: no silent popularity fallback; the client
decides what to show such a user), or the user is not one of the run's. A known user is scored as
`s3rec recommend --users` scores it: user-aware models (Caser, HGN, FM, AutoInt) use its embedding. In a batch,
`loc` names the request's index. fastapi and uvicorn (extra `s3rec[serve]`) are imported only when an
app is built, so the rest of s3rec works without them.
"""

# No `from __future__ import annotations`: FastAPI reads the annotations of the request models defined
# inside create_app at run time.

import socket
from itertools import groupby
from pathlib import Path
from typing import Annotated, Callable

from s3rec.errors import S3RecError
from s3rec.recommend import Recommender

MAX_BATCH = 1000  # requests per /recommend/batch call: bounds one call's latency and memory


def create_app(rec: Recommender):
    """A FastAPI app answering from the loaded `rec`."""
    try:
        from fastapi import Body, FastAPI
        from fastapi.exceptions import RequestValidationError
        from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator
    except ImportError:
        raise S3RecError("s3rec serve needs fastapi and uvicorn: pip install 's3rec[serve]'") from None
    import s3rec

    ItemId = StrictStr | StrictInt

    class RecommendRequest(BaseModel):
        """One history of raw item ids, oldest first (e.g. a new user's), or a known user of the run's data."""

        model_config = ConfigDict(extra="forbid")
        history: list[ItemId] | None = Field(None, min_length=1, description="raw item ids, oldest first",
                                             examples=[[str(x) for x in rec.item_ids[1:3]]])
        user: ItemId | None = Field(None, description="a raw user id of the run's data: its whole sequence is the history")
        k: StrictInt = Field(10, ge=1, le=rec.n_items, description=f"number of items, 1..{rec.n_items}")
        exclude_seen: StrictBool = Field(True, description="do not recommend the history's items")

        @model_validator(mode="after")
        def one_input(self):
            if (self.history is None) == (self.user is None):
                raise ValueError("give exactly one of history or user")
            return self

    class RecommendResponse(BaseModel):
        items: list[str] = Field(description="raw item ids, best first")
        scores: list[float] = Field(description="the model's scores of `items`")
        unknown_items: list[ItemId] = Field(description="history items the model does not know (ignored)")
        user: ItemId | None = Field(None, description="the request's user, if it named one")

    class Health(BaseModel):
        status: str
        model: str | None
        dataset: str | None
        n_items: int
        max_len: int

    app = FastAPI(title="s3rec", version=s3rec.__version__,
                  description="Top-k next-item recommendations from a trained s3rec run, in raw item ids.")
    health_info = Health(status="ok", model=rec.config.model if rec.config else None, dataset=rec.dataset,
                         n_items=rec.n_items, max_len=rec.max_len)

    def answer(requests: list[RecommendRequest], where: Callable[[int], tuple]) -> list[dict]:
        queries, errors = [], []
        for i, r in enumerate(requests):
            field = "history" if r.user is None else "user"
            try:
                queries.append(rec.history_query(r.history) if r.user is None else rec.user_query(r.user))
            except S3RecError as e:
                errors.append({"loc": ("body", *where(i), field), "msg": str(e), "type": "value_error",
                               "input": getattr(r, field)})
        if errors:
            raise RequestValidationError(errors)
        out: list[dict | None] = [None] * len(requests)
        # Requests with the same k and exclude_seen are scored together, in batches of rec.batch_size.
        key = (lambda i: (requests[i].k, requests[i].exclude_seen))
        for (k, exclude), group in groupby(sorted(range(len(requests)), key=key), key=key):
            index = list(group)
            for i, result in zip(index, rec.rank([queries[i] for i in index], k, exclude)):
                out[i] = result
        return out

    @app.get("/health", response_model=Health)
    def health() -> Health:
        """Liveness and what is being served."""
        return health_info

    @app.post("/recommend", response_model=RecommendResponse)
    def recommend(request: RecommendRequest) -> dict:
        """Top-k items for one history or known user."""
        return answer([request], lambda i: ())[0]

    @app.post("/recommend/batch", response_model=list[RecommendResponse])
    def recommend_batch(requests: Annotated[list[RecommendRequest], Body(max_length=MAX_BATCH)]) -> list[dict]:
        """Top-k items for each of up to MAX_BATCH requests, in order."""
        return answer(requests, lambda i: (i,))

    return app


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Load the run once and serve it until interrupted."""
    rec = Recommender.load(run_dir)
    app = create_app(rec)
    import uvicorn

    _check_port(host, port)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def _check_port(host: str, port: int) -> None:
    """A one-line error now, instead of uvicorn's log line and exit after start-up."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            s.bind((host, port))
    except (OSError, OverflowError) as e:  # OverflowError: a port outside 0-65535
        raise S3RecError(f"cannot listen on {host}:{port} ({getattr(e, 'strerror', None) or e})") from None
