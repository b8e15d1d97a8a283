package httpadapter_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawUpgrade opens a WebSocket by hand and returns the socket after the 101.
func rawUpgrade(t *testing.T, e *env, tok string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = io.WriteString(conn, "GET /ws?token="+tok+" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	return conn, br
}

// frame builds a masked client frame.
func frame(first byte, payload []byte) []byte {
	mask := [4]byte{1, 2, 3, 4}
	b := []byte{first, 0x80 | byte(len(payload))}
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

// closeCode reads frames until a close frame and returns its status.
func closeCode(t *testing.T, br *bufio.Reader) int {
	t.Helper()
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			t.Fatalf("no close frame: %v", err)
		}
		n := int(h[1] & 0x7f)
		switch n {
		case 126:
			var ext [2]byte
			io.ReadFull(br, ext[:])
			n = int(binary.BigEndian.Uint16(ext[:]))
		case 127:
			var ext [8]byte
			io.ReadFull(br, ext[:])
			n = int(binary.BigEndian.Uint64(ext[:]))
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(br, payload); err != nil {
			t.Fatalf("frame payload: %v", err)
		}
		if h[0]&0x0f == 0x8 {
			if n < 2 {
				return 1005
			}
			return int(binary.BigEndian.Uint16(payload))
		}
	}
}

// TestProtocolErrors: frames that break RFC 6455 close the connection with
// 1002, and the server stays healthy.
func TestProtocolErrors(t *testing.T) {
	e := newEnv(t, nil)
	tok := token(t, "raw", false)
	tests := []struct {
		name  string
		bytes []byte
	}{
		{"reserved bit set", frame(0x80|0x40|0x1, []byte(`{"type":"ping"}`))},
		{"reserved opcode", frame(0x80|0x3, []byte("x"))},
		{"fragmented control frame", frame(0x9, []byte("ping"))},
		{"unmasked frame", append([]byte{0x81, 0x02}, "hi"...)},
		{"continuation without a start", frame(0x80, []byte("x"))}, // FIN, opcode 0
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn, br := rawUpgrade(t, e, tok)
			if _, err := conn.Write(tc.bytes); err != nil {
				t.Fatal(err)
			}
			if code := closeCode(t, br); code != 1002 {
				t.Fatalf("close code %d, want 1002", code)
			}
		})
	}
	if got := roundTrip(t, e.dial(t, tok), `{"type":"ping"}`); got["type"] != "pong" {
		t.Fatalf("server unhealthy after protocol errors: %v", got)
	}
}
