package delivery_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/golang-jwt/jwt/v5"

	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/infra/delivery"
)

var (
	ctx    = context.Background()
	secret = []byte("a shared secret of the instances, 32+ bytes long")
	frame  = []byte(`{"type":"event","channel":"news","data":1,"from":"server"}`)
)

func newSender(t *testing.T, opts delivery.Options) *delivery.Sender {
	t.Helper()
	if opts.Secret == nil {
		opts.Secret = secret
	}
	if opts.AWS.Credentials == nil {
		opts.AWS = aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	}
	s, err := delivery.New(opts)
	if err != nil {
		t.Fatalf("delivery.New: %v", err)
	}
	return s
}

// peer stands in for a wsgate server's @connections API: it checks the
// bearer token with the core's Authenticator and answers status.
type peer struct {
	t      *testing.T
	auth   *core.Authenticator
	status int
	mu     sync.Mutex
	paths  []string
	bodies []string
	tokens []string
	who    []core.Identity
}

func newPeer(t *testing.T, adminClaim string, status int) (*peer, *httptest.Server) {
	auth, err := core.NewAuthenticator(core.AuthConfig{
		Keyfunc:    func(*jwt.Token) (any, error) { return secret, nil },
		Methods:    []string{"HS256"},
		AdminClaim: adminClaim,
	})
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{t: t, auth: auth, status: status}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, srv
}

func (p *peer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	id, err := p.auth.Authenticate(r.Context(), token)
	p.mu.Lock()
	p.paths = append(p.paths, r.Method+" "+r.URL.EscapedPath())
	p.bodies = append(p.bodies, string(body))
	p.tokens = append(p.tokens, token)
	p.who = append(p.who, id)
	p.mu.Unlock()
	if err != nil || !id.Admin {
		http.Error(w, "not an admin", http.StatusForbidden)
		return
	}
	w.WriteHeader(p.status)
}

// TestPeerDelivers: a 2xx from the peer is a delivery; the request is a
// POST of the frame to /@connections/{escaped id} with an admin token the
// peer's Authenticator accepts, cached between sends.
func TestPeerDelivers(t *testing.T) {
	for _, claim := range []string{"", "role=admin", "wsgate_admin"} {
		t.Run("claim="+claim, func(t *testing.T) {
			p, srv := newPeer(t, claim, http.StatusOK)
			s := newSender(t, delivery.Options{AdminClaim: claim})
			for _, id := range []string{"abc", "a/b c"} {
				if err := s.Send(ctx, core.Target{ID: id, Endpoint: srv.URL + "/"}, frame); err != nil {
					t.Fatalf("Send(%q): %v", id, err)
				}
			}
			want := []string{"POST /@connections/abc", "POST /@connections/a%2Fb%20c"}
			if strings.Join(p.paths, "|") != strings.Join(want, "|") {
				t.Fatalf("paths %q, want %q", p.paths, want)
			}
			for i := range p.who {
				if p.bodies[i] != string(frame) || p.who[i].Subject != delivery.PeerSubject || !p.who[i].Admin {
					t.Fatalf("request %d: body %q, identity %+v", i, p.bodies[i], p.who[i])
				}
			}
			if p.tokens[0] != p.tokens[1] {
				t.Fatal("the peer token was minted again within its life")
			}
		})
	}
}

// TestPeerTokenRenewed: the token lives 60 s and is replaced before it
// expires.
func TestPeerTokenRenewed(t *testing.T) {
	var mu sync.Mutex
	var tokens []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		tokens = append(tokens, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	var now atomic.Int64
	now.Store(time.Now().Unix())
	s := newSender(t, delivery.Options{Clock: func() time.Time { return time.Unix(now.Load(), 0) }})
	for _, step := range []int64{0, 30, 15} { // at +45 s, 15 s are left: renewed
		now.Add(step)
		if err := s.Send(ctx, core.Target{ID: "x", Endpoint: srv.URL}, frame); err != nil {
			t.Fatal(err)
		}
	}
	exp := func(token string) int64 {
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
			t.Fatal(err)
		}
		e, _ := claims.GetExpirationTime()
		i, _ := claims.GetIssuedAt()
		if e.Sub(i.Time) != 60*time.Second {
			t.Fatalf("token lives %v, want 60s", e.Sub(i.Time))
		}
		return e.Unix()
	}
	if tokens[0] != tokens[1] || tokens[1] == tokens[2] || exp(tokens[2])-exp(tokens[0]) != 45 {
		t.Fatalf("tokens not cached then renewed: exp %d, %d, %d", exp(tokens[0]), exp(tokens[1]), exp(tokens[2]))
	}
}

// TestPeerFailures: 410 and a peer that does not answer (refused, too
// slow) are Gone; other statuses, a bad endpoint and the caller's own
// cancellation are plain errors.
func TestPeerFailures(t *testing.T) {
	_, gone := newPeer(t, "", http.StatusGone)
	_, broken := newPeer(t, "", http.StatusInternalServerError)
	_, forbidden := newPeer(t, "is_staff=yes", http.StatusOK) // expects another claim: 403
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String()
	l.Close()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })

	s := newSender(t, delivery.Options{Timeout: 300 * time.Millisecond})
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		endpoint string
		gone     bool
	}{
		{"410", ctx, gone.URL, true},
		{"refused", ctx, refused, true},
		{"timeout", ctx, slow.URL, true},
		{"500", ctx, broken.URL, false},
		{"403", ctx, forbidden.URL, false},
		{"no endpoint", ctx, "", false},
		{"not http", ctx, "ftp://example.com", false},
		{"caller canceled", canceled, slow.URL, false},
	} {
		start := time.Now()
		err := s.Send(tc.ctx, core.Target{ID: "c1", Endpoint: tc.endpoint}, frame)
		if err == nil || errors.Is(err, core.ErrGone) != tc.gone {
			t.Errorf("%s: Send = %v, want an error, Gone %v", tc.name, err, tc.gone)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: Send took %v", tc.name, d)
		}
	}

	noSecret, err := delivery.New(delivery.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := noSecret.Send(ctx, core.Target{ID: "c1", Endpoint: gone.URL}, frame); err == nil || errors.Is(err, core.ErrGone) {
		t.Fatalf("Send without a secret = %v, want a plain error", err)
	}
}

// TestAPIGateway: an "apigw:" endpoint goes to the Management API's
// PostToConnection under the stage path, signed with SigV4; GoneException
// is Gone, other errors are plain.
func TestAPIGateway(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.EscapedPath())
		mu.Unlock()
		if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=test/") {
			t.Errorf("request not signed: %q", r.Header.Get("Authorization"))
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/gone"):
			w.Header().Set("X-Amzn-ErrorType", "GoneException")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusGone)
			io.WriteString(w, `{"message":null}`)
		case strings.HasSuffix(r.URL.Path, "/denied"):
			w.Header().Set("X-Amzn-ErrorType", "ForbiddenException")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"message":"Forbidden"}`)
		case r.Method == http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		default:
			if string(body) != string(frame) {
				t.Errorf("body %q, want the frame", body)
			}
			w.WriteHeader(http.StatusOK)
		}
	}))
	t.Cleanup(srv.Close)
	s := newSender(t, delivery.Options{})
	ep := core.APIGatewayPrefix + srv.URL + "/prod"
	if err := s.Send(ctx, core.Target{ID: "Ab1=", Endpoint: ep}, frame); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := s.Send(ctx, core.Target{ID: "gone", Endpoint: ep}, frame); !errors.Is(err, core.ErrGone) {
		t.Fatalf("Send to a gone connection = %v, want core.ErrGone", err)
	}
	if err := s.Send(ctx, core.Target{ID: "denied", Endpoint: ep}, frame); err == nil || errors.Is(err, core.ErrGone) {
		t.Fatalf("Send refused by API Gateway = %v, want a plain error", err)
	}
	// Close is DeleteConnection; a connection already gone is ErrGone.
	if err := s.Close(ctx, core.Target{ID: "Ab1=", Endpoint: ep}); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(ctx, core.Target{ID: "gone", Endpoint: ep}); !errors.Is(err, core.ErrGone) {
		t.Fatalf("Close of a gone connection = %v, want core.ErrGone", err)
	}
	// WSGATE_APIGW_ENDPOINT overrides the endpoint a Lambda recorded.
	over := newSender(t, delivery.Options{APIGatewayEndpoint: srv.URL + "/vpc"})
	if err := over.Send(ctx, core.Target{ID: "Ab1=", Endpoint: core.APIGatewayPrefix + "https://recorded.invalid/prod"}, frame); err != nil {
		t.Fatalf("Send through the override: %v", err)
	}
	want := "POST /prod/@connections/Ab1%3D|POST /prod/@connections/gone|POST /prod/@connections/denied|" +
		"DELETE /prod/@connections/Ab1%3D|DELETE /prod/@connections/gone|POST /vpc/@connections/Ab1%3D"
	if got := strings.Join(seen, "|"); got != want {
		t.Fatalf("requests %s\nwant %s", got, want)
	}
}
