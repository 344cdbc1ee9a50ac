"""Writing to a store as the batcher does, for tests that check what a store keeps."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from webhookfast._core import Batch
from webhookfast.storage import open_store


def write_flushes(url: str, *flushes: Sequence[Batch]) -> None:
    """Open the store at ``url``, write each flush in turn, close it."""

    async def main() -> None:
        store = open_store(url)
        await store.open()
        try:
            for batches in flushes:
                await store.write(batches)
        finally:
            await store.close()

    asyncio.run(main())
