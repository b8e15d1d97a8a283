// Command local runs wsgate's local server: the WebSocket gateway on
// coder/websocket with the admin API, the `@connections` API and the dev
// console, on the in-memory store by default.
//
//	go run ./cmd/local                 # 127.0.0.1:8080, dev tokens printed
//	go run ./cmd/local -jwt-secret S   # any WSGATE_* setting as a flag
//	go run ./cmd/local token -sub alice -admin -ttl 1h
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/golang-jwt/jwt/v5"

	httpadapter "github.com/wsgate/wsgate/adapters/http"
	"github.com/wsgate/wsgate/core"
	"github.com/wsgate/wsgate/internal/settings"
	"github.com/wsgate/wsgate/web"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is main with its inputs and outputs passed in; it returns the exit
// status: 0 after a graceful shutdown, 2 for a bad setting, 1 otherwise.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "token" {
		return runToken(args[1:], getenv, stdout, stderr)
	}
	fs := flag.NewFlagSet("wsgate-local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flags := settings.Register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "wsgate: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	s, err := settings.Load(flags(), getenv)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	slog.SetDefault(log) // libraries that log (the JWKS refresher) write JSON lines too
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dev := !s.HasKey()
	if dev {
		s.JWTSecret = settings.Secret(randomSecret())
	}
	gwCfg, err := s.Gateway(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: %v\n", err)
		return 2
	}

	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: WSGATE_ADDR: cannot listen on %s: %v\n", s.Addr, err)
		return 1
	}
	st, closeStore, endpoint, remote, err := openStore(ctx, s, ln.Addr().String(), log)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: %v\n", err)
		ln.Close()
		return 1
	}
	defer closeStore()

	opts := httpadapter.Options{
		TrustedProxies:   s.TrustedProxies,
		MaxMessageBytes:  s.MaxMessageBytes,
		MaxConnectionAge: s.MaxConnectionAge,
		IdleTimeout:      s.IdleTimeout,
		PingInterval:     s.PingInterval,
		Endpoint:         endpoint,
		Remote:           remote,
		Static:           web.FS,
		Logger:           log,
	}
	var userTok, adminTok string
	if dev {
		userTok, _ = mint(s, "dev-user", false, 24*time.Hour)
		adminTok, _ = mint(s, "dev-admin", true, 24*time.Hour)
		opts.DevTokens = func() (string, string) { return userTok, adminTok }
	}
	gwCfg.Store, gwCfg.Logger = st, log
	srv, err := httpadapter.New(gwCfg, opts)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: %v\n", err)
		return 2
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute, // idle keep-alive HTTP connections; WebSockets have their own
		MaxHeaderBytes:    1<<20 - 4096,    // net/http adds 4096: request heads over 1 MiB get 431
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	addr := ln.Addr().String()
	fmt.Fprintf(stdout, "wsgate listening on http://%s (WebSocket ws://%s/ws, store %s)\n", addr, addr, s.Store)
	if dev {
		fmt.Fprintf(stdout, "No JWT key configured: using a random secret. DEV ONLY, do not use in production.\n")
		fmt.Fprintf(stdout, "DEV ONLY user token:  %s\n", userTok)
		fmt.Fprintf(stdout, "DEV ONLY admin token: %s\n", adminTok)
		fmt.Fprintf(stdout, "DEV ONLY try: websocat 'ws://%s/ws?token=%s'  or open http://%s/\n", addr, userTok, addr)
	}
	log.Info("listening", slog.String("addr", addr), slog.String("store", s.Store), slog.Bool("dev", dev))

	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		fmt.Fprintf(stderr, "wsgate: %v\n", err)
		return 1
	case <-ctx.Done():
	}
	stop()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown", slog.String("error", err.Error()))
	}
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("shutdown", slog.String("error", err.Error()))
	}
	log.Info("stopped")
	return 0
}

func randomSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// mint signs an HS256 token with the configured secret.
func mint(s settings.Settings, sub string, admin bool, ttl time.Duration) (string, error) {
	if s.JWTSecret == "" {
		return "", errors.New("WSGATE_JWT_SECRET: minting tokens needs the shared secret")
	}
	now := time.Now()
	claims := jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
	if s.JWTIssuer != "" {
		claims["iss"] = s.JWTIssuer
	}
	if s.JWTAudience != "" {
		claims["aud"] = s.JWTAudience
	}
	if admin {
		name, value := core.AdminClaimFor(s.AdminClaim)
		claims[name] = value
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(s.JWTSecret))
}

// runToken is the `token` subcommand: it prints a token signed with the
// configured secret.
func runToken(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wsgate-local token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "", "the token's subject (user id); required")
	admin := fs.Bool("admin", false, "add the admin claim")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	flags := settings.Register(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	s, err := settings.Load(flags(), getenv)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: %v\n", err)
		return 2
	}
	if strings.TrimSpace(*sub) == "" || *ttl <= 0 {
		fmt.Fprintln(stderr, "wsgate: token needs -sub and a positive -ttl")
		return 2
	}
	tok, err := mint(s, *sub, *admin, *ttl)
	if err != nil {
		fmt.Fprintf(stderr, "wsgate: %v\n", err)
		return 2
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
