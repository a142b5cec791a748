// The benchmark's rows with a Go client (bench/go-client-rows.ts): a lean client like the one
// issue 3's upstream anchor was measured with, so that the client's own cost on the shared cores
// is a Go program's, not a Node process's. Three ways through, one function per row:
//
//	direct   TCP to the destination
//	connect  HTTP CONNECT over the frontend's Unix socket (kube-apiserver's egress dialer)
//	grpc     one grpc-go ClientConn and Proxy stream per tunnel, closed as konnectivity-client does
//
//	go-peer load ROW WAY PROXY DESTINATION SECONDS [CONCURRENCY]   ROW: up1 down1 echo http
//
// GO_PEER_PACKET_BYTES sets the largest DATA packet over gRPC (32 KiB by default). Up1 over gRPC,
// two interleaved pairs (2026-11-26): 16 KiB packets 157 / 160 MB/s with the server at 3.49 / 3.37
// ms of CPU per MB, 64 KiB 160 / 184 MB/s at 3.24 / 2.79: the per-packet cost is a small part.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
)

// tun is one tunnelled connection, whichever way it goes.
type tun interface {
	io.ReadWriter
	Close()
}

type netTun struct {
	net.Conn
	r *bufio.Reader
}

func (t *netTun) Read(b []byte) (int, error) { return t.r.Read(b) }
func (t *netTun) Close()                     { _ = t.Conn.Close() }

// grpcTun is a Proxy stream on its own ClientConn.
type grpcTun struct {
	conn      *grpc.ClientConn
	stream    grpc.ClientStream
	connectID uint64
	pending   []byte
	closed    chan struct{} // closed when CLOSE_RSP came (or the stream ended)
	once      sync.Once
}

// packetBytes is the most a DATA packet carries (GO_PEER_PACKET_BYTES, default 32 KiB).
var packetBytes = func() int {
	if n, err := strconv.Atoi(os.Getenv("GO_PEER_PACKET_BYTES")); err == nil && n > 0 {
		return n
	}
	return 32 * 1024
}()

func (t *grpcTun) Write(b []byte) (int, error) {
	return sendData(t.stream, t.connectID, b, packetBytes)
}

func (t *grpcTun) Read(b []byte) (int, error) {
	for len(t.pending) == 0 {
		var raw []byte
		if err := t.stream.RecvMsg(&raw); err != nil {
			t.once.Do(func() { close(t.closed) })
			return 0, err
		}
		p, err := decode(raw)
		if err != nil {
			return 0, err
		}
		switch p.ptype {
		case data:
			t.pending = p.sub.b[3]
		case closeRsp:
			t.once.Do(func() { close(t.closed) })
			return 0, io.EOF
		}
	}
	n := copy(b, t.pending)
	t.pending = t.pending[n:]
	return n, nil
}

// Close is konnectivity-client's: CLOSE_REQ, then the ClientConn goes once CLOSE_RSP came (at
// most 10 s); nobody waits for that.
func (t *grpcTun) Close() {
	cr := packet(closeReq, message(vf(1, t.connectID)))
	_ = t.stream.SendMsg(&cr)
	go func() {
		go func() {
			var b [1024]byte
			for {
				if _, err := t.Read(b[:]); err != nil {
					return
				}
			}
		}()
		select {
		case <-t.closed:
		case <-time.After(10 * time.Second):
		}
		_ = t.conn.Close()
	}()
}

func dialTun(way, proxy, address string) (tun, error) {
	switch way {
	case "direct":
		c, err := net.Dial("tcp", address)
		if err != nil {
			return nil, err
		}
		_ = c.(*net.TCPConn).SetNoDelay(true)
		return &netTun{Conn: c, r: bufio.NewReaderSize(c, 64*1024)}, nil
	case "connect":
		c, err := net.Dial("unix", proxy)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", address, "127.0.0.1")
		r := bufio.NewReaderSize(c, 64*1024)
		res, err := http.ReadResponse(r, nil)
		if err != nil {
			c.Close()
			return nil, err
		}
		if res.StatusCode != http.StatusOK {
			c.Close()
			return nil, fmt.Errorf("CONNECT: %s", res.Status)
		}
		return &netTun{Conn: c, r: r}, nil
	case "grpc":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := grpc.DialContext(ctx, "unix://"+proxy, grpc.WithInsecure(), grpc.WithBlock())
		if err != nil {
			return nil, err
		}
		stream, err := conn.NewStream(context.Background(), proxyDesc, "/ProxyService/Proxy")
		if err != nil {
			conn.Close()
			return nil, err
		}
		random := uint64(rand63())
		req := packet(dialReq, message(bf(1, []byte("tcp")), bf(2, []byte(address)), vf(3, random)))
		if err := stream.SendMsg(&req); err != nil {
			conn.Close()
			return nil, err
		}
		var raw []byte
		if err := stream.RecvMsg(&raw); err != nil {
			conn.Close()
			return nil, err
		}
		rsp, err := decode(raw)
		if err != nil || rsp.ptype != dialRsp || len(rsp.sub.b[1]) > 0 {
			conn.Close()
			return nil, fmt.Errorf("dial: type %d, error %q (%v)", rsp.ptype, rsp.sub.b[1], err)
		}
		return &grpcTun{conn: conn, stream: stream, connectID: rsp.sub.u[2], closed: make(chan struct{})}, nil
	}
	return nil, fmt.Errorf("unknown way %q", way)
}

var randState uint64 = uint64(time.Now().UnixNano())

func rand63() int64 {
	return int64(atomic.AddUint64(&randState, 0x9e3779b97f4a7c15) >> 1)
}

const warmup = 500 * time.Millisecond

// loadUp1 writes 64 KiB chunks as fast as the tunnel takes them; the rate is the sink's own
// (its 16-byte reports: bytes received, its monotonic clock in ns).
func loadUp1(t tun, d time.Duration) map[string]interface{} {
	stop := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		chunk := make([]byte, 64*1024)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := t.Write(chunk); err != nil {
				return
			}
		}
	}()
	// The writer is done before the tunnel is closed: a stream takes one sender at a time.
	defer func() {
		close(stop)
		<-stopped
	}()
	var report [16]byte
	read := func() (uint64, uint64, error) {
		if _, err := io.ReadFull(t, report[:]); err != nil {
			return 0, 0, err
		}
		return binary.BigEndian.Uint64(report[:8]), binary.BigEndian.Uint64(report[8:]), nil
	}
	start := time.Now()
	var b0, t0 uint64
	for time.Since(start) < warmup {
		var err error
		if b0, t0, err = read(); err != nil {
			return map[string]interface{}{"error": err.Error()}
		}
	}
	b1, t1 := b0, t0
	for time.Since(start) < warmup+d {
		var err error
		if b1, t1, err = read(); err != nil {
			return map[string]interface{}{"error": err.Error()}
		}
	}
	return map[string]interface{}{"mbps": float64(b1-b0) / (float64(t1-t0) / 1e9) / 1e6}
}

// loadDown1 reads the speak-first source as fast as it comes.
func loadDown1(t tun, d time.Duration) map[string]interface{} {
	buf := make([]byte, 256*1024)
	start := time.Now()
	for time.Since(start) < warmup {
		if _, err := t.Read(buf); err != nil {
			return map[string]interface{}{"error": err.Error()}
		}
	}
	var n int64
	from := time.Now()
	for time.Since(from) < d {
		m, err := t.Read(buf)
		if err != nil {
			return map[string]interface{}{"error": err.Error()}
		}
		n += int64(m)
	}
	return map[string]interface{}{"mbps": float64(n) / time.Since(from).Seconds() / 1e6}
}

// loadSlow reads the speak-first source at a steady GO_PEER_READ_MBPS (default 10 MB/s), as a
// kubectl cp to a laptop on a slow link: the tunnel must slow its sender down, not close it.
func loadSlow(t tun, d time.Duration) map[string]interface{} {
	rate := 10.0
	if v, err := strconv.ParseFloat(os.Getenv("GO_PEER_READ_MBPS"), 64); err == nil && v > 0 {
		rate = v
	}
	buf := make([]byte, 32*1024)
	start := time.Now()
	var n int64
	for time.Since(start) < d {
		m, err := t.Read(buf)
		if err != nil {
			return map[string]interface{}{"error": err.Error(), "bytes": n, "seconds": time.Since(start).Seconds()}
		}
		n += int64(m)
		if ahead := time.Duration(float64(n)/(rate*1e6)*1e9) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	return map[string]interface{}{"mbps": float64(n) / time.Since(start).Seconds() / 1e6}
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

// loadEcho: one after another, a fresh tunnel, one byte there and back, close; the first 10
// are discarded.
func loadEcho(way, proxy, address string, d time.Duration) map[string]interface{} {
	var samples []float64
	errs := 0
	start := time.Now()
	for i := 0; time.Since(start) < d && errs < 20; i++ {
		t0 := time.Now()
		t, err := dialTun(way, proxy, address)
		if err != nil {
			errs++
			continue
		}
		var b [1]byte
		if _, err := t.Write([]byte{42}); err == nil {
			_, err = io.ReadFull(t, b[:])
		}
		ms := float64(time.Since(t0).Microseconds()) / 1000
		t.Close()
		if err != nil {
			errs++
		} else if i >= 10 {
			samples = append(samples, ms)
		}
	}
	sort.Float64s(samples)
	return map[string]interface{}{"count": len(samples), "errors": errs, "p50": percentile(samples, 50), "p99": percentile(samples, 99)}
}

// loadHTTP: `concurrency` workers, each a fresh tunnel per GET / with Connection: close.
func loadHTTP(way, proxy, address string, d time.Duration, concurrency int) map[string]interface{} {
	var done, errs int64
	var firstErr atomic.Value
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	get := func() error {
		t, err := dialTun(way, proxy, address)
		if err != nil {
			return err
		}
		defer t.Close()
		if _, err := t.Write([]byte("GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")); err != nil {
			return err
		}
		res, err := http.ReadResponse(bufio.NewReader(t), nil)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, res.Body)
		if err == nil && res.StatusCode != http.StatusOK {
			err = errors.New(res.Status)
		}
		return err
	}
	start := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := get(); err != nil {
					atomic.AddInt64(&errs, 1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				atomic.AddInt64(&done, 1)
			}
		}()
	}
	wg.Wait()
	out := map[string]interface{}{"rps": float64(done) / time.Since(start).Seconds(), "completed": done, "errors": errs}
	if e := firstErr.Load(); e != nil {
		out["firstError"] = e
	}
	return out
}

func load(row, way, proxy, address string, seconds, concurrency int) {
	d := time.Duration(seconds) * time.Second
	switch row {
	case "up1", "down1", "slow":
		t, err := dialTun(way, proxy, address)
		if err != nil {
			fail("dial: %v", err)
		}
		defer t.Close()
		switch row {
		case "up1":
			emit(loadUp1(t, d))
		case "down1":
			emit(loadDown1(t, d))
		default:
			emit(loadSlow(t, d))
		}
	case "echo":
		emit(loadEcho(way, proxy, address, d))
	case "http":
		emit(loadHTTP(way, proxy, address, d, concurrency))
	default:
		fail("unknown row %q", row)
	}
}
