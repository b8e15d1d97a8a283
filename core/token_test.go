package core_test

import (
	"testing"

	"github.com/wsgate/wsgate/core"
)

func TestHandshakeToken(t *testing.T) {
	tests := []struct {
		name         string
		query        string
		auth, protos []string
		token        string
		offersBearer bool
	}{
		{"query wins", "q", []string{"Bearer h"}, []string{"bearer, p"}, "q", true},
		{"header next", "", []string{"Bearer h"}, []string{"bearer, p"}, "h", true},
		{"scheme is case-insensitive", "", []string{"bearer h"}, nil, "h", false},
		{"other schemes are no token", "", []string{"Basic h", "Token x"}, nil, "", false},
		{"second header value", "", []string{"Basic h", "Bearer h2"}, nil, "h2", false},
		{"subprotocol pair", "", nil, []string{"bearer, p"}, "p", true},
		{"subprotocol pair over two headers", "", nil, []string{"bearer", "p"}, "p", true},
		{"bearer offered alone", "q", nil, []string{"bearer"}, "q", true},
		{"no bearer offered", "", nil, []string{"chat, p"}, "", false},
		{"nothing", "", nil, nil, "", false},
	}
	for _, tc := range tests {
		tok, offers := core.HandshakeToken(tc.query, tc.auth, tc.protos)
		if tok != tc.token || offers != tc.offersBearer {
			t.Errorf("%s: got %q %v, want %q %v", tc.name, tok, offers, tc.token, tc.offersBearer)
		}
	}
	if name, v := core.AdminClaimFor(""); name != "is_staff" || v != true {
		t.Errorf("AdminClaimFor(\"\") = %s %v", name, v)
	}
	if name, v := core.AdminClaimFor("role=admin"); name != "role" || v != "admin" {
		t.Errorf("AdminClaimFor(role=admin) = %s %v", name, v)
	}
}
