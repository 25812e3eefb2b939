# A real WebSocket client (websocket-client, Debian python3-websocket)
# against fern's echo server: text, binary, a 70,000-byte message (64-bit
# length), a fragmented message, a ping, and the close handshake. Prints
# one line per step; exits 77 when the module is missing (a skip).
import sys

try:
    import websocket
except ImportError:
    sys.exit(77)

port = int(sys.argv[1])
ws = websocket.create_connection("ws://127.0.0.1:%d/echo" % port, timeout=10)
ws.send("h\u00e9llo")
print("text", ws.recv())
ws.send_binary(b"\x00\x01\xff")
opcode, data = ws.recv_data()
print("binary", opcode, data.hex())
ws.send("x" * 70000)
print("big", len(ws.recv()))
ws.send_frame(websocket.ABNF.create_frame("Hel", websocket.ABNF.OPCODE_TEXT, fin=0))
ws.ping("are you there")
ws.send_frame(websocket.ABNF.create_frame("lo", websocket.ABNF.OPCODE_CONT, fin=1))
opcode, data = ws.recv_data(control_frame=True)
print("pong", opcode, data.decode())
print("fragmented", ws.recv())
ws.close(status=websocket.STATUS_GOING_AWAY)
print("closed", ws.connected)
