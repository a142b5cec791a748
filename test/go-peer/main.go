// A grpc-go peer for test/interop-grpc-go.test.ts: the gRPC implementation upstream Konnectivity
// and kube-apiserver are built on, in the roles they play against nodetunnel. Packets are
// encoded by hand with protowire (konnectivity.md §1.2), so neither nodetunnel's codec nor
// protobufjs is involved on this side. It prints what it saw as JSON lines on stdout.
//
//	go-peer frontend UDS ADDRESS TUNNELS BYTES       kube-apiserver: one ClientConn and Proxy stream per tunnel
//	go-peer agent CA CERT KEY HOST:PORT ID IDENTS     an agent: Connect over mTLS, dials for real, pumps both ways
//	                                                  (GO_PEER_DIAL_DELAY_MS: wait that long before each dial)
//	go-peer server CA CERT KEY ADDRESS BYTES          the server's agent port: DIAL_REQ, DATA both ways, CLOSE_REQ
//	go-peer restart CA CERT KEY ADDRESS BYTES         the same after a first server on that port shut down
//	go-peer connect PROXY ADDRESS BYTES [CA CERT KEY] kube-apiserver's HTTP CONNECT egress: PROXY is a Unix
//	                                                  socket path, or host:port with mTLS; Go's http.ReadResponse
//	go-peer load ROW WAY PROXY ADDRESS SECONDS [N]    the benchmark's rows with a Go client (load.go; ROW up1, down1, echo, http or slow)
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/ioutil"
	"math/rand"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// ---- the wire format, by hand ----

const (
	dialReq  = 0
	dialRsp  = 1
	closeReq = 2
	closeRsp = 3
	data     = 4
	dialCls  = 5
)

// payloadField is the oneof member each packet type carries.
var payloadField = map[int]protowire.Number{dialReq: 2, dialRsp: 3, data: 4, closeReq: 5, closeRsp: 6, dialCls: 7}

type field struct {
	num protowire.Number
	u   uint64 // varint fields
	b   []byte // length-delimited fields
	isB bool
}

func vf(num protowire.Number, v uint64) field { return field{num: num, u: v} }
func bf(num protowire.Number, b []byte) field { return field{num: num, b: b, isB: true} }

// message encodes fields as proto3 does: zero varints and empty strings are left out.
func message(fields ...field) []byte {
	var out []byte
	for _, f := range fields {
		if f.isB {
			if len(f.b) == 0 {
				continue
			}
			out = protowire.AppendTag(out, f.num, protowire.BytesType)
			out = protowire.AppendBytes(out, f.b)
		} else if f.u != 0 {
			out = protowire.AppendTag(out, f.num, protowire.VarintType)
			out = protowire.AppendVarint(out, f.u)
		}
	}
	return out
}

// packet wraps a sub-message: type (absent for DIAL_REQ), then the oneof member, present even when empty.
func packet(ptype int, sub []byte) []byte {
	out := message(vf(1, uint64(ptype)))
	out = protowire.AppendTag(out, payloadField[ptype], protowire.BytesType)
	return protowire.AppendBytes(out, sub)
}

// parsed is a decoded message: varints and length-delimited fields by number.
type parsed struct {
	u map[protowire.Number]uint64
	b map[protowire.Number][]byte
}

func parse(buf []byte) (parsed, error) {
	p := parsed{u: map[protowire.Number]uint64{}, b: map[protowire.Number][]byte{}}
	for len(buf) > 0 {
		num, typ, n := protowire.ConsumeTag(buf)
		if n < 0 {
			return p, protowire.ParseError(n)
		}
		buf = buf[n:]
		switch typ {
		case protowire.VarintType:
			v, m := protowire.ConsumeVarint(buf)
			if m < 0 {
				return p, protowire.ParseError(m)
			}
			p.u[num] = v
			buf = buf[m:]
		case protowire.BytesType:
			v, m := protowire.ConsumeBytes(buf)
			if m < 0 {
				return p, protowire.ParseError(m)
			}
			p.b[num] = v
			buf = buf[m:]
		default:
			m := protowire.ConsumeFieldValue(num, typ, buf)
			if m < 0 {
				return p, protowire.ParseError(m)
			}
			buf = buf[m:]
		}
	}
	return p, nil
}

// decoded is one packet: its type and its sub-message.
type decoded struct {
	ptype int
	sub   parsed
}

func decode(raw []byte) (decoded, error) {
	top, err := parse(raw)
	if err != nil {
		return decoded{}, err
	}
	ptype := int(top.u[1])
	f, ok := payloadField[ptype]
	if !ok {
		return decoded{ptype: ptype}, nil
	}
	sub, err := parse(top.b[f])
	return decoded{ptype: ptype, sub: sub}, err
}

// rawCodec replaces grpc-go's "proto" codec: messages are the encoded bytes themselves.
type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(b []byte, v interface{}) error {
	*(v.(*[]byte)) = append([]byte(nil), b...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

// ---- helpers ----

func emit(v interface{}) {
	line, _ := json.Marshal(v)
	fmt.Println(string(line))
}

func fail(format string, args ...interface{}) {
	emit(map[string]string{"error": fmt.Sprintf(format, args...)})
	os.Exit(1)
}

func tlsConfig(caFile, certFile, keyFile string, isServer bool) *tls.Config {
	caPEM, err := ioutil.ReadFile(caFile)
	if err != nil {
		fail("read CA: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		fail("no certificate in %s", caFile)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		fail("load key pair: %v", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if isServer {
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	} else {
		c.RootCAs = pool
		c.ServerName = "localhost"
	}
	return c
}

var proxyDesc = &grpc.StreamDesc{StreamName: "Proxy", ServerStreams: true, ClientStreams: true}
var connectDesc = &grpc.StreamDesc{StreamName: "Connect", ServerStreams: true, ClientStreams: true}

// pattern is a deterministic payload of n bytes (seeded), so both ends can hash it.
func pattern(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// msgStream is what a client and a server stream share.
type msgStream interface {
	SendMsg(m interface{}) error
	RecvMsg(m interface{}) error
}

// sendData sends b as DATA packets for connectID of at most max bytes each; it returns how many
// bytes went out.
func sendData(stream msgStream, connectID uint64, b []byte, max int) (int, error) {
	for off := 0; off < len(b); off += max {
		end := off + max
		if end > len(b) {
			end = len(b)
		}
		p := packet(data, message(vf(1, connectID), bf(3, b[off:end])))
		if err := stream.SendMsg(&p); err != nil {
			return off, err
		}
	}
	return len(b), nil
}

// echoThrough sends payload as DATA for connectID in 32 KiB packets (upstream's server reads its
// frontend in 32 KiB chunks) while it reads the DATA that comes back, until as many bytes came.
func echoThrough(stream msgStream, connectID uint64, payload []byte) ([]byte, error) {
	sendErr := make(chan error, 1)
	go func() {
		if _, err := sendData(stream, connectID, payload, 32*1024); err != nil {
			sendErr <- fmt.Errorf("send DATA: %w", err)
			return
		}
		sendErr <- nil
	}()
	var back bytes.Buffer
	var raw []byte
	for back.Len() < len(payload) {
		if err := stream.RecvMsg(&raw); err != nil {
			return nil, fmt.Errorf("receive DATA after %d of %d bytes: %w", back.Len(), len(payload), err)
		}
		p, err := decode(raw)
		if err != nil || p.ptype != data || p.sub.u[1] != connectID {
			return nil, fmt.Errorf("expected DATA for %d, got type %d (%v)", connectID, p.ptype, err)
		}
		back.Write(p.sub.b[3])
	}
	return back.Bytes(), <-sendErr
}

// ---- kube-apiserver: the HTTP CONNECT frontend ----

// connect does what kube-apiserver's egress dialer does in http-connect mode: CONNECT, the
// answer read with Go's http.ReadResponse through a bufio.Reader, no byte of the tunnel allowed
// in that reader's buffer, then the connection used raw. It echoes size bytes through it.
func connect(proxy, address string, size int, tlsFiles []string) {
	var conn net.Conn
	var err error
	if len(tlsFiles) == 3 {
		conn, err = tls.Dial("tcp", proxy, tlsConfig(tlsFiles[0], tlsFiles[1], tlsFiles[2], false))
	} else {
		conn, err = net.Dial("unix", proxy)
	}
	if err != nil {
		fail("dial the proxy %s: %v", proxy, err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", address, "127.0.0.1")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		fail("read the CONNECT response: %v", err)
	}
	out := map[string]interface{}{"status": res.Status, "proto": res.Proto, "buffered": br.Buffered()}
	if res.StatusCode != http.StatusOK {
		body, _ := ioutil.ReadAll(res.Body)
		out["body"] = string(body)
		out["contentType"] = res.Header.Get("Content-Type")
		emit(out)
		return
	}
	payload := pattern(7, size)
	sendErr := make(chan error, 1)
	go func() {
		_, err := conn.Write(payload)
		sendErr <- err
	}()
	back := make([]byte, size)
	if _, err := io.ReadFull(conn, back); err != nil {
		out["error"] = "read the echo: " + err.Error()
	} else if err := <-sendErr; err != nil {
		out["error"] = "write: " + err.Error()
	}
	out["echoed"] = size
	out["same"] = sum(back) == sum(payload)
	emit(out)
}

// ---- kube-apiserver: the gRPC frontend ----

// tunnel dials address through one Proxy stream, sends size bytes in 32 KiB DATA packets while
// it reads the echo back, then CLOSE_REQ, and expects CLOSE_RSP. Then, with closeConn, it closes
// the ClientConn at once, as konnectivity-client does on CLOSE_RSP (no CloseSend, no status
// read); without, it half-closes and expects the stream to end with status OK.
func tunnel(stream grpc.ClientStream, address string, seed int64, size int, closeConn func() error) (map[string]interface{}, error) {
	random := uint64(seed*7919 + 1)
	req := packet(dialReq, message(bf(1, []byte("tcp")), bf(2, []byte(address)), vf(3, random)))
	if err := stream.SendMsg(&req); err != nil {
		return nil, fmt.Errorf("send DIAL_REQ: %w", err)
	}
	var raw []byte
	if err := stream.RecvMsg(&raw); err != nil {
		return nil, fmt.Errorf("receive DIAL_RSP: %w", err)
	}
	rsp, err := decode(raw)
	if err != nil || rsp.ptype != dialRsp {
		return nil, fmt.Errorf("expected DIAL_RSP, got type %d (%v)", rsp.ptype, err)
	}
	if e := string(rsp.sub.b[1]); e != "" {
		return nil, fmt.Errorf("dial failed: %s", e)
	}
	if rsp.sub.u[3] != random {
		return nil, fmt.Errorf("DIAL_RSP random %d, sent %d", rsp.sub.u[3], random)
	}
	connectID := rsp.sub.u[2]
	payload := pattern(seed, size)
	back, err := echoThrough(stream, connectID, payload)
	if err != nil {
		return nil, err
	}
	cr := packet(closeReq, message(vf(1, connectID)))
	if err := stream.SendMsg(&cr); err != nil {
		return nil, fmt.Errorf("send CLOSE_REQ: %w", err)
	}
	if err := stream.RecvMsg(&raw); err != nil {
		return nil, fmt.Errorf("receive CLOSE_RSP: %w", err)
	}
	if p, _ := decode(raw); p.ptype != closeRsp || p.sub.u[2] != connectID {
		return nil, fmt.Errorf("expected CLOSE_RSP for %d, got type %d", connectID, p.ptype)
	}
	result := map[string]interface{}{
		"connectID": connectID, "sent": size, "echoed": len(back), "same": sum(back) == sum(payload),
	}
	if closeConn != nil {
		return result, closeConn()
	}
	if err := stream.CloseSend(); err != nil {
		return nil, fmt.Errorf("CloseSend: %w", err)
	}
	endErr := stream.RecvMsg(&raw)
	if endErr != io.EOF {
		return nil, fmt.Errorf("the stream ended with %v, not OK", endErr)
	}
	return result, nil
}

func frontend(path, address string, tunnels, size int) {
	var wg sync.WaitGroup
	results := make([]map[string]interface{}, tunnels+1)
	run := func(i int, conn *grpc.ClientConn, closeConn func() error) {
		defer wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		stream, err := conn.NewStream(ctx, proxyDesc, "/ProxyService/Proxy")
		if err != nil {
			results[i] = map[string]interface{}{"error": "NewStream: " + err.Error()}
			return
		}
		r, err := tunnel(stream, address, int64(i+1), size, closeConn)
		if err != nil {
			results[i] = map[string]interface{}{"error": err.Error()}
			return
		}
		results[i] = r
	}
	dial := func() *grpc.ClientConn {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := grpc.DialContext(ctx, "unix://"+path, grpc.WithInsecure(), grpc.WithBlock())
		if err != nil {
			fail("dial %s: %v", path, err)
		}
		return conn
	}
	// As kube-apiserver: one ClientConn per tunnel, closed on CLOSE_RSP...
	for i := 0; i < tunnels-1; i++ {
		conn := dial()
		wg.Add(1)
		go run(i, conn, conn.Close)
	}
	// ...and, beyond it, two streams at once on one ClientConn, each ending with status OK.
	shared := dial()
	defer shared.Close()
	wg.Add(2)
	go run(tunnels-1, shared, nil)
	go run(tunnels, shared, nil)
	wg.Wait()
	emit(map[string]interface{}{"tunnels": results})
}

// ---- an agent ----

type agentConn struct {
	sock net.Conn
	once sync.Once
}

func agent(caFile, certFile, keyFile, server, id, identifiers string) {
	creds := credentials.NewTLS(tlsConfig(caFile, certFile, keyFile, false))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	conn, err := grpc.DialContext(ctx, server, grpc.WithTransportCredentials(creds), grpc.WithBlock())
	cancel()
	if err != nil {
		fail("dial %s: %v", server, err)
	}
	defer conn.Close()
	md := metadata.Pairs("agentID", id, "agentIdentifiers", identifiers)
	stream, err := conn.NewStream(metadata.NewOutgoingContext(context.Background(), md), connectDesc, "/AgentService/Connect")
	if err != nil {
		fail("Connect: %v", err)
	}
	header, err := stream.Header()
	if err != nil {
		fail("Connect header: %v", err)
	}
	emit(map[string]interface{}{"event": "connected", "serverid": header.Get("serverid"), "servercount": header.Get("servercount")})

	var sendMu sync.Mutex
	send := func(p []byte) {
		sendMu.Lock()
		defer sendMu.Unlock()
		if err := stream.SendMsg(&p); err != nil {
			emit(map[string]string{"event": "send failed", "error": err.Error()})
		}
	}
	var mu sync.Mutex
	conns := map[uint64]*agentConn{}
	var nextID uint64
	dialDelay, _ := strconv.Atoi(os.Getenv("GO_PEER_DIAL_DELAY_MS"))
	// closeConn answers CLOSE_RSP once per connection, whichever side ended it first.
	closeConn := func(id uint64, c *agentConn) {
		c.once.Do(func() {
			c.sock.Close()
			mu.Lock()
			delete(conns, id)
			mu.Unlock()
			send(packet(closeRsp, message(vf(2, id))))
			emit(map[string]interface{}{"event": "closed", "connectID": id})
		})
	}
	// pump carries the destination's bytes back, read in 4 KiB chunks as upstream's agent reads them.
	pump := func(id uint64, c *agentConn) {
		buf := make([]byte, 4096)
		for {
			n, err := c.sock.Read(buf)
			if n > 0 {
				send(packet(data, message(vf(1, id), bf(3, buf[:n]))))
			}
			if err != nil {
				closeConn(id, c)
				return
			}
		}
	}
	for {
		var raw []byte
		if err := stream.RecvMsg(&raw); err != nil {
			emit(map[string]string{"event": "stream ended", "error": fmt.Sprint(err), "status": status.Code(err).String()})
			return
		}
		p, err := decode(raw)
		if err != nil {
			fail("decode: %v", err)
		}
		switch p.ptype {
		case dialReq:
			// Each dial on its own goroutine, as upstream's agent does.
			random := p.sub.u[3]
			address := string(p.sub.b[2])
			go func() {
				time.Sleep(time.Duration(dialDelay) * time.Millisecond)
				sock, err := net.DialTimeout("tcp", address, 5*time.Second)
				if err != nil {
					send(packet(dialRsp, message(bf(1, []byte(err.Error())), vf(3, random))))
					return
				}
				mu.Lock()
				nextID++
				id := nextID
				c := &agentConn{sock: sock}
				conns[id] = c
				mu.Unlock()
				emit(map[string]interface{}{"event": "dialed", "connectID": id})
				send(packet(dialRsp, message(vf(2, id), vf(3, random))))
				pump(id, c)
			}()
		case data:
			mu.Lock()
			c := conns[p.sub.u[1]]
			mu.Unlock()
			if c != nil {
				if _, err := c.sock.Write(p.sub.b[3]); err != nil {
					closeConn(p.sub.u[1], c)
				}
			}
		case closeReq:
			mu.Lock()
			c := conns[p.sub.u[1]]
			mu.Unlock()
			if c != nil {
				closeConn(p.sub.u[1], c)
			} else {
				send(packet(closeRsp, message(bf(1, []byte("unknown connectID")), vf(2, p.sub.u[1]))))
			}
		default:
			emit(map[string]interface{}{"event": "ignored", "type": p.ptype})
		}
	}
}

// ---- a server's agent port ----

func server(caFile, certFile, keyFile, address string, size int, restart bool) {
	result := map[string]interface{}{}
	done := make(chan struct{})
	var handler grpc.StreamHandler = func(_ interface{}, stream grpc.ServerStream) error {
		defer close(done)
		md, _ := metadata.FromIncomingContext(stream.Context())
		result["agentid"] = md.Get("agentid")
		result["agentidentifiers"] = md.Get("agentidentifiers")
		if err := stream.SendHeader(metadata.Pairs("serverID", "go-server", "serverCount", "1")); err != nil {
			return err
		}
		err := func() error {
			req := packet(dialReq, message(bf(1, []byte("tcp")), bf(2, []byte(address)), vf(3, 777)))
			if err := stream.SendMsg(&req); err != nil {
				return fmt.Errorf("send DIAL_REQ: %w", err)
			}
			var raw []byte
			if err := stream.RecvMsg(&raw); err != nil {
				return fmt.Errorf("receive DIAL_RSP: %w", err)
			}
			rsp, err := decode(raw)
			if err != nil || rsp.ptype != dialRsp {
				return fmt.Errorf("expected DIAL_RSP, got type %d (%v)", rsp.ptype, err)
			}
			connectID := rsp.sub.u[2]
			result["dial"] = map[string]interface{}{"connectID": connectID, "random": rsp.sub.u[3], "error": string(rsp.sub.b[1])}
			payload := pattern(42, size)
			back, err := echoThrough(stream, connectID, payload)
			if err != nil {
				return err
			}
			result["echo"] = map[string]interface{}{"sent": size, "echoed": len(back), "same": sum(back) == sum(payload)}
			cr := packet(closeReq, message(vf(1, connectID)))
			if err := stream.SendMsg(&cr); err != nil {
				return fmt.Errorf("send CLOSE_REQ: %w", err)
			}
			if err := stream.RecvMsg(&raw); err != nil {
				return fmt.Errorf("receive CLOSE_RSP: %w", err)
			}
			p, _ := decode(raw)
			result["close"] = map[string]interface{}{"type": p.ptype, "connectID": p.sub.u[2], "error": string(p.sub.b[1])}
			return nil
		}()
		if err != nil {
			result["error"] = err.Error()
		}
		return nil
	}
	creds := credentials.NewTLS(tlsConfig(caFile, certFile, keyFile, true))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("listen: %v", err)
	}
	port := lis.Addr().(*net.TCPAddr).Port
	emit(map[string]interface{}{"port": port})
	waitFirst := func() {}
	if restart {
		// A first server takes the agent's Connect, opens a tunnel through it, and goes as
		// upstream's does on SIGTERM with a --graceful-shutdown-timeout: GracefulStop (GOAWAY, no
		// new streams, open ones run on), then Stop 10 s later. Its tunnel must keep working
		// after the GOAWAY; the exchange then runs on a second server on the same port, which
		// the agent should reach before the first one's Stop.
		connected := make(chan struct{}, 1)
		goingAway := make(chan struct{})
		firstDone := make(chan struct{})
		first := agentServer(creds, func(_ interface{}, stream grpc.ServerStream) error {
			defer close(firstDone)
			if err := stream.SendHeader(metadata.Pairs("serverID", "go-server-1", "serverCount", "1")); err != nil {
				return err
			}
			err := func() error {
				req := packet(dialReq, message(bf(1, []byte("tcp")), bf(2, []byte(address)), vf(3, 555)))
				if err := stream.SendMsg(&req); err != nil {
					return err
				}
				var raw []byte
				if err := stream.RecvMsg(&raw); err != nil {
					return err
				}
				rsp, err := decode(raw)
				if err != nil || rsp.ptype != dialRsp || len(rsp.sub.b[1]) > 0 {
					return fmt.Errorf("first server's dial: type %d, error %q", rsp.ptype, rsp.sub.b[1])
				}
				connectID := rsp.sub.u[2]
				connected <- struct{}{}
				<-goingAway
				d := packet(data, message(vf(1, connectID), bf(3, []byte("after goaway"))))
				if err := stream.SendMsg(&d); err != nil {
					return err
				}
				if err := stream.RecvMsg(&raw); err != nil {
					return err
				}
				if p, _ := decode(raw); p.ptype != data || string(p.sub.b[3]) != "after goaway" {
					return fmt.Errorf("first server's echo after GOAWAY: type %d %q", p.ptype, p.sub.b[3])
				}
				cr := packet(closeReq, message(vf(1, connectID)))
				if err := stream.SendMsg(&cr); err != nil {
					return err
				}
				if err := stream.RecvMsg(&raw); err != nil {
					return err
				}
				if p, _ := decode(raw); p.ptype != closeRsp {
					return fmt.Errorf("first server's close: type %d", p.ptype)
				}
				return nil
			}()
			if err != nil {
				result["firstError"] = err.Error()
				return nil
			}
			result["firstEchoAfterGoaway"] = true
			// As upstream's handler, the stream stays until the agent ends it (or Stop).
			var raw []byte
			result["firstEndedByAgent"] = stream.RecvMsg(&raw) == io.EOF
			return nil
		})
		go func() { _ = first.Serve(lis) }()
		select {
		case <-connected:
		case <-time.After(30 * time.Second):
			emit(map[string]interface{}{"timeout": true, "waiting": "the first Connect"})
			return
		}
		emit(map[string]interface{}{"event": "first connected"})
		stoppedAt := time.Now()
		firstStopped := make(chan struct{})
		go first.GracefulStop()
		time.AfterFunc(10*time.Second, func() {
			close(firstStopped)
			first.Stop()
		})
		time.Sleep(100 * time.Millisecond) // the GOAWAY is out before the tunnel is used again
		close(goingAway)
		for {
			lis, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err == nil {
				break
			}
			if time.Since(stoppedAt) > 5*time.Second {
				fail("listen again on %d: %v", port, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		inner := handler
		handler = func(srv interface{}, stream grpc.ServerStream) error {
			result["reconnectedAfterMs"] = time.Since(stoppedAt).Milliseconds()
			select {
			case <-firstStopped:
				result["beforeFirstStopped"] = false
			default:
				result["beforeFirstStopped"] = true
			}
			return inner(srv, stream)
		}
		waitFirst = func() {
			select {
			case <-firstDone:
			case <-time.After(5 * time.Second):
				result["firstError"] = "the first server's stream did not finish"
			}
		}
	}
	s := agentServer(creds, handler)
	go func() { _ = s.Serve(lis) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		result["timeout"] = true
	}
	waitFirst()
	emit(result)
	s.Stop()
}

// agentServer is upstream's agent listener: keepalive Time = --keepalive-time (1 h), and pings
// from an agent less than 30 s apart are strikes that end in GOAWAY too_many_pings
// (konnectivity.md §1.7).
func agentServer(creds credentials.TransportCredentials, handler grpc.StreamHandler) *grpc.Server {
	s := grpc.NewServer(
		grpc.Creds(creds),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Hour}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 30 * time.Second, PermitWithoutStream: true}),
	)
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "AgentService",
		HandlerType: (*interface{})(nil),
		Streams:     []grpc.StreamDesc{{StreamName: "Connect", Handler: handler, ServerStreams: true, ClientStreams: true}},
	}, struct{}{})
	return s
}

func main() {
	encoding.RegisterCodec(rawCodec{})
	args := os.Args[1:]
	atoi := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			fail("not a number: %q", s)
		}
		return n
	}
	switch {
	case len(args) == 5 && args[0] == "frontend":
		frontend(args[1], args[2], atoi(args[3]), atoi(args[4]))
	case len(args) == 7 && args[0] == "agent":
		agent(args[1], args[2], args[3], args[4], args[5], args[6])
	case len(args) == 6 && (args[0] == "server" || args[0] == "restart"):
		server(args[1], args[2], args[3], args[4], atoi(args[5]), args[0] == "restart")
	case (len(args) == 6 || len(args) == 7) && args[0] == "load":
		concurrency := 1
		if len(args) == 7 {
			concurrency = atoi(args[6])
		}
		load(args[1], args[2], args[3], args[4], atoi(args[5]), concurrency)
	case (len(args) == 4 || len(args) == 7) && args[0] == "connect":
		connect(args[1], args[2], atoi(args[3]), args[4:])
	default:
		fail("%v", errors.New("usage: go-peer frontend|agent|server|restart|connect|load ... (see the comment at the top)"))
	}
}
