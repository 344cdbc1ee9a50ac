"""The reference for every load figure: a bare Granian RSGI app that reads the body and answers 200.

Run with: granian --interface rsgi --host 127.0.0.1 --port 8081 scripts.load.bare_app:app
(or by path: granian --interface rsgi --working-dir scripts/load bare_app:app)
"""

BODY = b'{"status":"ok"}'
HEADERS = [("content-type", "application/json")]


async def app(scope, proto):
    await proto()
    proto.response_bytes(200, HEADERS, BODY)
