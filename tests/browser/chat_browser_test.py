# A real browser against the chat twin (examples/40_chat_server_flask.cpp in
# --serve mode): two headless Chromium processes (two sessions, separate
# profiles) open the topic1 room as bob and as alice, alice sends a message
# through the page's form code, and it must appear in bob's page (delivered
# by the page's long poll) and in alice's. Driven over the DevTools protocol
# with websocket-client. Loopback only; every wait is bounded. Exits 77 (a
# skip) when chromium or the websocket module is missing.
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

try:
    import websocket
except ImportError:
    print("skip: python3 module websocket (Debian python3-websocket) missing")
    sys.exit(77)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
if not CHROMIUM:
    print("skip: chromium not installed")
    sys.exit(77)

server_bin = sys.argv[1]
procs = []
tmpdirs = []


def until(what, check, limit=20.0):
    end = time.time() + limit
    while time.time() < end:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


class Browser:
    """One headless Chromium with its own profile, driven over DevTools."""

    def __init__(self, name):
        profile = tempfile.mkdtemp(prefix="fern-chat-" + name + "-")
        tmpdirs.append(profile)
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--disable-background-networking", "--remote-allow-origins=*",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             "--user-data-dir=" + profile, "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(self.proc)
        port_file = os.path.join(profile, "DevToolsActivePort")
        port = until("DevTools port of " + name,
                     lambda: os.path.exists(port_file) and open(port_file).readline().strip())
        pages = until("a page target", lambda: [t for t in json.load(
            urllib.request.urlopen("http://127.0.0.1:%s/json/list" % port, timeout=5)) if t["type"] == "page"])
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=20, suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise AssertionError("%s: %s" % (method, reply["error"]))
                return reply["result"]

    def eval(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in r:
            raise AssertionError("%s: %s" % (expression, r["exceptionDetails"]))
        return r["result"].get("value")

    def open(self, url):
        self.call("Page.navigate", url=url)
        until("the page at " + url, lambda: self.eval("location.href") == url and
              self.eval("document.readyState") == "complete")

    def messages(self):
        return self.eval("Array.from(document.querySelectorAll('#messages li')).map(li => li.textContent)")


try:
    server = subprocess.Popen([server_bin, "--serve", "0"], stdout=subprocess.PIPE, text=True)
    procs.append(server)
    port = int(server.stdout.readline().split()[-1])
    base = "http://127.0.0.1:%d" % port
    bob, alice = Browser("bob"), Browser("alice")
    bob.open(base + "/topic1/bob")
    alice.open(base + "/topic1/alice")
    assert bob.eval("document.querySelector('h1').textContent") == "topic1"
    # alice types into the form and submits it, as a user would
    alice.eval("document.getElementById('message').value = 'hello from alice';"
               "document.querySelector('#say button').click(); true")
    got = until("the message in bob's page", lambda: "alice:hello from alice" in bob.messages() and bob.messages())
    until("the message in alice's page", lambda: "alice:hello from alice" in alice.messages())
    print("bob's page shows", got)
    # the backlog: a third session that joins later sees the message in the page itself
    carol = Browser("carol")
    carol.open(base + "/topic1/carol")
    assert "alice:hello from alice" in carol.messages(), carol.messages()
    print("ok")
finally:
    for p in procs:
        p.kill()
        p.wait()
    for d in tmpdirs:
        shutil.rmtree(d, ignore_errors=True)
