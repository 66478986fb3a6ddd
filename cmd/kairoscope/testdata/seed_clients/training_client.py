import asyncio
import websockets
import json

async def test_ws():
    uri = "ws://localhost:8000/ws"
    async with websockets.connect(uri) as websocket:
        print("Connected")

        # Receive messages
        async for message in websocket:
            data = json.loads(message)
            print(f"Received {data['type']}: {data}")

asyncio.run(test_ws())
