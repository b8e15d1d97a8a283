package httpadapter

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer, forged header", "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"trusted peer, no header", "10.1.2.3:5000", nil, "10.1.2.3"},
		{"rightmost untrusted", "10.1.2.3:5000", []string{"198.51.100.1, 203.0.113.5, 10.9.9.9"}, "203.0.113.5"},
		{"several header lines", "10.1.2.3:5000", []string{"198.51.100.1", "203.0.113.5"}, "203.0.113.5"},
		{"every hop trusted: the leftmost", "127.0.0.1:5000", []string{"10.0.0.7, 10.0.0.8"}, "10.0.0.7"},
		{"a non-IP entry ends the walk at the peer", "10.1.2.3:5000", []string{"198.51.100.1, unknown, 10.0.0.9"}, "10.1.2.3"},
		{"IPv6 peer", "[2001:db8::1]:443", nil, "2001:db8::1"},
		{"IPv4-mapped IPv6 hop", "10.1.2.3:5000", []string{"::ffff:198.51.100.4"}, "198.51.100.4"},
		{"spaces around entries", "10.1.2.3:5000", []string{" 198.51.100.2 ,  10.0.0.1 "}, "198.51.100.2"},
	}
	for _, tc := range tests {
		r := &http.Request{RemoteAddr: tc.peer, Header: http.Header{}}
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := clientIP(r, trusted); got != tc.want {
			t.Errorf("%s: clientIP = %s, want %s", tc.name, got, tc.want)
		}
	}
}
