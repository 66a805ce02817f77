"""The OpenAI API's shapes the server speaks: request bodies (validated, bounded), responses, and errors.

Fields OpenAI clients send that change nothing here (`user`, `logprobs: null`, ...) are ignored; options the
server cannot honour (`stream`, `n` > 1, `top_p` < 1) are refused with a 400 naming the field, never silently
dropped. One difference on purpose: `temperature` defaults to 0 (greedy, what the benchmark measured and what
the cache can answer), where OpenAI's default is 1.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Literal

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ApiError(Exception):
    """An error answered as `{"error": {message, type, param, code}}` with `status`."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        if self.status == 503:  # the queue is full (serve.max_queue): tell well-behaved clients when to come back
            headers = {"Retry-After": "1"}
        return JSONResponse(body, status_code=self.status, headers=headers)


class _Generation(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1)
    stream: bool = False
    seed: int = Field(0, ge=0, lt=2**32)
    stop: str | list[str] | None = Field(None, validate_default=True)  # normalized to a list

    @field_validator("top_p")
    @classmethod
    def _top_p(cls, value: float) -> float:
        if value != 1.0:
            raise ValueError("top_p other than 1 is not supported (plain temperature sampling over the whole "
                             "vocabulary)")
        return value

    @field_validator("n")
    @classmethod
    def _n(cls, value: int) -> int:
        if value != 1:
            raise ValueError("n other than 1 is not supported; send one request per completion")
        return value

    @field_validator("stream")
    @classmethod
    def _stream(cls, value: bool) -> bool:
        if value:
            raise ValueError("stream is not supported; the whole completion is returned at once")
        return value

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> list[str]:
        stops = [value] if isinstance(value, str) else list(value or [])
        if len(stops) > 4 or any(not s for s in stops):
            raise ValueError("stop takes at most 4 non-empty strings")
        return stops


class CompletionRequest(_Generation):
    prompt: str | list[str] = Field(min_length=1)

    @property
    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(_Generation):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    """The newer name of max_tokens in the chat API; either may be sent."""


async def read_request(request: Request, model: type[BaseModel], limit_bytes: int):
    """The body parsed and validated as `model`, read no further than `limit_bytes`."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit_bytes:
        raise ApiError(413, f"request body of {length} bytes exceeds the limit of {limit_bytes} "
                            "(serve.max_prompt_chars)", code="request_too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit_bytes:
            raise ApiError(413, f"request body exceeds the limit of {limit_bytes} bytes (serve.max_prompt_chars)",
                           code="request_too_large")
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "request body is not valid JSON") from None
    if not isinstance(raw, dict):
        raise ApiError(400, f"request body must be a JSON object, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        msg = first["msg"].removeprefix("Value error, ")
        raise ApiError(400, f"{param}: {msg}" if param else msg, param=param) from None


def apply_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """`text` cut before the first stop string, and whether one was found."""
    cuts = [i for i in (text.find(s) for s in stops) if i >= 0]
    return (text[:min(cuts)], True) if cuts else (text, False)


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def completion_response(model_id: str, choices: list[dict], prompt_tokens: int, completion_tokens: int) -> dict:
    return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()),
            "model": model_id, "choices": [
                {"index": i, "text": c["text"], "logprobs": None, "finish_reason": c["finish_reason"]}
                for i, c in enumerate(choices)],
            "usage": usage(prompt_tokens, completion_tokens)}


def chat_response(model_id: str, choice: dict, prompt_tokens: int, completion_tokens: int) -> dict:
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model_id, "choices": [
                {"index": 0, "message": {"role": "assistant", "content": choice["text"]},
                 "finish_reason": choice["finish_reason"]}],
            "usage": usage(prompt_tokens, completion_tokens)}
