// The HTTP CONNECT frontend byte for byte (shared/spec/konnectivity.md §1.6): exactly
// "HTTP/1.1 200 Connection Established\r\n\r\n" and nothing before it, even when the destination
// speaks first; 405 for other methods; upstream's status mapping for failed dials; DIAL_CLS to
// the agent when the client gives up; and no socket left open on either side afterwards.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { dialRequest, dialResponse } from "../src/protocol/index.js";
import { httpConnect, openSocket, parseResponse, readToEnd, readUntil, type ConnectTarget } from "./helpers/connect-client.js";
import { attachRawAgent, openRawFrontend, type RawPeer } from "./helpers/raw-peers.js";
import { Cleanup, closedPort, startDestination, startStack, type Destination, type Stack } from "./helpers/stack.js";
import { sleep, waitFor } from "./helpers/wait.js";

const ESTABLISHED = "HTTP/1.1 200 Connection Established\r\n\r\n";
const BANNER = "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n";

describe("HTTP CONNECT through a real agent", () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());
  let stack: Stack;
  let banner: Destination;
  let echo: Destination;
  let targets: Array<[string, () => ConnectTarget]>;

  before(async () => {
    stack = await startStack(cleanup, { connectTls: true });
    await stack.startAgent("node-1", "ipv4=127.0.0.1");
    banner = await startDestination(cleanup, { banner: BANNER, echo: false });
    echo = await startDestination(cleanup);
    targets = [
      ["loopback TCP", () => ({ port: stack.connectPort })],
      ["Unix socket", () => ({ path: stack.connectPath })],
      ["mTLS TCP", () => ({ port: stack.connectTlsPort!, tls: { ca: stack.pki.ca, cert: stack.pki.client.cert, key: stack.pki.client.key, servername: "localhost" } })],
    ];
  });

  it("answers exactly the 200 line before a destination's banner, 200 times without a race", async () => {
    const rounds = 200;
    const concurrency = 8;
    let next = 0;
    const expected = ESTABLISHED + BANNER;
    const worker = async () => {
      while (next < rounds) {
        const i = next++;
        const [, target] = targets[i % targets.length]!;
        const socket = await openSocket(target());
        socket.on("error", () => {});
        socket.write(`CONNECT ${banner.address} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
        const got = await readUntil(socket, Buffer.alloc(0), (b) => b.length >= expected.length);
        assert.equal(got.toString("latin1"), expected, `round ${i}`);
        socket.destroy();
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    assert.equal(banner.accepted, rounds);
    await waitFor(() => banner.open === 0, "every destination socket closed");
    await stack.settled();
  });

  it("relays bytes the client sent right behind the CONNECT (held until the 200)", async () => {
    for (const [name, target] of targets) {
      const socket = await openSocket(target());
      socket.write(`CONNECT ${echo.address} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nearly bytes`);
      const expected = ESTABLISHED + "early bytes";
      const got = await readUntil(socket, Buffer.alloc(0), (b) => b.length >= expected.length);
      assert.equal(got.toString("latin1"), expected, name);
      socket.end();
      await readToEnd(socket);
    }
    await waitFor(() => echo.open === 0, "every destination socket closed");
    await stack.settled();
  });

  it("closes the destination when the client closes, and the client when the destination closes", async () => {
    const { socket } = await httpConnect({ port: stack.connectPort }, echo.address);
    await waitFor(() => echo.open === 1, "the destination socket");
    socket.destroy();
    await waitFor(() => echo.open === 0, "the destination socket to close after the client left");
    await stack.settled();

    const second = await httpConnect({ port: stack.connectPort }, echo.address);
    await waitFor(() => echo.open === 1, "the destination socket");
    echo.sockets.at(-1)!.end("bye");
    assert.equal(await readToEnd(second.socket, second.rest), "bye", "data before the close arrives, then EOF");
    await stack.settled();
  });

  it("answers 405 to any other method, on every frontend", async () => {
    for (const [name, target] of targets) {
      const socket = await openSocket(target());
      socket.write("GET /containerLogs/default/web-1/app HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
      const { head, body } = parseResponse(await readToEnd(socket));
      assert.match(head, /^HTTP\/1\.1 405 Method Not Allowed\r\n/, name);
      assert.match(head, /\r\nContent-Type: text\/plain; charset=utf-8\r\n/, name);
      assert.equal(body, "this proxy only supports CONNECT passthrough\n", name);
    }
  });

  it("maps the agent's refused dial to 502 with Go's text as the body", async () => {
    const port = await closedPort();
    const { head, socket, rest } = await httpConnect({ path: stack.connectPath }, `127.0.0.1:${port}`);
    const body = await readToEnd(socket, rest);
    assert.equal(head, `HTTP/1.1 502 Bad Gateway\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n`);
    assert.match(body, new RegExp(`^dial tcp 127\\.0\\.0\\.1:${port}: connect: connection refused — [^\r\n]*[^\r\n]$`));
    await stack.settled();
  });

  it("answers 400 to a CONNECT target that is not host:port, without dialing", async () => {
    const { head, socket, rest } = await httpConnect({ port: stack.connectPort }, "127.0.0.1:1:2");
    await readToEnd(socket, rest);
    assert.match(head, /^HTTP\/1\.1 400 Bad Request\r\n/);
    await stack.settled();
  });

  it("answers a request head it cannot parse with Go's bytes, and closes", async () => {
    for (const [name, target] of targets) {
      const socket = await openSocket(target());
      socket.write("CONNECT 10.0.0.1:10250 HTTP/1.1\r\nBad Header Line\r\n\r\n");
      assert.equal(
        (await readToEnd(socket)).toString(),
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request",
        name,
      );
    }
    await stack.settled();
  });
});

describe("HTTP CONNECT failure mapping with a raw-packet agent", () => {
  const cleanup = new Cleanup();
  after(() => cleanup.run());
  let stack: Stack;
  let agent: RawPeer;

  before(async () => {
    stack = await startStack(cleanup, { proxyStrategies: ["destHost"], dialTimeoutMs: 400 });
    agent = await attachRawAgent(stack.agentPort, stack.pki, "node-5", "ipv4=127.0.0.5");
    cleanup.after(() => agent.destroy());
  });

  async function failWith(agentError: string): Promise<{ head: string; body: string }> {
    const pending = httpConnect({ path: stack.connectPath }, "127.0.0.5:10250");
    const req = await agent.packets.expect("DIAL_REQ");
    agent.send(dialResponse(req.random, 0n, agentError));
    const { head, socket, rest } = await pending;
    return { head, body: await readToEnd(socket, rest) };
  }

  for (const [status, error] of [
    ["502 Bad Gateway", "dial tcp 127.0.0.5:10250: connect: no route to host"],
    ["502 Bad Gateway", "dial tcp 127.0.0.5:10250: connect: connection reset by peer"],
    ["503 Service Unavailable", "dial tcp 127.0.0.5:10250: socket: too many open files"],
    ["504 Gateway Timeout", "dial tcp 127.0.0.5:10250: i/o timeout"],
    ["504 Gateway Timeout", "dial tcp 127.0.0.5:10250: connect: context deadline exceeded"],
    ["504 Gateway Timeout", "dial tcp 127.0.0.5:10250: connect: connection timed out"],
  ] as const) {
    it(`maps "${error.replace(/^dial tcp [^ ]+: /, "")}" to ${status}, framed as Go's http.Response.Write`, async () => {
      const { head, body } = await failWith(error);
      assert.equal(head, `HTTP/1.1 ${status}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n`);
      assert.ok(body.startsWith(`${error} — `), body);
      assert.ok(!body.endsWith("\n"), "no line end after the body");
      await stack.settled();
    });
  }

  it("answers 500 with upstream's body when no agent serves the node, without asking any agent", async () => {
    const started = performance.now();
    const { head, socket, rest } = await httpConnect({ port: stack.connectPort }, "127.0.0.9:10250");
    const body = await readToEnd(socket, rest);
    assert.ok(performance.now() - started < 1000);
    assert.equal(head, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n\r\n");
    assert.match(body, /^currently no tunnels available: No agent available — /);
    await agent.packets.expectNothing(50);
  });

  it("answers 504 Backend dial timeout when the agent does not answer in time, and sends DIAL_CLS", async () => {
    const pending = httpConnect({ port: stack.connectPort }, "127.0.0.5:10250");
    const req = await agent.packets.expect("DIAL_REQ");
    const { head, socket, rest } = await pending;
    const body = await readToEnd(socket, rest);
    assert.equal(head, "HTTP/1.1 504 Gateway Timeout\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
    assert.match(body, /^Backend dial timeout: timed out waiting for backend dial/);
    const cls = await agent.packets.expect("DIAL_CLS");
    assert.equal(cls.random, req.random);
    // A late DIAL_RSP for the expired dial is refused with CLOSE_REQ (#404 would leak it).
    agent.send(dialResponse(req.random, 17n));
    const close = await agent.packets.expect("CLOSE_REQ");
    assert.equal(close.connectID, 17n);
    await stack.settled();
  });

  it("sends DIAL_CLS to the agent when the client closes while the dial is pending", async () => {
    for (const target of [{ port: stack.connectPort }, { path: stack.connectPath }] as ConnectTarget[]) {
      const socket = await openSocket(target);
      socket.write("CONNECT 127.0.0.5:10250 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      const req = await agent.packets.expect("DIAL_REQ");
      assert.equal(stack.server.proxy.pendingDialCount, 1);
      socket.destroy();
      const cls = await agent.packets.expect("DIAL_CLS", 1000);
      assert.equal(cls.random, req.random);
      assert.equal(stack.server.proxy.pendingDialCount, 0);
      // The agent may have connected meanwhile: its DIAL_RSP is refused with CLOSE_REQ.
      agent.send(dialResponse(req.random, 23n));
      assert.equal((await agent.packets.expect("CLOSE_REQ")).connectID, 23n);
    }
    await sleep(20);
    await stack.settled();
  });
});

describe("--explain-dial-errors=false: the frontends get upstream's texts alone", () => {
  it("HTTP CONNECT and gRPC: the agent's error and No agent available, byte for byte; the log keeps the explanation", async (t) => {
    const stack = await startStack(t, { proxyStrategies: ["destHost"], explainDialErrors: false });
    const agent = await attachRawAgent(stack.agentPort, stack.pki, "node-5", "ipv4=127.0.0.5");
    t.after(() => agent.destroy());
    const error = "dial tcp 127.0.0.5:10250: connect: connection refused";

    const pending = httpConnect({ path: stack.connectPath }, "127.0.0.5:10250");
    const req = await agent.packets.expect("DIAL_REQ");
    agent.send(dialResponse(req.random, 0n, error));
    const { head, socket, rest } = await pending;
    assert.equal(head, `HTTP/1.1 502 Bad Gateway\r\nContent-Length: ${error.length}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n`);
    assert.equal(await readToEnd(socket, rest), error);

    const none = await httpConnect({ path: stack.connectPath }, "127.0.0.9:10250");
    assert.equal(await readToEnd(none.socket, none.rest), "currently no tunnels available: No agent available");

    const frontend = await openRawFrontend(stack.grpcPath);
    t.after(() => frontend.destroy());
    frontend.send(dialRequest("127.0.0.5:10250", 77n));
    const forwarded = await agent.packets.expect("DIAL_REQ");
    agent.send(dialResponse(forwarded.random, 0n, error));
    assert.equal((await frontend.packets.expect("DIAL_RSP")).error, error);
    // The dashboard's recent failures still say what it means.
    assert.match(stack.server.proxy.recentFailures().at(-1)?.explanation ?? "", /refused the connection/);
  });
});
