# SPDX-License-Identifier: Apache-2.0
"""The demo's FastAPI row (bench/demo.sh): GET / answers "Hello, World!" as text/plain, the
body every other row sends. The handler is a coroutine, so uvicorn runs it on its event loop
(uvloop, with the httptools parser, where installed) rather than in a thread pool. Run as
the demo does: python3 -m uvicorn --app-dir bench fastapi_app:app --workers 1 ..."""
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

app = FastAPI()


@app.get("/", response_class=PlainTextResponse)
async def hello() -> str:
    return "Hello, World!"
