"""The posted form as a dependency, so form routes can be plain `def` and run their database work off the event loop.

An `async def` route that touches the database blocks the event loop while SQLite waits for its write lock,
and the request holding that lock then cannot finish: parsing the form here keeps every route synchronous.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.datastructures import FormData


async def posted_form(request: Request) -> FormData:
    """The request's form fields (urlencoded or multipart), parsed once."""
    return await request.form()


FormDep = Annotated[FormData, Depends(posted_form)]
